"""The viewer page in headless Chromium against the real server: live comments between
two pages, posting and its errors, history scrolling, and escaping."""

from __future__ import annotations

import os

import pytest
import trio

from ..support import auth
from . import viewer
from .viewer import expect

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


async def post(client, video: str, message: str, user: str = "bob") -> dict:
    with trio.fail_after(10):
        r = await client.post(f"/comments/{video}", json={"message": message}, headers=auth(user))
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_comment_posted_in_one_page_appears_in_the_other(server, client, browser):
    chat = [
        ("maya", "Is the stream starting soon?"),
        ("jonas", "Audio is perfect now"),
        ("li.wei", "Greetings from Singapore!"),
        ("maya", "The new demo looks great.\nCan we see it again?"),
    ]
    for user, message in chat:
        await post(client, "launch", message, user)
    a = await browser.open(server.url + "/videos/launch", width=560, height=760)
    b = await browser.open(server.url + "/videos/launch")
    for page in (a, b):
        await browser.call(viewer.wait_state, page, "live")
        await browser.call(viewer.wait_seqs, page, [1, 2, 3, 4])
    assert await browser.call(viewer.comments, b) == chat

    await browser.call(viewer.join, a, "alice")
    await browser.call(viewer.send, a, "Hello from page A")
    for page in (a, b):  # A gets it from its POST and from the stream: shown once
        await browser.call(viewer.wait_seqs, page, [1, 2, 3, 4, 5])
    assert (await browser.call(viewer.comments, b))[-1] == ("alice", "Hello from page A")
    await browser.call(lambda: expect(a.locator("#lh-message")).to_have_value(""))

    await browser.call(viewer.join, b, "bob")
    await browser.call(viewer.send, b, "Hi alice!")
    await browser.call(viewer.wait_seqs, a, [1, 2, 3, 4, 5, 6])
    assert (await browser.call(viewer.comments, a))[-1] == ("bob", "Hi alice!")
    # The server publishes the video's viewer count: both pages are watching.
    await browser.call(lambda: expect(a.locator("#lh-viewers")).to_have_text("2 watching"))
    if os.environ.get("LIVEHUB_SCREENSHOT"):
        await browser.call(lambda: a.screenshot(path=os.environ["LIVEHUB_SCREENSHOT"]))

    # A comment the API refuses is explained to the person, and nothing is added.
    await browser.call(viewer.send, a, "x" * 2001)
    await browser.call(
        lambda: expect(a.locator("#lh-error")).to_have_text(
            "message is longer than 2000 characters"
        )
    )
    assert await browser.call(viewer.seqs, a) == [1, 2, 3, 4, 5, 6]
    assert a.dialogs == [] and a.errors == [] and b.errors == []
    await browser.call(a.context.close)
    await browser.call(b.context.close)


async def test_a_rejected_token_signs_the_person_out(server, browser):
    page = await browser.open(server.url + "/videos/auth?token=not-a-jwt")
    await browser.call(viewer.wait_state, page, "live")
    assert "token=" not in await browser.call(lambda: page.url)  # not left in the address bar
    await browser.call(viewer.send, page, "hello?")
    await browser.call(
        lambda: expect(page.locator("#lh-error")).to_contain_text("You are signed out")
    )
    assert await browser.call(viewer.seqs, page) == []
    await browser.close(page)


async def test_scrolling_up_loads_all_history_once_in_order_and_keeps_the_view(
    server, client, browser
):
    n = 120
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(n):
                # one user each: this is about history, not rate limits
                nursery.start_soon(post, client, "history", f"comment {i}", f"u{i}")
    page = await browser.open(server.url + "/videos/history")
    await browser.call(viewer.wait_state, page, "live")
    await browser.call(viewer.wait_seqs, page, list(range(71, n + 1)))  # the newest page

    def scroll_to_top_and_load() -> tuple[float, float]:
        """Scroll to the top; return where the top comment was and is after the load."""
        shown = viewer.seqs(page)
        top = page.locator(f'#lh-list > li[data-seq="{shown[0]}"]')
        page.evaluate("document.getElementById('lh-scroll').scrollTop = 0")
        before = top.bounding_box()["y"]
        viewer.wait_count_above(page, len(shown))
        return before, top.bounding_box()["y"]

    loads = 0
    while await browser.call(viewer.seqs, page) != list(range(1, n + 1)):
        before, after = await browser.call(scroll_to_top_and_load)
        assert abs(after - before) < 2, f"the view jumped by {after - before}px"
        loads += 1
        assert loads <= 3, await browser.call(viewer.seqs, page)
    assert loads == 2  # 120 = 50 + 50 + 20
    await browser.call(
        lambda: expect(page.locator("#lh-older")).to_have_text(
            "This is the beginning of the comments."
        )
    )

    # Scrolled up, live comments do not move the view; a pill counts them.
    scroll_top = await browser.call(page.evaluate, "document.getElementById('lh-scroll').scrollTop")
    await post(client, "history", "new one")
    await post(client, "history", "and another")
    await browser.call(viewer.wait_seqs, page, list(range(1, n + 3)))
    await browser.call(lambda: expect(page.locator("#lh-pill")).to_have_text("2 new comments ↓"))
    assert scroll_top == await browser.call(
        page.evaluate, "document.getElementById('lh-scroll').scrollTop"
    )
    await browser.call(page.click, "#lh-pill")
    await browser.call(lambda: expect(page.locator("#lh-list > li").last).to_be_in_viewport())
    await browser.call(lambda: expect(page.locator("#lh-pill")).to_be_hidden())
    await browser.close(page)


async def test_html_in_comments_is_shown_as_text(server, client, browser):
    await post(client, "xss", XSS, user="<b>mallory</b>")
    page = await browser.open(server.url + "/videos/xss")
    await browser.call(viewer.wait_state, page, "live")
    await browser.call(viewer.wait_seqs, page, [1])
    live = "<script>alert(2)</script><img src=x onerror=alert(2)>"
    await post(client, "xss", live)
    await browser.call(viewer.wait_seqs, page, [1, 2])
    assert await browser.call(viewer.comments, page) == [("<b>mallory</b>", XSS), ("bob", live)]
    assert await browser.call(page.locator("#lh-list img, #lh-list b, #lh-list script").count) == 0
    assert page.dialogs == []
    await browser.close(page)


async def test_a_viewer_count_from_the_stream_is_shown(server, browser):
    """The stream may send ``event: viewers`` (operations issue); stand in for it."""
    body = (
        "retry: 60000\n\n"
        'event: viewers\ndata: {"count": 1234}\n\n'
        'id: 1\nevent: comment\ndata: {"video_id": "count", "seq": 1, "user_id": "ann",'
        ' "message": "hi", "created_at": "2025-01-01T00:00:00Z"}\n\n'
    )

    def fake_stream(page) -> None:
        page.route(
            "**/comments/count/stream*",
            lambda route: route.fulfill(body=body, content_type="text/event-stream"),
        )

    page = await browser.open(server.url + "/videos/count", prepare=fake_stream)
    await browser.call(viewer.wait_seqs, page, [1])
    await browser.call(lambda: expect(page.locator("#lh-viewers")).to_have_text("1,234 watching"))
    await browser.close(page)
