"""Issue 12, test 6: 2,000 queues in the list and 500 updates/s over the socket. The page keeps
up: every row ends showing its queue's last report, the socket is never dropped as too slow.
Main-thread long tasks are measured and saved (no timed assert: the figure is reported in
BENCHMARKS.md by bench/p11_dashboard.py (P11), which runs the same scenario for longer)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.support.kafka_broker import KafkaBroker
from tests.support.service import Service
from tests.ui import load
from tests.ui.conftest import ARTIFACTS, Shots

RATE = 250  # reports/s: 500 updates/s
SECONDS = 5


@pytest.fixture(scope="module")
def crowded(
    tmp_path_factory: pytest.TempPathFactory, kafka_broker: KafkaBroker
) -> Iterator[tuple[Service, list[str]]]:
    kafka_broker.start()  # an earlier test may have left the session's broker stopped
    home = tmp_path_factory.mktemp("ui-load") / "svc"
    load.seed_ended(home / "queue-manager.db")
    svc = Service(home, env=load.service_env(kafka_broker)).start()
    try:
        yield svc, load.start_running(svc)
    finally:
        svc.stop()
        svc.kill_workers()


def test_two_thousand_queues_and_500_updates_a_second(
    page: Page, crowded: tuple[Service, list[str]], kafka_broker: KafkaBroker, shots: Shots
) -> None:
    service, ids = crowded
    figures = load.measure(page, service, kafka_broker, ids, rate=RATE, seconds=SECONDS)
    shots(page, "after-the-burst", full_page=False)
    (ARTIFACTS / "longtasks.json").write_text(json.dumps(figures.as_dict(), indent=1))
    print(f"\nui load: {json.dumps(figures.as_dict())}")
    assert figures.rows == 2_000
    assert figures.reports_sent == RATE * SECONDS
    assert not figures.socket_closed
    assert figures.updates_received > 0
