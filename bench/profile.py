"""Summarise a py-spy profile written by ``bench.run --profile DIR`` (collapsed stacks, one
``thread;frame;frame ... count`` line per stack): the share of samples per thread, per leaf
function (self) and under each function (inclusive).

``python -m bench.profile DIR/push-server.txt [--top 30]``

py-spy also samples threads that wait (the store's pool waiting for work): read the thread
shares with that in mind; the process CPU figures of the benchmark come from the kernel.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

__all__ = ["summarise", "main"]


def summarise(path: Path, top: int = 30) -> str:
    """The three tables as text. Raises OSError when the file cannot be read."""
    threads: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0].split(":", 1)[-1].strip()] += n
        leaf[frames[-1]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
    if not total:
        return f"{path}: no samples"
    out = [f"{path}: {total} samples"]
    for title, table in (("threads", threads), ("self", leaf), ("inclusive", inclusive)):
        out.append(f"-- {title}")
        out.extend(f"{n / total:6.1%}  {name[:140]}" for name, n in table.most_common(top))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    print(summarise(args.profile, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
