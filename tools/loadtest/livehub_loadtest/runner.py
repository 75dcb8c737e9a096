"""The coordinator: viewer groups (in-process or ``--procs N``), phases, server cost.

Phases: viewers ramp up -> all connected -> settle -> posting (resumers drop and come
back meanwhile) -> drain (bounded) -> audit. /proc samples of the server PIDs are taken
before viewers connect, after they connect, and around the posting + drain phase.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import trio

from livehub_loadtest.config import LoadConfig
from livehub_loadtest.control import Channel, PipeChannel, memory_channel_pair
from livehub_loadtest.deleter import DeleteLog, run_deleter
from livehub_loadtest.group import run_group
from livehub_loadtest.poster import PostLog, run_posters
from livehub_loadtest.procstat import Sample, loadavg, sample, self_cpu_seconds

PROC_JOIN_TIMEOUT_S = 10  # child processes get this long to exit after their result


def _child_main(cfg: LoadConfig, shard: int, conn: Any) -> None:
    """Entry point of a ``--procs`` child: one viewer group in its own trio run."""
    trio.run(run_group, cfg, shard, cfg.procs, PipeChannel(conn))


async def _start_groups(cfg: LoadConfig, nursery: trio.Nursery, procs: list) -> list[Channel]:
    if cfg.procs <= 1:
        ours, theirs = memory_channel_pair()
        nursery.start_soon(run_group, cfg, 0, 1, theirs)
        return [ours]
    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs trio
    channels: list[Channel] = []
    for shard in range(cfg.procs):
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(target=_child_main, args=(cfg, shard, child_end), daemon=True)
        proc.start()
        procs.append(proc)
        channels.append(PipeChannel(parent_end))
    return channels


def _stop_procs(procs: list, graceful: bool) -> None:
    """Join our children; kill (by their own handle) any that outstay the timeout."""
    deadline = time.monotonic() + (PROC_JOIN_TIMEOUT_S if graceful else 0)
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(1)


async def run_load(cfg: LoadConfig) -> dict:
    """Run the whole test once; return the raw results for ``report.build_report``."""
    server: dict[str, Sample | None] = {}
    db: dict[str, Sample | None] = {}

    def take(name: str) -> None:
        server[name] = sample(cfg.server_pids)
        db[name] = sample(cfg.db_pids)

    out: dict[str, Any] = {"server": {}, "phases": {}, "loadavg": {"start": loadavg()}}
    take("idle")
    procs: list = []
    results: list[dict] = []
    try:
        async with trio.open_nursery() as nursery:
            channels = await _start_groups(cfg, nursery, procs)
            t_ramp = time.monotonic()
            connected = [await ch.recv() for ch in channels]
            out["phases"]["connect_s"] = time.monotonic() - t_ramp
            out["viewers_connected"] = sum(c[1] for c in connected)
            take("connected")
            await trio.sleep(cfg.settle_s)

            drop_at = None
            if cfg.resume_fraction > 0 and cfg.viewers:
                drop_at = time.monotonic() + cfg.resume_at_s
            for ch in channels:
                await ch.send(("post_start", drop_at))
            take("post_start")
            cpu0, wall0 = self_cpu_seconds(), time.monotonic()
            log = PostLog()
            deletes = DeleteLog()
            async with trio.open_nursery() as posting:
                posted = trio.Event()
                if cfg.delete_fraction > 0 and cfg.target == "livehub":
                    posting.start_soon(run_deleter, cfg, log, deletes, posted)
                await run_posters(cfg, log)
                posted.set()
            out["phases"]["posting_s"] = time.monotonic() - wall0
            take("post_end")
            cpu_post = self_cpu_seconds() - cpu0

            accepted = log.by_video()
            drain_until = time.monotonic() + cfg.drain_s
            t_drain = time.monotonic()
            for ch in channels:
                await ch.send(
                    ("drain", accepted, drain_until, log.cut_by_video(), deletes.by_video())
                )
            results = [(await ch.recv())[1] for ch in channels]
            out["phases"]["drain_s"] = time.monotonic() - t_drain
            take("drained")
            out["coordinator_cpu"] = {
                "cpu_s": self_cpu_seconds() - cpu0,
                "wall_s": time.monotonic() - wall0,
                "posting_cpu_s": cpu_post,
            }
    finally:
        if procs:
            with trio.CancelScope(shield=True):  # bounded by PROC_JOIN_TIMEOUT_S
                await trio.to_thread.run_sync(_stop_procs, procs, bool(results))
    out["server_samples"] = server
    out["db_samples"] = db
    out["loadavg"]["end"] = loadavg()
    out["posts"] = log
    out["deletes"] = deletes.summary()
    out["groups"] = results
    return out
