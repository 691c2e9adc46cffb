"""The daphne names pickup/websocket_pacing.py relies on: a daphne upgrade that renames one fails here."""

from __future__ import annotations

from daphne import ws_protocol

from pickup import websocket_pacing


def test_installing_makes_daphne_build_paced_websocket_connections():
    original = ws_protocol.WebSocketFactory.protocol
    try:
        websocket_pacing.install()
        assert ws_protocol.WebSocketFactory.protocol is websocket_pacing.PacedWebSocketProtocol
    finally:
        ws_protocol.WebSocketFactory.protocol = original


def test_the_protocol_it_extends_still_has_what_it_uses():
    protocol = ws_protocol.WebSocketProtocol
    for name in ("onMessage", "sendClose", "STATE_OPEN"):
        assert hasattr(protocol, name), name
    assert issubclass(websocket_pacing.PacedWebSocketProtocol, protocol)
    # The consumer's queue daphne fills per frame: the method pacing runs before.
    assert "application_queue" in protocol.onMessage.__code__.co_names
