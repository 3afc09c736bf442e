"""Coverage endpoints (docs/coverage.md, docs/api.md "Coverage"): the ledger as run-length
encoded rows, its summary, a fill (dry run: the plan), and the expected-gap calendar."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import Response

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, error_responses, success
from queue_manager.api.examples import (
    COVERAGE_FROM_EXAMPLES,
    COVERAGE_SYMBOL_EXAMPLES,
    COVERAGE_TO_EXAMPLES,
    COVERAGE_TYPE_EXAMPLES,
    EXPECTED_GAP_EXAMPLES,
    FILL_EXAMPLES,
)
from queue_manager.domain.coverage import GapBody
from queue_manager.domain.coverage_fill import MAX_SYMBOLS, DataTypes, FillRequest
from queue_manager.domain.identity import Principal, Role
from queue_manager.domain.requests import Symbols

router = APIRouter(prefix="/coverage", tags=["coverage"])

Services = Annotated[Container, Depends(get_container)]
Reader = Annotated[Principal, Depends(require(Role.VIEWER, "read coverage"))]
# a fill starts queues: the role that starts a queue
Filler = Annotated[Principal, Depends(require(Role.OPERATOR, "fill coverage"))]
GapEditor = Annotated[Principal, Depends(require(Role.OPERATOR, "change expected gaps"))]

SymbolsQuery = Annotated[
    Symbols,
    Query(
        alias="symbol",
        max_length=MAX_SYMBOLS,
        description=f"A symbol (repeat it: 1 to {MAX_SYMBOLS}, none twice).",
        openapi_examples=COVERAGE_SYMBOL_EXAMPLES,
    ),
]
TypesQuery = Annotated[
    DataTypes,
    Query(
        alias="type",
        description="A full data type such as api_candles_5m (repeat it: 1 to 10).",
        openapi_examples=COVERAGE_TYPE_EXAMPLES,
    ),
]
FromQuery = Annotated[
    date,
    Query(
        alias="from", description="The first day (UTC).", openapi_examples=COVERAGE_FROM_EXAMPLES
    ),
]
ToQuery = Annotated[
    date,
    Query(
        alias="to",
        description="The last day (UTC): on or after `from`, at most 3660 days on, and at most "
        "366 days after today.",
        openapi_examples=COVERAGE_TO_EXAMPLES,
    ),
]
GapName = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="1 to 64 letters, digits, '.', '_' or '-'.",
        examples=["binance-maintenance-2024-03-10"],
    ),
]


@router.get(
    "",
    response_model=Envelope,
    summary="Coverage per symbol and data type: each day's state, run-length encoded",
    description="`data.rows`: one per (symbol, type), each with `runs` of consecutive days of "
    "one state and producer (`from`, `to`, `state`, `records`, `queue_id`, `step`, `first`, "
    "`last`; a `partial` run has `loaded_until`). States: complete, partial, failed, running, "
    "missing, expected_gap.",
    responses=error_responses(401, 403, 503),
)
async def read_coverage(
    _: Reader,
    services: Services,
    symbols: SymbolsQuery,
    types: TypesQuery,
    first: FromQuery,
    last: ToQuery,
) -> Response:
    rows = await services.coverage.rows(symbols, types, first, last)
    return success("Coverage", {"rows": rows})


@router.get(
    "/summary",
    response_model=Envelope,
    summary="Coverage summary per symbol and data type: days per state, share complete, gaps",
    description="Without `symbol`: every symbol the ledger holds for those types (at most "
    f"{MAX_SYMBOLS}). `complete_share` is of the days not in the expected-gap calendar; "
    "`first_gap` / `last_gap`: the first and last day a fill would run.",
    responses=error_responses(401, 403, 503),
)
async def coverage_summary(
    _: Reader,
    services: Services,
    types: TypesQuery,
    first: FromQuery,
    last: ToQuery,
    symbols: Annotated[
        Symbols | None,
        Query(
            alias="symbol",
            max_length=MAX_SYMBOLS,
            description="A symbol (repeat it); none: all of the ledger's.",
            openapi_examples=COVERAGE_SYMBOL_EXAMPLES,
        ),
    ] = None,
) -> Response:
    rows = await services.coverage.summary(symbols, types, first, last)
    return success("Coverage summary", {"rows": rows})


@router.post(
    "/fill",
    response_model=Envelope,
    summary="Fill the gaps: a backfill of only the missing, failed and partial days",
    description="Plans per (symbol, type) the days neither complete, running nor an expected "
    "gap, merged into contiguous chunks cut by `chunk`. `dry_run`: answers `data.chunks` and "
    "starts nothing. Otherwise starts one backfill (docs/schedules.md#backfill) of those chunks "
    "and answers its parent's `queue_id` (null when there is nothing to fill). A day running or "
    "complete is never launched again, so a second fill starts nothing.",
    responses=error_responses(401, 403, 503),
)
async def fill_coverage(
    principal: Filler,
    services: Services,
    body: Annotated[FillRequest, Body(openapi_examples=FILL_EXAMPLES)],
) -> Response:
    result = await services.coverage.fill(body, principal.actor)
    chunks = [chunk.as_dict() for chunk in result.chunks]
    if body.dry_run:
        return success(f"Fill plan: {len(chunks)} chunks", {"chunks": chunks, "queue_id": None})
    if result.queue_id is None:
        return success("Nothing to fill", {"chunks": chunks, "queue_id": None})
    return success(
        f"Fill started: {len(chunks)} chunks", {"chunks": chunks, "queue_id": result.queue_id}
    )


@router.get(
    "/expected-gaps",
    response_model=Envelope,
    summary="The expected-gap calendar: known outages, never filled",
    description="Gaps from EXPECTED_GAPS_FILE (`source: file`, read-only) and set over the API "
    "(`source: api`).",
    responses=error_responses(401, 403, 503),
)
async def list_gaps(_: Reader, services: Services) -> Response:
    gaps = [gap.as_dict() for gap in await services.coverage.gaps()]
    return success("Expected gaps", gaps)


@router.put(
    "/expected-gaps/{name}",
    response_model=Envelope,
    summary="Add or replace an expected gap",
    responses={
        201: {"model": Envelope, "description": "Added (200: an existing gap replaced)"},
        **error_responses(401, 403, 409, 503),
    },
)
async def put_gap(
    _: GapEditor,
    services: Services,
    name: GapName,
    body: Annotated[GapBody, Body(openapi_examples=EXPECTED_GAP_EXAMPLES)],
) -> Response:
    gap = body.named(name)
    created = await services.coverage.put_gap(gap)
    return success(
        "Expected gap added" if created else "Expected gap replaced",
        gap.as_dict(),
        status_code=201 if created else 200,
    )


@router.delete(
    "/expected-gaps/{name}",
    response_model=Envelope,
    summary="Remove an expected gap",
    responses=error_responses(401, 403, 404, 409, 503),
)
async def delete_gap(_: GapEditor, services: Services, name: GapName) -> Response:
    await services.coverage.delete_gap(name)
    return success("Expected gap removed", {"name": name})
