"""P4 — launch rate with the Kubernetes launcher against a real kube-apiserver (+ etcd).

The service (LAUNCHER_BACKEND=kubernetes, admin kubeconfig, SQLite, in-process bus) gets 1,000
starts of the historical pipeline (examples/historical.json: four Jobs are created at once per
start — both loaders and both connectors; quick: 100 starts of the single form, one Job each, so
that the two 20-QPS-bound runs fit the quick budget), sent by 8 concurrent HTTP clients; timed
from the first request until the API server holds every Job. Baseline, right after: a raw
lightkube `AsyncClient.create` loop, 8 concurrent creators sharing one token bucket with the
launcher's own QPS/burst, creating the same number of the same Jobs in another namespace.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
from tests.support.waiting import wait_until

from bench.config import REPO, Config
from bench.profile import profiled
from bench.report import Row
from bench.seeding import retarget, template_queue
from bench.services import service

CONCURRENCY = 8


def job_count(server, namespace: str) -> int:
    answer = server.request(
        "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs?limit=1"
    )
    return len(answer.get("items", [])) + int(answer["metadata"].get("remainingItemCount", 0))


async def start_all(url: str, body: dict, count: int) -> int:
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        nonlocal failures
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            while not queue.empty():
                queue.get_nowait()
                r = await client.post("/queues/start", json=body)
                failures += r.status_code != 200

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return failures


async def raw_creates(server, namespace: str, count: int, qps: float, burst: int) -> float:
    from lightkube import AsyncClient, KubeConfig

    from queue_manager.adapters.kube.manifests import JobTemplate, build_job
    from queue_manager.adapters.kube.rate_limit import TokenBucket
    from queue_manager.app import job_config
    from queue_manager.domain.models import QueueState
    from queue_manager.services.job_specs import job_spec
    from queue_manager.settings import Settings

    queue = template_queue()
    config = job_config(Settings(_env_file=None))
    client = AsyncClient(KubeConfig.from_file(str(server.kubeconfig_path)), namespace=namespace)
    bucket = TokenBucket(qps, burst)
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        todo.put_nowait(i)

    async def worker() -> None:
        while not todo.empty():
            todo.get_nowait()
            q: QueueState = queue.model_copy(deep=True)
            retarget(q, str(uuid.uuid4()), q.created_at, None)
            job = build_job(job_spec(q, q.steps[0], config), JobTemplate(), namespace)
            await bucket.acquire()
            await client.create(job)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - began
    await client.close()
    return count / elapsed


def run(cfg: Config) -> list[Row]:
    from tests.support.kube_apiserver import start_kube_apiserver

    from queue_manager.settings import Settings

    starts = cfg.size(1_000, 100)
    if cfg.quick:
        body = {"symbol": "BTCUSDT", "type": "api_candles_5m",
                "time_range": "2024-06-01:2024-06-30"}
        per_start = 1
    else:
        body = json.loads((REPO / "examples" / "historical.json").read_text())
        per_start = 4
    settings = Settings(_env_file=None)
    qps = float(getattr(settings, "kube_qps", 20.0))
    burst = int(getattr(settings, "kube_burst", 40))
    server = start_kube_apiserver(cfg.workdir / "kube")
    try:
        svc = service(cfg, "p4", kafka=False, LAUNCHER_BACKEND="kubernetes",
                    KUBECONFIG=str(server.kubeconfig_path), K8S_NAMESPACE="default",
                    RECONCILE_SECONDS="5")
        with svc:
            began = time.perf_counter()
            with profiled(svc, "p4", cfg, seconds=30):
                failures = asyncio.run(start_all(svc.url, body, starts))
                accepted = time.perf_counter() - began
                expected = per_start * (starts - failures)
                wait_until(lambda: job_count(server, "default") >= expected, 900, every=0.2,
                           ignore=(OSError,),
                           what=f"{expected:,} Jobs in the API server")  # fmt: skip
                elapsed = time.perf_counter() - began
        rate = expected / elapsed
        server.request("POST", "/api/v1/namespaces",
                       {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench-raw"}})
        base = asyncio.run(raw_creates(server, "bench-raw", expected, qps, burst))
    finally:
        server.stop()
    return [
        Row("P4 Kubernetes Jobs created/s", rate, "Jobs/s", base,
          f"raw lightkube create loop, same QPS {qps:g}/burst {burst}", "≥ 0.8×",
          rate >= 0.8 * base,
          note=f"{starts:,} {'single-step' if per_start == 1 else 'historical pipeline'} "
          f"starts ({expected:,} Jobs, {failures} starts refused); "
          f"all starts answered after {accepted:.1f} s, all Jobs present after "
          f"{elapsed:.1f} s."),
    ]
