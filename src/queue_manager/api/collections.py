"""The catalog of collections (docs/api.md "GET /collections"): every collection a step wrote,
its producer (queue, step, when, its inputs) and who read it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import ConfigDict

from queue_manager.api.auth import require
from queue_manager.api.container import Container, get_container
from queue_manager.api.envelope import Envelope, error_responses, success
from queue_manager.domain.catalog import CollectionEntry, CollectionInfo
from queue_manager.domain.identity import Principal, Role
from queue_manager.domain.requests import NAME_PATTERN

router = APIRouter(prefix="/collections", tags=["collections"])

Services = Annotated[Container, Depends(get_container)]
Reader = Annotated[Principal, Depends(require(Role.VIEWER, "read the catalog"))]
#: what a prefix may hold: the characters of a collection name
PREFIX_PATTERN = r"^[A-Za-z0-9_\-]{1,128}$"

_PRODUCER: dict[str, Any] = {
    "queue_id": "5f0c6a8e-3d2b-4f7a-9c1e-2b8d4e6f1a3c",
    "step": 2,
    "target": "arango-connector",
    "type": "api_candles_5m",
    "symbol": "BTCUSDT",
    "time_range": "2024-06-01:2024-06-30",
    "at": "2024-07-01T00:12:31Z",
    "inputs": [],
    "records_written": 8640,
}
_ENTRY: dict[str, Any] = {
    "name": "btc_candles_5m_2024_06",
    "producer": _PRODUCER,
    "first_written_at": "2024-07-01T00:12:31Z",
    "writes": 1,
}
_INFO: dict[str, Any] = {
    **_ENTRY,
    "consumers": [
        {
            "queue_id": "5f0c6a8e-3d2b-4f7a-9c1e-2b8d4e6f1a3c",
            "step": 4,
            "target": "graph-builder",
            "type": "gnn_graph",
            "at": "2024-07-01T00:20:02Z",
        }
    ],
}


class CollectionItem(CollectionEntry):
    model_config = ConfigDict(json_schema_extra={"examples": [_ENTRY]})


class CollectionLineage(CollectionInfo):
    model_config = ConfigDict(json_schema_extra={"examples": [_INFO]})


class CollectionList(Envelope[list[CollectionItem]]):
    next_after: str | None = None


@router.get(
    "",
    response_model=CollectionList,
    summary="The collections steps wrote, by name, with their latest producer",
    description="A collection enters the catalog when the step writing it ends `finished` "
    "(or `stopped` after writing, for a streaming step). `next_after`, when set, is the "
    "`after` of the next page.",
    responses=error_responses(401, 403, 503),
)
async def list_collections(
    _: Reader,
    services: Services,
    prefix: Annotated[
        str | None,
        Query(
            pattern=PREFIX_PATTERN,
            description="Only names starting with this: letters, digits, '_' or '-'",
            examples=["btc_candles_"],
        ),
    ] = None,
    after: Annotated[
        str | None, Query(pattern=NAME_PATTERN, description="Start after this name")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    found = await services.catalog.entries(prefix, after=after, limit=limit)
    next_after = found[-1].name if len(found) == limit else None
    data = [entry.model_dump(mode="json") for entry in found]
    return success("Collections", data, next_after=next_after)


@router.get(
    "/{name}",
    response_model=Envelope[CollectionLineage],
    summary="One collection's lineage: its producer (queue, step, when, inputs), its consumers",
    responses=error_responses(401, 403, 404, 503),
)
async def show_collection(
    _: Reader,
    services: Services,
    name: Annotated[str, Path(pattern=NAME_PATTERN, examples=["btc_candles_5m_2024_06"])],
) -> Response:
    info = await services.catalog.get(name)
    return success("Collection", info.model_dump(mode="json"))
