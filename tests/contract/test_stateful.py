"""Stateful fuzz (issue 27): random sequences of calls against the running service — start (both
forms), backfill, stop, retry, resubmit, get, list with cursors, events, schedules (create,
change, pause, resume, delete, runs), login and tokens — with ids flowing from one call to the
next, idempotency keys reused across kinds of request, and inputs around the edges (dates near
0001 and 9999, crons that never fire, images outside ALLOWED_IMAGES, forged cursors).

Every answer is an envelope, never a 5xx; each route answers only the codes it may. What is
drawn never depends on what the service answered (hypothesis replays a sequence to shrink it):
a refused start still puts an id in the bundle, one no queue has. The
single-call fuzz of every body is schemathesis's (test_openapi.py); this one reaches the states
that a single call cannot: a stopped backfill resubmitted, a retried queue stopped again, a key
of a start replayed for a backfill.
"""

from __future__ import annotations

import base64
import uuid
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    multiple,
    rule,
    run_state_machine_as_test,
)

from tests.contract.conftest import ADMIN
from tests.support.service import Service

FIRST, LAST = date(1, 1, 1), date(9999, 12, 31)
#: what a refused start or backfill adds to the bundle of queue ids
NO_QUEUE = "00000000-0000-4000-8000-000000000000"


def either(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly one of `good`, one time in twelve one of `bad`: most bodies are accepted, so a
    sequence gets somewhere, and most refusals are for one reason."""
    return st.integers(0, 11).flatmap(lambda n: st.sampled_from(bad if n == 11 else good))


symbols = either(["BTCUSDT", "ethusdt", "SOLFDUSD"], ["B", "SOL-USDT", " xrpusd ", ""])
keys = st.none() | st.sampled_from(["key-1", "key-2"])
images = either([None], ["evil/loader:1", ""])


BROKEN_RANGES = ["2024-02-30:2024-03-01", "2024-03-02:2024-03-01", "2024-01-01", "x"]


@st.composite
def starts(draw: st.DrawFn) -> date:
    """Mostly a day of early 2024; one time in five the first or one of the last days there are."""
    if draw(st.integers(0, 4)) == 4:
        return draw(st.sampled_from([FIRST, LAST - timedelta(days=6), LAST]))
    return draw(st.dates(date(2024, 1, 1), date(2024, 2, 28)))


@st.composite
def time_ranges(draw: st.DrawFn, *, longest: int = 12) -> str:
    """`start:end` up to `longest` days (clipped at 9999-12-31); one in ten is broken."""
    if draw(st.integers(0, 9)) == 9:
        return draw(st.sampled_from(BROKEN_RANGES))
    start = draw(starts())
    end = start + timedelta(days=min(draw(st.integers(0, longest)), (LAST - start).days))
    return f"{start.isoformat()}:{end.isoformat()}"


@st.composite
def steps(draw: st.DrawFn) -> list[dict[str, Any]]:
    kind = draw(st.sampled_from(["api_trades", "ws_trades", "api_candles_5m"]))
    loader: dict[str, Any] = {"target": "loader-producer", "type": kind}
    image = draw(images)
    if image is not None:
        loader["image"] = image
    found = [loader]
    if draw(st.booleans()):
        found.append({"target": "arango-connector", "type": kind})
    if draw(st.integers(0, 9)) == 9:
        found.append({"target": "graph-builder", "type": "gnn_graph"})  # a parameter missing
    return found


@st.composite
def start_bodies(draw: st.DrawFn, *, symbol: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"time_range": draw(time_ranges())}
    if symbol:
        body["symbol"] = draw(symbols)
    if draw(st.booleans()):
        body["type"] = draw(either(["api", "ws", "rest", "api_candles_5m"], ["candles", ""]))
    else:
        body[draw(st.sampled_from(["requests", "microservices"]))] = draw(steps())
    if draw(st.integers(0, 4)) == 4:
        body["priority"] = draw(either([-5, 0, 7, 1000], [-1001, 2.5]))
    if draw(st.integers(0, 19)) == 19:
        body["colour"] = "red"
    return body


#: the shortest range each chunk may cut: ranges are drawn up to three times as long
_CHUNK_DAYS = {"day": 1, "week": 7, "month": 28, "year": 365}


@st.composite
def backfill_bodies(draw: st.DrawFn) -> dict[str, Any]:
    chunk = draw(either(["day", "week", "month"], ["year"]))
    body = draw(start_bodies(symbol=False))
    body["time_range"] = draw(time_ranges(longest=3 * _CHUNK_DAYS[chunk]))
    choice = draw(st.integers(0, 9))
    if choice == 8:
        body["symbol"] = draw(symbols)
    elif choice == 9:
        body["symbol"], body["symbols"] = "BTCUSDT", ["BTCUSDT"]
    else:
        body["symbols"] = draw(st.lists(symbols, min_size=1, max_size=2))
    body["chunk"] = chunk
    if draw(st.booleans()):
        body["max_parallel"] = draw(either([1, 2, 3], [0, 101, 2.0, True, "2"]))
    return body


def forged_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


crons = either(
    ["15 0 * * *", "*/5 * * * *", "0 0 29 2 *", "0 12 * * 1-5"],
    ["0 0 31 2 *", "0 0 30 2 *", "0 12 31 4,6,9,11 *", "61 * * * *", "* * * * * *", "@daily"],
)
timezones = either(["UTC", "Europe/London", "America/New_York"], ["Europe/Atlantis", ""])
names = either(["nightly", "hourly", "x"], ["Bad_Name"])


@st.composite
def templates(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(start_bodies(symbol=False))
    del body["time_range"]
    if draw(st.booleans()):
        body["window"] = draw(either(["1d", "7d", "1w", "1M", "999M"], ["0d", "1y"]))
    else:
        body["time_range"] = draw(
            either(
                ["{date-1d}:{date-1d}", "{date}:{date+9999d}", "{date-9999d}:{date}"],
                ["{date}", "{date+99999d}:{date}"],
            )
        )
    return body


@st.composite
def schedule_fields(draw: st.DrawFn, *, every: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "cron": draw(crons),
        "timezone": draw(timezones),
        "symbols": draw(st.lists(symbols, min_size=1, max_size=2)),
        "template": draw(templates()),
        "concurrency_policy": draw(either(["Allow", "Forbid", "Replace"], ["Never"])),
        "catchup": draw(st.sampled_from(["none", "latest", "all"])),
        "starting_deadline_seconds": draw(either([None, 60], [0])),
    }
    if every:
        return fields
    chosen = draw(st.sets(st.sampled_from(sorted(fields)), min_size=1, max_size=3))
    return {name: fields[name] for name in chosen}


class ApiSequences(RuleBasedStateMachine):
    service: Service

    queues = Bundle("queues")
    schedules = Bundle("schedules")

    def __init__(self) -> None:
        super().__init__()
        #: names this sequence gives (idempotency keys, schedule names) end with it, so that a
        #: sequence does not meet the keys and schedules of the ones before it: replayed, it
        #: does the same
        self.own = uuid.uuid4().hex[:8]
        self.http = httpx.Client(
            base_url=self.service.url,
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        )
        self.next_cursor: str | None = None

    def teardown(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, allowed: set[int], **kw: Any) -> httpx.Response:
        answer = self.http.request(method, path, **kw)
        self.http.cookies.clear()  # a login's session cookie: every call stays a bearer call
        what = f"{method} {path} {kw} -> {answer.status_code} {answer.text[:500]}"
        assert answer.status_code < 500, what
        body = answer.json()
        assert body["status"] == ("success" if answer.status_code < 400 else "error"), what
        assert isinstance(body["message"], str) and body["message"], what
        if answer.status_code == 422:
            errors = body["data"]["errors"]
            assert errors and all(e["field"] and e["message"] for e in errors), what
        assert answer.status_code in allowed, what
        return answer

    def headers(self, key: str | None) -> dict[str, str]:
        return {"Idempotency-Key": f"{key}-{self.own}"} if key else {}

    # -- queues -----------------------------------------------------------------------------

    @initialize(target=queues)
    def a_valid_start(self) -> str:
        body = {"symbol": "BTCUSDT", "type": "api", "time_range": "2024-01-01:2024-01-02"}
        answer = self.call("POST", "/queues/start", {200}, json=body)
        return str(answer.json()["data"]["queue_id"])

    @rule(target=queues, body=start_bodies(), key=keys)
    def start(self, body: dict[str, Any], key: str | None) -> str:
        answer = self.call(
            "POST", "/queues/start", {200, 422}, json=body, headers=self.headers(key)
        )
        if answer.status_code != 200:
            return NO_QUEUE
        queue_id = str(answer.json()["data"]["queue_id"])
        # A key replayed answers the queue it made, and only for a start: never a backfill's
        assert self.call("GET", f"/queues/{queue_id}", {200}).json()["data"]["backfill"] is None
        return queue_id

    @rule(target=queues, body=backfill_bodies(), key=keys)
    def backfill(self, body: dict[str, Any], key: str | None) -> str:
        answer = self.call(
            "POST", "/queues/backfill", {200, 422}, json=body, headers=self.headers(key)
        )
        if answer.status_code != 200:
            return NO_QUEUE
        parent_id = str(answer.json()["data"]["queue_id"])
        parent = self.call("GET", f"/queues/{parent_id}", {200}).json()["data"]
        assert parent["backfill"] is not None and parent["backfill"]["children"] > 0, parent
        assert (
            answer.json()["message"]
            == f"Backfill started: {parent['backfill']['children']} child queues"
        )
        return parent_id

    @rule(
        target=queues,
        queue_id=queues,
        force=st.booleans(),
        then=st.sampled_from([None, None, "retry", "resubmit"]),
    )
    def stop(self, queue_id: str, force: bool, then: str | None) -> Any:
        """Stop, and maybe run it again at once (retry, or resubmit: a new queue)."""
        params = {"queue_id": queue_id, "force": force}
        self.call("POST", "/queues/stop", {200, 404, 409}, params=params)
        if then == "retry":
            self.retry(queue_id, None)
        elif then == "resubmit":
            return self.resubmit(queue_id)
        return multiple()

    @rule(queue_id=queues, from_step=st.sampled_from([None, None, 0, 1, 5]))
    def retry(self, queue_id: str, from_step: int | None) -> None:
        params = {} if from_step is None else {"from_step": from_step}
        self.call("POST", f"/queues/{queue_id}/retry", {200, 404, 409, 422}, params=params)

    @rule(target=queues, queue_id=queues)
    def resubmit(self, queue_id: str) -> str:
        answer = self.call("POST", f"/queues/{queue_id}/resubmit", {200, 404, 409})
        if answer.status_code != 200:
            return NO_QUEUE
        again = answer.json()["data"]
        assert again["resubmitted_from"] == queue_id
        return str(again["queue_id"])

    @rule(
        queue_id=queues,
        what=st.sampled_from(["show", "events", "list"]),
        after=st.sampled_from([None, "0", "3", "-1", "x"]),
        status=st.sampled_from([None, "queued", "loading", "stopped", "running"]),
        symbol=st.sampled_from([None, "BTCUSDT", "b$"]),
        limit=st.sampled_from([1, 2, 1000, 0]),
        cursor=st.sampled_from(
            [
                None,
                "next",
                "next",
                "nonsense",
                forged_cursor({"a": 1, "b": 2}),
                forged_cursor(["zzzz", "zzzz"]),
            ]
        ),
    )
    def read(
        self,
        queue_id: str,
        what: str,
        after: str | None,
        status: str | None,
        symbol: str | None,
        limit: int,
        cursor: str | None,
    ) -> None:
        if what == "show":
            answer = self.call("GET", f"/queues/{queue_id}", {200, 404})
            queue = answer.json()["data"]
            if answer.status_code == 200 and queue["backfill"] is not None:
                children = self.call("GET", "/queues", {200}, params={"parent": queue_id})
                assert len(children.json()["data"]) == queue["backfill"]["children"]
        elif what == "events":
            params = {} if after is None else {"cursor": after}
            self.call("GET", f"/queues/{queue_id}/events", {200, 404, 422}, params=params)
        else:
            query: dict[str, Any] = {"limit": limit, "status": status, "symbol": symbol}
            query["cursor"] = self.next_cursor if cursor == "next" else cursor
            given = {k: v for k, v in query.items() if v is not None}
            answer = self.call("GET", "/queues", {200, 422}, params=given)
            if answer.status_code == 200:
                self.next_cursor = answer.json()["next_cursor"]

    # -- schedules --------------------------------------------------------------------------

    @rule(target=schedules, name=names, fields=schedule_fields(every=True))
    def create_schedule(self, name: str, fields: dict[str, Any]) -> str:
        name = f"{name}-{self.own}"
        self.call("POST", "/schedules", {201, 409, 422}, json={"name": name, **fields})
        return name

    @rule(
        name=schedules,
        what=st.sampled_from(["change", "change", "pause", "resume", "runs", "delete"]),
        fields=schedule_fields(every=False),
    )
    def use_schedule(self, name: str, what: str, fields: dict[str, Any]) -> None:
        # 422: a name that is not one (the path is validated too)
        if what == "change":
            self.call("PATCH", f"/schedules/{name}", {200, 404, 422}, json=fields)
        elif what in ("pause", "resume"):
            self.call("POST", f"/schedules/{name}/{what}", {200, 404, 422})
        elif what == "runs":
            self.call("GET", f"/schedules/{name}/runs", {200, 404, 422})
            self.call("GET", f"/schedules/{name}", {200, 404, 422})
        else:
            self.call("DELETE", f"/schedules/{name}", {200, 404, 422})

    # -- identity ---------------------------------------------------------------------------

    @rule(
        what=st.sampled_from(["login", "create", "revoke"]),
        token=st.sampled_from(["admin", "not-a-token", ""]),
        extra=st.booleans(),
        name=st.sampled_from(["ci", "nightly", "schemathesis", "ci\x1b[2J", ""]),
        role=st.sampled_from(["viewer", "operator", "root"]),
        expires=st.sampled_from([None, "30d", "0d", "forever"]),
    )
    def identity(
        self, what: str, token: str, extra: bool, name: str, role: str, expires: str | None
    ) -> None:
        if what == "login":
            body: dict[str, Any] = {"token": ADMIN if token == "admin" else token}
            if extra:
                body["remember"] = True
            self.call("POST", "/auth/login", {200, 401, 422}, json=body)
        elif what == "create":
            body = {"name": name, "role": role, "expires": expires}
            self.call("POST", "/auth/tokens", {200, 409, 422}, json=body)
        else:
            # 409: the file's token (schemathesis); 404: no such name
            self.call("DELETE", f"/auth/tokens/{quote(name or 'none', safe='')}", {200, 404, 409})


def test_random_sequences_of_calls_never_answer_5xx(running: Service) -> None:
    ApiSequences.service = running
    run_state_machine_as_test(
        ApiSequences,
        settings=settings(
            max_examples=40,
            stateful_step_count=10,
            deadline=None,
            derandomize=True,
            database=None,
            # No shrinking: the service keeps what earlier tries made, so a shrunk sequence
            # would not meet the same state; the failing sequence is reported as it ran.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
