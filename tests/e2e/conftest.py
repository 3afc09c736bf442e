from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.service import Service


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path / "svc", env={"STOP_GRACE_SECONDS": "3"}).start()
    yield svc
    svc.stop()
    svc.kill_workers()
