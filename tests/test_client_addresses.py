"""The client address the limits count: what our own proxies wrote, never what the client wrote before them."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from axes.helpers import get_client_ip_address
from pickup.addresses import address_from, client_address, client_address_from_scope

PEER = "10.0.0.2"  # the proxy daphne hears from


def test_without_trusted_proxies_the_header_is_ignored_and_the_peer_is_the_client():
    assert address_from("198.51.100.7", "203.0.113.66", 0) == "198.51.100.7"


def test_behind_one_proxy_the_entry_it_appended_is_the_client_whatever_was_written_before_it():
    # nginx's $proxy_add_x_forwarded_for: the client's own header, then the peer nginx saw.
    assert address_from(PEER, "198.51.100.7", 1) == "198.51.100.7"
    assert address_from(PEER, "203.0.113.66, 198.51.100.7", 1) == "198.51.100.7"
    assert address_from(PEER, "1.1.1.1,2.2.2.2, 3.3.3.3 ,198.51.100.7", 1) == "198.51.100.7"


def test_behind_two_proxies_the_second_entry_from_the_right_is_the_client():
    # A load balancer appended the client, then nginx appended the load balancer.
    assert address_from(PEER, "203.0.113.66, 198.51.100.7, 10.0.0.9", 2) == "198.51.100.7"


def test_a_request_that_bypassed_the_proxies_is_counted_under_its_peer():
    assert address_from("198.51.100.7", None, 1) == "198.51.100.7"
    assert address_from("198.51.100.7", "", 1) == "198.51.100.7"
    assert address_from("198.51.100.7", "203.0.113.66", 2) == "198.51.100.7"


def test_an_entry_that_is_not_an_address_is_counted_under_the_peer():
    assert address_from(PEER, "203.0.113.66, unknown", 1) == PEER
    assert address_from(PEER, "198.51.100.7, " + "x" * 5000, 1) == PEER


def test_ipv6_addresses_are_written_one_way():
    assert address_from(PEER, "2001:DB8:0:0::1", 1) == "2001:db8::1"


def test_http_requests_websocket_scopes_and_django_axes_read_the_same_address(settings):
    settings.PICKUP_TRUSTED_PROXIES = 1
    forged = "203.0.113.66, 198.51.100.7"
    request = RequestFactory().get("/", REMOTE_ADDR=PEER, HTTP_X_FORWARDED_FOR=forged)
    scope = {
        "type": "websocket",
        "client": [PEER, 50000],
        # Sent as two headers: they count as one list, in order.
        "headers": [(b"x-forwarded-for", b"203.0.113.66"), (b"host", b"pickup"), (b"X-Forwarded-For", b"198.51.100.7")],
    }
    assert client_address(request) == "198.51.100.7"
    assert client_address_from_scope(scope) == "198.51.100.7"
    assert get_client_ip_address(request) == "198.51.100.7"


@pytest.mark.parametrize("scope", [{"type": "websocket"}, {"type": "websocket", "client": None, "headers": []}])
def test_a_scope_without_a_peer_has_no_address(settings, scope):
    settings.PICKUP_TRUSTED_PROXIES = 0
    assert client_address_from_scope(scope) == ""
