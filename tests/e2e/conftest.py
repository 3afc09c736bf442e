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
    _kill_workers(svc)


def _kill_workers(svc: Service) -> None:
    import os
    import signal

    import orjson

    for record in (svc.data_dir / "jobs").glob("*.json"):
        pid = orjson.loads(record.read_bytes()).get("pid")
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
