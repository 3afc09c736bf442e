"""Profiles: `profiled` samples a process with py-spy while a benchmark runs; as a program,
summarise the collapsed stacks it wrote.

`python -m bench.profile FILE [--top 25] [--filter queue_manager]`.

Prints, per function, the share of samples where it is on the stack (inclusive) and where it is
the innermost frame (self), so the hot path of the service reads at a glance.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.service import Service

    from bench.config import Config


@contextlib.contextmanager
def profiled(server: Service, name: str, cfg: Config, seconds: float) -> Iterator[None]:
    """With BENCH_PROFILE=<figure>[,...] set, py-spy samples the server while the block runs;
    the collapsed stacks land in <workdir>/<name>.pyspy.txt (summarise with bench.profile)."""
    wanted = os.environ.get("BENCH_PROFILE", "")
    if name not in wanted.split(","):
        yield
        return
    out = cfg.workdir / f"{name}.pyspy.txt"
    spy = Path(sys.executable).parent / "py-spy"
    proc = subprocess.Popen(
        [str(spy), "record", "-p", str(server.pid), "-d", str(int(seconds)), "-r", "200",
         "--format", "raw", "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(seconds + 30)
        print(f"   profile: {out}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--filter", default="")
    a = p.parse_args()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(a.file).read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r" \((.*/)?(site-packages/|src/)?", " (", f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    print(f"{total} samples")
    print("inclusive:")
    for f, n in inclusive.most_common(a.top * 4):
        if a.filter in f:
            print(f"  {100 * n / total:5.1f}%  {f}")
    print("self:")
    for f, n in own.most_common(a.top):
        print(f"  {100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
