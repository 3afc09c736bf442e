"""The reference worker as a real subprocess against a real HTTP service (embedded protocol)."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime

import pytest

RANGE_START = datetime(2024, 6, 1, tzinfo=UTC)
RANGE_END = datetime(2024, 6, 3, 23, 59, 59, 999999, tzinfo=UTC)
FAST = ("--tick", "0.1")


def loading_events(service):
    return [body for body in service.telemetry() if body["event"] == "loading"]


def test_batch_run_reports_started_loading_finished(service, spawn_worker):
    worker = spawn_worker("loader-producer", "--duration", "1", *FAST, url=service.url)

    assert worker.wait(15) == 0, worker.stderr()
    bodies = service.telemetry()
    events = [body["event"] for body in bodies]
    assert events[0] == "started"
    assert events[-1] == "finished"
    assert set(events[1:-1]) == {"loading"}
    assert len(events) >= 4  # progress is coalesced only when the service lags

    records = [body["records_written"] for body in bodies[1:]]
    assert records == sorted(records) and len(set(records[:-1])) == len(records) - 1
    assert records[-1] == 1000  # 10 ticks of 100 records
    stamps = [datetime.fromisoformat(body["last_loaded_timestamp"]) for body in bodies[1:]]
    assert stamps == sorted(stamps)
    assert all(RANGE_START <= stamp <= RANGE_END for stamp in stamps)
    assert stamps[-1] == RANGE_END

    for body in bodies:
        assert body["queue_id"] == worker.queue_id
        assert body["producer"] == f"loader-producer-{worker.queue_id}-0"
        assert body["symbol"] == "BTCUSDT"
        assert body["type"] == "api_candles_5m"
        assert body["finished"] is (body["event"] == "finished")
        assert datetime.fromisoformat(body["sent_at"]).utcoffset().total_seconds() == 0
    assert worker.exit_record()["outcome"] == "finished"


def test_every_request_carries_the_token(service, spawn_worker):
    worker = spawn_worker("loader-producer", "--duration", "1.5", *FAST, url=service.url)

    assert worker.wait(15) == 0, worker.stderr()
    paths = {request.path for request in service.requests}
    assert paths == {"/internal/telemetry", "/internal/commands"}
    assert {request.authorization for request in service.requests} == {f"Bearer {service.token}"}
    polls = [r for r in service.requests if r.path == "/internal/commands"]
    assert polls[0].query == {
        "queue_id": [worker.queue_id],
        "producer": [f"loader-producer-{worker.queue_id}-0"],
    }
    assert service.token not in worker.stderr()


def test_fail_after_reports_error_and_exits_1(service, spawn_worker):
    worker = spawn_worker("arango-connector", "--fail-after", "2", *FAST, url=service.url)

    assert worker.wait(15) == 1, worker.stderr()
    bodies = service.telemetry()
    events = [body["event"] for body in bodies]
    # The last progress update may be superseded by the error, which carries its numbers.
    assert events in (["started", "loading", "loading", "error"], ["started", "loading", "error"])
    assert "simulated failure" in bodies[-1]["error_message"]
    assert bodies[-1]["records_written"] == 200
    record = worker.exit_record()
    assert record["outcome"] == "error"
    assert "simulated failure" in record["error_message"]


def test_fail_after_zero_fails_before_progress(service, spawn_worker):
    worker = spawn_worker("loader-producer", "--fail-after", "0", *FAST, url=service.url)

    assert worker.wait(15) == 1, worker.stderr()
    assert service.events() == ["started", "error"]


def test_stop_command_interrupts_long_before_the_run_would_end(service, spawn_worker):
    worker = spawn_worker("loader-producer", "--duration", "60", url=service.url)
    service.wait_for(lambda: "loading" in service.events())

    service.request_stop(worker.queue_id)
    # How fast is a benchmark figure, not a test: here, only that the stop ended a 60 s run.
    assert worker.wait(15) == 0, worker.stderr()

    assert service.events()[-1] == "interrupted"
    assert "finished" not in service.events()
    assert worker.exit_record()["outcome"] == "interrupted"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_signal_interrupts_long_before_the_run_would_end(service, spawn_worker, sig):
    worker = spawn_worker("graph-builder", "--duration", "60", url=service.url, env={
        "TYPE": "gnn_graph",
        "COLLECTION_INPUTS": "btc_candles_5m_2024_06,btc_trades_2024_06",
        "COLLECTION_OUTPUT": "btc_graph_2024_06",
    })  # fmt: skip
    service.wait_for(lambda: "loading" in service.events())

    worker.signal(sig)
    assert worker.wait(15) == 0, worker.stderr()

    bodies = service.telemetry()
    assert bodies[-1]["event"] == "interrupted"
    assert sig.name in bodies[-1]["message"]
    assert worker.exit_record()["outcome"] == "interrupted"


def test_streaming_type_never_finishes_on_its_own(service, spawn_worker):
    worker = spawn_worker(
        "loader-producer", "--duration", "0.5", *FAST, url=service.url,
        env={"TYPE": "ws_candles_1m"},
    )  # fmt: skip
    # 20 ticks of 0.1 s: four times --duration, counted in reports rather than by the clock
    service.wait_for(lambda: len(loading_events(service)) >= 20)

    assert worker.process.poll() is None
    loading = loading_events(service)
    assert len(loading) >= 10
    assert "finished" not in service.events()
    assert datetime.fromisoformat(loading[-1]["last_loaded_timestamp"]) == RANGE_END
    assert loading[-1]["records_written"] > loading[5]["records_written"]

    worker.signal(signal.SIGTERM)
    assert worker.wait(5) == 0, worker.stderr()
    assert service.events()[-1] == "interrupted"


def test_status_survives_the_service_being_down_at_start(spawn_worker, service_factory):
    down = service_factory()
    worker = spawn_worker("loader-producer", "--duration", "1", *FAST, url=down.url)
    down.wait_for(lambda: "telemetry not delivered, retrying" in worker.stderr())
    assert worker.process.poll() is None, worker.stderr()

    down.start()
    assert worker.wait(20) == 0, worker.stderr()
    events = down.events()
    assert events[0] == "started"
    assert events[-1] == "finished"
    assert events.count("started") == 1


def test_a_refused_token_is_not_retried(spawn_worker, service_factory):
    service = service_factory(token="the-right-token")
    service.start()
    worker = spawn_worker("loader-producer", "--duration", "0.5", *FAST, url=service.url)

    assert worker.wait(10) == 0, worker.stderr()
    refused = service.telemetry(accepted_only=False)
    assert [body["event"] for body in refused].count("started") == 1
    assert [body["event"] for body in refused].count("finished") == 1
    assert "401" in worker.stderr()


def test_stop_is_heard_while_the_service_lags(service, spawn_worker):
    service.telemetry_default = 503
    worker = spawn_worker("loader-producer", "--duration", "60", *FAST, url=service.url)
    service.wait_for(lambda: len(service.telemetry(accepted_only=False)) >= 2)

    service.telemetry_default = 200
    service.request_stop(worker.queue_id)
    assert worker.wait(10) == 0, worker.stderr()
    assert service.events()[-1] == "interrupted"


@pytest.mark.parametrize(
    ("target", "env"),
    [
        ("loader-producer", {"TYPE": "api_trades"}),
        ("arango-connector", {"TYPE": "api_trades"}),
        ("graph-builder", {"TYPE": "gnn_graph", "COLLECTION_INPUTS": "a,b",
                           "COLLECTION_OUTPUT": "g"}),
        ("gnn-trainer", {"TYPE": "gnn_train", "GRAPH_COLLECTION": "g", "MODEL_OUTPUT": "m"}),
        ("visualizer", {"TYPE": "graph_metrics", "SOURCE": "g"}),
    ],
)  # fmt: skip
def test_every_target_runs_to_the_end(service, spawn_worker, target, env):
    worker = spawn_worker(target, "--duration", "0.3", *FAST, url=service.url, env=env)

    assert worker.wait(15) == 0, worker.stderr()
    bodies = service.telemetry()
    assert [bodies[0]["event"], bodies[-1]["event"]] == ["started", "finished"]
    assert all(body["type"] == env["TYPE"] for body in bodies)
    assert bodies[-1]["producer"] == f"{target}-{worker.queue_id}-0"


@pytest.mark.parametrize(
    ("target", "env", "named"),
    [
        ("graph-builder", {"TYPE": "gnn_graph", "COLLECTION_OUTPUT": "g"}, "COLLECTION_INPUTS"),
        ("gnn-trainer", {"TYPE": "gnn_train", "GRAPH_COLLECTION": "g"}, "MODEL_OUTPUT"),
        ("visualizer", {"TYPE": "graph_metrics_stream"}, "SOURCE"),
    ],
)
def test_missing_target_parameter_is_reported_as_error(service, spawn_worker, target, env, named):
    worker = spawn_worker(target, *FAST, url=service.url, env=env)

    assert worker.wait(15) == 1, worker.stderr()
    bodies = service.telemetry()
    assert [body["event"] for body in bodies] == ["error"]
    assert named in bodies[0]["error_message"]


def test_duration_from_the_environment(service, spawn_worker):
    worker = spawn_worker(
        "loader-producer", *FAST, url=service.url, env={"QM_WORKER_DURATION": "0.3"}
    )
    assert worker.wait(15) == 0, worker.stderr()
    assert service.telemetry()[-1]["event"] == "finished"
    assert service.telemetry()[-1]["records_written"] == 300


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TIME_RANGE": None}, "TIME_RANGE"),
        ({"TIME_RANGE": "2024-06-03:2024-06-01"}, "TIME_RANGE"),
        ({"QUEUE_ID": ""}, "QUEUE_ID"),
        ({"QM_WORKER_TOKEN": None}, "QM_WORKER_TOKEN"),
        ({"QM_URL": None}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"QM_WORKER_DURATION": "soon"}, "QM_WORKER_DURATION"),
    ],
)
def test_bad_environment_fails_with_one_line_naming_the_variable(spawn_worker, env, named):
    worker = spawn_worker(
        "loader-producer", url="http://127.0.0.1:9", env={**env, "KAFKA_PASSWORD": "hunter2"}
    )

    assert worker.wait(15) == 2
    output = worker.stderr().strip()
    assert named in output
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1 or output.startswith("usage:")
    assert "hunter2" not in output


def test_help_works_without_any_environment():
    result = subprocess.run(
        [sys.executable, "-m", "queue_manager.worker.reference", "--help"],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0
    assert "--fail-after" in result.stdout
    assert "loader-producer" in result.stdout
