"""The service under tracemalloc, to see what its resident memory is made of (`--trace-memory`).

`python -m bench.trace_memory serve --config FILE --listen HOST:PORT` is `python -m bridge
serve` with tracemalloc on, and a snapshot taken whenever a response is about to carry many
resources or members (BENCH_TRACE_ITEMS, 10,000 by default), i.e. while the records, their
rendering and the JSON text are all alive. Each snapshot is written to BENCH_TRACE_DIR as the
allocations still alive, largest first, grouped by the line that made them, with the
traced current and peak sizes. The service is not modified: only this process's reference
to its response function is wrapped. tracemalloc makes the service several times slower,
so the timings of such a run mean nothing.
"""

from __future__ import annotations

import os
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(os.environ.get("BENCH_TRACE_DIR", "."))
ITEMS = int(os.environ.get("BENCH_TRACE_ITEMS", "10000"))
FRAMES = 12


def _many(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    return max(len(body.get("members") or []), len(body.get("Resources") or [])) >= ITEMS


def _write(label: str) -> None:
    current, peak = tracemalloc.get_traced_memory()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    statistics = snapshot.statistics("lineno")
    lines = [
        f"{label}: traced now {current / 2**20:,.1f} MiB, traced peak {peak / 2**20:,.1f} MiB",
        "",
        *(
            f"{stat.size / 2**20:8.2f} MiB {stat.count:9,} blocks  {stat.traceback[0]}"
            for stat in statistics[:30]
        ),
        "",
        "Largest by call stack (outermost last):",
    ]
    for stat in snapshot.statistics("traceback")[:8]:
        lines.append(f"{stat.size / 2**20:8.2f} MiB {stat.count:9,} blocks")
        lines += (f"      {frame}" for frame in reversed(stat.traceback))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{label}.txt").write_text("\n".join(lines) + "\n")


def _wrapped(respond: Callable[..., Any]) -> Callable[..., Any]:
    taken = 0

    def traced(body: Any, **options: Any) -> Any:
        nonlocal taken
        if not _many(body):
            return respond(body, **options)
        taken += 1
        _write(f"response-{taken}-rendered")  # records and rendered dicts alive
        response = respond(body, **options)
        _write(f"response-{taken}-encoded")  # and the encoded body too
        tracemalloc.reset_peak()
        return response

    return traced


def main() -> int:
    tracemalloc.start(FRAMES)
    import bridge.app
    from bridge.cli import main as serve

    # bridge.app calls it by the name it imported: that name is the one to wrap.
    wrapped = _wrapped(bridge.app.scim_json_response)  # type: ignore[attr-defined]
    bridge.app.scim_json_response = wrapped  # type: ignore[attr-defined]
    return serve(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
