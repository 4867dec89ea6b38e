"""The test suite's slapd (tests/slapd.py) starts again when its port is still held, and
fails at once, saying why, when it cannot start at all."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from ports import free_port
from slapd import PortInUse, SlapdServer, slapd_available, start_slapd

pytestmark = pytest.mark.skipif(slapd_available() is not None, reason="slapd is not installed")


def test_a_broken_configuration_fails_at_once_with_what_slapd_printed(tmp_path: Path) -> None:
    server = start_slapd(tmp_path / "broken")
    server.stop()
    config = server.directory / "slapd.conf"
    config.write_text(config.read_text() + "\nnot-a-directive here\n")
    started = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        server.start()
    assert time.monotonic() - started < 5  # not the 15 s given to a port to come free
    assert not isinstance(raised.value, PortInUse)
    assert "not-a-directive" in str(raised.value)


def test_a_port_held_by_another_is_waited_for_then_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_slapd(tmp_path / "held")
    server.stop()
    with socket.socket() as holder:
        # Bound, not listening: a connection to it is refused, as to a port still held by
        # a connection being torn down, and slapd's bind fails.
        holder.bind(("127.0.0.1", free_port()))
        taken = SlapdServer(server.directory, holder.getsockname()[1])
        monkeypatch.setattr("slapd.time.monotonic", _fast_clock())
        with pytest.raises(PortInUse) as raised:
            taken.start()
    # Started again while the port stayed held, not given up at the first refusal.
    refusals = (server.directory / "slapd.log").read_text().count("Address already in use")
    assert refusals >= 2
    assert "Address already in use" in str(raised.value)
    server.start()  # its own port: the data are intact
    try:
        connection = server.connection()
        assert connection.search(server.base_dn, "(objectClass=*)", attributes=["dc"])
        connection.unbind()
    finally:
        server.stop()


def _fast_clock() -> object:
    """A monotonic clock that runs 3 times as fast: the 15 s deadline passes in 5 s."""
    real = time.monotonic
    origin = real()
    return lambda: origin + (real() - origin) * 3
