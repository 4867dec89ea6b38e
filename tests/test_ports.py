"""The test servers' ports lie where no outgoing connection can take them (tests/ports.py)."""

from __future__ import annotations

import socket

from ports import _ephemeral_start, free_port


def test_a_test_server_port_is_never_one_the_kernel_hands_to_a_connection() -> None:
    start = _ephemeral_start()
    ports = {free_port() for _ in range(50)}
    assert all(port < start for port in ports)
    assert len(ports) > 1  # drawn at random, not one port for every server


def test_the_port_given_is_free_to_listen_on() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port()))
        server.listen()
