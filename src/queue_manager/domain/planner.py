"""Turn a start request into a queue with ordered steps (docs/pipelines.md).

Order comes from the data flow: a step depends on the steps producing its inputs. Explicit
`depends_on` overrides the inference for that step. Readiness then depends on the kind of edge:
a connector starts together with the loader of its type, a streaming step as soon as its producers
run, a batch step when they have finished.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, time
from enum import Enum
from typing import Final

from queue_manager.domain import naming
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.models import QueueState, Step, StepStatus, Target
from queue_manager.domain.requests import (
    REFERENCE_WORKER_IMAGE,
    PipelineCreate,
    QueueCreate,
    StepRequest,
    is_reference_image,
)
from queue_manager.domain.retry import RetryPolicy
from queue_manager.job_contract import PARAMETER_ENV, missing_parameters


class Edge(Enum):
    TOGETHER = "together"  # start with the producer (loader -> connector of the same type)
    RUNNING = "running"  # start once the producer runs (streaming consumer)
    FINISHED = "finished"  # start once the producer finished (batch consumer)


#: the data type a loader step runs for the single form's shorthand (`LOADER_TYPES`): the
#: platform's loader accepts only full types, and `api_candles_1m` is its own default
DEFAULT_LOADER_TYPES: Final[Mapping[str, str]] = {
    "api": "api_candles_1m",
    "rest": "api_candles_1m",
    "ws": "ws_candles_1m",
}


def plan(
    request: QueueCreate | PipelineCreate,
    queue_id: str,
    loader_types: Mapping[str, str] = DEFAULT_LOADER_TYPES,
    retry_defaults: Mapping[Target, RetryPolicy] | None = None,
) -> QueueState:
    """The queue a request makes. The single form's shorthand (`api`, `ws`, `rest`) stays the
    queue's `type`; its loader step runs the full data type `loader_types` maps it to, and its
    topic and collection are named after that type. A step whose request has no `retry` gets
    its target's policy from `retry_defaults` (RETRY_DEFAULTS). Every rule it breaks is named
    in one `InvalidRequest`."""
    queue, errors = draft(request, queue_id, loader_types, retry_defaults)
    if errors:
        raise InvalidRequest(errors)
    return queue


def step_requests(
    request: QueueCreate | PipelineCreate, loader_types: Mapping[str, str] = DEFAULT_LOADER_TYPES
) -> list[StepRequest]:
    """The steps a request asks for (the single form's one loader spelled out)."""
    if isinstance(request, PipelineCreate):
        return request.requests
    step_type = loader_types.get(request.type, request.type)
    run_fields = request.model_dump(include=set(_RUN_FIELDS), exclude_unset=True)
    return [StepRequest(target=Target.LOADER, type=step_type, **run_fields)]


def draft(
    request: QueueCreate | PipelineCreate,
    queue_id: str,
    loader_types: Mapping[str, str] = DEFAULT_LOADER_TYPES,
    retry_defaults: Mapping[Target, RetryPolicy] | None = None,
) -> tuple[QueueState, list[dict[str, str]]]:
    """The queue a request makes and every rule it breaks, found in one pass: a plan preview
    shows both, a start refuses the request naming all of them. A `depends_on` naming no other
    step is left out of the drafted order; a cycle leaves the order as it was asked."""
    start, end = request.dates
    steps_in = step_requests(request, loader_types)
    errors = [*_required_errors(steps_in), *_simulate_errors(steps_in)]

    steps = [_step(queue_id, request.symbol, i, r, start, end) for i, r in enumerate(steps_in)]
    for step in steps:
        if step.retry is None and retry_defaults and step.target in retry_defaults:
            step.retry = retry_defaults[step.target].model_copy(deep=True)
    errors += _link(steps, steps_in)
    first = steps[0]
    queue = QueueState(
        id=queue_id,
        symbol=request.symbol,
        type=request.type if isinstance(request, QueueCreate) else first.type,
        loader_type=naming.loader_type_of(first.target, first.type),
        time_range=request.time_range,
        start_time=datetime.combine(start, time.min, tzinfo=UTC),
        end_time=datetime.combine(end, time.max, tzinfo=UTC).replace(microsecond=0),
        kafka_topic=first.kafka_topic,
        priority=request.priority,
        steps=steps,
    )
    return queue, errors


def required_errors(
    index: int, target: Target, given: Callable[[str], bool]
) -> list[dict[str, str]]:
    """The parameters step `index` of `target` lacks: one error per requirement unmet."""
    return [
        {
            "field": f"requests.{index}.{alternatives[0]}",
            "message": f"{target.value} requires {' or '.join(alternatives)}",
        }
        for alternatives in missing_parameters(target, given)
    ]


def depends_on_errors(index: int, deps: list[int], count: int) -> list[dict[str, str]]:
    """A `depends_on` entry of step `index` that names no other of the `count` steps."""
    return [
        {
            "field": f"requests.{index}.depends_on",
            "message": f"{dep} is not the index of another step (0..{count - 1})",
        }
        for dep in deps
        if dep >= count or dep == index
    ]


def _required_errors(steps_in: list[StepRequest]) -> list[dict[str, str]]:
    return [
        error
        for i, req in enumerate(steps_in)
        for error in required_errors(i, req.target, _given(req))
    ]


#: what a step request says of its run besides its parameters (requests.RunFields)
_RUN_FIELDS = ("retry", "timeout", "pending_timeout", "stall_after", "ping_timeout", "simulate")


def _simulate_errors(steps_in: list[StepRequest]) -> list[dict[str, str]]:
    """`simulate` is the reference worker's: a step naming another image is refused."""
    return [
        {
            "field": f"requests.{i}.simulate",
            "message": f"only the reference worker ({REFERENCE_WORKER_IMAGE}) simulates "
            f"failures; image {req.image!r} is not it: leave simulate or image out",
        }
        for i, req in enumerate(steps_in)
        if req.simulate is not None and req.image is not None and not is_reference_image(req.image)
    ]


def _given(req: StepRequest) -> Callable[[str], bool]:
    return lambda name: getattr(req, name) not in (None, [])


def _step(
    queue_id: str, symbol: str, index: int, req: StepRequest, start: object, end: object
) -> Step:
    params = {
        name: getattr(req, name)
        for name in PARAMETER_ENV
        if getattr(req, name) is not None and name != "collection_name"
    }
    collection = req.collection_name or req.collection_output or req.model_output
    if collection is None and req.target in (Target.LOADER, Target.CONNECTOR):
        collection = naming.default_collection(symbol, req.type, start, end)  # type: ignore[arg-type]
    if collection is not None:
        params["collection_name"] = collection
    if req.simulate is not None:
        params["simulate"] = (
            [case.model_dump(exclude_none=True) for case in req.simulate]
            if isinstance(req.simulate, list)
            else req.simulate.model_dump(exclude_none=True)
        )
    topic = (
        naming.data_topic(queue_id, req.type)
        if req.target in (Target.LOADER, Target.CONNECTOR)
        else None
    )
    return Step(
        index=index,
        target=req.target,
        type=req.type,
        params=params,
        depends_on=list(req.depends_on or []),
        job_name=naming.job_name(queue_id, index, req.target),
        telemetry_id=naming.telemetry_id(queue_id, index, req.target),
        kafka_topic=topic,
        collection_name=collection,
        max_retries=req.max_retries,
        image=req.image,
        retry=req.retry,
        timeout=req.timeout,
        pending_timeout=req.pending_timeout,
        stall_after=req.stall_after,
        ping_timeout=req.ping_timeout,
    )


def outputs(step: Step) -> set[str]:
    """The collections a step writes (a loader writes its data topic, not a collection)."""
    if step.target is Target.LOADER:
        return set()
    names = {step.collection_name} if step.collection_name else set()
    for key in ("collection_output", "model_output"):
        if key in step.params:
            names.add(step.params[key])
    return names


def inputs(step: Step) -> set[str]:
    """The collections a step reads."""
    names = set(step.params.get("collection_inputs", []))
    for key in ("graph_collection", "source"):
        if key in step.params:
            names.add(step.params[key])
    return names


def _link(steps: list[Step], steps_in: list[StepRequest]) -> list[dict[str, str]]:
    errors = []
    for step, req in zip(steps, steps_in, strict=True):
        if req.depends_on is not None:
            bad = depends_on_errors(step.index, req.depends_on, len(steps))
            errors += bad
            if bad:
                step.depends_on = [d for d in req.depends_on if d < len(steps) and d != step.index]
            continue
        deps = set()
        wanted = inputs(step)
        for other in steps:
            if other.index == step.index:
                continue
            feeds_connector = (
                step.target is Target.CONNECTOR
                and other.target is Target.LOADER
                and other.type == step.type
            )
            if feeds_connector or wanted & outputs(other):
                deps.add(other.index)
        step.depends_on = sorted(deps)
    cycle = _find_cycle(steps)
    if cycle:
        path = " -> ".join(str(i) for i in cycle)
        errors.append({"field": "requests", "message": f"dependency cycle between steps {path}"})
    return errors


def _find_cycle(steps: list[Step]) -> list[int] | None:
    state: dict[int, int] = {}  # 1 visiting, 2 done
    stack: list[int] = []

    def visit(i: int) -> list[int] | None:
        state[i] = 1
        stack.append(i)
        for dep in steps[i].depends_on:
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[i] = 2
        return None

    for step in steps:
        if step.index not in state:
            found = visit(step.index)
            if found:
                return found
    return None


def edge(producer: Step, consumer: Step) -> Edge:
    if (
        consumer.target is Target.CONNECTOR
        and producer.target is Target.LOADER
        and producer.type == consumer.type
    ):
        return Edge.TOGETHER
    return Edge.RUNNING if naming.is_streaming(consumer.type) else Edge.FINISHED


def ready_steps(queue: QueueState) -> list[Step]:
    """Pending steps whose producers are far enough along for them to launch now."""
    if queue.status.terminal or queue.stop_requested_at is not None or queue.queued_at is not None:
        return []
    ready = []
    for step in queue.steps:
        if step.status is not StepStatus.PENDING:
            continue
        if all(_satisfied(queue.steps[d], step) for d in step.depends_on):
            ready.append(step)
    return ready


def _satisfied(producer: Step, consumer: Step) -> bool:
    kind = edge(producer, consumer)
    if kind is Edge.TOGETHER:
        return producer.status is not StepStatus.PENDING
    if kind is Edge.RUNNING:
        return producer.status in (StepStatus.STARTED, StepStatus.LOADING, StepStatus.FINISHED)
    return producer.status is StepStatus.FINISHED
