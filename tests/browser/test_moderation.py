"""Moderation on the viewer page in headless Chromium: a moderator pins, deletes,
bans and closes the chat from the page; every other page sees it live."""

from __future__ import annotations

import pytest
import trio

from ..support import auth, token
from . import viewer
from .viewer import expect

pytestmark = pytest.mark.browser


async def post(client, video: str, message: str, user: str) -> dict:
    with trio.fail_after(10):
        r = await client.post(f"/comments/{video}", json={"message": message}, headers=auth(user))
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_moderator_pins_deletes_bans_and_closes_and_viewers_see_it_live(
    server, client, browser
):
    await post(client, "show", "Welcome! Be kind.", "host")
    await post(client, "show", "buy cheap followers at spam.example", "spammer")
    await post(client, "show", "hello from carol", "carol")
    mod_token = token("mia", roles=["moderator:show"])
    mod = await browser.open(f"{server.url}/videos/show?token={mod_token}")
    other = await browser.open(f"{server.url}/videos/show?token={token('carol')}")
    for page in (mod, other):
        await browser.call(viewer.wait_state, page, "live")
        await browser.call(viewer.wait_seqs, page, [1, 2, 3])

    # controls: a moderator gets them on every comment, others only delete on their own
    await browser.call(lambda: expect(mod.locator("#lh-modbar")).to_be_visible())
    await browser.call(lambda: expect(mod.locator("li .lh-pin")).to_have_count(3))
    await browser.call(lambda: expect(other.locator("#lh-modbar")).to_be_hidden())
    await browser.call(lambda: expect(other.locator("li .lh-pin")).to_have_count(0))
    await browser.call(lambda: expect(other.locator("li .lh-delete")).to_have_count(1))
    await browser.call(
        lambda: expect(other.locator('li[data-seq="3"] .lh-delete')).to_have_count(1)
    )

    # pin the welcome: above the list on both pages
    await browser.call(lambda: mod.click('li[data-seq="1"] .lh-pin'))
    for page in (mod, other):
        await browser.call(
            lambda p=page: expect(p.locator("#lh-pin-msg")).to_have_text("Welcome! Be kind.")
        )

    # delete the spam: it vanishes everywhere, live
    await browser.call(lambda: mod.click('li[data-seq="2"] .lh-delete'))
    for page in (mod, other):
        await browser.call(viewer.wait_seqs, page, [1, 3])

    # ban the spammer for an hour from the page: their posts are refused
    await browser.call(lambda: mod.select_option('li[data-seq="1"] .lh-ban', "3600"))
    await browser.call(lambda: expect(mod.locator("#lh-notice")).to_contain_text("host is banned"))
    r = await client.post("/comments/show", json={"message": "x"}, headers=auth("host"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "banned"

    # close the chat: every page shows it, and a post is refused with a clear reason
    await browser.call(lambda: mod.click("#lh-toggle-chat"))
    for page in (mod, other):
        await browser.call(lambda p=page: expect(p.locator("#lh-closed")).to_be_visible())
    await browser.call(lambda: expect(other.locator("#lh-send")).to_be_disabled())
    await browser.call(lambda: expect(mod.locator("#lh-toggle-chat")).to_have_text("Open chat"))

    # a page opened now gets the pin from history and the closed state from settings
    late = await browser.open(f"{server.url}/videos/show")
    await browser.call(viewer.wait_state, late, "live")
    await browser.call(viewer.wait_seqs, late, [1, 3])
    await browser.call(
        lambda: expect(late.locator("#lh-pin-msg")).to_have_text("Welcome! Be kind.")
    )
    await browser.call(lambda: expect(late.locator("#lh-closed")).to_be_visible())

    # unpin and reopen: gone from every page
    await browser.call(lambda: mod.click("#lh-unpin"))
    await browser.call(lambda: mod.click("#lh-toggle-chat"))
    for page in (mod, other, late):
        await browser.call(lambda p=page: expect(p.locator("#lh-pinned")).to_be_hidden())
        await browser.call(lambda p=page: expect(p.locator("#lh-closed")).to_be_hidden())
    # carol deletes her own comment from her page
    await browser.call(lambda: other.click('li[data-seq="3"] .lh-delete'))
    for page in (mod, other, late):
        await browser.call(viewer.wait_seqs, page, [1])
    for page in (mod, other, late):
        assert page.errors == [] and page.dialogs == []
        await browser.close(page)
