"""The chat embedded in another site's page (examples/embed.html, served by
examples/embed_site.py on a second local port, so another origin), in Chromium: both
the inline mode (shadow DOM, CORS) and the iframe mode (token by postMessage) post
with the site's RS256 tokens and show each other's comments live, names escaped."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import trio

from ..conftest import run_server
from .viewer import expect

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _demo_site_module():
    spec = importlib.util.spec_from_file_location("embed_site", EXAMPLES / "embed_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def site():
    demo = _demo_site_module().DemoSite().start()
    yield demo
    demo.stop()


@pytest.fixture
async def livehub(settings, site):
    embedded = settings.replace(
        jwt_secret="",
        dev_tokens=False,
        jwt_jwks_url=site.jwks_url,
        jwt_issuer=site.url,
        jwt_audience="livehub",
        cors_origins=site.url,
    )
    async with run_server(embedded) as server:
        yield server


def _chat(page, mode: str):
    """The locator root of one embedded chat (Playwright's CSS pierces shadow roots)."""
    if mode == "inline":
        return page.locator("#inline-chat")
    return page.frame_locator("#frame-chat iframe")


def _wait_live(page, mode: str) -> None:
    chat = _chat(page, mode)
    expect(chat.locator("#lh-state")).to_have_attribute("data-state", "live")
    expect(chat.locator("#lh-post")).to_be_visible()  # the site's token arrived


def _send(page, mode: str, text: str) -> None:
    chat = _chat(page, mode)
    chat.locator("#lh-message").fill(text)
    chat.locator("#lh-message").press("Enter")


def _wait_comments(page, mode: str, expected: list[tuple[str, str]]) -> None:
    chat = _chat(page, mode)
    items = chat.locator("#lh-list > li")
    expect(items).to_have_count(len(expected))
    for i, (user, message) in enumerate(expected):
        expect(items.nth(i).locator(".lh-user")).to_have_text(user)
        expect(items.nth(i).locator(".lh-msg")).to_have_text(message)


async def test_an_embedded_chat_on_another_origin_posts_and_receives(livehub, site, browser):
    url = f"{site.url}/embed.html?livehub={livehub.url}&video=launch&user=maya"
    assert site.url.split(":")[-1] != livehub.url.split(":")[-1]  # two origins
    page = await browser.open(url, width=1300, height=800)
    for mode in ("inline", "iframe"):
        await browser.call(_wait_live, page, mode)
    await browser.call(_send, page, "inline", "Hello from the inline chat")
    expected = [("maya", "Hello from the inline chat")]
    for mode in ("inline", "iframe"):
        await browser.call(_wait_comments, page, mode, expected)
    await browser.call(_send, page, "iframe", "and from the iframe")
    expected.append(("maya", "and from the iframe"))
    for mode in ("inline", "iframe"):
        await browser.call(_wait_comments, page, mode, expected)

    # Someone else posts (through the API, with the site's token): both chats show it
    # live, the display name as text, not markup.
    async with livehub.client() as client:
        with trio.fail_after(10):
            r = await client.post(
                "/comments/launch",
                json={"message": "<i>hi</i> maya"},
                headers={"Authorization": "Bearer " + site.token("jo", "Jo <b>Z</b>")},
            )
    assert r.status_code == 201, r.text
    expected.append(("Jo <b>Z</b>", "<i>hi</i> maya"))
    for mode in ("inline", "iframe"):
        await browser.call(_wait_comments, page, mode, expected)
    # The host page's styles and the chat's stay apart (shadow DOM).
    body_margin = await browser.call(page.evaluate, "getComputedStyle(document.body).margin")
    assert body_margin == "0px" or body_margin.startswith("0px")
    assert page.errors == [] and page.dialogs == []
    if (shot := os.environ.get("LIVEHUB_EMBED_SCREENSHOT")) is not None:
        await browser.call(lambda: page.screenshot(path=shot))
    await browser.close(page)


async def test_the_iframe_takes_a_token_only_from_an_allowed_origin(settings, site, browser):
    """A page framing livehub from an origin not listed gets no chat: CSP
    frame-ancestors keeps Chromium from rendering it (and the page would take no token
    from that origin anyway)."""
    other = settings.replace(
        jwt_secret="", jwt_jwks_url=site.jwks_url, cors_origins="http://127.0.0.1:9"
    )
    async with run_server(other) as server:
        url = f"{site.url}/embed.html?livehub={server.url}&video=x&user=maya"
        page = await browser.open(url, width=1300, height=800)

        def framed_url() -> str:
            page.locator("#frame-chat iframe").wait_for(state="attached")
            page.wait_for_function("() => document.querySelector('#frame-chat iframe')")
            frame = page.locator("#frame-chat iframe").element_handle().content_frame()
            frame.wait_for_load_state()
            return frame.url

        # Chromium refuses to render livehub's page inside this site: an error page.
        assert (await browser.call(framed_url)).startswith("chrome-error://")
        await browser.close(page)


async def test_an_expired_token_is_asked_for_again_in_both_modes(livehub, site, browser):
    """The site's first tokens have expired: livehub's 401 makes each chat ask the
    site's token function again, and the next send goes through."""
    handed = []

    def expire_first_tokens(page) -> None:
        def token(route) -> None:
            handed.append(route.request.url)
            if len(handed) <= 2:  # the two chats' first tokens
                body = json.dumps({"token": site.token("maya", ttl=-120)})
                route.fulfill(status=200, content_type="application/json", body=body)
            else:
                route.continue_()

        page.route("**/token?*", token)

    url = f"{site.url}/embed.html?livehub={livehub.url}&video=again&user=maya"
    page = await browser.open(url, width=1300, height=800, prepare=expire_first_tokens)
    expected = []
    for mode in ("inline", "iframe"):
        await browser.call(_wait_live, page, mode)
        await browser.call(_send, page, mode, f"first try from {mode}")
        await browser.call(
            lambda m=mode: expect(_chat(page, m).locator("#lh-error")).to_contain_text("Send again")
        )
        await browser.call(_send, page, mode, f"second try from {mode}")
        expected.append(("maya", f"second try from {mode}"))
        await browser.call(_wait_comments, page, mode, expected)
    assert len(handed) == 4  # each chat asked once more
    assert page.errors == []
    await browser.close(page)
