"""A local worker's log file, tailed and followed (the worker writes it; we only read)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from queue_manager.domain.errors import LogsUnavailable

FOLLOW_EVERY = 0.25


def last_lines(data: bytes, tail: int | None) -> bytes:
    if tail is None:
        return data
    return b"".join(data.splitlines(keepends=True)[-tail:]) if tail > 0 else b""


async def read_log(
    path: Path, *, tail: int | None, follow: bool, running: Callable[[], bool]
) -> AsyncIterator[bytes]:
    try:
        log = path.open("rb")
    except FileNotFoundError:
        raise LogsUnavailable(f"no log for job {path.stem}: it never started here") from None
    with log:
        head = last_lines(log.read(), tail)
        if head:
            yield head
        while follow:
            # Checked before reading: what the worker wrote before it ended is still sent.
            still_running = running()
            chunk = log.read()
            if chunk:
                yield chunk
            elif not still_running:
                return
            else:
                await asyncio.sleep(FOLLOW_EVERY)
