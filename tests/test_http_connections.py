"""The daphne and Twisted names pickup/http_connections.py relies on: an upgrade that renames one fails here.
What the guard does is proved on a real daphne in tests/processes/test_http_connections.py."""

from __future__ import annotations

import resource

from daphne import http_protocol
from twisted.web import http

from pickup import http_connections


def test_installing_makes_daphne_build_guarded_http_connections_with_the_file_limit_raised():
    original, limits = http_protocol.HTTPFactory.protocol, resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        http_connections.install()
        assert http_protocol.HTTPFactory.protocol is http_connections.GuardedChannel
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert soft == hard
        assert http_connections.admit_below == soft - http_connections.reserved_descriptors()
    finally:
        http_protocol.HTTPFactory.protocol = original
        http_connections.admit_below = None
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_the_channel_it_extends_still_has_what_it_uses():
    channel = http.HTTPChannel
    for name in ("connectionMade", "dataReceived", "allContentReceived", "requestDone", "connectionLost",
                 "timeoutConnection", "callLater", "requestFactory"):
        assert hasattr(channel, name), name
    assert "persistent" in channel.requestDone.__code__.co_names  # BusyRequest closes by clearing it
    assert not http.H2_ENABLED  # daphne serves HTTP/1.1 here, on the channel the guard replaces


def test_the_reserve_grows_with_the_channel_layer_pool(settings):
    def reserve_with(layer_connections: int) -> int:
        settings.CHANNEL_LAYERS = {"default": {"CONFIG": {"hosts": [{"address": "redis://x", "max_connections": layer_connections}]}}}
        return http_connections.reserved_descriptors()

    assert reserve_with(70) - reserve_with(30) == 40
    assert reserve_with(30) > 30 + http_connections.HEADROOM  # the database's connections too
