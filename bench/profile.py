"""What a py-spy recording of the service spends its time on: `python -m bench.profile FILE`.

`python -m bench --profile DIR` records each scenario's service with py-spy (raw, i.e.
collapsed stacks, one line per distinct stack with its sample count). This summarises one
recording three ways: by library (where the CPU goes: pydantic, ldap3, SQLAlchemy,
aiohttp, the service's own code), by function of the service's own code including what it
calls (which of its steps costs), and by leaf function (the hot spots themselves).
The recording holds only samples of the thread holding the GIL (`py-spy --gil`), so the
shares are of the Python work the service does, which one core at most can run.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
OWN = ("bridge/", "connectors/", "mappings/")


def parse(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """(frames from the outermost, samples) per stack; thread and process labels dropped."""
    stacks = []
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if FRAME.match(f) and not f.startswith("thread (")]
        stacks.append((frames, int(count)))
    return stacks


def area(frame: str) -> str:
    """The library or part of the service a frame belongs to."""
    match = FRAME.match(frame)
    path = match["file"] if match else frame
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for own in OWN:
        if own in path:
            return own + path.split(own, 1)[1].split("/", 1)[0]
    if "/lib/python" in path:
        return "stdlib " + path.rsplit("/lib/python", 1)[1].split("/", 2)[1].removesuffix(".py")
    return path


def short(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", *OWN, "/lib/python3"):
        if marker in path:
            path = (marker if marker in OWN else "") + path.split(marker, 1)[1]
            break
    return f"{match['function']} ({path})"


def summary(path: Path, top: int = 25) -> str:
    stacks = parse(path.read_text().splitlines())
    total = sum(count for _, count in stacks) or 1
    by_area: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        if not frames:
            continue
        leaves[short(frames[-1])] += count
        by_area[area(frames[-1])] += count
        for frame in {short(f) for f in frames if any(own in f for own in OWN)}:
            inclusive[frame] += count

    def table(title: str, counter: Counter[str]) -> list[str]:
        rows = [f"{title}:"]
        rows += [f"  {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
        return rows

    lines = [f"{path.name}: {total:,} samples holding the GIL"]
    lines += table("Self time by library or module", by_area)
    lines += table("Inclusive time of the service's own functions", inclusive)
    lines += table("Self time by function", leaves)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("recordings", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print("\n\n".join(summary(path, args.top) for path in args.recordings))


if __name__ == "__main__":
    main()
