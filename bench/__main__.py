"""`.venv/bin/python -m bench`: scim-bridge against direct ldap3 and SQLAlchemy, side by side.

For each backend: start it (a slapd of the run's own; databases of the run's own on the
local PostgreSQL), bulk-load the data sets the wanted scenarios need, start one service
per data set, run the scenarios, and tear everything down, also on an error, Ctrl-C or
SIGTERM. The table goes to the terminal and, for a full-size run, to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import report, scenarios
from bench.backends import Backend, DataSet, Ldap, Postgres
from bench.direct import Direct, LdapDirect, SqlDirect
from bench.scenarios import BIG, SMALL, Result, Served, Sizes
from bench.service import Profiler, Service

SCENARIOS = {
    1: "create users (POST /Users)",
    2: "lookup by userName: throughput and p99",
    3: "lookup latency on 100,000 users vs 1,000",
    4: "paging through 100,000 users",
    5: "add a member to a group of 50,000 vs 10",
    6: "GET a group of 50,000 members",
    7: "initial sync as Entra sends it",
}
DATASETS = {"small": {2, 3}, "large": {3, 4, 5, 6}, "writes": {1, 7}}
"""Which data set each scenario runs on; a data set is loaded only when a scenario wants it."""


def plan(sizes: Sizes, wanted: set[int]) -> list[DataSet]:
    """The data sets to load: 1,000 users; 100,000 users with the 50,000 and the 10
    group; an empty tree or database for the writes of scenarios 1 and 7."""
    datasets = []
    if wanted & DATASETS["small"]:
        datasets.append(DataSet("small", [f"s{n:06d}" for n in range(sizes.small)]))
    if wanted & DATASETS["large"]:
        users = [f"u{n:06d}" for n in range(sizes.large)]
        groups = {}
        if wanted & {5, 6}:
            groups = {
                BIG: users[: sizes.big_group],
                SMALL: users[sizes.big_group : sizes.big_group + sizes.small_group],
            }
        datasets.append(DataSet("large", users, groups))
    if wanted & DATASETS["writes"]:
        datasets.append(DataSet("writes"))
    return datasets


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def open_direct(backend: Backend, where: str) -> Direct:
    if isinstance(backend, Ldap):
        return LdapDirect(backend.connection(), where)
    return await SqlDirect.open(where)


class Scenarios:
    """The scenarios of one backend on its served data sets, by number."""

    def __init__(self, served: dict[str, Served], sizes: Sizes) -> None:
        self.served = served
        self.sizes = sizes

    async def run(self, number: int) -> list[Result]:
        served, sizes = self.served, self.sizes
        if number == 1:
            return await scenarios.create_users(served["writes"], sizes)
        if number == 2:
            small = served["small"]
            return scenarios.lookup_results(small, *await scenarios.lookups(small, sizes))
        if number == 3:
            return await scenarios.growth(served["small"], served["large"], sizes)
        if number == 4:
            return await scenarios.paging(served["large"], sizes)
        if number == 5:
            return await scenarios.member_adds(served["large"], sizes)
        if number == 6:
            return await scenarios.big_group_read(served["large"], sizes)
        if number == 7:
            return await scenarios.initial_sync(served["writes"], sizes)
        raise ValueError(f"no scenario {number}")


SERVICE_OF = {1: "writes", 2: "small", 3: "large", 4: "large", 5: "large", 6: "large", 7: "writes"}
"""The service a scenario loads most (the one --profile records)."""


def _ratio(result: Result) -> str:
    return "-" if result.ratio is None else f"{result.ratio:.2f}"


async def run_backend(
    backend: Backend,
    sizes: Sizes,
    wanted: set[int],
    workdir: Path,
    profiler: Profiler,
    trace_memory: Path | None,
) -> list[Result]:
    """Load, serve, run every wanted scenario; services and connections closed at the end."""
    datasets = plan(sizes, wanted)
    described = ", ".join(f"{d.label}: {len(d.users):,} users" for d in datasets)
    progress(f"{backend.name}: loading {described}")
    started = time.perf_counter()
    where = await backend.load(datasets)
    progress(f"{backend.name}: loaded in {time.perf_counter() - started:,.0f} s")
    services: list[Service] = []
    directs: list[Direct] = []
    results: list[Result] = []
    try:
        served: dict[str, Served] = {}
        for dataset in datasets:
            location = where[dataset.label]
            service = Service(
                f"{backend.name}-{dataset.label}",
                backend.config(location),
                workdir,
                backend.environment(),
                workers=backend.workers,
                trace_memory=trace_memory,
            )
            services.append(service)
            direct = await open_direct(backend, location)
            directs.append(direct)
            groups = {name: list(members) for name, members in dataset.groups.items()}
            served[dataset.label] = Served(
                backend.name, service, direct, list(dataset.users), groups
            )
        runner = Scenarios(served, sizes)
        for number in sorted(wanted):
            progress(f"{backend.name}: scenario {number}, {SCENARIOS[number]}")
            profiler.start(served[SERVICE_OF[number]].service, f"{backend.name}-{number}")
            try:
                rows = await runner.run(number)
            finally:
                profiler.stop()
            for row in rows:
                progress(
                    f"  {row.title}: ratio {_ratio(row)} (target {row.target}, met "
                    f"{report.met(row)}): {row.service} vs {row.baseline or '-'}"
                )
            results += rows
    finally:
        for service in services:
            service.stop()
        for direct in directs:
            await direct.close()
    return results


async def postgres_version() -> str:
    try:
        connection = await Postgres.connect("postgres")
    except (TimeoutError, OSError) as error:
        return f"unreachable ({type(error).__name__})"
    try:
        return "PostgreSQL " + str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


async def main(args: argparse.Namespace) -> int:
    """Every wanted backend in turn; 0 when every target is met, 1 otherwise."""
    task = asyncio.current_task()
    if task is not None:  # SIGTERM cleans up as Ctrl-C does
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    sizes = Sizes.quick() if args.quick else Sizes()
    wanted = set(args.scenario or SCENARIOS)
    backends = ["ldap", "postgresql"] if args.backend == "all" else [args.backend]
    py_spy = Profiler.find(args.py_spy) if args.profile else None
    if args.profile and py_spy is None:
        raise SystemExit("--profile needs py-spy: give its path with --py-spy")
    profiler = Profiler(py_spy, args.profile)
    load_at_start = report.load_average()
    cpu_at_start = report.cpu_times()
    started = time.perf_counter()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="scim-bench-") as temporary:
        workdir = Path(temporary)
        for name in backends:
            backend: Backend = Ldap(workdir / "slapd") if name == "ldap" else Postgres()
            try:
                results += await run_backend(
                    backend, sizes, wanted, workdir, profiler, args.trace_memory
                )
            finally:
                await backend.close()
    seconds = time.perf_counter() - started
    print(report.terminal(results))
    print(report.summary(results))
    output = args.output or (None if args.quick else report.RESULTS)
    if output is not None:
        environment = report.machine(
            await postgres_version(),
            report.slapd_version(),
            f"{load_at_start:.2f} and {report.load_average():.2f}",
            report.stolen_share(cpu_at_start, report.cpu_times()),
        )
        command = " ".join([".venv/bin/python -m bench", *map(shlex.quote, sys.argv[1:])])
        report.write(
            output,
            results,
            command=command,
            sizes=_sizes(sizes, args.quick),
            environment=environment,
            seconds=seconds,
        )
        print(f"written to {output}")
    return 0 if all(result.met is not False for result in results) else 1


def _sizes(sizes: Sizes, quick: bool) -> str:
    kind = "quick sizes" if quick else "full sizes"
    return (
        f"{kind}: {sizes.large:,} users, a group of {sizes.big_group:,}, "
        f"{sizes.sync_users:,} users synced"
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark scim-bridge against direct ldap3 and SQLAlchemy use.",
        epilog="Scenarios: " + "; ".join(f"{n}. {title}" for n, title in SCENARIOS.items()),
    )
    parser.add_argument("--backend", choices=["ldap", "postgresql", "all"], default="all")
    parser.add_argument(
        "--scenario",
        type=int,
        action="append",
        choices=sorted(SCENARIOS),
        metavar="N",
        help="run scenario N only (repeatable; default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, a smoke run of a minute or two (writes no RESULTS.md)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where to write the results (default: bench/RESULTS.md, except with --quick)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record each scenario's service with py-spy into DIR",
    )
    parser.add_argument("--py-spy", metavar="PATH", help="the py-spy binary for --profile")
    parser.add_argument(
        "--trace-memory",
        type=Path,
        metavar="DIR",
        help="run the services under tracemalloc, snapshots of large "
        "responses into DIR (timings then mean nothing)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(
            "interrupted: slapd, the services and the databases of the run are gone",
            file=sys.stderr,
        )
        sys.exit(130)
