"""The deleter: a moderator deleting a share of the accepted comments while posting runs.

With ``--delete-fraction F`` (livehub only), every ``1/F``-th accepted comment is
deleted right after its 201, with ``DELETE /comments/{video}/{seq}`` and a token whose
``roles`` claim says ``moderator``. The audit then expects what livehub promises:
every viewer gets a ``deleted`` event for each deletion, a deleted comment's seq still
arrives (as the comment, or as a tombstone when the viewer resumed past it), and a
viewer that connected after a deletion never gets that comment's text.
"""

from __future__ import annotations

import time

import trio

from livehub_loadtest.config import LoadConfig
from livehub_loadtest.http1 import HttpProtocolError, build_request
from livehub_loadtest.net import KeepAliveClient, PeerClosed
from livehub_loadtest.poster import PostLog, mint_token

POLL_S = 0.005  # how often the deleter looks for newly accepted comments
MODERATOR_ROLES = ["moderator"]


def chosen(index: int, fraction: float) -> bool:
    """Whether the ``index``-th accepted comment is deleted; spreads the fraction evenly."""
    return fraction > 0 and int((index + 1) * fraction) != int(index * fraction)


class DeleteLog:
    """What the deleter did (one owner: the coordinator's trio run)."""

    def __init__(self) -> None:
        # video -> list of (key, seq, answered_ns) of comments deleted (204)
        self.done: dict[int, list[tuple[int, int, int]]] = {}
        # video -> (key, seq) of deletions with no answer: they may or may not have happened
        self.unknown: dict[int, list[tuple[int, int]]] = {}
        self.refused = 0  # answered, but not 204 (a bug: every chosen comment exists)
        self.errors: list[str] = []

    @property
    def deleted(self) -> int:
        return sum(len(v) for v in self.done.values())

    def by_video(self) -> dict[int, dict]:
        """Per video, for the viewer groups' audit."""
        out: dict[int, dict] = {}
        for video in self.done.keys() | self.unknown.keys():
            out[video] = {
                "done": self.done.get(video, []),
                "unknown": self.unknown.get(video, []),
            }
        return out

    def summary(self) -> dict:
        return {
            "deleted": self.deleted,
            "unknown": sum(len(v) for v in self.unknown.values()),
            "refused": self.refused,
            "errors": self.errors,
        }


async def run_deleter(
    cfg: LoadConfig, posts: PostLog, deletes: DeleteLog, posting_done: trio.Event
) -> None:
    """Delete the chosen accepted comments until posting is over and all are handled."""
    lifetime = cfg.ramp_s + cfg.settle_s + cfg.duration_s + cfg.drain_s
    token = mint_token(cfg.jwt_secret or "", f"lt-{cfg.run_id}-mod", lifetime, MODERATOR_ROLES)
    headers = {"Authorization": "Bearer " + token}
    client = KeepAliveClient(cfg.family, cfg.addr, cfg.post_timeout_s)
    index = 0
    try:
        while True:
            done = posting_done.is_set()  # read first: then nothing accepted is left over
            while index < posts.accepted:
                i = index
                index += 1
                if chosen(i, cfg.delete_fraction) and posts.seq[i] > 0:
                    await _delete(cfg, client, headers, posts, i, deletes)
            if done:
                return
            await trio.sleep(POLL_S)
    finally:
        client.close()


async def _delete(cfg, client, headers, posts: PostLog, i: int, deletes: DeleteLog) -> None:
    video, key, seq = posts.video[i], posts.key[i], posts.seq[i]
    raw = build_request("DELETE", f"{cfg.video_path(video)}/{seq}", cfg.host, headers)
    try:
        status, reply = await client.request(raw)
    except (OSError, PeerClosed, HttpProtocolError, trio.TooSlowError) as exc:
        deletes.unknown.setdefault(video, []).append((key, seq))
        if len(deletes.errors) < 10:
            deletes.errors.append(repr(exc))
        return
    if status == 204:
        deletes.done.setdefault(video, []).append((key, seq, time.time_ns()))
    else:
        deletes.refused += 1
        if len(deletes.errors) < 10:
            deletes.errors.append(f"{status}: {reply[:200]!r}")
