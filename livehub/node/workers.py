"""``livehub serve``: worker processes under Hypercorn's trio worker, drained politely.

Plain ``hypercorn`` learns of SIGTERM, stops accepting, waits ``graceful_timeout``
for requests, and only then runs the app's lifespan shutdown: SSE streams never end
by themselves, so every shutdown takes the whole ``graceful_timeout`` and viewers are
cut off without a word. Here each worker runs ``hypercorn.trio.worker_serve`` with a
shutdown trigger that first drains the app (:meth:`livehub.node.gate.Gate.drain`: refuse
new streams and posts with 503, end open streams after a ``retry:`` hint, let posts
in flight commit and be answered; bounded by ``LIVEHUB_DRAIN_TIMEOUT_SECONDS``) and
then returns, so Hypercorn closes what is left within ``graceful_timeout``.

The parent process owns the listening sockets (shared by every worker, as Hypercorn
does) and the workers; SIGTERM or SIGINT to it, or SIGTERM to a worker (systemd sends
it to the whole group), starts the drain. A worker that dies otherwise (SIGKILL, the
OOM killer) is restarted with backoff while the others keep serving.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
import time
from multiprocessing.synchronize import Event as EventType

import trio
from hypercorn.config import Config, Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from livehub.config import Settings
from livehub.node import logs

log = logging.getLogger("livehub.node.workers")

POLL_SECONDS = 0.1  # how often a worker looks at the parent's shutdown event
POLL_PARENT_SECONDS = 0.5  # the parent's look at its workers (a death wakes it at once)
EXIT_MARGIN_SECONDS = 5.0  # beyond drain + graceful_timeout before workers are killed
RESTART_DELAY_SECONDS = 0.5  # first restart of a crashed worker; doubles while it crashes
MAX_RESTART_DELAY_SECONDS = 30.0  # a crash loop restarts at most this rarely
STABLE_SECONDS = 30.0  # a worker that ran this long before crashing is not crash-looping


def serve(config: Config, settings: Settings) -> int:
    """Run ``config.workers`` worker processes until SIGTERM/SIGINT; returns the exit code.

    A worker that exits while the node is not shutting down (SIGKILL, the OOM killer,
    a crash) is restarted after a backoff (:func:`restart_delay`), logged and counted
    in ``livehub_worker_restarts_total``; the other workers keep serving meanwhile.
    The workers' metrics meet in a temporary ``PROMETHEUS_MULTIPROC_DIR`` (see
    ``livehub/metrics.py``), so any worker's ``/metrics`` reports the whole node.

    Each worker gets ``settings`` as they are (pickled to it), not through the
    environment.

    Resource handling: the sockets are closed, every worker has exited (killed
    after ``drain_timeout_seconds + graceful_timeout + EXIT_MARGIN_SECONDS``) and the metrics
    directory is removed on return.
    """
    metrics_dir = tempfile.mkdtemp(prefix="livehub-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the workers
    restarts = _restart_counter()
    sockets = config.create_sockets()
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    stopping = False

    def on_signal(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        stop.set()

    def spawn() -> multiprocessing.process.BaseProcess:
        proc = ctx.Process(target=_worker_main, args=(config, sockets, stop, settings))
        proc.start()
        log.info("worker started", extra={"worker_pid": proc.pid})
        return proc

    # Children inherit an ignored SIGINT (a terminal's Ctrl+C reaches the whole group:
    # the parent decides); a Python handler is not inherited, so SIGTERM can be ours
    # from the start and a SIGTERM while workers spawn still drains them.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    slots = [_Slot(spawn()) for _ in range(worker_count(config.workers))]
    signal.signal(signal.SIGINT, on_signal)
    exitcode = 0
    try:
        while not stopping:
            now = time.monotonic()
            for slot in slots:
                if slot.restart_at is None and not slot.proc.is_alive():
                    code = slot.proc.exitcode
                    _forget_worker(slot.proc.pid)
                    slot.crashed(now)
                    log.error(
                        "worker %s exited (code %s); restarting it in %.1fs",
                        slot.proc.pid,
                        code,
                        slot.restart_at - now,
                        extra={"worker_pid": slot.proc.pid, "exitcode": code},
                    )
                elif slot.restart_at is not None and now >= slot.restart_at and not stopping:
                    slot.started(spawn(), now)
                    restarts.inc()
            waits = [s.restart_at - now for s in slots if s.restart_at is not None]
            alive = [s.proc.sentinel for s in slots if s.restart_at is None]
            timeout = max(0.0, min([POLL_PARENT_SECONDS, *waits]))
            if alive:
                multiprocessing.connection.wait(alive, timeout=timeout)
            else:
                time.sleep(timeout)
        stop.set()
        procs = [s.proc for s in slots if s.restart_at is None]
        deadline = (
            time.monotonic()
            + settings.drain_timeout_seconds
            + config.graceful_timeout
            + EXIT_MARGIN_SECONDS
        )
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
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return exitcode


def restart_delay(quick_crashes: int) -> float:
    """Seconds before restarting a worker after its ``quick_crashes``-th crash in a row
    (a crash within ``STABLE_SECONDS`` of its start): 0.5, 1, 2, ... up to
    ``MAX_RESTART_DELAY_SECONDS``, so a crash loop does not spin."""
    return min(MAX_RESTART_DELAY_SECONDS, RESTART_DELAY_SECONDS * 2 ** max(0, quick_crashes - 1))


class _Slot:
    """One worker's place: its current process and its crash history."""

    def __init__(self, proc: multiprocessing.process.BaseProcess) -> None:
        self.proc = proc
        self.started_at = time.monotonic()
        self.quick_crashes = 0
        self.restart_at: float | None = None  # set while waiting to restart

    def crashed(self, now: float) -> None:
        if now - self.started_at < STABLE_SECONDS:
            self.quick_crashes += 1
        else:
            self.quick_crashes = 1
        self.restart_at = now + restart_delay(self.quick_crashes)

    def started(self, proc: multiprocessing.process.BaseProcess, now: float) -> None:
        self.proc = proc
        self.started_at = now
        self.restart_at = None


def _restart_counter():
    """``livehub_worker_restarts_total``, kept by this (parent) process in the metrics
    directory, where the workers' ``/metrics`` read it."""
    from prometheus_client import Counter, values

    if not values.ValueClass._multiprocess:
        # prometheus_client chose its value class when first imported, before the
        # directory was set: choose again (this process has created no metric yet).
        values.ValueClass = values.get_value_class()
    return Counter(
        "livehub_worker_restarts",
        "Worker processes restarted by `livehub serve` after exiting unexpectedly",
        registry=None,
    )


def _forget_worker(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters and histograms stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def worker_count(configured: int) -> int:
    """Hypercorn's ``workers``; 0 (the shipped default) means one per CPU core."""
    return configured if configured > 0 else (os.cpu_count() or 1)


def _worker_main(config: Config, sockets: Sockets, stop: EventType, settings: Settings) -> None:
    logs.configure(settings.log_format)
    for sock in sockets.secure_sockets + sockets.insecure_sockets:
        sock.listen(config.backlog)
    config.errorlog = logging.getLogger("hypercorn.error")  # through our formatter
    trio.run(_serve_worker, config, sockets, stop, settings)


async def _serve_worker(
    config: Config, sockets: Sockets, stop: EventType, settings: Settings
) -> None:
    from livehub.http import create_app
    from livehub.node.gctune import tune_gc

    app = create_app(settings)
    tune_gc()

    async def shutdown_trigger() -> None:
        await _wait_for_stop(stop)
        service = app.service
        if service is None:
            return
        log.info("draining", extra={"streams": service.gate.statistics().streams})
        done = await service.gate.drain(settings.drain_timeout_seconds)
        log.info("drained" if done else "drain timed out", extra=_stats(service))

    if app.settings.server == "lean" and not sockets.secure_sockets:
        from livehub.http.lean import serve_lean

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
