"""The processes a benchmark measures, run by the tests' own harness (tests/support/service.py
`Service`) with the benchmarks' settings: the real service, and the bare FastAPI baseline."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from tests.support.service import Service

from bench.config import REPO, Config

#: local workers that never report (a tiny `sleep`, so a thousand of them cost little): every
#: state change then comes from the events the benchmark produces.
IDLE_WORKER = "sh -c 'exec sleep 3600'"
#: a run must not pick production adapters (or a cluster) from the shell
UNSET = ("KUBECONFIG", "KAFKA_BOOTSTRAP_SERVERS", "ARANGO_URL", "KUBERNETES_SERVICE_HOST")


def _server(data_dir: Path, env: dict[str, str], *, app: str, factory: bool, ready: str) -> Service:
    """A uvicorn process as the benchmarks run it: no test defaults, no access log, in its own
    session (stopped as a group), readiness polled every 10 ms (`ready_after` is a figure)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    return Service(
        data_dir,
        env={"PYTHONPATH": path, **env},
        app=app,
        factory=factory,
        defaults={},
        unset=UNSET,
        uvicorn_args=("--no-access-log",),
        cwd=REPO,
        ready_path=ready,
        ready_timeout=60,
        ready_every=0.01,
        own_session=True,
        stop_timeout=20,
    )


def service(cfg: Config, name: str, *, kafka: bool, **env: str) -> Service:
    """The real queue-manager (create_app factory) with its own data dir (and Kafka topics).
    The data dir exists at once: a benchmark may seed the store before the service starts."""
    data = cfg.workdir / name
    data.mkdir(parents=True, exist_ok=True)
    base = {
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "LOCAL_WORKER_COMMAND": IDLE_WORKER,
        "STORE_BACKEND": "sqlite",
        "LAUNCHER_BACKEND": "local",
        "BUS_BACKEND": "memory",
    }
    if kafka:
        suffix = uuid.uuid4().hex[:8]
        base |= {
            "BUS_BACKEND": "kafka",
            **cfg.kafka().client_env(sasl=False),
            "KAFKA_GROUP_ID": f"qm-{name}-{suffix}",
            "QUEUE_EVENTS_TOPIC": f"events-{name}-{suffix}",
            "QUEUE_CONTROL_TOPIC": f"control-{name}-{suffix}",
            "QUEUE_UPDATES_TOPIC": f"updates-{name}-{suffix}",
        }
    base |= env
    # BENCH_APP=module:factory measures a candidate (e.g. a patched app) in place of the service.
    app = os.environ.get("BENCH_APP", "queue_manager.app:create_app")
    return _server(data, base, app=app, factory=True, ready="/health/ready")


def bare(cfg: Config, name: str, **env: str) -> Service:
    """The bare FastAPI baseline app (bench/bare_app.py)."""
    return _server(
        cfg.workdir / name / "bare", dict(env), app="bench.bare_app:app", factory=False,
        ready="/ready",
    )  # fmt: skip
