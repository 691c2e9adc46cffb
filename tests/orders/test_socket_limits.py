"""The per-socket message budget and the per-session/per-address socket counts, as pure logic."""

from __future__ import annotations

from orders.socket_limits import REFUSALS_BEFORE_CLOSE, MessageBudget, OpenSockets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_rate_holds():
    clock = Clock()
    budget = MessageBudget(rate=10, burst=30, clock=clock)
    assert all(budget.take() for _ in range(30))
    assert not budget.take()
    assert budget.retry_after() == 1
    clock.now += 0.5  # five messages' worth
    assert [budget.take() for _ in range(6)] == [True] * 5 + [False]


def test_a_socket_that_keeps_flooding_is_marked_for_closing():
    clock = Clock()
    budget = MessageBudget(rate=10, burst=30, clock=clock)
    while not budget.flooding:  # 300 messages a second, far above the rate
        budget.take()
        clock.now += 1 / 300
    assert budget.refused == REFUSALS_BEFORE_CLOSE
    assert clock.now - 100.0 < 2  # found out within a couple of seconds


def test_a_socket_that_slows_down_is_forgiven():
    clock = Clock()
    budget = MessageBudget(rate=10, burst=30, clock=clock)
    for _ in range(REFUSALS_BEFORE_CLOSE + 29):
        budget.take()
    assert budget.refused == REFUSALS_BEFORE_CLOSE - 1
    clock.now += 3  # quiet long enough to refill the whole burst
    assert budget.take()
    assert budget.refused == 0 and not budget.flooding


def test_sockets_are_capped_per_session_and_per_address(settings):
    settings.PICKUP_SOCKETS_PER_SESSION = 2
    settings.PICKUP_SOCKETS_PER_ADDRESS = 3
    sockets = OpenSockets()
    assert sockets.admit("alice", "10.0.0.1") and sockets.admit("alice", "10.0.0.1")
    assert not sockets.admit("alice", "10.0.0.2")  # a third tab of one session
    assert sockets.admit("bob", "10.0.0.1")
    assert not sockets.admit("carol", "10.0.0.1")  # a fourth socket from one address
    sockets.release("alice", "10.0.0.1")
    assert sockets.admit("carol", "10.0.0.1")
    assert sockets.per_session == {"alice": 1, "bob": 1, "carol": 1}


def test_visitors_without_a_session_count_against_their_address_only(settings):
    settings.PICKUP_SOCKETS_PER_SESSION = 1
    settings.PICKUP_SOCKETS_PER_ADDRESS = 3
    sockets = OpenSockets()
    assert all(sockets.admit(None, "10.0.0.1") for _ in range(3))
    assert not sockets.admit(None, "10.0.0.1")
    assert sockets.per_session == {}
    sockets.release(None, "10.0.0.1")
    assert sockets.per_address == {"10.0.0.1": 2}


def test_a_cap_of_zero_admits_everyone(settings):
    settings.PICKUP_SOCKETS_PER_SESSION = 0
    settings.PICKUP_SOCKETS_PER_ADDRESS = 0
    sockets = OpenSockets()
    assert all(sockets.admit("alice", "10.0.0.1") for _ in range(1000))
