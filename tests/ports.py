"""Ports for the test servers (slapd, webhook receivers, the bridge itself).

A port the kernel hands out for `bind(0)` lies in the ephemeral range, the same range
it draws the source port of every outgoing connection from. A test that stops a server
and starts it again on the same port (an outage, then recovery) then races every
connection made meanwhile: one that happens to get that port as its source port (a
pool retrying the stopped server may even connect to itself) keeps the server from
binding it again. So the ports come from below the ephemeral range, which the kernel
never hands out by itself, and are tried with a bind before use.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000
"""Below this lie the ports that well-known local services are configured on."""


def _ephemeral_start() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on and no outgoing connection can take."""
    highest = _ephemeral_start() - 1
    if highest - LOWEST >= 1000:
        for _ in range(200):
            port = random.randint(LOWEST, highest)
            if _bindable(port):
                return port
    with socket.socket() as probe:  # no room below the ephemeral range: take any
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
