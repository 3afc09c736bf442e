"""The admission rule both stores apply (domain/admission.py), and the forms both stores write
values in (domain/records.py): pure, so checked here without a store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queue_manager.domain import records
from queue_manager.domain.admission import AdmissionRound, count_jobs, running_jobs
from queue_manager.domain.identity import ApiToken, Role
from queue_manager.domain.models import (
    LoaderType,
    QueueState,
    QueueStatus,
    Step,
    StepStatus,
    Target,
)

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def queue(qid: str, parent: str | None = None, max_parallel: int | None = None) -> QueueState:
    return QueueState(
        id=qid,
        symbol="BTCUSDT",
        type="api_candles_5m",
        status=QueueStatus.QUEUED,
        loader_type=LoaderType.JOB,
        time_range="2026-01-01:2026-01-02",
        start_time=AT,
        end_time=AT,
        created_at=AT,
        updated_at=AT,
        parent=parent,
        max_parallel=max_parallel,
    )


def step(index: int, target: Target, status: StepStatus) -> Step:
    return Step(index=index, target=target, type="t", status=status, job_name=f"j{index}",
                telemetry_id=f"t{index}")  # fmt: skip


def test_free_slots_are_the_limit_less_every_running_queue() -> None:
    line = AdmissionRound.begin(5, {None: 2, "": 1, "p": 1})
    assert line.free == 1 and dict(line.busy) == {"p": 1}
    assert AdmissionRound.begin(None, {None: 9}).free is None
    assert AdmissionRound.begin(2, {None: 3}).full  # over the limit: nothing goes


def test_the_line_is_read_in_pages_no_larger_than_the_free_slots() -> None:
    line = AdmissionRound.begin(3, {})
    assert line.next_page(500) == 3
    assert line.admitted([queue("a")], 3) == [queue("a")]
    assert line.next_page(500) is None  # the line ended before the page was full
    unlimited = AdmissionRound.begin(None, {})
    assert unlimited.next_page(500) == 500
    assert unlimited.admitted([queue(str(i)) for i in range(500)], 500) != []
    assert unlimited.next_page(500) == 500  # a full page: there may be more


def test_a_backfill_at_its_max_parallel_is_passed_over_without_taking_a_slot() -> None:
    line = AdmissionRound.begin(4, {"p": 1})  # one child of p runs: three slots free
    page = [queue("c1", "p", 2), queue("c2", "p", 2), queue("other"), queue("x"), queue("y")]
    assert [q.id for q in line.admitted(page, 5)] == ["c1", "other", "x"]
    assert line.full and line.busy["p"] == 2
    assert line.next_page(500) is None


def test_running_jobs_are_counted_whatever_the_queues_status() -> None:
    failed = queue("f")
    failed.status = QueueStatus.ERROR
    failed.steps = [
        step(0, Target.LOADER, StepStatus.ERROR),
        step(1, Target.GNN_TRAINER, StepStatus.STARTED),
        step(2, Target.GNN_TRAINER, StepStatus.LAUNCHING),
    ]
    assert running_jobs(failed) == ["gnn-trainer", "gnn-trainer"]
    counted = count_jobs(
        [running_jobs(failed), ["visualizer", "loader-producer"]], {"gnn-trainer", "visualizer"}
    )
    assert counted == {"gnn-trainer": 2, "visualizer": 1}


def test_a_sort_key_sorts_like_its_instant_and_reads_back() -> None:
    later = AT + timedelta(microseconds=1)
    assert records.sort_key(AT) < records.sort_key(later)
    assert records.sort_key(AT) == "2026-01-02T03:04:05.678901Z"
    assert records.from_sort_key(records.sort_key(AT)) == AT
    with pytest.raises(ValueError):
        records.from_sort_key("~")


def test_a_token_reads_back_as_it_was_written() -> None:
    token = ApiToken("ci", Role.OPERATOR, "ab" * 32, AT, expires_at=AT + timedelta(days=1))
    record = records.token_record(token)
    assert record["last_used_at"] is None and record["created_at"] == AT.isoformat()
    assert records.token_from_record(record) == token
