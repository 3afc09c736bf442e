"""Silent steps (docs/operations.md "Timeouts"): a running step whose worker has said nothing for
its `stall_after` seconds is sent the `ping` command; any report, a `pong` included, clears it
(`state._heard`); no answer within `ping_timeout` and the step is `stalled`: it fails with that
class and its retry policy decides. A worker that answers pings is never stalled, however rarely
it reports.

Pure rules: services/step_watch.py looks at every active queue each STEP_WATCH_SECONDS and
calls them; the store's atomic update makes replicas looking at once agree."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from queue_manager.domain import state
from queue_manager.domain.models import QueueState, Step, StepStatus
from queue_manager.domain.retry import ErrorClass
from queue_manager.domain.state import Outcome

#: `ping_timeout` when a step sets `stall_after` alone
DEFAULT_PING_TIMEOUT = 30.0
#: the statuses in which a worker is expected to speak: it has started
WATCHED = frozenset({StepStatus.STARTED, StepStatus.LOADING})


class Verdict(StrEnum):
    PING = "ping"
    STALLED = "stalled"


def ping_timeout(step: Step) -> float:
    return step.ping_timeout if step.ping_timeout is not None else DEFAULT_PING_TIMEOUT


def silent_since(step: Step) -> datetime | None:
    """When its worker was last heard from in this attempt (its start counts)."""
    moments = [m for m in (step.last_seen, step.started_at, step.launched_at) if m is not None]
    return max(moments) if moments else None


def pinged(step: Step) -> datetime | None:
    """The unanswered ping of this attempt (one sent before its launch is an older attempt's)."""
    if step.pinged_at is None:
        return None
    if step.launched_at is not None and step.pinged_at < step.launched_at:
        return None
    return step.pinged_at


def verdict(queue: QueueState, step: Step, now: datetime) -> Verdict | None:
    """What the watch must do about `step` now: ping its worker, declare it stalled, or
    nothing (no `stall_after`, not started, ending, or its queue is stopping)."""
    if step.stall_after is None or step.status not in WATCHED or step.ending is not None:
        return None
    if queue.stop_requested_at is not None or queue.status.terminal:
        return None
    asked = pinged(step)
    if asked is not None:
        if (now - asked).total_seconds() >= ping_timeout(step):
            return Verdict.STALLED
        return None
    since = silent_since(step)
    if since is not None and (now - since).total_seconds() >= step.stall_after:
        return Verdict.PING
    return None


def ping_sent(queue: QueueState, index: int, now: datetime) -> Outcome:
    """Mark the ping (once: a replica that looks at the same moment changes nothing)."""
    out = Outcome()
    step = queue.steps[index]
    if verdict(queue, step, now) is Verdict.PING:
        step.pinged_at = now
        out.touch(step)
    return out


def stalled(queue: QueueState, index: int, now: datetime) -> Outcome:
    """No `pong` within `ping_timeout`: the step fails as `stalled` (its retry policy
    decides); its job must then go."""
    step = queue.steps[index]
    if verdict(queue, step, now) is not Verdict.STALLED:
        return Outcome()
    since = silent_since(step)
    silent = (now - since).total_seconds() if since is not None else 0.0
    message = (
        f"stalled: no report for {silent:.0f} s (stall_after {step.stall_after:g} s) and no "
        f"pong within {ping_timeout(step):g} s of a ping"
    )
    step.pinged_at = None
    return state.fail_step(queue, index, message, now, ErrorClass.STALLED)
