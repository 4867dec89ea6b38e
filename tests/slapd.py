"""A real OpenLDAP server for the test suite: its own directory, a free port, mdb.

The memberof overlay keeps memberOf (and follows renames of members), the ppolicy
overlay makes pwdAccountLockedTime writable. Each test builds its own tree under the
suffix with `make_tree`, so tests never see each other's entries.
"""

from __future__ import annotations

import ctypes.util
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import ldap3
from ports import free_port

SLAPD_BASE = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SLAPD_BASE}"
ADMIN_PASSWORD = "slapd-test-password"  # a throwaway server on loopback
MODULES = Path("/usr/lib/ldap")
SCHEMAS = Path("/etc/ldap/schema")

CONFIG = """
include {schemas}/core.schema
include {schemas}/cosine.schema
include {schemas}/inetorgperson.schema
include {schemas}/nis.schema
modulepath {modules}
moduleload back_mdb
moduleload memberof
moduleload ppolicy
pidfile {directory}/slapd.pid
sizelimit unlimited

database mdb
suffix "{base}"
rootdn "{admin}"
rootpw {password}
directory {directory}/data
maxsize 1073741824
index objectClass,entryUUID eq
index uid,cn,mail eq,sub
index member,uniqueMember,memberUid,memberOf eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
overlay ppolicy
"""


def slapd_binary() -> str | None:
    found = shutil.which("slapd")
    if found:
        return found
    return "/usr/sbin/slapd" if os.access("/usr/sbin/slapd", os.X_OK) else None


def slapd_available() -> str | None:
    """None when slapd can run here, else why not."""
    if slapd_binary() is None:
        return "slapd is not installed (Debian: apt-get install slapd ldap-utils)"
    if not (MODULES / "back_mdb.so").exists():
        return f"slapd modules not found in {MODULES}"
    return None


TLS_CONFIG = """
TLSCACertificateFile {directory}/ca.pem
TLSCertificateFile {directory}/server.pem
TLSCertificateKeyFile {directory}/server.key
"""


def make_certificates(directory: Path) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1 only; the CA's file.

    Made with the openssl command line, which Debian ships with slapd's dependencies.
    """

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=scim-bridge test CA",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext",
    )  # fmt: skip
    return directory / "ca.pem"


class LoopbackDirectory:
    """What the tests do on either directory server: connect as its administrator, and
    make a tree of their own under its suffix."""

    url: str
    admin_dn: str
    admin_password: str
    base_dn: str
    TREE: tuple[str, ...] = ("people", "groups", "disabled", "archive")
    """The containers under each test's tree."""

    def connection(self) -> ldap3.Connection:
        """A bound administrator connection, for reading the directory independently."""
        return bound_connection(self.url, self.admin_dn, self.admin_password)

    def make_tree(self, name: str) -> str:
        """`ou=<name>` under the suffix with the TREE containers beneath it."""
        tree = f"ou={name},{self.base_dn}"
        connection = self.connection()
        try:
            connection.add(tree, ["organizationalUnit"], {"ou": name})
            for child in self.TREE:
                connection.add(f"ou={child},{tree}", ["organizationalUnit"], {"ou": child})
        finally:
            connection.unbind()
        return tree


PORT_IN_USE = b"Address already in use"
"""What slapd prints (bind failed, errno 98) when its port is taken."""


class PortInUse(RuntimeError):
    """slapd could not listen: its port stayed taken until the deadline."""


@dataclass
class SlapdServer(LoopbackDirectory):
    directory: Path
    port: int
    tls_port: int | None = None
    """The ldaps:// port, when the server was started with TLS (StartTLS works then too)."""
    process: subprocess.Popen[bytes] | None = None
    base_dn: str = SLAPD_BASE
    admin_dn: str = ADMIN_DN
    admin_password: str = ADMIN_PASSWORD
    allocator: str | None = None
    """A malloc to preload into slapd (LD_PRELOAD), or None for the C library's."""

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def start(self) -> None:
        """Start (or restart, on the same port and data) and wait until it answers.

        A slapd that exits at once because its port is still held (by a connection being
        torn down) is started again until the deadline; one that exits for any other
        reason (a broken configuration) fails at once. What it printed is in the error:
        `PortInUse` when the port never came free.
        """
        binary = slapd_binary()
        if binary is None:
            raise RuntimeError("slapd is not installed")
        listen = f"{self.url}/" + (f" {self.tls_url}/" if self.tls_port else "")
        environment = None
        if self.allocator is not None:
            environment = {**os.environ, "LD_PRELOAD": self.allocator}
        # -d none: no debugging, but errors (a port in use, say) on stderr, to the log.
        command = [binary, "-d", "none", "-f", str(self.directory / "slapd.conf"), "-h", listen]
        log_file = self.directory / "slapd.log"
        deadline = time.monotonic() + 15
        logged = 0  # the log's length when the running slapd was started
        spawned = False
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                if spawned:
                    if PORT_IN_USE not in log_file.read_bytes()[logged:]:
                        break
                    time.sleep(0.5)
                logged = log_file.stat().st_size if log_file.exists() else 0
                spawned = True
                with log_file.open("ab") as log:
                    self.process = subprocess.Popen(
                        command,
                        env=environment,
                        stdout=log,
                        stderr=log,
                    )
            try:
                self.connection().unbind()
                return
            except ldap3.core.exceptions.LDAPException:
                time.sleep(0.05)
        self.stop()
        printed = log_file.read_bytes()[logged:]  # by the last slapd started
        tail = log_file.read_text(errors="replace")[-2000:]
        error = PortInUse if PORT_IN_USE in printed else RuntimeError
        raise error(f"slapd did not start on {self.url}:\n{tail}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bound_connection(url: str, dn: str, password: str) -> ldap3.Connection:
    """A connection bound as `dn`; its socket closed when the bind fails (a server still
    starting), so that polling for it leaves none open."""
    server = ldap3.Server(url, get_info=ldap3.NONE, connect_timeout=2)
    connection = ldap3.Connection(
        server,
        dn,
        password,
        auto_bind=ldap3.AUTO_BIND_NONE,
        raise_exceptions=True,
        receive_timeout=10,
    )
    try:
        connection.open()
        connection.bind()
    except ldap3.core.exceptions.LDAPException:
        connection.unbind()
        if connection.socket is not None:
            connection.socket.close()
        raise
    return connection


def large_allocator() -> str | None:
    """mimalloc, else jemalloc, when installed (Debian's libmimalloc2.0, libjemalloc2),
    for the benchmarks' slapd.

    A modify of a group of 50,000 members has back-mdb copy and free every value; with the
    C library's malloc, perf shows malloc and free taking about half of that time. One
    such modify at a time took 7.8 ms with the C library's malloc, 6.0-6.8 ms with
    jemalloc (tcmalloc the same) and 4.5-5.6 ms with mimalloc (slapd 2.5.13, 2026-12-03).
    """
    return ctypes.util.find_library("mimalloc") or ctypes.util.find_library("jemalloc")


def large_threads() -> int:
    """The benchmarks' slapd thread pool: one thread per core (slapd allows no fewer than 2).

    With `dbnosync` and `writemap` a write waits for no disk, so slapd's work is all CPU
    and threads beyond the cores only take turns on them. And they cost: with slapd's
    default of 16, after 4,000 adds from 8 connections a modify of the group of 50,000
    took 4.9 ms instead of 2.9, and stayed so (perf: the same profile, every function
    slower; most likely each operation lands on a thread whose heap and caches are cold),
    and in whole benchmark runs the baseline's modify took 3.5 ms instead of 2.6 in runs
    of that scenario alone; with 2 threads, 2.7-2.8 ms before those adds and after (slapd
    2.5.13, 2 cores, 2026-12-03).
    """
    return max(2, os.cpu_count() or 2)


def start_slapd(directory: Path, *, tls: bool = False, large: bool = False) -> SlapdServer:
    """Configure and start a server in `directory` (which must be empty or new).

    With `tls`, it also listens on an ldaps:// port and accepts StartTLS, with a
    certificate from a CA of its own (`server.ca_file`). With `large` (the benchmarks),
    the database has room for 100,000 users with their indexes, writes skip fsync and go
    through the memory map (LMDB's writemap: no write() of each page, see slapd-mdb(5)),
    slapd runs `large_threads()` threads, and with `large_allocator()` when there is one.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir()
    config = CONFIG.format(
        schemas=SCHEMAS,
        modules=MODULES,
        directory=directory,
        base=SLAPD_BASE,
        admin=ADMIN_DN,
        password=ADMIN_PASSWORD,
    )
    if large:
        config = config.replace(
            "maxsize 1073741824", "maxsize 8589934592\ndbnosync\nenvflags writemap"
        )
        # Values of these kept sorted: a modify or a compare of a group of 50,000 members
        # then finds a value by a binary search, not by reading all of them. A thread per
        # core (large_threads).
        config = config.replace(
            "sizelimit unlimited",
            "sizelimit unlimited\nsortvals member uniqueMember memberOf"
            f"\nthreads {large_threads()}",
        )
    if tls:
        make_certificates(directory)
        config = TLS_CONFIG.format(directory=directory) + config
    (directory / "slapd.conf").write_text(config)
    for attempt in range(3):
        server = SlapdServer(
            directory,
            free_port(),
            free_port() if tls else None,
            allocator=large_allocator() if large else None,
        )
        try:
            server.start()
            break
        except PortInUse:  # another port; any other failure is the configuration's
            if attempt == 2:
                raise
    connection = server.connection()
    try:
        connection.add(SLAPD_BASE, ["dcObject", "organization"], {"dc": "example", "o": "Example"})
        connection.add(f"cn=nobody,{SLAPD_BASE}", ["organizationalRole"], {"cn": "nobody"})
    finally:
        connection.unbind()
    return server
