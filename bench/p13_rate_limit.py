"""P13 — rate limits: 1,000 queues of one group hit a 429 together (quick: 200).

Measured: from the breaker's close to every step relaunched on a real kube-apiserver, and the
store's cost per retry decision.
The service (SQLite, in-process bus, LAUNCHER_BACKEND=kubernetes against a real kube-apiserver
+ etcd, the settings' KUBE_QPS/KUBE_BURST, RATE_LIMIT_RELEASE_PER_SECOND=1000 so the launcher's
QPS, not the release pace, bounds the relaunch) gets the starts of single-form `api` queues
(group `exchange`, `retry` limit 1 on `rate_limited`), 8 HTTP clients. Once every Job exists,
the bench reports `error` for every step as its worker would (POST /internal/telemetry with the
run's worker credential; `http_status` 429, `retry_after` R, R long enough for the failed
attempts' Jobs to be deleted at that QPS first): every step goes `retrying` and the group's
breaker opens (extended by each later failure). A lightkube watch started before the first start
notes when each retried Job (`…-r1`) is ADDED; the figure is the time from the breaker's final
`until` (GET /rate-limits) to the last of them. Baseline, right after on the same apiserver: a
raw lightkube `AsyncClient.create` loop, 8 concurrent creators sharing one token bucket with
the launcher's QPS/burst, creating as many of the same Jobs in another namespace. Store cost, in
the bench process on a SQLiteStore file of its own: one retry decision = `update_many` running
`state.fail_step` (class `rate_limited`, Retry-After) on a `launching` step with a retry policy,
plus the breaker's compare-and-set (`trip_breaker`, an extension); baseline: `update_many`
applying a plain `loading` report to the same kind of step, on the same store.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.config import Config
from bench.p4_launch import raw_creates
from bench.report import Row
from bench.services import service

CONCURRENCY = 8
NAMESPACE = "default"
SECRET = "p13-worker-token-secret"
BODY: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "type": "api",
    "time_range": "2024-06-01:2024-06-30",
    "retry": {"limit": 1, "on": ["rate_limited"],
              "backoff": {"initial": 1, "factor": 1, "max": 1, "jitter": 0}},
}  # fmt: skip
STORE_DECISIONS = 500


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _pool(count: int, call: Any) -> list[Any]:
    """`call(client, i)` for i in range(count), CONCURRENCY at a time."""
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        todo.put_nowait(i)
    results: list[Any] = [None] * count

    async def worker(client: httpx.AsyncClient) -> None:
        while not todo.empty():
            i = todo.get_nowait()
            results[i] = await call(client, i)

    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return results


async def _watch(server: Any, added: dict[str, float], stop: asyncio.Event) -> None:
    """Wall time at which each retried Job (`…-r1`) first appeared."""
    from lightkube import AsyncClient, KubeConfig
    from lightkube.resources.batch_v1 import Job

    client = AsyncClient(KubeConfig.from_file(str(server.kubeconfig_path)), namespace=NAMESPACE)

    async def watch() -> None:
        async for kind, job in client.watch(Job, namespace=NAMESPACE):
            name = job.metadata.name
            if kind == "ADDED" and name.endswith("-r1") and name not in added:
                added[name] = time.time()

    task = asyncio.create_task(watch())
    await stop.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()


async def _until(cond: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {within:g} s waiting for {what}")
        await asyncio.sleep(0.2)


async def scenario(
    url: str, server: Any, db: Path, count: int, retry_after: float
) -> dict[str, Any]:
    from bench.p4_launch import job_count
    from queue_manager.api.worker_auth import WorkerTokens

    tokens = WorkerTokens(SECRET.encode())
    added: dict[str, float] = {}
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(server, added, stop))
    await asyncio.sleep(0.5)  # the watch is open before the first Job
    try:

        async def start(client: httpx.AsyncClient, _: int) -> str:
            answer = await client.post(f"{url}/queues/start", json=BODY)
            answer.raise_for_status()
            return str(answer.json()["data"]["queue_id"])

        ids: list[str] = await _pool(count, start)

        async def all_jobs() -> bool:
            return await asyncio.to_thread(job_count, server, NAMESPACE) >= count

        await _until(all_jobs, 600, f"{count} Jobs in the API server")

        async def producer(client: httpx.AsyncClient, i: int) -> str:
            answer = await client.get(f"{url}/queues/{ids[i]}")
            answer.raise_for_status()
            return str(answer.json()["data"]["steps"][0]["telemetry_id"])

        producers: list[str] = await _pool(count, producer)
        hit = time.time()

        async def report(client: httpx.AsyncClient, i: int) -> int:
            body = {
                "event": "error", "queue_id": ids[i], "producer": producers[i],
                "finished": True, "http_status": 429, "retry_after": retry_after,
                "error_message": f"HTTP 429 Too Many Requests (Retry-After: {retry_after:g})",
                "sent_at": datetime.now(UTC).isoformat(),
            }  # fmt: skip
            headers = {"Authorization": f"Bearer {tokens.token(producers[i])}"}
            answer = await client.post(f"{url}/internal/telemetry", json=body, headers=headers)
            return answer.status_code

        codes = await _pool(count, report)
        refused = sum(code != 202 for code in codes)
        reported = time.time()

        async def exchange() -> dict[str, Any]:
            async with httpx.AsyncClient(timeout=30) as client:
                answer = await client.get(f"{url}/rate-limits")
            groups = {g["group"]: g for g in answer.json()["data"]}
            return dict(groups["exchange"])

        # Every failure applied: the breaker's `until` is final (each later failure extends it).
        async def all_failed() -> bool:
            return await asyncio.to_thread(retried, db) >= count - refused

        await _until(all_failed, 120, "every queue to hold a failed attempt")
        group = await exchange()
        if not group["open"]:
            raise RuntimeError(f"the exchange group is not open: {group}")
        until = _at(group["until"]).timestamp()
        deleted_by = None

        async def old_jobs_gone() -> bool:
            return await asyncio.to_thread(job_count, server, NAMESPACE) == len(added)

        try:
            await _until(old_jobs_gone, max(1.0, until - time.time()), "old Jobs deleted")
            deleted_by = time.time()
        except TimeoutError:
            pass

        async def relaunched() -> bool:
            return len(added) >= count - refused

        await _until(relaunched, 900, f"{count - refused} retried Jobs")
        closed = await exchange()
    finally:
        stop.set()
        await watcher
    times = sorted(added.values())
    return {
        "ids": ids, "refused": refused, "hit": hit, "reported": reported, "until": until,
        "opened_at": _at(group["opened_at"]).timestamp(), "first": times[0], "last": times[-1],
        "relaunched": len(times), "deleted_by": deleted_by, "strikes": closed["strikes"],
    }  # fmt: skip


def retried(db: Path) -> int:
    """Queues whose step holds a failed attempt (read-only, beside the service)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM queue_state "
            "WHERE json_extract(CAST(doc AS TEXT), '$.steps[0].retries') >= 1"
        ).fetchone()
    return int(row[0])


# -- the store's cost per retry decision ------------------------------------------------------


async def store_costs(db: Path, count: int) -> dict[str, float]:
    """ms per retry decision (fail_step + update, then the breaker's CAS) and per plain update."""
    from pydantic import TypeAdapter

    from queue_manager.adapters.sqlite_store import SQLiteStore
    from queue_manager.domain import history, planner, state
    from queue_manager.domain import rate_limits as rules
    from queue_manager.domain.history import QueueEvent
    from queue_manager.domain.models import QueueState
    from queue_manager.domain.requests import StartRequest
    from queue_manager.domain.retry import ErrorClass
    from queue_manager.domain.telemetry import Source, parse

    request = TypeAdapter(StartRequest).validate_python(BODY)
    store = SQLiteStore(db)
    await store.open()
    now = datetime.now(UTC)
    try:
        retried, plain = [], []
        for ids in (retried, plain):
            for _ in range(count):
                queue = planner.plan(request, str(uuid.uuid4()))
                state.claim_ready(queue, now)
                await store.insert(queue, None)
                ids.append(queue.id)

        def recorded(change: Any) -> Any:
            def mutate(queue: QueueState) -> list[QueueEvent] | None:
                outcome = change(queue)
                if not outcome.changed:
                    return None
                history.stamp(outcome.events, "bench")
                history.number(queue, outcome.events)
                return list(outcome.events)

            return mutate

        def fail(queue: QueueState) -> Any:
            return state.fail_step(queue, 0, "HTTP 429 Too Many Requests (Retry-After: 30)",
                                   datetime.now(UTC), ErrorClass.RATE_LIMITED, 30.0)  # fmt: skip

        def loading(queue: QueueState) -> Any:
            step = queue.steps[0]
            raw = {"event": "loading", "queue_id": queue.id, "producer": step.telemetry_id,
                   "records_written": 100}  # fmt: skip
            return state.apply_telemetry(queue, step, parse(raw, Source.EVENTS), datetime.now(UTC))

        decide, cas, update = [], [], []
        for queue_id, other in zip(retried, plain, strict=True):
            began = time.perf_counter()
            [stored] = (await store.update_many({queue_id: recorded(fail)})).values()
            decide.append(time.perf_counter() - began)
            assert stored is not None and stored.steps[0].status.value == "retrying"
            at = datetime.now(UTC)

            def trip(current: Any, at: datetime = at, qid: str = queue_id) -> Any:
                return rules.trip(current, "exchange", at, 30.0, "HTTP 429", queue_id=qid)

            began = time.perf_counter()
            await store.trip_breaker("exchange", trip)
            cas.append(time.perf_counter() - began)
            began = time.perf_counter()
            await store.update_many({other: recorded(loading)})
            update.append(time.perf_counter() - began)
    finally:
        await store.close()
    return {
        "decide_ms": statistics.median(decide) * 1e3,
        "cas_ms": statistics.median(cas) * 1e3,
        "update_ms": statistics.median(update) * 1e3,
    }


def run(cfg: Config) -> list[Row]:
    from tests.support.kube_apiserver import start_kube_apiserver

    from queue_manager.settings import Settings

    count = cfg.size(1_000, 200)
    settings = Settings(_env_file=None)
    qps = float(settings.kube_qps)
    burst = int(settings.kube_burst)
    # The failed attempts' Jobs are deleted at the launcher's QPS before the breaker closes.
    retry_after = float(max(10, math.ceil(1.5 * count / qps) + 5))
    server = start_kube_apiserver(cfg.workdir / "kube")
    try:
        svc = service(cfg, "p13", kafka=False, LAUNCHER_BACKEND="kubernetes",
                      KUBECONFIG=str(server.kubeconfig_path), K8S_NAMESPACE=NAMESPACE,
                      WORKER_TOKEN_SECRET=SECRET, RATE_LIMIT_RELEASE_PER_SECOND="1000",
                      RECONCILE_SECONDS="5", LAUNCH_GRACE_SECONDS="3600")  # fmt: skip
        with svc:
            db = svc.data_dir / "queue-manager.db"
            got = asyncio.run(scenario(svc.url, server, db, count, retry_after))
        server.request("POST", "/api/v1/namespaces",
                       {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench-raw"}})
        relaunched = got["relaunched"]
        base_rate = asyncio.run(raw_creates(server, "bench-raw", relaunched, qps, burst))
    finally:
        server.stop()
    elapsed = got["last"] - got["until"]
    raw_elapsed = relaunched / base_rate
    store_dir = cfg.workdir / "p13-store"
    store_dir.mkdir(parents=True, exist_ok=True)
    costs = asyncio.run(store_costs(store_dir / "queue-manager.db", STORE_DECISIONS))
    decision_ms = costs["decide_ms"] + costs["cas_ms"]
    deleted = (
        f"old Jobs all deleted {got['deleted_by'] - got['reported']:.1f} s after the reports"
        if got["deleted_by"] is not None
        else "old Jobs not all deleted by the close"
    )
    return [
        Row(f"P13 breaker close → every step relaunched, {count:,} queues of one group",
            elapsed, "s", raw_elapsed,
            f"raw lightkube create loop of {relaunched:,} Jobs, same QPS {qps:g}/burst {burst}",
            "≤ 1.25×", elapsed <= 1.25 * raw_elapsed,
            note=f"{count:,} queues{' (quick; full: 1,000)' if cfg.quick else ''}, one 429 "
            f"(Retry-After {retry_after:g} s) reported for each; {got['refused']} reports "
            f"refused; breaker opened once (strikes {got['strikes']}), until "
            f"{got['until'] - got['reported']:.1f} s after the last report; first relaunch "
            f"{got['first'] - got['until']:.2f} s after the close, last {elapsed:.1f} s; "
            f"{deleted}; RATE_LIMIT_RELEASE_PER_SECOND=1000."),
        Row("P13 store time per retry decision (rate_limited)", decision_ms, "ms",
            costs["update_ms"], "a plain step update (a `loading` report), same store", "—",
            None,
            note=f"median of {STORE_DECISIONS} on SQLite: fail_step + update_many "
            f"{costs['decide_ms']:.2f} ms, breaker compare-and-set (trip_breaker) "
            f"{costs['cas_ms']:.2f} ms; plain update_many {costs['update_ms']:.2f} ms."),
    ]  # fmt: skip

