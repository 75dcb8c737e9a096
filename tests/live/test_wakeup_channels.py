"""Channels follow what a node holds: a node hears the wake-ups of its own videos and
not the other nodes' (LIVEHUB_NOTIFY_CHANNELS, 4,096 by default)."""

from __future__ import annotations

import httpx
import pytest
import trio

from livehub.config import Settings
from livehub.core.wakeup import channel_of

from ..support import SSEReader, auth, start_livehub

pytestmark = pytest.mark.slow


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(name)


async def test_a_node_decodes_no_wake_up_of_videos_it_does_not_hold(dsn):
    channels = Settings().notify_channels
    assert channels >= 4096
    mine, theirs = "held-here", "held-there"
    assert channel_of(mine, channels) != channel_of(theirs, channels)
    a, b = start_livehub(dsn), start_livehub(dsn)
    try:
        with trio.fail_after(30):
            async with (
                httpx.AsyncClient(base_url=a.url, timeout=10) as ca,
                httpx.AsyncClient(base_url=b.url, timeout=10) as cb,
                ca.stream("GET", f"/comments/{mine}/stream") as sa,
                cb.stream("GET", f"/comments/{theirs}/stream") as sb,
                cb.stream("GET", f"/comments/{mine}/stream") as sb_mine,
            ):
                # b holds both videos; a only "mine". b posts to both.
                for i in range(5):
                    for video in (mine, theirs):
                        r = await cb.post(
                            f"/comments/{video}", json={"message": f"{i}"}, headers=auth()
                        )
                        assert r.status_code == 201
                assert len(await SSEReader(sa).comments(5)) == 5  # a heard its own video
                assert len(await SSEReader(sb).comments(5)) == 5
                assert len(await SSEReader(sb_mine).comments(5)) == 5
                text = (await ca.get("/metrics")).text
        # a decoded b's payloads for "mine" only: never one for "theirs".
        assert metric(text, "livehub_bus_channels") == 1
        assert metric(text, "livehub_bus_wakeups_received") == metric(
            text, "livehub_bus_payloads_decoded"
        )
        assert 1 <= metric(text, "livehub_bus_wakeups_received") <= 5
    finally:
        a.stop()
        b.stop()
