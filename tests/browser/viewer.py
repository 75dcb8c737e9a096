"""What a person sees on the viewer page, read from the DOM. Synchronous Playwright
calls: run them through ``browser.call`` (they belong to the browser thread)."""

from __future__ import annotations

import json

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture says why: a loud skip, or a failure under CI
    PlaywrightTimeout = expect = None

SEQS = "() => [...document.querySelectorAll('#lh-list > li')].map(li => Number(li.dataset.seq))"


def seqs(page) -> list[int]:
    """The seqs of the comments on the page, top to bottom."""
    return page.evaluate(SEQS)


def comments(page) -> list[tuple[str, str]]:
    """(user, message) of each comment on the page, top to bottom, as rendered text."""
    return [
        (li.locator(".lh-user").inner_text(), li.locator(".lh-msg").inner_text())
        for li in page.locator("#lh-list > li").all()
    ]


def wait_seqs(page, expected: list[int]) -> None:
    """Wait until the page shows exactly ``expected``, in that order."""
    try:
        page.wait_for_function(
            f"want => JSON.stringify(({SEQS})()) === want",
            arg=json.dumps(expected, separators=(",", ":")),
        )
    except PlaywrightTimeout:
        raise AssertionError(f"the page shows seqs {seqs(page)}, expected {expected}") from None


def wait_count_above(page, n: int) -> None:
    try:
        page.wait_for_function("n => document.querySelectorAll('#lh-list > li').length > n", arg=n)
    except PlaywrightTimeout:
        raise AssertionError(f"still {n} comments on the page: nothing more loaded") from None


def state(page) -> str:
    return page.locator("#lh-state").get_attribute("data-state")


def wait_state(page, *states: str) -> None:
    try:
        page.wait_for_function(
            "ok => ok.includes(document.getElementById('lh-state').dataset.state)",
            arg=list(states),
        )
    except PlaywrightTimeout:
        raise AssertionError(f"connection state is {state(page)!r}, expected {states}") from None


def join(page, name: str) -> None:
    page.fill("#lh-name", name)
    page.click("#lh-join-button")
    page.locator("#lh-message").wait_for(state="visible")


def send(page, text: str) -> None:
    page.fill("#lh-message", text)
    page.press("#lh-message", "Enter")
