"""The catalog of collections (docs/pipelines.md "The catalog"): which step of which queue wrote
each collection, from what, and who read it since — and the rule a start request's inputs are
held to: every input is produced by a step of the same request, by a finished step of an
earlier queue, or declared in the step's `external_inputs`.

A collection enters the catalog when the step writing it ends well: `finished`, or `stopped`
after writing records when it streams (a streaming step never finishes by itself). A step that
ends so with inputs is recorded as their consumer at the same moment. Both are decided from the
history events of a change, so the store records them in the transaction that writes it.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

from queue_manager.domain.history import EventKind, QueueEvent
from queue_manager.domain.models import QueueState, Step, StepStatus, Target
from queue_manager.domain.planner import inputs, outputs
from queue_manager.job_contract import is_streaming

#: how many close names a refused input is told
SUGGESTIONS = 3
#: how alike a known name must be to be suggested (difflib's ratio)
SUGGESTION_CUTOFF = 0.75
#: the parameters a step reads collections from, as a client names them
INPUT_FIELDS = ("collection_inputs", "graph_collection", "source")


class Producer(BaseModel):
    """The step that wrote a collection last."""

    queue_id: str
    step: int
    target: Target
    type: str
    symbol: str
    time_range: str
    at: datetime = Field(description="when the step ended")
    inputs: list[str] = Field(default_factory=list, description="the collections it read")
    records_written: int = 0


class Consumer(BaseModel):
    """A step that read the collection."""

    queue_id: str
    step: int
    target: Target
    type: str
    at: datetime = Field(description="when the step ended")


class CollectionEntry(BaseModel):
    """A collection in the catalog: its latest producer and how often it was written."""

    name: str
    producer: Producer
    first_written_at: datetime
    writes: int = Field(default=1, description="how many step runs wrote it")


class CollectionInfo(CollectionEntry):
    """A collection with its lineage: the steps that read it, newest first."""

    consumers: list[Consumer] = Field(default_factory=list)


@dataclass
class CatalogChange:
    """What one change of a queue adds to the catalog."""

    produced: list[tuple[str, Producer]] = field(default_factory=list)
    consumed: list[tuple[str, Consumer]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.produced or self.consumed)


def _ended_well(step: Step, to: str | None) -> bool:
    if to == StepStatus.FINISHED:
        return True
    return to == StepStatus.STOPPED and is_streaming(step.type) and step.records_written > 0


def changes(queue: QueueState, events: Sequence[QueueEvent]) -> CatalogChange:
    """What a change of `queue` (its history `events`) adds to the catalog."""
    change = CatalogChange()
    for event in events:
        if event.kind is not EventKind.STEP_STATUS or event.step is None:
            continue
        if not 0 <= event.step < len(queue.steps):
            continue
        step = queue.steps[event.step]
        if not _ended_well(step, event.to):
            continue
        read = sorted(inputs(step))
        for name in sorted(outputs(step)):
            producer = Producer(
                queue_id=queue.id,
                step=step.index,
                target=step.target,
                type=step.type,
                symbol=queue.symbol,
                time_range=queue.time_range,
                at=event.at,
                inputs=read,
                records_written=step.records_written,
            )
            change.produced.append((name, producer))
        for name in read:
            consumer = Consumer(
                queue_id=queue.id, step=step.index, target=step.target, type=step.type, at=event.at
            )
            change.consumed.append((name, consumer))
    return change


def produced(entry: CollectionEntry | None, name: str, producer: Producer) -> CollectionEntry:
    """The entry after `producer` wrote `name` (again)."""
    if entry is None:
        return CollectionEntry(name=name, producer=producer, first_written_at=producer.at)
    return entry.model_copy(update={"producer": producer, "writes": entry.writes + 1})


# -- the rule on a request's inputs -----------------------------------------------------------


@dataclass(frozen=True)
class StepInputs:
    """What one step of a request reads, writes and declares external (by the client's
    field names, so an error can name the field)."""

    index: int
    #: (field, collection) for each collection the step reads
    reads: tuple[tuple[str, str], ...]
    writes: frozenset[str]
    external: tuple[str, ...]


def wanted(steps: Iterable[StepInputs]) -> set[str]:
    """The inputs that must be in the catalog: produced by no step of the request and not
    declared external by the step reading them."""
    steps = list(steps)
    made = {name for step in steps for name in step.writes}
    return {
        name
        for step in steps
        for _, name in step.reads
        if name not in made and name not in step.external
    }


def input_errors(
    steps: Sequence[StepInputs], known: Collection[str], candidates: Iterable[str]
) -> list[dict[str, str]]:
    """A 422 item per input that no step of the request produces, the catalog (`known`: which
    of `wanted` it holds) does not know and the step does not declare external, with the
    closest of `candidates` (catalog names) and the request's own outputs; and one per
    `external_inputs` entry that is not an input of its step."""
    made = {name for step in steps for name in step.writes}
    pool = sorted(made | set(candidates))
    errors = []
    for step in steps:
        reads = {name for _, name in step.reads}
        for where, name in step.reads:
            if name in made or name in step.external or name in known:
                continue
            close = difflib.get_close_matches(name, pool, n=SUGGESTIONS, cutoff=SUGGESTION_CUTOFF)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            errors.append(
                {
                    "field": f"requests.{step.index}.{where}",
                    "message": f"{name!r} is produced by no step of this request and by no "
                    f"finished queue{hint} (list it in external_inputs if it came another way)",
                }
            )
        for name in step.external:
            if name not in reads:
                listed = ", ".join(sorted(reads)) or "none"
                errors.append(
                    {
                        "field": f"requests.{step.index}.external_inputs",
                        "message": f"{name!r} is not an input of this step (its inputs: {listed})",
                    }
                )
    return errors


def step_inputs(index: int, step: Step, external: Sequence[str] | None) -> StepInputs:
    """A planned step's inputs and outputs."""
    reads: list[tuple[str, str]] = [
        ("collection_inputs", name) for name in step.params.get("collection_inputs", [])
    ]
    reads += [(key, step.params[key]) for key in INPUT_FIELDS[1:] if key in step.params]
    return StepInputs(index, tuple(reads), frozenset(outputs(step)), tuple(external or ()))
