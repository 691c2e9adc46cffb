"""A socket leaves its groups without fuss, even when Redis cannot be reached."""

from __future__ import annotations

import redis
from channels.layers import get_channel_layer

from notifications.memberships import memberships


async def test_a_socket_closing_while_redis_is_away_still_closes(monkeypatch):
    layer = get_channel_layer()

    async def unreachable(group, channel):
        raise redis.ConnectionError("Connection closed by server.")

    channel = await layer.new_channel()
    await memberships.join("customer.leaving", channel)
    monkeypatch.setattr(layer, "group_discard", unreachable)

    await memberships.leave("customer.leaving", channel)  # must not raise: daphne would stall the close

    assert await memberships.rejoin_all() == 0  # and it is no longer kept in the group
