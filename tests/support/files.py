"""Files a test makes misbehave under a running process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def immutable(paths: Sequence[Path]) -> Iterator[None]:
    """`chattr +i`: no process may write the files, even through descriptors it opened before
    (what a disk turned read-only or full does to a running service). Needs root, as the test
    machines run."""
    assert os.geteuid() == 0, "chattr +i needs root"
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
