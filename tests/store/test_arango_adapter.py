"""What only the ArangoDB adapter decides, checked where no ArangoDB server runs (issue 29):
which errors it runs again, what one transaction holds, what it never sends twice, which
queries it sends. The real driver talks over real sockets to `fake_arango`, which answers as
a server would; the store contract suite checks the behaviour against a real server."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from arangoasync.exceptions import ArangoServerError, DocumentRevisionError
from arangoasync.request import Method, Request
from arangoasync.response import Response

import queue_manager.adapters.arango_store as arango_package
import queue_manager.adapters.sqlite_store as sqlite_package
from queue_manager.adapters.arango_store import documents, queries
from queue_manager.adapters.arango_store.client import make_client
from queue_manager.adapters.arango_store.queues import Queues
from queue_manager.adapters.arango_store.retry import contended
from queue_manager.domain.errors import DependencyUnavailable
from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.identity import ApiToken, Role
from tests.store.fake_arango import Answer, database, dropping_server, fake_arango, free_port

LOCK = "UPSERT { _key: @key }"
BODY = "FOR d IN @@coll RETURN d"


def server_error(status: int, num: int, kind: type[ArangoServerError] = ArangoServerError) -> Any:
    resp = Response(Method.POST, "http://arango/_api/cursor", {}, status, "error", b"")  # type: ignore[arg-type]
    resp.error_code, resp.error_message = num, f"error {num}"
    return kind(resp, Request(Method.POST, "/_api/cursor"))


# -- which errors run an attempt again -----------------------------------------------------


def test_a_conflict_or_a_stale_revision_is_contention_and_nothing_else_is() -> None:
    assert contended(server_error(409, 1200))  # write-write conflict
    assert contended(server_error(412, 1200, DocumentRevisionError))  # `_rev` moved on
    assert not contended(server_error(409, 1210))  # a key taken: the attempt's to judge
    assert not contended(server_error(404, 1202))  # not found
    assert not contended(server_error(500, 4))
    assert not contended(OSError("network"))


def answering(*script: Answer) -> Any:
    """Answers the body query from `script` in turn (then rows), every other query rows."""
    left = list(script)

    def answer(query: str, bind: dict[str, Any]) -> Answer:
        if query == BODY and left:
            return left.pop(0)
        return [1]

    return answer


async def run_body(fake_url: str, *, lock: bool, attempts: int = 3) -> list[Any]:
    async def body(txn: Any) -> list[Any]:
        async with await txn.aql.execute(BODY, bind_vars={"@coll": "c"}) as cursor:
            return [row async for row in cursor]

    async with database(fake_url, max_attempts=attempts) as db:
        lock_query = (LOCK + " INSERT {} UPDATE {} IN @@coll", {"key": "k", "@coll": "l"})
        return await db.transaction("decide", ["c"], body, lock=lock_query if lock else None)


async def test_a_conflict_is_run_again_in_a_new_transaction() -> None:
    async with fake_arango(answering(1200)) as fake:
        assert await run_body(fake.url, lock=False) == [1]
    assert fake.aborted() == ["1"] and fake.committed() == ["2"]


async def test_a_lock_document_inserted_twice_at_once_is_run_again() -> None:
    """The first two writers of a lock that does not exist yet may both insert it: the second
    gets 1210, which from the lock statement means what a conflict means."""
    first = True

    def answer(query: str, bind: dict[str, Any]) -> Answer:
        nonlocal first
        if query.startswith(LOCK) and first:
            first = False
            return 1210
        return [1]

    async with fake_arango(answer) as fake:
        assert await run_body(fake.url, lock=True) == [1]
    assert fake.aborted() == ["1"] and fake.committed() == ["2"]


@pytest.mark.parametrize("num", [1210, 1202, 4])
async def test_other_errors_are_not_run_again(num: int) -> None:
    async with fake_arango(answering(num)) as fake:
        with pytest.raises(DependencyUnavailable) as caught:
            await run_body(fake.url, lock=True)
    assert f"decide: [HTTP {409 if num == 1210 else 404 if num == 1202 else 500}]" in str(
        caught.value
    )
    assert fake.aborted() == ["1"] and fake.committed() == []


async def test_contention_that_lasts_makes_the_store_unavailable() -> None:
    async with fake_arango(answering(1200, 1200, 1200)) as fake:
        with pytest.raises(DependencyUnavailable, match="decide still contended after 3"):
            await run_body(fake.url, lock=False, attempts=3)
    assert fake.aborted() == ["1", "2", "3"] and fake.committed() == []


# -- retention: one transaction ------------------------------------------------------------


def retention(fail: str | None = None) -> Any:
    def answer(query: str, bind: dict[str, Any]) -> Answer:
        if query == fail:
            return 4
        return ["q1", "q2"] if query == queries.DELETE_ENDED else []

    return answer


async def test_retention_deletes_queues_keys_history_and_locks_in_one_transaction() -> None:
    async with fake_arango(retention()) as fake, database(fake.url) as db:
        assert await Queues(db).delete_ended(datetime(2026, 1, 1, tzinfo=UTC), 10) == ["q1", "q2"]
    sent = fake.queries()
    assert [c.query for c in sent] == [
        queries.DELETE_ENDED,
        queries.DELETE_KEYS_OF,
        queries.DELETE_EVENTS_OF,
        queries.DELETE_LOCKS,
    ]
    assert {c.trx for c in sent} == {"1"} and fake.committed() == ["1"]
    assert fake.calls[-1].method == "PUT"  # committed after all four


async def test_retention_failing_halfway_commits_nothing() -> None:
    async with (
        fake_arango(retention(fail=queries.DELETE_EVENTS_OF)) as fake,
        database(fake.url) as db,
    ):
        with pytest.raises(DependencyUnavailable):
            await Queues(db).delete_ended(datetime(2026, 1, 1, tzinfo=UTC), 10)
    assert fake.committed() == [] and fake.aborted() == ["1"]
    assert all(c.trx == "1" for c in fake.queries())


# -- never sent twice ----------------------------------------------------------------------


@pytest.mark.parametrize("hosts", [1, 3])
async def test_the_driver_tries_each_coordinator_once(hosts: int) -> None:
    urls = [f"http://127.0.0.1:{port}" for port in range(1, hosts + 1)]
    client = make_client(urls, request_timeout=1, connect_timeout=1)
    try:
        assert client.host_resolver.max_tries == hosts
    finally:
        await client.close()


async def test_a_request_whose_answer_is_lost_is_not_sent_again() -> None:
    async with dropping_server() as (url, received), database(url) as db:
        with pytest.raises(DependencyUnavailable) as caught:
            await db.query("insert it", (BODY, {"@coll": "c"}))
    assert len(received) == 1
    assert "may or may not have been applied" in caught.value.detail


async def test_a_coordinator_that_cannot_be_reached_hands_over_to_the_next() -> None:
    """Refused before anything was sent: the next coordinator takes the request."""
    refused = f"http://127.0.0.1:{free_port()}"
    async with fake_arango(answering()) as fake, database(refused, fake.url) as db:
        assert await db.query("read", (BODY, {"@coll": "c"})) == [1]
    assert len(fake.queries()) == 1


async def test_a_coordinator_that_lost_the_answer_does_not_hand_over() -> None:
    """Sent, answer lost: the next coordinator would do it a second time."""
    async with (
        fake_arango(answering()) as fake,
        dropping_server() as (dropping, received),
        database(dropping, fake.url) as db,
    ):
        with pytest.raises(DependencyUnavailable):
            await db.query("insert it", (BODY, {"@coll": "c"}))
    assert len(received) == 1 and fake.queries() == []


# -- what the queries are ------------------------------------------------------------------


def test_the_first_page_of_runs_has_no_bound_and_a_next_one_has_one() -> None:
    query, bind = queries.runs_of("nightly", None, 10)
    assert "@before" not in query and "before" not in bind
    query, bind = queries.runs_of("nightly", "2026-01-02T00:15:00.000000Z", 10)
    assert "@before" in query and bind["before"] == "2026-01-02T00:15:00.000000Z"


#: texts that stand for "no bound" by sorting after (or before) every value — but only under
#: one collation: ArangoDB's ICU collation puts `~` before the digits
SENTINELS = {"~", "~~", "\x7f", "\uffff", "\U0010ffff", "zzzz", "\x00"}


@pytest.mark.parametrize("package", [arango_package, sqlite_package], ids=["arango", "sqlite"])
def test_no_store_compares_with_a_sentinel(package: Any) -> None:
    folder = Path(package.__file__).parent
    found = [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for path in sorted(folder.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in SENTINELS
    ]
    assert found == []


def test_uniqueness_comes_from_keys_never_from_a_unique_index() -> None:
    """A cluster refuses a unique index on anything but the shard key (`_key`)."""
    assert not any(getattr(index, "unique", False) for index in queries.INDEXES)
    event = QueueEvent(at=datetime(2026, 1, 1, tzinfo=UTC), kind=EventKind.COMMAND, to="x")
    event.seq = 7
    assert documents.event_documents("q-1", [event])[0]["_key"] == "q-1:7"
    token = ApiToken("ci", Role.VIEWER, "ab" * 32, datetime(2026, 1, 1, tzinfo=UTC))
    doc, hash_doc = documents.token_documents(token)
    assert doc["_key"] == "ci" and hash_doc == {"_key": "ab" * 32, "name": "ci"}
