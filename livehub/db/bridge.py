"""The one bridge from Trio to asyncpg (which is asyncio-only), via trio-asyncio.

Nothing outside ``livehub/db`` sees asyncio or
asyncpg. Hypercorn spawns request tasks from its own nursery, where the trio-asyncio
loop contextvar is not set, so every call passes the loop explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import trio
import trio_asyncio

from livehub.core.errors import StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("livehub.db.bridge")

# Errors that mean "Postgres is not answering", as opposed to a bug in our SQL.
UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.ConnectionFailureError,
    # asyncpg's own state machine broken by a connection lost mid-query ("cannot switch
    # to state 12"), seen while Postgres restarts: unavailable, not a bug of ours.
    asyncpg.exceptions.InternalClientError,
)


def _log_asyncio_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """The loop's exception handler: log what asyncio would have logged. trio-asyncio's
    default raises it into the loop's nursery instead, so one stray error of asyncpg's
    (e.g. "unexpected connection_lost() call" on a connection whose query a
    disconnecting client cancelled) ended the pool, the service and the worker."""
    log.warning("asyncio: %s", context.get("message", "error"), exc_info=context.get("exception"))


@contextlib.asynccontextmanager
async def open_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    """The current trio-asyncio loop, or a new one for the duration of the block;
    either way its unhandled asyncio errors are logged, not raised into Trio."""
    loop = trio_asyncio.current_loop.get()
    if loop is not None:
        loop.set_exception_handler(_log_asyncio_error)
        yield loop
        return
    async with trio_asyncio.open_loop() as loop:
        loop.set_exception_handler(_log_asyncio_error)
        yield loop


class Database:
    """An asyncpg pool usable from any Trio task.

    Every call runs under ``timeout_seconds`` and turns connection-level failures into
    :class:`StoreUnavailable`, so a dead or hung Postgres becomes a 503, not a hang.
    Cancelling the calling Trio task cancels the asyncio side, which returns the
    connection to the pool.
    """

    def __init__(
        self, pool: asyncpg.Pool, loop: asyncio.AbstractEventLoop, timeout_seconds: float
    ) -> None:
        self._pool = pool
        self.loop = loop
        self.timeout_seconds = timeout_seconds

    async def call(
        self, fn: Callable[..., Awaitable[T]], *args: Any, timeout_seconds: float | None = None
    ) -> T:
        """Run asyncio coroutine function ``fn(*args)`` on the loop from Trio.

        Raises:
            StoreUnavailable: Postgres refused, dropped or did not answer in time.
        """
        try:
            with trio.fail_after(timeout_seconds or self.timeout_seconds):
                return await trio_asyncio.aio_as_trio(fn, loop=self.loop)(*args)
        except trio.TooSlowError:
            raise StoreUnavailable("the database did not answer in time") from None
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"the database is unavailable ({type(exc).__name__})") from None

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self.call(self._pool.fetch, sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self.call(self._pool.fetchrow, sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.call(self._pool.fetchval, sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        return await self.call(self._pool.execute, sql, *args)

    async def with_connection(
        self,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        timeout_seconds: float | None = None,
    ) -> T:
        """Run ``fn(conn)`` (an asyncio coroutine function) on one pooled connection."""

        async def run() -> T:
            async with self._pool.acquire() as conn:
                return await fn(conn)

        return await self.call(run, timeout_seconds=timeout_seconds)

    def statistics(self) -> tuple[int, int]:
        """(connections open, connections idle) of the pool."""
        return self._pool.get_size(), self._pool.get_idle_size()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing to undo. Our pooled connections never SET, LISTEN or
    keep cursors (the bus LISTENs on a connection of its own), and asyncpg has
    already rolled back any open transaction; the default reset query would cost a
    round trip after every query."""


@contextlib.asynccontextmanager
async def open_database(
    dsn: str, *, max_size: int = 10, timeout_seconds: float = 5.0
) -> AsyncIterator[Database]:
    """Open a pool on ``dsn`` (connecting lazily) inside a trio-asyncio loop.

    Resource handling: the pool is closed (bounded wait, then terminated) on exit.
    """
    async with open_loop() as loop:

        async def create() -> asyncpg.Pool:
            return await asyncpg.create_pool(
                dsn,
                min_size=0,
                max_size=max_size,
                # Also bounds asyncpg's cancel request when a deadline cancels a query:
                # without it a hung Postgres hangs the caller. A longer statement
                # passes its own ``timeout=`` (migrate).
                command_timeout=timeout_seconds,
                timeout=timeout_seconds,
                max_inactive_connection_lifetime=300,
                reset=_keep_session,
            )

        pool = await trio_asyncio.aio_as_trio(create, loop=loop)()
        try:
            yield Database(pool, loop, timeout_seconds)
        finally:
            with trio.move_on_after(3) as scope:
                scope.shield = True
                try:
                    await trio_asyncio.aio_as_trio(pool.close, loop=loop)()
                except Exception:
                    pool.terminate()
            if scope.cancelled_caught:
                pool.terminate()
