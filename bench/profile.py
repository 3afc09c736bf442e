"""Summarise py-spy collapsed stacks.

`python -m bench.profile FILE [--top 25] [--filter queue_manager]`.

Prints, per function, the share of samples where it is on the stack (inclusive) and where it is
the innermost frame (self), so the hot path of the service reads at a glance.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path


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
