"""A viewer group: one process's share of the viewers, from ramp-up to audit.

The group owns its viewers (one nursery), drops and resumes the chosen ones, waits for
stragglers after posting, audits every viewer and sends back one result dict.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left

import trio

from livehub_loadtest.audit import Expected, audit_viewer, merge_audits
from livehub_loadtest.config import LoadConfig
from livehub_loadtest.control import Channel, trio_deadline
from livehub_loadtest.procstat import raise_nofile_limit, self_cpu_seconds
from livehub_loadtest.viewer import Viewer, ViewerCounters

DRAIN_POLL_S = 0.05  # how often the drain phase checks whether everyone has everything
MAX_FAILED_REPORTED = 20  # viewer audits listed individually in the report


def shard_viewers(total: int, shard: int, shards: int) -> range:
    return range(shard, total, shards)


async def run_group(cfg: LoadConfig, shard: int, shards: int, ctl: Channel) -> None:
    """Run viewers ``shard::shards`` until the coordinator's drain ends; send the result."""
    raise_nofile_limit()
    indexes = shard_viewers(cfg.viewers, shard, shards)
    counters = ViewerCounters(len(indexes), len(cfg.viewer_targets))
    viewers = [Viewer(cfg, i, counters) for i in indexes]
    if not viewers:
        counters.all_connected.set()
    async with trio.open_nursery() as nursery:
        step = cfg.ramp_s / max(1, len(viewers))
        next_start = trio.current_time()
        for viewer in viewers:
            nursery.start_soon(viewer.run)
            next_start += step
            await trio.sleep_until(next_start)
        with trio.move_on_after(cfg.connect_timeout_s):
            await counters.all_connected.wait()
        await ctl.send(("connected", counters.connected, counters.total))

        kind, drop_at = await ctl.recv()
        assert kind == "post_start"
        post_start_ns = time.time_ns()
        cpu0, wall0 = self_cpu_seconds(), time.monotonic()
        if drop_at is not None:
            nursery.start_soon(_drop_resumers, viewers, trio_deadline(drop_at))

        kind, accepted, drain_until, cut, deleted = await ctl.recv()
        assert kind == "drain"
        # every seq of a video arrives: its comments (or their tombstones) and deletions
        wanted = {
            video: len(posts) + len(deleted.get(video, {}).get("done", ()))
            for video, posts in accepted.items()
        }

        def has_all(v: Viewer) -> bool:
            # a comment arrives as itself or as a tombstone (counted in del_ids)
            return len(v.keys) + len(v.del_ids) >= wanted.get(v.video, 0)

        with trio.move_on_at(trio_deadline(drain_until)):
            # a poll, not an Event: a per-event check would cost the hot path more
            while not all(has_all(v) for v in viewers):  # noqa: ASYNC110
                await trio.sleep(DRAIN_POLL_S)
        cpu1, wall1 = self_cpu_seconds(), time.monotonic()
        nursery.cancel_scope.cancel()

    await ctl.send(
        (
            "result",
            _result(
                cfg,
                viewers,
                counters,
                accepted,
                cut,
                deleted,
                post_start_ns,
                cpu1 - cpu0,
                wall1 - wall0,
            ),
        )
    )


async def _drop_resumers(viewers: list[Viewer], at: float) -> None:
    await trio.sleep_until(at)
    for viewer in viewers:
        if viewer.resumer:
            viewer.drop()


def _concat(arrays: list[array]) -> array:
    out = array("q")
    for a in arrays:
        out.extend(a)
    return out


def _expected_for(
    posts: list[tuple[int, int, int]], after_ns: int, maybe=(), deleted: dict | None = None
) -> Expected:
    """What a viewer connected at ``after_ns`` must get, from ``posts`` sorted by send_ns;
    ``maybe``: keys of posts cut in flight, which it may or may not get; ``deleted``: the
    deleter's record for the video (``DeleteLog.by_video``)."""
    start = bisect_left(posts, (after_ns, -1, -1))
    chosen = posts[start:]
    seqs = tuple(sorted(seq for _, _, seq in chosen if seq >= 0))
    keys = frozenset(key for _, key, _ in chosen)
    done = (deleted or {}).get("done", ())
    unknown = (deleted or {}).get("unknown", ())
    mine = [d for d in done if d[0] in keys]
    return Expected(
        keys,
        seqs,
        frozenset(maybe),
        deleted_at_ns={key: ns for key, _, ns in mine},
        deleted_seqs=frozenset(seq for _, seq, _ in mine),
        deletions_max=len(done) + len(unknown),
        maybe_deleted=frozenset(key for key, _ in unknown),
        maybe_deleted_seqs=frozenset(seq for _, seq in unknown),
    )


def _result(cfg, viewers, counters, accepted, cut, deleted, post_start_ns, cpu_s, wall_s) -> dict:
    full: dict[int, Expected] = {}
    audits, failed, late = [], [], 0
    for viewer in viewers:
        posts = accepted.get(viewer.video, [])
        if viewer.connected_ns and viewer.connected_ns <= post_start_ns:
            if viewer.video not in full:
                full[viewer.video] = _expected_for(
                    posts, 0, cut.get(viewer.video, ()), deleted.get(viewer.video)
                )
            expected = full[viewer.video]
        else:
            late += 1  # connected after posting began (or never): only later posts count
            expected = _expected_for(
                posts,
                viewer.connected_ns or time.time_ns(),
                cut.get(viewer.video, ()),
                deleted.get(viewer.video),
            )
        audit = audit_viewer(
            viewer.keys,
            viewer.ids,
            expected,
            cfg.target == "livehub",
            deletions=list(zip(viewer.del_ids, viewer.del_targets, strict=True)),
            conn_marks=viewer.conn_marks,
        )
        audits.append(audit)
        if not audit.ok and len(failed) < MAX_FAILED_REPORTED:
            failed.append(
                {
                    "viewer": viewer.index,
                    "video": viewer.video,
                    "resumer": viewer.resumer,
                    "errors": viewer.errors,
                    **audit.as_dict(),
                }
            )
    totals = merge_audits(audits)
    totals["never_connected"] = sum(1 for v in viewers if not v.connected_ns)
    totals["connected_late"] = late
    totals["unexpected_disconnects"] = sum(v.disconnects for v in viewers)
    totals["resumers"] = sum(1 for v in viewers if v.resumer)
    totals["foreign_events"] = counters.foreign
    return {
        "audit": totals,
        "failed_viewers": failed,
        "lat_live_us": _concat(counters.lat_live_us),
        "lat_resumed_us": _concat(counters.lat_resumed_us),
        "lat_live_by_target_us": counters.lat_live_us,
        "lat_resumed_by_target_us": counters.lat_resumed_us,
        "comment_reads": counters.comment_reads,
        "cpu_s": cpu_s,
        "wall_s": wall_s,
    }
