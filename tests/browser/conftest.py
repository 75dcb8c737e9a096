"""Headless Chromium (Debian's ``chromium``) driven by Playwright's sync API.

Playwright objects belong to the thread that made them, and the Trio tests must keep
their event loop free to serve the in-process server, so one dedicated thread owns
Playwright and Chromium for the whole session and tests hand it work with
``await browser.call(fn, ...)`` (bounded by ``trio.fail_after``).

Without Chromium or Playwright the tests fail under ``CI=true`` and are skipped,
loudly, elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import trio

CHROMIUM = os.environ.get("LIVEHUB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root in containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STEP_TIMEOUT_MS = 10_000  # one Playwright wait; the Trio deadline around it is longer
CALL_TIMEOUT_SECONDS = 20


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: .venv/bin/pip install -e '.[test]'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium not found at {CHROMIUM}: apt-get install chromium"
    return None


class Browser:
    """One Chromium on one thread; every Playwright call goes through :meth:`call`."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chromium")
        self._pw = None
        self._chromium = None

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        # trio-asyncio installs a global event-loop policy whose loops run only inside
        # Trio; Playwright needs a plain asyncio loop (and child watcher) on this thread.
        # The main thread waits for this, so nothing else uses the policy meanwhile.
        trio_policy = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
        try:
            self._pw = sync_playwright().start()
        finally:
            asyncio.set_event_loop_policy(trio_policy)
        self._chromium = self._pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )

    def _stop(self) -> None:
        if self._chromium is not None:
            self._chromium.close()
        if self._pw is not None:
            self._pw.stop()

    def start(self) -> None:
        self._thread.submit(self._start).result(60)

    def stop(self) -> None:
        self._thread.submit(self._stop).result(30)
        self._thread.shutdown()

    async def call(self, fn, *args):
        """Run ``fn(*args)`` on the browser thread and return its result."""
        future = self._thread.submit(fn, *args)
        with trio.fail_after(CALL_TIMEOUT_SECONDS):
            return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)

    async def open(self, url: str, width: int = 1000, height: int = 720, prepare=None):
        """A page in a fresh context (its own storage), loaded and recording dialogs;
        ``prepare(page)`` runs before it loads (e.g. to route requests)."""

        def open_page():
            context = self._chromium.new_context(
                viewport={"width": width, "height": height}, locale="en-US"
            )
            context.set_default_timeout(STEP_TIMEOUT_MS)
            page = context.new_page()
            page.dialogs = []
            page.errors = []
            page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            if prepare is not None:
                prepare(page)
            page.goto(url)
            return page

        return await self.call(open_page)

    async def close(self, page) -> None:
        await self.call(page.context.close)


@pytest.fixture(scope="session")
def browser():
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"BROWSER TESTS CANNOT RUN IN CI: {reason}", pytrace=False)
        pytest.skip(f"BROWSER TESTS SKIPPED (set up Chromium to run them): {reason}")
    b = Browser()
    b.start()
    yield b
    b.stop()


@pytest.fixture
def settings(settings):
    """The page signs people in with dev tokens, as under scripts/run."""
    return settings.replace(dev_tokens=True)
