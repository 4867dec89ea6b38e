"""A real 389 Directory Server for the tests of the ldap-389ds preset.

Debian's 389-ds-base creates instances with `dscreate`, which starts them through systemd,
absent from a CI machine. The same library (lib389, which `dscreate` runs on Debian's own
Python) also installs an instance "containerised": ns-slapd started directly. Its pid file
is then fixed at /data/run, so the installer is told the instance's own. lib389 finds an
instance by its configuration directory under /etc/dirsrv: a symbolic link there points
at the temporary directory, and is removed again when the server stops.

The instance runs as root in its temporary directory, on a free port, with the USN plugin
on (the `entryusn` the preset takes as the version of an entry); the memberOf and
referential integrity plugins stay off, as a fresh 389 DS has them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import ldap3
from slapd import LoopbackDirectory

DS_BASE = "dc=example,dc=org"
DS_ADMIN_DN = "cn=Directory Manager"
DS_ADMIN_PASSWORD = "ds389-test-password"  # a throwaway server on loopback
NS_SLAPD = Path("/usr/sbin/ns-slapd")
SYSTEM_PYTHON = Path("/usr/bin/python3")
"""Debian's Python, whose dist-packages hold lib389 (not the virtualenv's)."""
INSTANCES = Path("/etc/dirsrv")

INSTALL = """
import logging, sys
from lib389 import DirSrv
from lib389.instance.setup import SetupDs
logging.basicConfig(level=logging.WARNING)
pid_file = sys.argv[2]
DirSrv.pid_file = lambda self: pid_file  # containerised, it would be /data/run's
setup = SetupDs(verbose=False, dryrun=False, log=logging.getLogger("ds389"), containerised=True)
sys.exit(0 if setup.create_from_inf(sys.argv[1]) else 1)
"""

INF = """
[general]
config_version = 2
full_machine_name = localhost
selinux = False
systemd = False
start = True
strict_host_checking = False

[slapd]
instance_name = {name}
port = {port}
secure_port = 0
self_sign_cert = False
root_dn = {admin}
root_password = {password}
user = root
group = root
backup_dir = {directory}/bak
cert_dir = {directory}/config
config_dir = {directory}/config
db_dir = {directory}/db
db_home_dir = {directory}/db
ldif_dir = {directory}/ldif
lock_dir = {directory}/lock
log_dir = {directory}/log
run_dir = {directory}/run
schema_dir = {directory}/config/schema
tmp_dir = {directory}/tmp
inst_dir = {directory}/inst
ldapi = {directory}/run/slapd.socket

[backend-userroot]
sample_entries = no
suffix = {base}
create_suffix_entry = True
"""


def ds389_available() -> str | None:
    """None when a 389 Directory Server can run here, else why not."""
    if not NS_SLAPD.exists():
        return "389 Directory Server is not installed (Debian: apt-get install 389-ds-base)"
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import lib389.instance.setup"], capture_output=True
    )
    if probe.returncode != 0:
        return "lib389 (Debian's python3-lib389) does not import"
    if os.geteuid() != 0:
        return "a 389 Directory Server instance is installed as root here"
    return None


@dataclass
class Ds389Server(LoopbackDirectory):
    directory: Path
    name: str
    port: int
    base_dn: str = DS_BASE
    admin_dn: str = DS_ADMIN_DN
    admin_password: str = DS_ADMIN_PASSWORD
    TREE = ("people", "groups", "archive")

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "run" / "slapd.pid"

    @property
    def link(self) -> Path:
        return INSTANCES / f"slapd-{self.name}"

    def install(self) -> None:
        """Create the instance (the installer starts it) and turn the USN plugin on."""
        config = self.directory / "config"
        config.mkdir(parents=True)
        INSTANCES.mkdir(exist_ok=True)
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(config)
        inf = self.directory / "instance.inf"
        inf.write_text(
            INF.format(
                name=self.name,
                port=self.port,
                admin=self.admin_dn,
                password=self.admin_password,
                directory=self.directory,
                base=self.base_dn,
            )
        )
        done = subprocess.run(
            [str(SYSTEM_PYTHON), "-c", INSTALL, str(inf), str(self.pid_file)],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"389 DS did not install:\n{done.stderr[-3000:]}")
        connection = self.connection()
        try:
            connection.modify(
                "cn=USN,cn=plugins,cn=config",
                {"nsslapd-pluginEnabled": [(ldap3.MODIFY_REPLACE, ["on"])]},
            )
        finally:
            connection.unbind()
        self._halt()
        self.start()

    def start(self) -> None:
        """Start ns-slapd on the installed instance and wait until it answers."""
        subprocess.run(
            [str(NS_SLAPD), "-D", str(self.directory / "config"), "-i", str(self.pid_file)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.connection().unbind()
                return
            except ldap3.core.exceptions.LDAPException:
                time.sleep(0.1)
        raise RuntimeError(f"389 DS did not answer on {self.url}")

    def _halt(self) -> None:
        """Stop ns-slapd (it writes its pid file once it runs) and wait for it to exit."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        self._halt()
        self.link.unlink(missing_ok=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_ds389(directory: Path, port: int) -> Ds389Server:
    """Install and start an instance in `directory` (new) on `port`."""
    server = Ds389Server(directory, f"scimtest{uuid.uuid4().hex[:10]}", port)
    server.install()
    return server
