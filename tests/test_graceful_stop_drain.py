"""A stopping web server closes its sockets a slice at a time, so their pages reach another one as a stream.

The pure slicing, with the pause between slices counted rather than waited:
the process tests (tests/processes/test_graceful_stop.py) prove every page
gets 1012 and comes back elsewhere.
"""

from __future__ import annotations

from daphne.ws_protocol import WebSocketProtocol

from pickup import graceful_stop
from pickup.graceful_stop import CLOSE_SERVICE_RESTART, DRAIN_SECONDS, DRAIN_SLICE_SECONDS, close_in_slices

SLICES = int(DRAIN_SECONDS / DRAIN_SLICE_SECONDS)


class Page:
    """Stands in for daphne's protocol of one socket: its state and the close frames sent on it."""

    STATE_OPEN = WebSocketProtocol.STATE_OPEN

    def __init__(self, clock: list[int], state=WebSocketProtocol.STATE_OPEN):
        self.clock = clock
        self.state = state
        self.closed_in_slice: list[tuple[int, int]] = []

    def sendCloseFrame(self, code):  # noqa: N802 (autobahn's name)
        self.closed_in_slice.append((self.clock[0], code))


def pauses_counted(clock: list[int]):
    async def sleep(seconds: float) -> None:
        assert seconds == DRAIN_SLICE_SECONDS
        clock[0] += 1

    return sleep


async def test_the_sockets_are_closed_with_1012_in_slices_spread_over_the_drain():
    clock = [0]
    pages = [Page(clock) for _ in range(SLICES * 3)]

    await close_in_slices(pages, sleep=pauses_counted(clock))

    assert all(len(page.closed_in_slice) == 1 and page.closed_in_slice[0][1] == CLOSE_SERVICE_RESTART for page in pages)
    per_slice = [sum(1 for page in pages if page.closed_in_slice[0][0] == n) for n in range(SLICES)]
    assert per_slice == [3] * SLICES  # no slice takes more than its share, none is left for after the drain


async def test_a_few_sockets_are_closed_one_a_slice_and_a_page_gone_meanwhile_is_not_closed_again():
    clock = [0]
    pages = [Page(clock) for _ in range(3)]
    gone = Page(clock, state=WebSocketProtocol.STATE_CLOSED)

    await close_in_slices([*pages, gone], sleep=pauses_counted(clock))

    assert [page.closed_in_slice for page in pages] == [[(n, CLOSE_SERVICE_RESTART)] for n in range(3)]
    assert gone.closed_in_slice == []
    assert clock == [3]


async def test_no_socket_means_no_pause():
    clock = [0]
    await close_in_slices([], sleep=pauses_counted(clock))
    assert clock == [0] and graceful_stop.STOP_WITHIN > DRAIN_SECONDS
