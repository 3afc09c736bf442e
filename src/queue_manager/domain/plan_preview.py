"""A start request's plan, shown before anything runs (`POST /queues/plan`, `queue-manager start
--dry-run`, the dashboard's start form): the steps in the order they can start, why each waits
for the ones before it, the collections read and written, and every error of the request."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from queue_manager.domain import planner
from queue_manager.domain.models import QueueState, Step, Target
from queue_manager.domain.requests import StepRequest

Reason = Literal["topic", "collection", "depends_on"]


class FieldError(BaseModel):
    field: str
    message: str


class PlanEdge(BaseModel):
    """Step `step` comes first, for `reason`."""

    step: int
    reason: Reason = Field(
        description="topic: a connector reads its loader's data topic; collection: the step "
        "reads a collection the other writes; depends_on: the request says so"
    )
    names: list[str] = Field(
        default_factory=list, description="the topic or collections that flow along the edge"
    )
    starts: planner.Edge = Field(
        description="together: with the producer; running: once it runs (streaming); "
        "finished: once it has finished"
    )


class PlanStep(BaseModel):
    index: int
    target: Target
    type: str
    wave: int = Field(description="0: starts first; n: after steps of waves below n")
    after: list[PlanEdge] = Field(default_factory=list)
    reads: list[str] = Field(default_factory=list)
    external_inputs: list[str] = Field(default_factory=list)
    writes: list[str] = Field(default_factory=list)
    kafka_topic: str | None = None


class Plan(BaseModel):
    valid: bool
    errors: list[FieldError] = Field(default_factory=list)
    steps: list[PlanStep] = Field(
        default_factory=list,
        description="in the order they can start (waves, then index); empty when the request "
        "is not well-formed enough to plan",
    )
    collections: list[str] = Field(
        default_factory=list, description="the collections the queue would write"
    )


#: a planned queue has no id yet: its topics are shown with this in its place
QUEUE_ID_SHOWN = "<queue_id>"


def _topic(queue: QueueState, step: Step) -> str | None:
    return step.kafka_topic.replace(queue.id, QUEUE_ID_SHOWN) if step.kafka_topic else None


def _edge(queue: QueueState, producer: Step, consumer: Step, explicit: bool) -> PlanEdge:
    kind = planner.edge(producer, consumer)
    if explicit:
        return PlanEdge(step=producer.index, reason="depends_on", starts=kind)
    if kind is planner.Edge.TOGETHER:
        topic = _topic(queue, producer)
        names = [topic] if topic else []
        return PlanEdge(step=producer.index, reason="topic", names=names, starts=kind)
    shared = sorted(planner.inputs(consumer) & planner.outputs(producer))
    return PlanEdge(step=producer.index, reason="collection", names=shared, starts=kind)


def _waves(queue: QueueState) -> dict[int, int]:
    """Each step's wave: 1 + the highest wave it waits for (a cycle counts as wave 0)."""
    waves: dict[int, int] = {}

    def wave(i: int, seen: frozenset[int]) -> int:
        if i in waves:
            return waves[i]
        deps = [d for d in queue.steps[i].depends_on if d not in seen]
        found = 1 + max((wave(d, seen | {i}) for d in deps), default=-1)
        waves[i] = found
        return found

    for step in queue.steps:
        wave(step.index, frozenset())
    return waves


def preview(queue: QueueState, steps_in: list[StepRequest], errors: list[dict[str, str]]) -> Plan:
    """The plan of a drafted queue (`planner.draft`) and the errors of its request."""
    waves = _waves(queue)
    steps = []
    for step, req in zip(queue.steps, steps_in, strict=True):
        after = [
            _edge(queue, queue.steps[d], step, req.depends_on is not None) for d in step.depends_on
        ]
        steps.append(
            PlanStep(
                index=step.index,
                target=step.target,
                type=step.type,
                wave=waves[step.index],
                after=after,
                reads=sorted(planner.inputs(step)),
                external_inputs=list(req.external_inputs or []),
                writes=sorted(planner.outputs(step)),
                kafka_topic=_topic(queue, step),
            )
        )
    steps.sort(key=lambda s: (s.wave, s.index))
    written = sorted({name for s in steps for name in s.writes})
    return Plan(
        valid=not errors,
        errors=[FieldError(**e) for e in errors],
        steps=steps,
        collections=written,
    )
