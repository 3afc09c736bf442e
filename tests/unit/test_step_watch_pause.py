"""The step watch's pace: every STEP_WATCH_SECONDS while its passes are quick, and slower
when a pass is slow (10,000 active queues take about a second to read), so the watch never
holds more than a fifth of the CPU the telemetry and the reconciler need."""

from __future__ import annotations

import pytest

from queue_manager.services.step_watch import BUSY_SHARE, pause


def test_a_quick_pass_waits_the_period() -> None:
    assert pause(1.0, 0.01) == 1.0
    assert pause(5.0, 1.0) == 5.0


@pytest.mark.parametrize("took", [0.5, 2.0, 30.0])
def test_a_slow_pass_leaves_four_fifths_of_the_time_to_the_rest(took: float) -> None:
    waited = pause(1.0, took)
    assert took / (took + waited) == pytest.approx(BUSY_SHARE)
