"""Who runs next (docs/operations.md#admission): the rule every store applies inside its own
transaction.

A store's job is to make the decision atomic — SQLite by `BEGIN IMMEDIATE`, ArangoDB by a lock
document — and the decision itself must be the same whichever store takes it, or a deployment
would admit differently after moving from the embedded store to the production one. So the rule
lives here, free of storage: the store reads the `queued` queues in admission order (priority,
then oldest, then id), a page at a time, and `AdmissionRound` says which of them go and when to
stop reading; the store writes what it chose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from queue_manager.domain.models import QueueState, StepStatus

#: a step in these holds a job slot (MAX_RUNNING_JOBS) until it ends
RUNNING_STEPS: Final = frozenset(s for s in StepStatus if s.running)


def running_jobs(queue: QueueState) -> list[str]:
    """The targets of its steps that hold a job now. Counted whatever the queue's own status:
    a queue already `error` (fail-fast) still has its other steps' jobs running until they
    end, and they still take their slots."""
    return [s.target.value for s in queue.steps if s.status in RUNNING_STEPS]


def count_jobs(per_queue: Iterable[Iterable[str]], targets: Collection[str]) -> Counter[str]:
    """How many jobs of each of `targets` run, from each queue's `running_jobs`."""
    running: Counter[str] = Counter()
    for jobs in per_queue:
        running.update(t for t in jobs if t in targets)
    return running


@dataclass
class AdmissionRound:
    """One admission decision, fed the queued queues in admission order.

    `free` is what MAX_RUNNING_QUEUES leaves (None: no limit); `busy` counts the running
    children of each backfill, whose `max_parallel` passes a child over without taking a slot.
    """

    free: int | None
    busy: Counter[str] = field(default_factory=Counter)
    #: the line was read to its end
    exhausted: bool = False

    @classmethod
    def begin(cls, limit: int | None, running: Mapping[str | None, int]) -> AdmissionRound:
        """`running`: the running queues per backfill parent (None or "" for queues of no
        backfill). A backfill's parent runs no job itself and must not be in it."""
        free = None if limit is None else limit - sum(running.values())
        return cls(free, Counter({p: n for p, n in running.items() if p}))

    @property
    def full(self) -> bool:
        return self.free is not None and self.free <= 0

    def next_page(self, most: int) -> int | None:
        """How many more queued queues to read (at most `most`), or None: the round is over."""
        if self.full or self.exhausted:
            return None
        return most if self.free is None else min(self.free, most)

    def admitted(self, page: Sequence[QueueState], asked: int) -> list[QueueState]:
        """Which queues of `page` — the next `asked` in line, fewer at its end — are admitted
        now, in order; they are counted, so the next page is decided knowing them."""
        chosen: list[QueueState] = []
        for queue in page:
            if self.full:
                break
            if queue.parent and queue.max_parallel is not None:
                if self.busy[queue.parent] >= queue.max_parallel:
                    continue  # its backfill runs its max_parallel children already
                self.busy[queue.parent] += 1
            chosen.append(queue)
            if self.free is not None:
                self.free -= 1
        if len(page) < asked:
            self.exhausted = True
        return chosen
