"""Secrets generated once and kept beside the data, so they survive a restart."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path


def file_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The secret in `path`, created (mode 0600) if absent.

    Created with O_EXCL: replicas sharing a data directory that start together agree on one
    secret instead of each overwriting the other's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(make())
    return path.read_bytes()
