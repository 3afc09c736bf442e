"""WorkerEnv: the job environment of docs/pipelines.md, docs/worker-protocol.md, and its one-line
errors."""

from __future__ import annotations

import ssl
from datetime import UTC, date, datetime

import pytest

from queue_manager.worker import WorkerEnv, WorkerEnvError
from queue_manager.worker.kafka import kafka_security

BASE = {
    "QUEUE_ID": "0b3c1a4e-5d6f-4a8b-9c0d-1e2f3a4b5c6d",
    "SYMBOL": "BTCUSDT",
    "TYPE": "gnn_graph",
    "TIME_RANGE": "2024-06-01:2024-06-30",
    "TELEMETRY_PRODUCER_ID": "graph-builder-0b3c1a4e-5d6f-4a8b-9c0d-1e2f3a4b5c6d-4",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-0:9092, kafka-1:9092",
}


def load(**overrides: str | None) -> WorkerEnv:
    environ = {**BASE, **overrides}
    return WorkerEnv.load({k: v for k, v in environ.items() if v is not None})


def test_reads_every_variable_the_service_sets():
    env = load(
        KAFKA_TOPIC="0b3c.gnn_graph",
        COLLECTION_NAME="btc_graph_2024_06",
        ARANGO_URL="http://arango:8529",
        ARANGO_DB="streamforge",
        INTERVAL="5m",
        COLLECTION_INPUTS="btc_candles_5m_2024_06, btc_trades_2024_06",
        COLLECTION_OUTPUT="btc_graph_2024_06",
        GRAPH_COLLECTION="g",
        MODEL_OUTPUT="m",
        INFERENCE_INTERVAL="5m",
        SOURCE="s",
    )
    assert env.queue_id == BASE["QUEUE_ID"]
    assert env.step_type == "gnn_graph"
    assert env.telemetry_producer_id == BASE["TELEMETRY_PRODUCER_ID"]
    assert env.collection_inputs == ["btc_candles_5m_2024_06", "btc_trades_2024_06"]
    assert env.collection_output == "btc_graph_2024_06"
    assert (env.interval, env.graph_collection, env.model_output) == ("5m", "g", "m")
    assert (env.inference_interval, env.source, env.arango_db) == ("5m", "s", "streamforge")
    assert env.kafka_bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    assert env.queue_control_topic == "queue-control"
    assert env.queue_events_topic == "queue-events"
    assert env.transport == "kafka"
    assert (env.start_date, env.end_date) == (date(2024, 6, 1), date(2024, 6, 30))
    assert env.range_start == datetime(2024, 6, 1, tzinfo=UTC)
    assert env.range_end == datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)


def test_embedded_mode_picks_http():
    env = load(QM_URL="http://127.0.0.1:8000/", QM_WORKER_TOKEN="t0k", QM_EXIT_FILE="/tmp/x")
    assert env.transport == "http"
    assert env.qm_url == "http://127.0.0.1:8000"
    assert env.qm_worker_token is not None and env.qm_worker_token.get_secret_value() == "t0k"
    assert str(env.qm_exit_file) == "/tmp/x"


def test_the_process_environment_is_read_by_pydantic_settings(monkeypatch):
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLLECTION_INPUTS", "a,b")
    monkeypatch.setenv("QUEUE_EVENTS_TOPIC", "events-x")
    monkeypatch.setenv("KAFKA_USER", "")  # an empty secret reference means unset

    for env in (WorkerEnv(), WorkerEnv.load()):
        assert env.collection_inputs == ["a", "b"]
        assert env.queue_events_topic == "events-x"
        assert env.kafka_user is None


def test_an_explicit_mapping_ignores_the_process_environment(monkeypatch):
    monkeypatch.setenv("QUEUE_ID", "from-the-process")
    with pytest.raises(WorkerEnvError, match="QUEUE_ID: missing"):
        load(QUEUE_ID=None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"QUEUE_ID": None}, "QUEUE_ID: missing"),
        ({"TYPE": "  "}, "TYPE: missing"),
        ({"TELEMETRY_PRODUCER_ID": None}, "TELEMETRY_PRODUCER_ID: missing"),
        ({"TIME_RANGE": "2024-06-01"}, "TIME_RANGE: must be YYYY-MM-DD:YYYY-MM-DD"),
        ({"TIME_RANGE": "2024-02-30:2024-03-01"}, "TIME_RANGE: not a real date"),
        ({"TIME_RANGE": "2024-03-01:2024-02-01"}, "TIME_RANGE: start date is after end date"),
        ({"KAFKA_BOOTSTRAP_SERVERS": None}, "KAFKA_BOOTSTRAP_SERVERS: missing"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "kafka"}, "KAFKA_BOOTSTRAP_SERVERS: must be"),
        ({"KAFKA_USER": "qm"}, "KAFKA_PASSWORD: required when KAFKA_USER is set"),
        ({"KAFKA_USER": "qm", "KAFKA_PASSWORD": "p", "CA_PATH": "/no/ca.pem"}, "CA_PATH"),
        ({"QM_URL": "http://qm:8000"}, "QM_WORKER_TOKEN: required when QM_URL is set"),
        ({"QM_URL": "qm:8000", "QM_WORKER_TOKEN": "t"}, "QM_URL: must be an http"),
    ],
)
def test_errors_name_the_variable(overrides, message):
    with pytest.raises(WorkerEnvError) as caught:
        load(**overrides)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_all_missing_variables_are_named_in_one_error():
    with pytest.raises(WorkerEnvError) as caught:
        WorkerEnv.load({})
    assert caught.value.problems[:5] == [
        "QUEUE_ID: missing",
        "SYMBOL: missing",
        "TYPE: missing",
        "TIME_RANGE: missing",
        "TELEMETRY_PRODUCER_ID: missing",
    ]


def test_secrets_never_show():
    env = load(KAFKA_USER="qm", KAFKA_PASSWORD="hunter2", QM_URL="http://q", QM_WORKER_TOKEN="s3")
    assert "hunter2" not in repr(env) and "s3" not in repr(env)
    with pytest.raises(WorkerEnvError) as caught:
        load(KAFKA_PASSWORD="hunter2", QM_WORKER_TOKEN="s3cr3t", QM_URL="nope")
    assert "hunter2" not in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_kafka_security_follows_kafka_user():
    assert kafka_security(load()) == {"security_protocol": "PLAINTEXT"}

    secured = kafka_security(load(KAFKA_USER="qm", KAFKA_PASSWORD="pw"))
    assert secured["security_protocol"] == "SASL_SSL"
    assert secured["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (secured["sasl_plain_username"], secured["sasl_plain_password"]) == ("qm", "pw")
    assert isinstance(secured["ssl_context"], ssl.SSLContext)
