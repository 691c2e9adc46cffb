"""Ports for the servers the tests and `make run-cluster` start: never one an outgoing connection may take."""

from __future__ import annotations

import socket

from pickup import redis_server


def test_ports_are_free_distinct_and_below_the_range_outgoing_connections_use():
    start = redis_server._ephemeral_ports_start()
    ports = [redis_server.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(1024 <= port < start for port in ports)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", ports[0]))  # still free: nothing was left bound

