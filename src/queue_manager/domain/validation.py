"""One pass over a start request's body (docs/api.md "Errors"): every bad field is named at
once. The schema's errors come with the rules a step can be judged by alone — a required
parameter, `depends_on`, `simulate`, the image allow-list — read from the body as sent, so an
unknown target in one step never hides a missing parameter in another; a well-formed request
is then planned (`planner.draft`), which names every rule it breaks together. What the request
reads and writes is returned for the catalog check on its inputs (`catalog.input_errors`),
which needs the store and is the service's to run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from queue_manager.domain import catalog, naming, planner
from queue_manager.domain.catalog import StepInputs
from queue_manager.domain.models import QueueState, Target
from queue_manager.domain.requests import (
    NAME_PATTERN,
    REFERENCE_WORKER_IMAGE,
    SYMBOL_RE,
    PipelineCreate,
    QueueCreate,
    StartRequest,
    StepRequest,
    field_errors,
    image_errors,
    image_refused,
    is_reference_image,
)
from queue_manager.domain.retry import RetryPolicy
from queue_manager.job_contract import parse_time_range

_START: TypeAdapter[QueueCreate | PipelineCreate] = TypeAdapter(StartRequest)
_NAME = re.compile(NAME_PATTERN)
#: the most steps whose `depends_on` the schema takes (StepRequest.depends_on)
_MAX_STEP = 63


@dataclass
class Checked:
    """A body checked in one pass: the request when it is well-formed, its draft queue and
    steps, every error found, and what each step reads and writes (None: not known well
    enough to judge the inputs)."""

    request: QueueCreate | PipelineCreate | None
    errors: list[dict[str, str]]
    inputs: list[StepInputs] | None
    queue: QueueState | None = None
    steps_in: list[StepRequest] = field(default_factory=list)


def check(
    raw: Any,
    queue_id: str,
    *,
    allowed_images: frozenset[str],
    loader_types: Mapping[str, str] = planner.DEFAULT_LOADER_TYPES,
    retry_defaults: Mapping[Target, RetryPolicy] | None = None,
) -> Checked:
    """Every error of a start body but the catalog's, and what its steps read and write."""
    try:
        request = _START.validate_python(raw)
    except ValidationError as exc:
        errors = field_errors(exc.errors(), model=StartRequest)
        steps = _raw_steps(raw)
        for i, step in steps:
            errors += _raw_step_errors(i, step, len(steps), allowed_images)
        return Checked(None, _unique(errors), _raw_inputs(raw, steps))
    queue, errors = planner.draft(request, queue_id, loader_types, retry_defaults)
    errors = image_errors(request, allowed_images) + errors
    steps_in = planner.step_requests(request, loader_types)
    ios = [
        catalog.step_inputs(i, step, req.external_inputs)
        for i, (step, req) in enumerate(zip(queue.steps, steps_in, strict=True))
    ]
    return Checked(request, errors, ios, queue, steps_in)


def _unique(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for error in errors:
        key = (error["field"], error["message"])
        if key not in seen:
            seen.add(key)
            out.append(error)
    return out


def _raw_steps(raw: Any) -> list[tuple[int, dict[str, Any]]]:
    """The steps of a pipeline body as sent (those that are objects), with their index."""
    if not isinstance(raw, dict):
        return []
    steps = raw.get("requests", raw.get("microservices"))
    if not isinstance(steps, list):
        return []
    return [(i, step) for i, step in enumerate(steps) if isinstance(step, dict)]


def _target(step: Mapping[str, Any]) -> Target | None:
    try:
        return Target(str(step.get("target")))
    except ValueError:
        return None


def _given(step: Mapping[str, Any]) -> Any:
    return lambda name: step.get(name) not in (None, [], "")


def _raw_step_errors(
    index: int, step: Mapping[str, Any], count: int, allowed: frozenset[str]
) -> list[dict[str, str]]:
    """The rules one step as sent breaks, judged from its own fields (the schema's errors are
    told besides)."""
    errors = []
    target = _target(step)
    if target is not None:
        errors += planner.required_errors(index, target, _given(step))
    deps = step.get("depends_on")
    if isinstance(deps, list):
        fine = [d for d in deps if isinstance(d, int) and 0 <= d <= _MAX_STEP]
        errors += planner.depends_on_errors(index, fine, count)
    image = step.get("image")
    if isinstance(image, str) and image not in allowed:
        errors.append(
            {"field": f"requests.{index}.image", "message": image_refused(image, allowed)}
        )
    if (
        step.get("simulate") is not None
        and isinstance(image, str)
        and not is_reference_image(image)
    ):
        errors.append(
            {
                "field": f"requests.{index}.simulate",
                "message": f"only the reference worker ({REFERENCE_WORKER_IMAGE}) simulates "
                f"failures; image {image!r} is not it: leave simulate or image out",
            }
        )
    return errors


def _names(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str) and _NAME.match(v)]


def _raw_inputs(raw: Any, steps: list[tuple[int, dict[str, Any]]]) -> list[StepInputs] | None:
    """What the steps of a body that is not well-formed read and write, named as the planner
    would; None when a step's default collection cannot be told (its symbol or time range is
    bad), so that no input is refused for want of a name the request does make."""
    sent = raw.get("requests", raw.get("microservices"))
    if not steps or len(steps) != len(sent):
        return None  # the single form reads nothing; a step that is no object says nothing
    symbol = raw.get("symbol")
    symbol = symbol.strip().upper() if isinstance(symbol, str) else None
    try:
        dates = parse_time_range(str(raw.get("time_range")))
    except ValueError:
        dates = None
    out = []
    for i, step in steps:
        target = _target(step)
        kind = step.get("type")
        explicit = [
            n for key in ("collection_output", "model_output") for n in _names(step.get(key))
        ]
        collection = next(iter(_names(step.get("collection_name")) + explicit), None)
        if collection is None and target in (Target.LOADER, Target.CONNECTOR, None):
            if target is None:
                return None  # a connector with a typo'd target would write a default name
            if symbol is None or not SYMBOL_RE.match(symbol) or dates is None:
                return None
            if not isinstance(kind, str):
                return None
            collection = naming.default_collection(symbol, kind, *dates)
        writes = (
            set() if target is Target.LOADER else {*explicit, *([collection] if collection else [])}
        )
        reads = [("collection_inputs", n) for n in _names(step.get("collection_inputs"))]
        reads += [(key, n) for key in catalog.INPUT_FIELDS[1:] for n in _names(step.get(key))]
        external = tuple(_names(step.get("external_inputs")))
        out.append(StepInputs(i, tuple(reads), frozenset(writes), external))
    return out
