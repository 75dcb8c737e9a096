"""The server restarts under an open viewer page: the page says so, reconnects by
itself, and shows what was posted meanwhile (through another node), none twice."""

from __future__ import annotations

import re
import sys

import httpx
import pytest
import trio

from livehub.db.cluster import free_port

from ..support import ROOT, auth, server_env, start_process
from . import viewer

pytestmark = pytest.mark.browser


def start_server(dsn: str, port: int, tmp_path):
    """``livehub serve`` as a process; streams get 1 s to end on SIGTERM (not 10 s)."""
    config = tmp_path / f"hypercorn-{port}.toml"
    text = (ROOT / "hypercorn.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^graceful_timeout\s*=.*$", "", text) + "\ngraceful_timeout = 1\n"
    config.write_text(text, encoding="utf-8")
    args = [sys.executable, "-m", "livehub", "serve", "--bind", f"127.0.0.1:{port}"]
    return start_process([*args, "--config", str(config)], server_env(dsn), port)


async def post(url: str, video: str, messages: list[str]) -> None:
    with trio.fail_after(15):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            for m in messages:
                r = await client.post(f"/comments/{video}", json={"message": m}, headers=auth())
                assert r.status_code == 201, r.text


async def test_page_reconnects_after_a_restart_and_shows_what_it_missed_once(
    dsn, tmp_path, browser
):
    port, other_port = free_port(), free_port()
    servers = []

    async def start(p: int):
        with trio.fail_after(30):
            server = await trio.to_thread.run_sync(start_server, dsn, p, tmp_path)
        servers.append(server)
        return server

    async def stop(server) -> None:
        with trio.fail_after(20):
            await trio.to_thread.run_sync(server.stop)

    try:
        first = await start(port)
        other = await start(other_port)
        await post(first.url, "restart", ["one", "two", "three"])
        page = await browser.open(first.url + "/videos/restart")
        await browser.call(viewer.wait_state, page, "live")
        await browser.call(viewer.wait_seqs, page, [1, 2, 3])

        await stop(first)
        await browser.call(viewer.wait_state, page, "reconnecting", "offline")
        await post(other.url, "restart", ["four", "five", "six"])  # while the page is cut off
        assert await browser.call(viewer.seqs, page) == [1, 2, 3]

        second = await start(port)
        await browser.call(viewer.wait_state, page, "live")
        await browser.call(viewer.wait_seqs, page, [1, 2, 3, 4, 5, 6])
        await post(second.url, "restart", ["seven"])
        await browser.call(viewer.wait_seqs, page, [1, 2, 3, 4, 5, 6, 7])
        shown = [m for _, m in await browser.call(viewer.comments, page)]
        assert shown == ["one", "two", "three", "four", "five", "six", "seven"]
        assert page.errors == []
        await browser.close(page)
    finally:
        for server in servers:
            await stop(server)
