"""The coverage-ledger part of the ArangoDB store (docs/coverage.md): one document per cell in
`queue_coverage` (`_key` = `<type>:<symbol>:<day ordinal>`), and the ledger's bookkeeping in
`queue_coverage_meta`. `record` runs inside the stream transaction a queue is inserted or
replaced in, so the ledger and the queues never disagree; a change whose fingerprint did not
move declares no ledger collection (`writes`) and writes nothing here. The AQL is here, beside
its one user, as constants with bind parameters (tests/store/test_aql_bind_parameters.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Final

from queue_manager.adapters.arango_store import documents
from queue_manager.adapters.arango_store.connection import Database, Query, rows
from queue_manager.adapters.arango_store.queries import (
    COVERAGE_COLLECTION,
    COVERAGE_META_COLLECTION,
    QUEUE_COLLECTION,
)
from queue_manager.domain import coverage
from queue_manager.domain.coverage import Cell, CellRun, CellState, ExpectedGap
from queue_manager.domain.models import QueueState

#: what recording a queue's cells writes besides the queue
COLLECTIONS: Final = (COVERAGE_COLLECTION, COVERAGE_META_COLLECTION)

DROP_OWN: Final = """
FOR d IN @@coll
  FILTER d.type == @type AND d.symbol == @symbol AND d.day >= @first AND d.day <= @last
  FILTER d.queue_id == @queue_id
  REMOVE d IN @@coll
"""
# domain.coverage.wins: the same queue's word, else complete first, then the newer queue
UPSERT: Final = """
FOR c IN @cells
  LET old = DOCUMENT(@@coll, c._key)
  FILTER old == null OR old.queue_id == c.queue_id
    OR [c.state == @complete, c.created, c.queue_id]
       > [old.state == @complete, old.created, old.queue_id]
  INSERT c INTO @@coll OPTIONS { overwriteMode: @replace }
"""
PUT_META: Final = """
FOR doc IN @docs
  INSERT doc INTO @@coll OPTIONS { overwriteMode: @replace }
"""
FINGERPRINTS: Final = """
FOR key IN @keys
  LET d = DOCUMENT(@@coll, key)
  FILTER d != null
  RETURN [key, d.fp]
"""
CELLS: Final = """
FOR d IN @@coll
  FILTER d.type == @type AND d.symbol IN @symbols AND d.day >= @first AND d.day <= @last
  SORT d.type, d.symbol, d.day
  RETURN [d.symbol, d.day, d.state, d.records, d.first, d.last, d.queue_id, d.step, d.created]
"""
SETTLED: Final = """
FOR d IN @@coll
  FILTER d.type == @type AND d.symbol IN @symbols AND d.day >= @first AND d.day <= @last
  FILTER d.state IN @settled
  SORT d.type, d.symbol, d.day
  RETURN [d.symbol, d.day]
"""
SYMBOLS: Final = """
FOR d IN @@coll
  FILTER d.type == @type
  COLLECT symbol = d.symbol
  LIMIT @limit
  RETURN symbol
"""
COUNTS: Final = """
FOR d IN @@coll
  COLLECT type = d.type, state = d.state WITH COUNT INTO n
  RETURN [type, state, n]
"""
QUEUES_AFTER: Final = """
FOR q IN @@coll
  FILTER q._key > @after
  SORT q._key
  LIMIT @limit
  RETURN q
"""
META: Final = """
FOR d IN @@coll
  FILTER d._key == @key
  RETURN d
"""
GAPS: Final = """
FOR d IN @@coll
  FILTER STARTS_WITH(d._key, @prefix)
  SORT d._key
  RETURN d.gap
"""
DROP_META: Final = """
FOR d IN @@coll
  FILTER d._key == @key
  REMOVE d IN @@coll
  RETURN 1
"""

_SOURCE = "src:"
_GAP = "gap:"
_DERIVED = "derived"
_STATES: Final = {state.value: state for state in CellState}


def writes(base: Sequence[str], ledger: bool) -> tuple[str, ...]:
    """The collections a change's transaction writes: `base`, and the ledger's if its cells
    change."""
    return (*base, *COLLECTIONS) if ledger else tuple(base)


def _cell_document(cell: Cell) -> dict[str, Any]:
    day = cell.day.toordinal()
    return {
        "_key": f"{cell.type}:{cell.symbol}:{day}",
        "type": cell.type,
        "symbol": cell.symbol,
        "day": day,
        "state": cell.state.value,
        "records": cell.records,
        "first": cell.first,
        "last": cell.last,
        "queue_id": cell.queue_id,
        "step": cell.step,
        "created": cell.created,
    }


async def record(txn: Any, queues: Sequence[QueueState], *, check: bool = False) -> None:
    """The cells of `queues` in `txn`; with `check`, only of those whose stored fingerprint
    differs (the upgrade derivation, run again, then writes nothing)."""
    sourced = [queue for queue in queues if queue.steps]
    held: dict[str, str] = {}
    if check and sourced:
        keys = [_SOURCE + queue.id for queue in sourced]
        found = await rows(txn, _bind(FINGERPRINTS, COVERAGE_META_COLLECTION, keys=keys))
        held = {str(key): str(fp) for key, fp in found}
    cells: list[dict[str, Any]] = []
    sources: list[dict[str, Any]] = []
    for queue in sourced:
        fp = coverage.fingerprint(queue)
        if held.get(_SOURCE + queue.id) == fp:
            continue
        sources.append({"_key": _SOURCE + queue.id, "fp": fp})
        first = queue.start_time.date().toordinal()
        last = min(queue.end_time.date().toordinal(), first + coverage.MAX_QUEUE_DAYS - 1)
        for step in coverage.producing_steps(queue):
            await rows(
                txn,
                _bind(
                    DROP_OWN,
                    COVERAGE_COLLECTION,
                    type=step.type,
                    symbol=queue.symbol,
                    first=first,
                    last=last,
                    queue_id=queue.id,
                ),
            )
        cells += [_cell_document(cell) for cell in coverage.queue_cells(queue)]
    if cells:
        query = _bind(UPSERT, COVERAGE_COLLECTION, cells=cells, complete=CellState.COMPLETE.value)
        query[1]["replace"] = "replace"
        await rows(txn, query)
    if sources:
        await rows(txn, _bind(PUT_META, COVERAGE_META_COLLECTION, docs=sources, replace="replace"))


def _bind(text: str, collection: str, **values: Any) -> Query:
    return text, {"@coll": collection, **values}


class Coverage:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def coverage_cells(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[Cell]:
        found: list[Cell] = []
        span = {"symbols": list(symbols), "first": first.toordinal(), "last": last.toordinal()}
        for type_ in types:
            query = _bind(CELLS, COVERAGE_COLLECTION, type=type_, **span)
            for s, d, st, n, a, b, q, i, c in await self._db.query("read coverage", query):
                found.append(Cell(s, type_, date.fromordinal(d), _STATES[st], n, a, b, q, i, c))
        return found

    async def coverage_runs(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[CellRun]:
        """From the cells days first..last (clipped by the read itself): this store keeps no
        runs of its own."""
        return coverage.cell_runs(await self.coverage_cells(symbols, types, first, last))

    async def coverage_settled(
        self, symbols: Sequence[str], types: Sequence[str], first: date, last: date
    ) -> list[tuple[str, str, date, date]]:
        runs: list[tuple[str, str, date, date]] = []
        span = {"symbols": list(symbols), "first": first.toordinal(), "last": last.toordinal()}
        settled = [CellState.COMPLETE.value, CellState.RUNNING.value]
        for type_ in types:
            query = _bind(SETTLED, COVERAGE_COLLECTION, type=type_, settled=settled, **span)
            current: list[Any] | None = None
            for symbol, day in await self._db.query("plan a fill", query):
                if current is not None and current[0] == symbol and current[2] + 1 == day:
                    current[2] = day
                    continue
                if current is not None:
                    runs.append(_run(current, type_))
                current = [symbol, day, day]
            if current is not None:
                runs.append(_run(current, type_))
        return runs

    async def coverage_symbols(self, type_: str, limit: int) -> list[str]:
        query = _bind(SYMBOLS, COVERAGE_COLLECTION, type=type_, limit=limit)
        return [str(s) for s in await self._db.query("list coverage symbols", query)]

    async def coverage_counts(self) -> dict[tuple[str, str], int]:
        found = await self._db.query("count coverage", _bind(COUNTS, COVERAGE_COLLECTION))
        return {(str(t), str(s)): int(n) for t, s, n in found}

    async def derive_coverage(self, after: str | None, limit: int) -> str | None:
        query = _bind(QUEUES_AFTER, QUEUE_COLLECTION, after=after or "", limit=limit)
        found = await self._db.query("read queues to derive coverage", query)
        if not found:
            return None
        queues = [documents.load(doc) for doc in found]

        async def write(txn: Any) -> None:
            await record(txn, queues, check=True)

        await self._db.transaction("derive coverage", COLLECTIONS, write)
        return str(found[-1]["_key"])

    async def coverage_derived(self) -> bool:
        query = _bind(META, COVERAGE_META_COLLECTION, key=_DERIVED)
        return bool(await self._db.query("read the coverage marker", query))

    async def mark_coverage_derived(self) -> None:
        doc = {"_key": _DERIVED, "at": 1}
        query = _bind(PUT_META, COVERAGE_META_COLLECTION, docs=[doc], replace="replace")
        await self._db.query("mark coverage derived", query)

    async def expected_gaps(self) -> list[ExpectedGap]:
        query = _bind(GAPS, COVERAGE_META_COLLECTION, prefix=_GAP)
        return [ExpectedGap.model_validate(doc) for doc in await self._db.query("gaps", query)]

    async def put_expected_gap(self, gap: ExpectedGap) -> bool:
        key = _GAP + gap.name
        existed = await self._db.query("read a gap", _bind(META, COVERAGE_META_COLLECTION, key=key))
        doc = {"_key": key, "gap": gap.as_dict()}
        query = _bind(PUT_META, COVERAGE_META_COLLECTION, docs=[doc], replace="replace")
        await self._db.query("store a gap", query)
        return not existed

    async def delete_expected_gap(self, name: str) -> bool:
        query = _bind(DROP_META, COVERAGE_META_COLLECTION, key=_GAP + name)
        return bool(await self._db.query("delete a gap", query))


def _run(current: list[Any], type_: str) -> tuple[str, str, date, date]:
    return str(current[0]), type_, date.fromordinal(current[1]), date.fromordinal(current[2])
