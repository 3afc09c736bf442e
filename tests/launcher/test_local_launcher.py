"""What only the embedded launcher does: worker processes on this machine
(docs/operations.md)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from queue_manager.adapters.local import LocalLauncher, procfs
from queue_manager.adapters.local.records import JobRecord, JobsDir
from queue_manager.api.worker_auth import WorkerTokens
from queue_manager.app import build_adapters, job_config
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.planner import plan
from queue_manager.domain.requests import PipelineCreate
from queue_manager.ports import JobPhase
from queue_manager.services.job_specs import job_spec
from queue_manager.settings import Settings
from tests.launcher.harness import LocalHarness, eventually, spec


async def test_a_worker_that_cannot_start_is_unavailable_and_leaves_no_job(
    tmp_path: Path,
) -> None:
    launcher = LocalLauncher(
        tmp_path / "jobs",
        worker_env=lambda _queue_id: {},
        command=[str(tmp_path / "no-such-worker")],
    )
    await launcher.start()
    try:
        job = spec(str(uuid.uuid4()))
        with pytest.raises(DependencyUnavailable, match="cannot start job"):
            await launcher.launch(job)
        # Nothing half made: the reconciler's next launch really tries again.
        assert await launcher.list_jobs() == []
        with pytest.raises(DependencyUnavailable, match="cannot start job"):
            await launcher.launch(job)
    finally:
        await launcher.stop()


def _running(pid: int) -> bool:
    """True while `pid` is a live process (a zombie awaiting its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat.rsplit(b")", 1)[-1].split()[0] != b"Z"


async def test_delete_ends_the_worker_process(tmp_path: Path) -> None:
    harness = LocalHarness(tmp_path)
    try:
        launcher = await harness.new_launcher()
        job = spec(str(uuid.uuid4()))
        await launcher.launch(job)
        pid = orjson.loads((harness.jobs / f"{job.name}.json").read_bytes())["pid"]
        assert _running(pid)
        await launcher.delete(job.name)
        # delete returns once the worker is gone; no record of it stays behind.
        assert not _running(pid)
        assert not (harness.jobs / f"{job.name}.json").exists()
    finally:
        await harness.close()


# -- what a local job gets: the platform's variables and the service's own credentials ---------

KAFKA_PASSWORD = "local-kafka-pass-do-not-write"
ARANGO_PASSWORD = "local-arango-pass-do-not-write"
#: a stand-in for the platform's entry points: fails its first attempt, then writes what it got
#: (argv and environment) to the file its first argument names, and ends
DUMPER = """
import json, os, sys
out = sys.argv[1]
if not os.path.exists(out + ".failed-once"):
    open(out + ".failed-once", "w").close()
    sys.exit(3)
with open(out + ".tmp", "w") as f:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ)}, f)
os.replace(out + ".tmp", out)
"""


async def test_a_local_job_gets_the_platform_variables_and_the_services_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dumper = tmp_path / "dumper.py"
    dumper.write_text(DUMPER)
    ca = tmp_path / "kafka-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    loader_out, worker_out = tmp_path / "loader.json", tmp_path / "worker.json"
    # The service's own secrets are in its environment; a job must not inherit them.
    monkeypatch.setenv("WORKER_TOKEN_SECRET", "service-only-secret")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        store_backend="sqlite",
        bus_backend="memory",
        launcher_backend="local",
        kafka_bootstrap_servers="broker.invalid:9093",
        kafka_user="qm-kafka",
        kafka_password=KAFKA_PASSWORD,
        ca_path=ca,
        queue_events_topic="events-topic",
        arango_url="http://arangodb.invalid:8529",
        arango_user="qm-arango",
        arango_password=ARANGO_PASSWORD,
        # The platform's entry point for loaders takes no argument; the others keep the shared
        # command, with the target and LOCAL_WORKER_ARGS after it.
        local_loader_command=f"{sys.executable} {dumper} {loader_out}",
        local_worker_command=f"{sys.executable} {dumper} {worker_out}",
        local_worker_args="--flag value",
    )
    launcher = build_adapters(settings, WorkerTokens(b"k" * 32)).launcher
    assert isinstance(launcher, LocalLauncher)
    request = PipelineCreate.model_validate(
        {
            "symbol": "BTCUSDT",
            "time_range": "2024-01-01:2024-01-02",
            "requests": [
                {"target": "loader-producer", "type": "api_candles_5m", "max_retries": 1},
                {"target": "arango-connector", "type": "api_candles_5m", "max_retries": 1},
            ],
        }
    )
    queue = plan(request, str(uuid.uuid4()))
    specs = [job_spec(queue, step, job_config(settings)) for step in queue.steps]
    await launcher.start()
    try:
        for job in specs:
            await launcher.launch(job)
        # Each failed once and was restarted: the retry resolves the credentials again.
        await eventually(lambda: loader_out.exists() and worker_out.exists())
        await eventually(lambda: _all_ended(launcher, {job.name for job in specs}))
    finally:
        await launcher.stop()

    loader, worker = orjson.loads(loader_out.read_bytes()), orjson.loads(worker_out.read_bytes())
    assert loader["argv"] == [str(loader_out)]  # exactly the command: no target, no args
    assert worker["argv"] == [str(worker_out), "arango-connector", "--flag", "value"]
    for got in (loader["env"], worker["env"]):
        assert got["CA_PATH"] == str(ca)
        assert got["TELEMETRY_TOPIC"] == got["QUEUE_EVENTS_TOPIC"] == "events-topic"
        for name in ("KAFKA_USER", "KAFKA_USER_PRODUCER", "KAFKA_USER_CONSUMER"):
            assert got[name] == "qm-kafka", name
        for name in ("KAFKA_PASSWORD", "KAFKA_PASSWORD_PRODUCER", "KAFKA_PASSWORD_CONSUMER"):
            assert got[name] == KAFKA_PASSWORD, name
        assert (got["ARANGO_USER"], got["ARANGO_PASSWORD"]) == ("qm-arango", ARANGO_PASSWORD)
        assert "WORKER_TOKEN_SECRET" not in got
        # Its credential is its step run's: made from its own producer id (docs/security.md).
        assert got["QM_WORKER_TOKEN"] == WorkerTokens(b"k" * 32).token(got["TELEMETRY_PRODUCER_ID"])
    assert loader["env"]["QM_WORKER_TOKEN"] != worker["env"]["QM_WORKER_TOKEN"]
    # On disk, the records name the credentials and never hold a value.
    jobs_dir = settings.data_dir / "jobs"
    for job in specs:
        record = orjson.loads((jobs_dir / f"{job.name}.json").read_bytes())
        assert set(record["secret_names"]) >= {"KAFKA_PASSWORD_PRODUCER", "ARANGO_PASSWORD"}
    for path in jobs_dir.iterdir():
        content = path.read_bytes()
        assert KAFKA_PASSWORD.encode() not in content, path
        assert ARANGO_PASSWORD.encode() not in content, path


async def _all_ended(launcher: LocalLauncher, names: set[str]) -> bool:
    ended = {j.name for j in await launcher.list_jobs() if j.phase is JobPhase.SUCCEEDED}
    return ended >= names


#: a worker that leaves its last word in its exit file, as the SDK's do, and ends
EXITER = """
import json, os
with open(os.environ["QM_EXIT_FILE"], "w") as f:
    json.dump({"outcome": "finished", "records_written": 2400, "error_message": None}, f)
"""


async def test_an_ended_jobs_status_carries_what_its_exit_file_says(tmp_path: Path) -> None:
    exiter = tmp_path / "exiter.py"
    exiter.write_text(EXITER)

    def launcher() -> LocalLauncher:
        return LocalLauncher(
            tmp_path / "jobs",
            worker_env=lambda _producer: {},
            command=[sys.executable, str(exiter)],
        )

    first = launcher()
    await first.start()
    try:
        job = spec(str(uuid.uuid4()))
        await first.launch(job)
        ended = await asyncio.wait_for(anext(aiter(first.watch())), 30)
    finally:
        await first.stop()
    assert (ended.name, ended.phase) == (job.name, JobPhase.SUCCEEDED)
    assert (ended.outcome, ended.records_written) == ("finished", 2400)
    # A restarted service's launcher knows it too.
    again = launcher()
    await again.start()
    try:
        [status] = await again.list_jobs()
        assert (status.outcome, status.records_written) == ("finished", 2400)
    finally:
        await again.stop()


async def test_a_worker_that_just_exited_is_the_word_of_the_replica_that_started_it(
    tmp_path: Path,
) -> None:
    """Replicas share the jobs directory. Between a worker's exit and its replica writing how
    it ended (its exit code, which only that replica knows), the record still says ACTIVE;
    another replica reading it then must not call the worker vanished and fail a step that
    finished. Once the starting replica is gone, the others decide from the exit file."""
    other_replica = await asyncio.create_subprocess_exec("sleep", "600")
    exited = await asyncio.create_subprocess_exec("true")
    await exited.wait()
    owner = procfs.identity(other_replica.pid)
    assert owner is not None
    job = spec(str(uuid.uuid4()))
    jobs = JobsDir(tmp_path / "jobs")
    jobs.create()
    jobs.write(
        JobRecord(
            name=job.name,
            queue_id=job.queue_id,
            step_index=0,
            target=job.target,
            env={},
            max_retries=0,
            pid=exited.pid,
            attempts=1,
            owner=owner,
        )
    )
    launcher = LocalLauncher(tmp_path / "jobs", worker_env=lambda _p: {}, command=["true"])
    await launcher.start()
    try:
        [status] = await launcher.list_jobs()
        assert status.phase is JobPhase.ACTIVE  # its replica will say how it ended
        other_replica.kill()
        await other_replica.wait()
        [status] = await launcher.list_jobs()
        assert (status.phase, status.message) == (JobPhase.FAILED, "worker process vanished")
    finally:
        if other_replica.returncode is None:
            other_replica.kill()
            await other_replica.wait()
        await launcher.stop()
