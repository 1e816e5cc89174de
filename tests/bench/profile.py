"""Sum up py-spy's collapsed stacks (``--format raw``): where a process spent its CPU.

    python -m tests.bench.profile .bench/<run>/<ns>.pyspy.txt [--top 25] [--only minop]

Prints the functions with the most samples on the stack (inclusive) and on top
of it (self), as shares of all samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frames(stack: str) -> list[str]:
    """``func (path/to/file.py:12)`` frames as ``file.py:func``, outermost first."""
    out = []
    for part in stack.split(";"):
        m = FRAME.match(part.strip())
        if m is None:
            out.append(part.strip())
            continue
        path = m["file"]
        short = path.split("site-packages/")[-1] if "site-packages/" in path else path
        short = short.split("/wt-bench/")[-1] if "/wt-bench/" in short else short
        out.append(f"{short}:{m['func']}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("file", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--only", default="", help="only frames whose file contains this")
    args = p.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in args.file.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack.strip():
            continue  # an empty stack: no thread was running (py-spy leaves out idle ones)
        n = int(count)
        total += n
        fs = [f for f in frames(stack) if args.only in f]
        for f in set(fs):
            inclusive[f] += n
        if fs:
            own[fs[-1]] += n
    print(f"{total} samples with a running thread")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        for f, n in counter.most_common(args.top):
            print(f"  {100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
