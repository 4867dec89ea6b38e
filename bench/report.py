"""The results: a table on the terminal and bench/RESULTS.md, with the machine they ran on.

Ratios come first, then whether the target is met, then the figures they are made of:
absolute numbers depend on the machine, the ratio to the direct baseline much less.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.backends import large_allocator, large_threads
from bench.scenarios import Result

RESULTS = Path(__file__).parent / "RESULTS.md"

HEADER = ["#", "Scenario", "Backend", "Ratio", "Target", "Met", "scim-bridge", "Direct", "Note"]


def met(result: Result) -> str:
    return {True: "yes", False: "**NO**", None: "-"}[result.met]


def _row(result: Result) -> list[str]:
    ratio = "" if result.ratio is None else f"{result.ratio:.2f}"
    return [
        str(result.scenario),
        result.title,
        result.backend,
        ratio,
        result.target,
        met(result),
        result.service,
        result.baseline,
        result.note,
    ]


def markdown(results: Sequence[Result]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_row(result)) + " |" for result in results]
    return lines


def terminal(results: Sequence[Result]) -> str:
    """Aligned columns, the note last and unpadded."""
    rows = [HEADER, *(_row(result) for result in results)]
    widths = [max(len(row[n]) for row in rows) for n in range(len(HEADER) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    )


def summary(results: Sequence[Result]) -> str:
    judged = [result for result in results if result.met is not None]
    missed = [f"{r.scenario} {r.backend}" for r in judged if not r.met]
    line = f"{len(judged) - len(missed)} of {len(judged)} targets met"
    return line + (f"; missed: {', '.join(missed)}" if missed else "")


def machine(postgres: str, slapd: str, load: str, stolen: float | None) -> list[str]:
    """What the figures were measured on; `stolen`: the share of CPU time the hypervisor
    gave to other machines during the run (it slows everything, unevenly)."""
    cpu = _first(Path("/proc/cpuinfo"), r"model name\s*:\s*(.+)") or platform.processor()
    memory_kb = _first(Path("/proc/meminfo"), r"MemTotal:\s*(\d+)")
    memory = f"{int(memory_kb) / 1024 / 1024:.1f} GiB" if memory_kb else "unknown"
    return [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu}, {os.cpu_count()} cores; RAM {memory}",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}",
        f"- OpenLDAP: {slapd} (mdb, memberof and ppolicy overlays, dbnosync, writemap; "
        f"threads {large_threads()}; malloc: {large_allocator() or 'the C library'})",
        f"- PostgreSQL: {postgres}",
        f"- Load average (1 min) at start and end: {load}",
        "- CPU time stolen by the hypervisor during the run: "
        + ("unknown" if stolen is None else f"{stolen:.0%}"),
        "- Everything on loopback (127.0.0.1): the service, its backend, the load generator",
    ]


def slapd_version() -> str:
    try:
        done = subprocess.run(["slapd", "-VV"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    found = re.search(r"slapd ([\w.+~-]+)", done.stdout + done.stderr)
    return f"slapd {found[1]}" if found else "unknown"


def load_average() -> float:
    return os.getloadavg()[0]


def cpu_times() -> tuple[int, int] | None:
    """(steal, total) jiffies of all CPUs since boot, from /proc/stat (Linux)."""
    line = _first(Path("/proc/stat"), r"^cpu\s+(.+)$")
    if line is None:
        return None
    fields = [int(field) for field in line.split()]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def stolen_share(start: tuple[int, int] | None, end: tuple[int, int] | None) -> float | None:
    if start is None or end is None or end[1] == start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


def _first(path: Path, pattern: str) -> str | None:
    try:
        found = re.search(pattern, path.read_text(), re.MULTILINE)
    except OSError:
        return None
    return found[1].strip() if found else None


METHODS = [
    "1. `POST /Users` from 8 clients; direct: add (ldap3) or INSERT ... RETURNING id, then "
    "the generated entryUUID read back, one at a time. Throughput ratio. The service and "
    "the baseline run in four alternating rounds (the one first in a round second in the "
    "next), so that a slow spell of the machine falls on both; so do scenario 2's.",
    '2. `GET /Users?filter=userName eq "..."` for random existing users of 1,000, from 8 '
    "clients; direct: the same search reading the whole user and its groups. Throughput "
    "ratio, and the service's p99 / p50.",
    "3. The same lookups on 100,000 users and on 1,000: the service's median latency on the "
    "first over the second (the baseline's own ratio beside it), measured in alternating "
    "rounds on the two data sets.",
    "4. `GET /Users?startIndex=1,101,201,...&count=100` through 100,000 users from one "
    "client: every page full, the mean of the last 10 pages over the first 10, and the "
    "service's peak memory sampled every 100 ms during the whole scenario; direct: Simple "
    "Paged Results (LDAP) or keyset paging (SQL), for the total-time ratio.",
    "5. `PATCH /Groups/{id}` adding one member (exactly what an identity provider sends; "
    "the service answers 204 No Content with the new ETag), from 8 clients at once, to the "
    "group of 50,000 and to the group of 10 in alternating rounds of 40 (240 to each): "
    "median latency ratio. The same PATCH "
    "with `excludedAttributes=members`, answered 200 with the group but not its members, "
    "is shown beside it; the direct modify or INSERT ratio is in the Direct column. The "
    "note gives the backend's own extra time for one write to the large group (the "
    "direct medians' difference) as a share of the service's small-group median: each "
    "PATCH to the large group waits for at least one such write, so the ratio stays near "
    "or above 1 plus that share on that machine, whatever the service does (how long "
    "requests queue for their write, which differs between the two groups, moves it "
    "a little either way).",
    "6. `GET /Groups/{id}` of the group of 50,000 (three times): answered 200 with every "
    "member, and the service's peak memory meanwhile; direct: the group and its members' ids "
    "and names read.",
    "7. Entra's first cycle: per user `GET /Users?filter=userName eq ...` (empty) then "
    "`POST /Users`; per group `GET /Groups?filter=displayName eq ...` then `POST /Groups`; "
    "then one `PATCH` add per membership; 8 clients per phase. Direct: the same lookups and "
    "writes one at a time. Objects (users + groups + memberships) per second. In four "
    "alternating rounds as scenario 1, each a quarter of the sync (its users, then its 25 "
    "groups, then its users' memberships of them: 100 members a group, as in one long sync).",
]


def write(
    path: Path,
    results: Sequence[Result],
    *,
    command: str,
    sizes: str,
    environment: list[str],
    seconds: float,
) -> None:
    lines = [
        "# scim-bridge benchmark results",
        "",
        f"Produced by `{command}` in {seconds / 60:.1f} minutes ({sizes}).",
        "",
        "Each row measures scim-bridge (`python -m bridge serve`, driven by 8 concurrent",
        "aiohttp clients unless the scenario says otherwise; `server.workers = 2`, one",
        "per core, on both backends) and a",
        "direct use of the same backend in the same run: ldap3",
        "against the same slapd, SQLAlchemy Core on asyncpg against the same PostgreSQL",
        "database, one operation at a time, in the benchmark process. The ratio is the",
        "figure to judge: for a throughput it is service / direct (higher is better), for a",
        "latency or a time it is the first figure over the second (lower is better). A `-`",
        "target only informs. The service's memory is the sum of its workers' PSS (a page",
        "the workers share, such as the interpreter's and the libraries' code, counted once",
        "in all); the sum of their VmRSS, which counts such pages once per worker, is in the",
        "note beside it. The benchmark's own garbage collector is off while it measures (a",
        "full collection of its process would pause every client at once).",
        "",
        f"**{summary(results)}.**",
        "",
        *markdown(results),
        "",
        "## How each scenario is measured",
        "",
        *METHODS,
        "",
        "## Machine",
        "",
        *environment,
        "",
        "Other work on the machine during the run disturbs the absolute figures; the",
        "ratios, measured side by side, much less.",
        "",
    ]
    path.write_text("\n".join(lines))
