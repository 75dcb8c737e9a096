"""``livehub serve``: worker processes under Hypercorn's trio worker, drained politely.

Plain ``hypercorn`` learns of SIGTERM, stops accepting, waits ``graceful_timeout``
for requests, and only then runs the app's lifespan shutdown: SSE streams never end
by themselves, so every shutdown takes the whole ``graceful_timeout`` and viewers are
cut off without a word. Here each worker runs ``hypercorn.trio.worker_serve`` with a
shutdown trigger that first drains the app (:meth:`livehub.gate.Gate.drain`: refuse
new streams and posts with 503, end open streams after a ``retry:`` hint, let posts
in flight commit and be answered; bounded by ``LIVEHUB_DRAIN_TIMEOUT_SECONDS``) and
then returns, so Hypercorn closes what is left within ``graceful_timeout``.

The parent process owns the listening sockets (shared by every worker, as Hypercorn
does) and the workers; SIGTERM or SIGINT to it, or SIGTERM to a worker (systemd sends
it to the whole group), starts the drain.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from multiprocessing.synchronize import Event as EventType

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from . import logs

log = logging.getLogger("livehub.workers")

POLL_SECONDS = 0.1  # how often a worker looks at the parent's shutdown event
EXIT_MARGIN_SECONDS = 5.0  # beyond drain + graceful_timeout before workers are killed


def serve(config: Config, drain_seconds: float, log_format: str) -> int:
    """Run ``config.workers`` worker processes until SIGTERM/SIGINT; returns the exit code.

    Resource handling: the sockets are closed and every worker has exited (killed
    after ``drain_seconds + graceful_timeout + EXIT_MARGIN_SECONDS``) on return.
    """
    sockets = config.create_sockets()
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    stopping = False

    def on_signal(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        stop.set()

    # Children inherit an ignored SIGINT (a terminal's Ctrl+C reaches the whole group:
    # the parent decides); a Python handler is not inherited, so SIGTERM can be ours
    # from the start and a SIGTERM while workers spawn still drains them.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    procs = []
    for _ in range(worker_count(config.workers)):
        proc = ctx.Process(
            target=_worker_main, args=(config, sockets, stop, drain_seconds, log_format)
        )
        proc.start()
        procs.append(proc)
    signal.signal(signal.SIGINT, on_signal)
    exitcode = 0
    try:
        while not stopping and all(p.is_alive() for p in procs):
            multiprocessing.connection.wait([p.sentinel for p in procs], timeout=0.5)
        if not stopping:
            exitcode = next((p.exitcode for p in procs if not p.is_alive()), 0) or 1
            log.error("a worker exited (code %s); stopping the others", exitcode)
        stop.set()
        deadline = time.monotonic() + drain_seconds + config.graceful_timeout + EXIT_MARGIN_SECONDS
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in procs:
            if proc.is_alive():
                log.error("worker %s did not exit in time; killing it", proc.pid)
                proc.kill()
                proc.join(5)
                exitcode = exitcode or 1
    finally:
        for sock in sockets.secure_sockets + sockets.insecure_sockets:
            sock.close()
    return exitcode


def worker_count(configured: int) -> int:
    """Hypercorn's ``workers``; 0 (the shipped default) means one per CPU core."""
    return configured if configured > 0 else (os.cpu_count() or 1)


def _worker_main(
    config: Config, sockets: Sockets, stop: EventType, drain_seconds: float, log_format: str
) -> None:
    logs.configure(log_format)
    for sock in sockets.secure_sockets + sockets.insecure_sockets:
        sock.listen(config.backlog)
    config.errorlog = logging.getLogger("hypercorn.error")  # through our formatter
    trio.run(_serve_worker, config, sockets, stop, drain_seconds)


async def _serve_worker(
    config: Config, sockets: Sockets, stop: EventType, drain_seconds: float
) -> None:
    from .gctune import tune_gc
    from .http import create_app

    app = create_app()
    tune_gc()

    async def shutdown_trigger() -> None:
        await _wait_for_stop(stop)
        service = app.service
        if service is None:
            return
        log.info("draining", extra={"streams": service.gate.statistics().streams})
        done = await service.gate.drain(drain_seconds)
        log.info("drained" if done else "drain timed out", extra=_stats(service))

    if app.settings.server == "lean" and not sockets.secure_sockets:
        from .http.lean import serve_lean

        await serve_lean(
            app.front,
            config,
            body_timeout=app.settings.body_timeout_seconds,
            sockets=sockets.insecure_sockets,
            shutdown_trigger=shutdown_trigger,
        )
    else:  # TLS, or LIVEHUB_SERVER=hypercorn: Hypercorn's own trio worker
        log.info("serving with hypercorn's trio worker")
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, None),
            config,
            sockets=sockets,
            shutdown_trigger=shutdown_trigger,
        )
    sys.stderr.flush()


async def _wait_for_stop(stop: EventType) -> None:
    """The parent's event, or SIGTERM/SIGINT delivered to this worker itself."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def on_signal() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(on_signal)
            while not stop.is_set():  # noqa: ASYNC110 - a process Event has no async wait
                await trio.sleep(POLL_SECONDS)
            nursery.cancel_scope.cancel()


def _stats(service) -> dict[str, object]:
    s = service.gate.statistics()
    return {"streams": s.streams, "posts_in_flight": s.posts_in_flight}
