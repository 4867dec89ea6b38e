"""scim-bridge run as an operator runs it: `python -m bridge serve` in a process of its own.

A separate process, so that its CPU time and resident memory are its own (VmRSS of
/proc/<pid>/status), and the load generator never shares its event loop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from bench.backends import ROOT, free_port

TOKEN = "bench-token-9f8e7d6c5b4a39281706"  # a throwaway service on loopback
TOKEN_ENV = "BENCH_TOKEN"


class Service:
    """One `serve` process on a configuration; stopped with SIGTERM, as systemd would."""

    def __init__(
        self,
        name: str,
        config: str,
        directory: Path,
        env: dict[str, str],
        *,
        workers: int,
        trace_memory: Path | None = None,
    ) -> None:
        """`workers`: the configuration's `server.workers`, waited for at start;
        `trace_memory`: run it under bench.trace_memory, writing snapshots there."""
        self.name = name
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/scim/v2"
        config_file = directory / f"{name}.toml"
        config_file.write_text(config)
        self.log = directory / f"{name}.log"
        module = "bridge"
        env = {**os.environ, **env, TOKEN_ENV: TOKEN}
        if trace_memory is not None:
            module = "bench.trace_memory"
            env["BENCH_TRACE_DIR"] = str(trace_memory / name)
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    module,
                    "serve",
                    "--config",
                    str(config_file),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                ],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._wait_listening(timeout=60)
        self._wait_workers(timeout=60)

    def _wait_listening(self, timeout: float) -> None:
        """The port accepts once the connector is open (aiohttp binds after start-up)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = self.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(
                        f"scim-bridge serve ({self.name}) did not start:\n{log}"
                    ) from None
                time.sleep(0.05)

    def _wait_workers(self, timeout: float) -> None:
        """Every worker listens (the first accepts before its copies have started)."""
        deadline = time.monotonic() + timeout
        while len(_listening(self.port) & set(self.pids())) < self.workers:
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"scim-bridge serve ({self.name}): not every worker listens")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def pids(self) -> list[int]:
        """The first worker and the copies it started (`server.workers`)."""
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            return []
        return [self.pid, *map(int, children)]

    def memory_mb(self) -> tuple[float, float]:
        """(PSS, VmRSS) summed over every worker, in MiB; zeros once the service is gone.

        The workers are separate processes that map the same interpreter and libraries:
        VmRSS counts those shared pages once per worker, PSS divides each shared page
        among the processes that map it, so that the sum of PSS is what the service
        takes. Both are reported; the target is judged on PSS.
        """
        pss = rss = 0
        for pid in self.pids():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            pss += _kib(rollup, "Pss:")
            rss += _kib(status, "VmRSS:")
        return pss / 1024, rss / 1024


def _listening(port: int) -> set[int]:
    """The pids holding a socket that listens on `port` of 127.0.0.1 (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    holders = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                    holders.add(int(entry.name))
            except OSError:
                continue
    return holders


def _kib(text: str, field: str) -> int:
    for line in text.splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


class MemoryWatch:
    """The peak of a service's memory (see Service.memory_mb), sampled every 100 ms by a
    thread of its own.

    A thread, not a task: the baselines block the event loop (ldap3 is synchronous), and
    the sampling must go on meanwhile.
    """

    def __init__(self, service: Service, interval: float = 0.1) -> None:
        self.service = service
        self.interval = interval
        self.peak = 0.0
        """The highest PSS summed over the workers."""
        self.peak_rss = 0.0
        """The highest VmRSS summed over the workers."""
        self.start = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self.start = self.service.memory_mb()[0]
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _record(self) -> None:
        pss, rss = self.service.memory_mb()
        self.peak = max(self.peak, pss)
        self.peak_rss = max(self.peak_rss, rss)

    def _sample(self) -> None:
        while True:
            self._record()
            self.samples += 1
            if self._stop.wait(self.interval):
                self._record()
                return


class Profiler:
    """py-spy recording a service while a scenario runs (`--profile`), as collapsed stacks.

    py-spy samples from outside the process, so the service runs unmodified and at full
    speed. `--gil` keeps only the samples of the thread holding the GIL: the service's
    Python work is bound by it, and a thread waiting for it (or for the directory) would
    otherwise count as busy. `python -m bench.profile FILE` summarises a recording.
    """

    def __init__(self, py_spy: str | None, directory: Path | None) -> None:
        self.py_spy = py_spy
        self.directory = directory
        self._running: subprocess.Popen[bytes] | None = None

    @staticmethod
    def find(explicit: str | None) -> str | None:
        if explicit:
            return explicit
        beside = Path(sys.executable).parent / "py-spy"
        return str(beside) if beside.exists() else shutil.which("py-spy")

    def start(self, service: Service, label: str) -> None:
        if self.py_spy is None or self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        output = self.directory / f"{label}.txt"
        self._running = subprocess.Popen(
            [
                self.py_spy,
                "record",
                "--pid",
                str(service.pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "--output",
                str(output),
                "--nonblocking",
                "--gil",
                "--subprocesses",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # attached before the load starts

    def stop(self) -> None:
        running, self._running = self._running, None
        if running is None:
            return
        running.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            running.wait(30)
        except subprocess.TimeoutExpired:
            running.kill()
            running.wait()
