"""Posters: P keep-alive connections posting comments, open loop (on a schedule) or closed.

Open loop: poster p's i-th post is due at ``start + (p / P + i) * P / R``; a post that
goes out late is still sent, and its lateness recorded, so a slow server shows up as
lateness instead of silently lowering the offered rate. Closed loop: each poster posts
again as soon as the previous reply arrives (maximum throughput).
"""

from __future__ import annotations

import json
import time
from array import array
from collections import Counter

import jwt
import trio

from livehub_loadtest.config import LoadConfig
from livehub_loadtest.http1 import HttpProtocolError, build_request
from livehub_loadtest.net import KeepAliveClient, PeerClosed, extract_seq
from livehub_loadtest.sse import make_message, pack_key

TOKEN_SLACK_S = 3600  # tokens outlive the run by this much


def mint_token(secret: str, subject: str, lifetime_s: float, roles: list | None = None) -> str:
    """An HS256 JWT with ``sub`` and ``exp`` (and ``roles``), as livehub expects."""
    exp = int(time.time() + lifetime_s + TOKEN_SLACK_S)
    claims: dict = {"sub": subject, "exp": exp}
    if roles:
        claims["roles"] = roles
    return jwt.encode(claims, secret, algorithm="HS256")


class PostLog:
    """Everything the posters did (one owner: the coordinator's trio run)."""

    def __init__(self) -> None:
        # accepted posts, one entry each across the four arrays
        self.video = array("l")
        self.key = array("q")
        self.seq = array("q")  # -1 when the response carried none (nchan)
        self.send_ns = array("q")
        self.post_lat_us = array("q")  # every answered post
        self.late_us = array("q")  # open loop: how late each post went out
        self.status = Counter()  # HTTP status -> count
        self.failed = 0  # no HTTP answer: connection error or timeout
        # those posts: sent, never answered (a server process killed, a cut connection),
        # so, like the cut ones below, maybe stored and delivered
        self.unanswered_video = array("l")
        self.unanswered_key = array("q")
        # posts still in flight when the posting phase's bound cut them: the server may
        # or may not have stored (and delivered) them, so the audit neither requires
        # nor forbids their messages
        self.cut_video = array("l")
        self.cut_key = array("q")
        self.errors: list[str] = []
        self.reconnects = 0

    @property
    def accepted(self) -> int:
        return len(self.key)

    def cut_by_video(self) -> dict[int, list[int]]:
        """Posts whose fate the poster does not know, per video: cut in flight by the
        run's bound, or sent and never answered. The audit neither requires nor
        forbids them."""
        out: dict[int, list[int]] = {}
        for video, key in zip(self.cut_video, self.cut_key, strict=True):
            out.setdefault(video, []).append(key)
        for video, key in zip(self.unanswered_video, self.unanswered_key, strict=True):
            out.setdefault(video, []).append(key)
        return out

    def by_video(self) -> dict[int, list[tuple[int, int, int]]]:
        """Accepted posts per video as ``(send_ns, key, seq)``, sorted by send time."""
        out: dict[int, list[tuple[int, int, int]]] = {}
        for video, send_ns, key, seq in zip(
            self.video, self.send_ns, self.key, self.seq, strict=True
        ):
            out.setdefault(video, []).append((send_ns, key, seq))
        for posts in out.values():
            posts.sort()
        return out


def _headers(cfg: LoadConfig, poster: int) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if cfg.jwt_secret:
        subject = f"lt-{cfg.run_id}-p{poster}"
        lifetime = cfg.ramp_s + cfg.settle_s + cfg.duration_s + cfg.drain_s
        headers["Authorization"] = "Bearer " + mint_token(cfg.jwt_secret, subject, lifetime)
    return headers


async def run_poster(cfg: LoadConfig, poster: int, start: float, stop: float, log: PostLog):
    """Post from ``start`` until ``stop`` (trio clock), recording into ``log``."""
    client = KeepAliveClient(cfg.family, cfg.addr, cfg.post_timeout_s)
    headers = _headers(cfg, poster)
    paths = [cfg.video_path(v) for v in range(cfg.videos)]
    interval = cfg.posters / cfg.rate if cfg.rate > 0 else 0.0
    i = 0
    try:
        while True:
            now = trio.current_time()
            if cfg.closed_loop:
                if now >= stop:
                    break
            else:
                due = start + (poster / cfg.posters + i) * interval
                if due >= stop:
                    break
                if due > now:
                    await trio.sleep_until(due)
                    now = trio.current_time()
                log.late_us.append(int((now - due) * 1e6))
            video = (i * cfg.posters + poster) % cfg.videos
            send_ns = time.time_ns()
            text = make_message(cfg.run_id, poster, i, send_ns, cfg.message_bytes)
            body = json.dumps({"message": text}).encode()
            raw = build_request("POST", paths[video], cfg.host, headers, body)
            i += 1
            try:
                status, reply = await client.request(raw)
            except (OSError, PeerClosed, HttpProtocolError, trio.TooSlowError) as exc:
                log.failed += 1
                log.unanswered_video.append(video)
                log.unanswered_key.append(pack_key(poster, i - 1))
                if len(log.errors) < 10:
                    log.errors.append(repr(exc))
                continue
            except trio.Cancelled:
                log.cut_video.append(video)
                log.cut_key.append(pack_key(poster, i - 1))
                raise
            log.post_lat_us.append((time.time_ns() - send_ns) // 1000)
            log.status[status] += 1
            if 200 <= status < 300:
                log.video.append(video)
                log.key.append(pack_key(poster, i - 1))
                seq = extract_seq(reply) if cfg.target == "livehub" else None
                log.seq.append(-1 if seq is None else seq)
                log.send_ns.append(send_ns)
            elif len(log.errors) < 10:
                log.errors.append(f"{status}: {reply[:200]!r}")
    finally:
        log.reconnects += max(0, client.connects - 1)
        client.close()


async def run_posters(cfg: LoadConfig, log: PostLog) -> None:
    """All posters for ``cfg.duration_s``; in-flight posts finish within the post timeout."""
    if cfg.posters <= 0 or (cfg.rate <= 0 and not cfg.closed_loop):
        await trio.sleep(cfg.duration_s)
        return
    start = trio.current_time()
    stop = start + cfg.duration_s
    with trio.move_on_at(stop + cfg.post_timeout_s):
        async with trio.open_nursery() as nursery:
            for poster in range(cfg.posters):
                nursery.start_soon(run_poster, cfg, poster, start, stop, log)
