"""What a client may send to start a queue (docs/api.md, docs/pipelines.md): schema and field-level
rules."""

from __future__ import annotations

import re
import types
from datetime import date
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
)

from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.models import QueueState, Target
from queue_manager.domain.retry import RetryPolicy
from queue_manager.job_contract import TIME_RANGE_FORMAT, parse_time_range

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,127}$"


def _time_range(value: str) -> str:
    parse_time_range(value)
    return value


#: YYYY-MM-DD:YYYY-MM-DD, start <= end (job_contract.parse_time_range says what is wrong)
TimeRange = Annotated[str, AfterValidator(_time_range)]
INTERVAL_PATTERN = r"^[1-9][0-9]{0,3}(s|m|h|d|w|M)$"
SINGLE_TYPE_PREFIXES = ("api_", "ws_", "rest_")

CollectionName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=128)]

SYMBOL_RULE = "must be 2 to 20 letters or digits, e.g. BTCUSDT"


def _symbol_case(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _symbol_rule(value: str) -> str:
    if not SYMBOL_RE.match(value):
        raise ValueError(SYMBOL_RULE)
    return value


#: a trading pair, the same rule in every request (a start's `symbol`, a backfill's and a
#: schedule's `symbols`, the list filter): 2 to 20 letters or digits, upper-cased
Symbol = Annotated[
    str,
    BeforeValidator(_symbol_case),
    AfterValidator(_symbol_rule),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[A-Za-z0-9]{2,20}$",
            "description": "Trading pair: 2 to 20 letters or digits, upper-cased.",
            "examples": ["BTCUSDT"],
        }
    ),
]


def no_repeats(symbols: list[str]) -> list[str]:
    """A list of symbols names each once (they are upper-cased already)."""
    if len(set(symbols)) != len(symbols):
        raise ValueError("must not repeat a symbol")
    return symbols


ID_PREFIX_RE = re.compile(r"^[A-Za-z0-9-]{6,64}$")
ID_PREFIX_RULE = "must be 6 to 64 letters, digits or '-': the first characters of a queue id"


def _id_prefix_rule(value: str) -> str:
    if not ID_PREFIX_RE.match(value):
        raise ValueError(ID_PREFIX_RULE)
    return value


#: the start of a queue id (the list's `id_prefix`): refused in words, not as a regex
IdPrefix = Annotated[
    str,
    AfterValidator(_id_prefix_rule),
    WithJsonSchema({"type": "string", "pattern": ID_PREFIX_RE.pattern, "examples": ["223746ea"]}),
]


#: one or more symbols, none repeated
Symbols = Annotated[list[Symbol], Field(min_length=1), AfterValidator(no_repeats)]


class StartFields(BaseModel):
    """What every start request has, whichever its form (and so a backfill's too)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    symbol: Symbol = Field(
        description="Trading pair, e.g. BTCUSDT (upper-cased).", examples=["BTCUSDT"]
    )
    time_range: TimeRange = Field(
        description=f"{TIME_RANGE_FORMAT}, start <= end.", examples=["2024-01-01:2024-01-03"]
    )
    priority: int = Field(
        default=0,
        ge=-1000,
        le=1000,
        description="Admission order when MAX_RUNNING_QUEUES is reached: higher first, then "
        "first come, first served.",
    )

    @property
    def dates(self) -> tuple[date, date]:
        return parse_time_range(self.time_range)


#: the image that runs the reference worker (`python -m queue_manager.worker.reference`): the
#: service's own, under any registry and tag. Only it understands `simulate`.
REFERENCE_WORKER_IMAGE = "streamforge/queue-manager"


def is_reference_image(image: str) -> bool:
    """`streamforge/queue-manager`, with or without a registry, tag or digest."""
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name == REFERENCE_WORKER_IMAGE or name.endswith("/" + REFERENCE_WORKER_IMAGE)


class SimulateOnly(BaseModel):
    """Which jobs a `simulate` case concerns: those of this symbol and/or time range (a
    backfill's child runs its parent's template: this picks one chunk)."""

    model_config = ConfigDict(extra="forbid")

    symbol: Symbol | None = None
    time_range: TimeRange | None = Field(default=None, description=f"{TIME_RANGE_FORMAT}")


class Simulate(BaseModel):
    """The reference worker misbehaving on purpose (docs/pipelines.md "Simulating failures").
    N counts progress (`loading`) reports; it misbehaves on its first `attempts` attempts."""

    model_config = ConfigDict(extra="forbid")

    fail_after: int | None = Field(
        default=None, ge=0, le=100_000, description="report `error` after N reports, and exit 1"
    )
    http_status: int | None = Field(
        default=None, ge=100, le=599, description="the HTTP status the failure reports"
    )
    retry_after: float | None = Field(
        default=None, ge=0, le=86400, description="the Retry-After the failure reports, seconds"
    )
    crash_after: int | None = Field(
        default=None, ge=0, le=100_000, description="exit after N reports without a word"
    )
    exit_code: int | None = Field(
        default=None, ge=1, le=255, description="the exit code of a crash (default 1)"
    )
    hang_after: int | None = Field(
        default=None, ge=0, le=100_000, description="go silent after N reports: alive, no pong"
    )
    report_every: float | None = Field(
        default=None, gt=0, le=3600, description="slow but alive: a report every S seconds"
    )
    interrupt_after: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="report `interrupted` after N reports, as a worker stopped by its operator",
    )
    only: SimulateOnly | None = Field(
        default=None, description="misbehave only in the job of this symbol and/or time range"
    )
    attempts: int = Field(default=1, ge=1, le=100, description="misbehave on the first K attempts")


def _one_or_many(value: Any) -> str:
    return "simulate-list" if isinstance(value, list) else "simulate-one"


#: one case, or a list of them; told apart by shape so that an error names the field as sent
#: (`simulate.fail_after`, `simulate.0.fail_after`), not pydantic's names for union members
SimulateCases = Annotated[
    Annotated[Simulate, Tag("simulate-one")]
    | Annotated[list[Simulate], Field(min_length=1, max_length=10), Tag("simulate-list")],
    Discriminator(_one_or_many),
]


class RunFields(BaseModel):
    """How a step's run heals itself (docs/pipelines.md "Retry", docs/operations.md
    "Timeouts"): the same fields on a pipeline's step and on the single form."""

    retry: RetryPolicy | None = Field(
        default=None,
        description="Retry policy: `limit` retries, `backoff`, and the error classes (`on`) "
        "that retry. Unset: RETRY_DEFAULTS for the target, else no retry.",
        examples=[
            {
                "limit": 3,
                "backoff": {"initial": 2, "factor": 2, "max": 300, "jitter": 0.1},
                "on": ["rate_limited", "transient", "infrastructure", "timeout", "stalled"],
            }
        ],
    )
    timeout: float | None = Field(
        default=None, gt=0, le=30 * 86400, description="longest run time of an attempt, seconds"
    )
    pending_timeout: float | None = Field(
        default=None, gt=0, le=86400, description="longest wait for an attempt to start, seconds"
    )
    stall_after: float | None = Field(
        default=None, gt=0, le=86400, description="silence after which the worker is pinged"
    )
    ping_timeout: float | None = Field(
        default=None, gt=0, le=3600, description="how long a pinged worker has to answer"
    )
    simulate: SimulateCases | None = Field(
        default=None,
        description="The reference worker misbehaves on purpose (demos and tests); refused "
        "on a step whose `image` is not the reference worker's. A list: the first case "
        "whose `only` matches the job applies.",
    )


class QueueCreate(RunFields, StartFields):
    """Single form: one loader-producer step."""

    type: str = Field(
        description="api, ws, rest or a full data type such as api_candles_5m",
        examples=["api"],
        max_length=48,
    )

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value in ("api", "ws", "rest"):
            return value
        if re.match(TYPE_PATTERN, value) and value.startswith(SINGLE_TYPE_PREFIXES):
            return value
        raise ValueError("must be api, ws, rest or a data type starting with api_, ws_ or rest_")


class StepRequest(RunFields):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    target: Target
    type: str = Field(pattern=TYPE_PATTERN, max_length=48, examples=["api_candles_5m"])
    interval: str | None = Field(default=None, pattern=INTERVAL_PATTERN, examples=["5m"])
    collection_name: CollectionName | None = None
    collection_inputs: list[CollectionName] | None = Field(
        default=None, min_length=1, max_length=32
    )
    collection_output: CollectionName | None = None
    graph_collection: CollectionName | None = None
    model_output: CollectionName | None = None
    inference_interval: str | None = Field(default=None, pattern=INTERVAL_PATTERN)
    source: CollectionName | None = None
    external_inputs: list[CollectionName] | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="Inputs of this step that came another way (no step of the request and no "
        "finished queue produced them): accepted without a producer in the catalog.",
    )
    depends_on: list[Annotated[int, Field(ge=0, le=63)]] | None = Field(default=None, max_length=64)
    max_retries: int = Field(
        default=0,
        ge=0,
        le=10,
        description="Immediate restarts of the job whatever the cause (the Kubernetes Job's "
        "backoffLimit, or the local launcher's restart): see `retry` for retries by class.",
    )
    image: str | None = Field(default=None, max_length=256)


class PipelineCreate(StartFields):
    """Pipeline form: several steps whose order follows the data flow (docs/pipelines.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    requests: list[StepRequest] = Field(
        min_length=1,
        max_length=64,
        validation_alias=AliasChoices("requests", "microservices"),
        description="Steps; `microservices` is accepted as an alias.",
    )


def request_form(value: Any) -> str:
    """Which form a start request has: "pipeline" (it lists steps) or "single"."""
    if isinstance(value, dict) and ("requests" in value or "microservices" in value):
        return "pipeline"
    if isinstance(value, BaseModel):
        return "pipeline" if isinstance(value, PipelineCreate) else "single"
    return "single"


StartRequest = Annotated[
    Annotated[QueueCreate, Tag("single")] | Annotated[PipelineCreate, Tag("pipeline")],
    Discriminator(request_form),
]


def parse_request(data: dict[str, Any]) -> QueueCreate | PipelineCreate:
    """A start request as stored with its queue, read back (to resubmit it)."""
    return TypeAdapter(StartRequest).validate_python(data)


#: locations that are ours (the union's branch, where FastAPI found the value), not the client's
_TAGS = {"single", "pipeline", "body", "query", "header", "path", "simulate-one", "simulate-list"}


def _members(kind: Any) -> list[Any]:
    """The types a value of `kind` may be: Annotated unwrapped, unions spread."""
    origin = get_origin(kind)
    if origin is Annotated:
        return _members(get_args(kind)[0])
    if origin in (Union, types.UnionType):
        return [member for arg in get_args(kind) for member in _members(arg)]
    return [kind]


def _names(field: Any, name: str) -> set[str]:
    """A field's name and the other names a client may give it (aliases)."""
    names = {name}
    for alias in (field.alias, field.validation_alias):
        if isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
    return names


def _inside(kind: Any, part: str) -> list[Any]:
    """The types found at `part` (a field name or a list index) of a value of `kind`."""
    found: list[Any] = []
    for member in _members(kind):
        if isinstance(member, type) and issubclass(member, BaseModel):
            found += [
                f.annotation for name, f in member.model_fields.items() if part in _names(f, name)
            ]
        elif get_origin(member) in (list, tuple, set, frozenset) and part.isdigit():
            found += get_args(member)[:1]
        elif get_origin(member) is dict:
            found += get_args(member)[1:2]
    return found


def allowed_fields(model: Any, path: list[str]) -> list[str]:
    """The field names (aliases included) a client may give at `path` of a body of type
    `model` (a model, or a union of them)."""
    kinds = [model]
    for part in path:
        kinds = [inner for kind in kinds for inner in _inside(kind, part)]
    names: set[str] = set()
    for kind in kinds:
        for member in _members(kind):
            if isinstance(member, type) and issubclass(member, BaseModel):
                for name, f in member.model_fields.items():
                    names |= _names(f, name)
    return sorted(names)


def field_errors(errors: list[Any], prefix: str = "", model: Any = None) -> list[dict[str, str]]:
    """Pydantic's errors as the envelope's {"field", "message"} items, said for a client.
    `model`: the type that was validated (the body's), whose fields an unknown field is told."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if str(p) not in _TAGS]
        field = ".".join([prefix, *loc] if prefix else loc) or "body"
        message = str(err.get("msg", "invalid"))
        kind = err.get("type")
        if kind == "extra_forbidden":
            allowed = allowed_fields(model, loc[:-1]) if model is not None else []
            message = "unknown field"
            if allowed:
                message += f"; allowed fields: {', '.join(allowed)}"
        elif kind == "missing":
            message = "field required"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        out.append({"field": field, "message": message})
    return out


def image_errors(
    request: QueueCreate | PipelineCreate, allowed: frozenset[str], prefix: str = ""
) -> list[dict[str, str]]:
    """A step's `image` may only be one of `allowed` (ALLOWED_IMAGES, docs/api.md)."""
    if not isinstance(request, PipelineCreate):
        return []
    where = f"{prefix}.requests" if prefix else "requests"
    return [
        {"field": f"{where}.{i}.image", "message": image_refused(step.image, allowed)}
        for i, step in enumerate(request.requests)
        if step.image is not None and step.image not in allowed
    ]


def image_refused(image: str, allowed: frozenset[str]) -> str:
    """Why `image`, not in ALLOWED_IMAGES, is refused."""
    if allowed:
        rule = f"allowed images: {', '.join(sorted(allowed))}"
    else:
        rule = "no images are allowed (ALLOWED_IMAGES is empty); leave image out"
    return f"{image!r} is not allowed; {rule}"


def same_request(stored: QueueState, made: QueueState, key: str) -> None:
    """An Idempotency-Key names one request: replaying it with another kind of request (a start
    and a backfill) or another body is a 422 naming the key, rather than an answer about a
    queue the caller did not ask for."""
    kind = "backfill" if made.backfill is not None else "start"
    was = "backfill" if stored.backfill is not None else "start"
    if kind != was:
        problem = f"was used for a {was} (queue {stored.id}), not a {kind}"
    elif stored.request is not None and stored.request != made.request:
        problem = f"was used with another body (queue {stored.id})"
    else:
        return
    raise InvalidRequest(
        [{"field": "idempotency-key", "message": f"{key!r} {problem}; use a new key"}]
    )
