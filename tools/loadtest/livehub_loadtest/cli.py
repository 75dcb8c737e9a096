"""Command line: ``python -m livehub_loadtest --url http://127.0.0.1:PORT ...``.

Exit codes: 0 pass, 1 the audit found loss/duplicates/regressions (or viewers that never
connected), 2 bad usage, 3 the hard deadline cut the run short.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import trio

from livehub_loadtest.config import LoadConfig
from livehub_loadtest.http1 import build_request
from livehub_loadtest.net import close, connect, read_head, send_all
from livehub_loadtest.procstat import pid_alive, raise_nofile_limit
from livehub_loadtest.report import build_report, format_table
from livehub_loadtest.runner import run_load

DEFAULT_SECRET_FILE = ".livehub/jwt-secret"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
DEADLINE_SLACK_S = 30  # on top of every phase's own bound


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="livehub-loadtest", description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    a(
        "--target",
        choices=["auto", "livehub", "nchan"],
        default="auto",
        help="server kind (auto: from the stream response's Server header)",
    )
    a("--viewers", type=int, default=100, help="viewers (0: POST throughput only)")
    a(
        "--transport",
        choices=["sse", "ws"],
        default="sse",
        help="how viewers subscribe: SSE (.../stream) or WebSocket (.../ws, livehub only)",
    )
    a("--videos", type=int, default=1, help="videos the viewers and posts are spread over")
    a("--rate", type=float, default=20.0, help="comments/s over all posters (open loop)")
    a("--posters", type=int, default=0, help="poster connections (default: from --rate)")
    a("--closed-loop", action="store_true", help="each poster posts as fast as replies come")
    a("--duration", type=float, default=10.0, help="posting phase, seconds")
    a("--ramp", type=float, default=None, help="viewer ramp-up seconds (default: V/1000)")
    a("--settle", type=float, default=1.0, help="pause after viewers connect, seconds")
    a("--drain", type=float, default=10.0, help="max wait for stragglers after posting")
    a("--connect-timeout", type=float, default=15.0)
    a("--post-timeout", type=float, default=10.0)
    a("--resume-fraction", type=float, default=0.0, help="share of viewers that drop mid-run")
    a("--resume-pause", type=float, default=2.0, help="seconds a dropped viewer stays away")
    a("--resume-at", type=float, default=None, help="seconds into posting (default: 1/3)")
    a("--message-bytes", type=int, default=0, help="pad each message to this many bytes")
    a(
        "--delete-fraction",
        type=float,
        default=0.0,
        help="livehub: share of accepted comments a moderator deletes while posting",
    )
    a("--procs", type=int, default=1, help="processes sharing the viewers")
    a("--jwt-secret", default=None, help="HS256 secret (or LIVEHUB_JWT_SECRET)")
    a("--jwt-secret-file", default=None, help=f"file holding it (default {DEFAULT_SECRET_FILE})")
    a("--server-pid", type=int, action="append", default=[], help="server PID to measure")
    a(
        "--db-pid",
        type=int,
        action="append",
        default=[],
        help="database PID to measure apart (e.g. the postmaster; its backends are children)",
    )
    a(
        "--viewer-url",
        action="append",
        default=[],
        help="where viewers connect (repeatable: spread over them; default --url)",
    )
    a("--note", action="append", default=[], help="free text kept in the report (repeatable)")
    a("--run-id", default=None, help="tag for video names and messages (default: random)")
    a("--deadline", type=float, default=None, help="hard overall bound, seconds")
    a("--json", dest="json_path", default=None, help="write the full report here")
    a("--allow-remote", action="store_true", help="allow a host other than localhost")
    return p


def _secret(args: argparse.Namespace) -> str | None:
    if args.jwt_secret:
        return args.jwt_secret
    if os.environ.get("LIVEHUB_JWT_SECRET"):
        return os.environ["LIVEHUB_JWT_SECRET"]
    path = Path(args.jwt_secret_file or DEFAULT_SECRET_FILE)
    if path.is_file():
        return path.read_text().strip()
    if args.jwt_secret_file:
        raise SystemExit(f"loadtest: cannot read {path}")
    return None


async def detect_target(family: int, addr: tuple, host: str, path: str) -> str:
    """One stream request: nginx (nchan) or anything else (livehub)."""
    sock = await connect(family, addr, 5)
    try:
        with trio.fail_after(5):
            await send_all(sock, build_request("GET", path, host, {"Accept": "text/event-stream"}))
            head, _ = await read_head(sock)
    finally:
        close(sock)
    return "nchan" if "nginx" in head.headers.get("server", "").lower() else "livehub"


def _resolve(raw: str, allow_remote: bool) -> tuple[str, int, tuple, str]:
    """``http://HOST:PORT[/path]`` -> (Host header, family, address, path)."""
    url = urlsplit(raw)
    if url.scheme != "http" or not url.hostname:
        raise SystemExit("loadtest: --url must be http://HOST:PORT")
    if url.hostname not in LOCAL_HOSTS and not allow_remote:
        raise SystemExit(f"loadtest: refusing remote host {url.hostname} (--allow-remote)")
    port = url.port or 80
    family, _, _, _, addr = socket.getaddrinfo(url.hostname, port, type=socket.SOCK_STREAM)[0]
    return url.netloc, family, addr, url.path.rstrip("/")


def check_transport(target: str, transport: str) -> None:
    """Raises SystemExit for a transport the target does not have (nchan: SSE only)."""
    if transport == "ws" and target == "nchan":
        raise SystemExit(
            "loadtest: --transport ws needs --target livehub: nchan has no "
            "/comments/<video>/ws endpoint (use --transport sse)"
        )


def build_config(args: argparse.Namespace) -> LoadConfig:
    check_transport(args.target, args.transport)
    host, family, addr, base_path = _resolve(args.url, args.allow_remote)
    viewer_targets = []
    for raw in args.viewer_url:
        v_host, v_family, v_addr, v_path = _resolve(raw, args.allow_remote)
        if v_path != base_path:
            raise SystemExit("loadtest: --viewer-url must have the same path prefix as --url")
        viewer_targets.append((v_host, v_family, v_addr))
    for pid in [*args.server_pid, *args.db_pid]:
        if not pid_alive(pid):
            raise SystemExit(f"loadtest: no process {pid}")
    if args.viewers < 0 or args.videos < 1 or args.duration <= 0 or args.procs < 1:
        raise SystemExit("loadtest: need viewers >= 0, videos >= 1, duration > 0, procs >= 1")
    # Each poster posts sequentially (so a poster's messages have a known order per video);
    # at <= 10/s each, a POST may take 100 ms before the open-loop schedule slips.
    posters = args.posters or max(4, min(64, math.ceil(args.rate / 10)))
    if args.closed_loop and not args.posters:
        posters = 8
    return LoadConfig(
        host=host,
        family=family,
        addr=addr,
        base_path=base_path,
        target=args.target,
        run_id=args.run_id or secrets.token_hex(4),
        viewers=args.viewers,
        videos=args.videos,
        rate=args.rate,
        posters=posters,
        closed_loop=args.closed_loop,
        duration_s=args.duration,
        ramp_s=args.ramp if args.ramp is not None else args.viewers / 1000,
        settle_s=args.settle,
        drain_s=args.drain,
        connect_timeout_s=args.connect_timeout,
        post_timeout_s=args.post_timeout,
        resume_fraction=args.resume_fraction,
        resume_pause_s=args.resume_pause,
        resume_at_s=args.resume_at if args.resume_at is not None else args.duration / 3,
        message_bytes=args.message_bytes,
        procs=min(args.procs, max(1, args.viewers)),
        jwt_secret=_secret(args),
        server_pids=tuple(args.server_pid),
        db_pids=tuple(args.db_pid),
        viewer_targets=tuple(viewer_targets),
        transport=args.transport,
        delete_fraction=args.delete_fraction,
    )


def _deadline(cfg: LoadConfig, given: float | None) -> float:
    if given is not None:
        return given
    return (
        cfg.ramp_s
        + cfg.connect_timeout_s
        + cfg.settle_s
        + cfg.duration_s
        + cfg.post_timeout_s
        + cfg.drain_s
        + DEADLINE_SLACK_S
    )


async def _main(cfg: LoadConfig, deadline: float, notes: tuple[str, ...] = ()) -> dict | None:
    with trio.move_on_after(deadline):
        if cfg.target == "auto":
            path = cfg.video_path(0) + "-probe/stream"
            target = await detect_target(cfg.family, cfg.addr, cfg.host, path)
            check_transport(target, cfg.transport)
            cfg = LoadConfig(**{**cfg.__dict__, "target": target})
        if cfg.jwt_secret is None and cfg.target == "livehub":
            print(
                "loadtest: no JWT secret (--jwt-secret, --jwt-secret-file, "
                "LIVEHUB_JWT_SECRET): posts go without a token",
                file=sys.stderr,
            )
        return build_report(cfg, await run_load(cfg), notes)
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        cfg = build_config(args)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        return 2 if exc.code else 0
    raise_nofile_limit()
    try:
        report = trio.run(_main, cfg, _deadline(cfg, args.deadline), tuple(args.note))
    except SystemExit as exc:  # the detected target cannot serve --transport
        print(exc.code, file=sys.stderr)
        return 2
    if report is None:
        print("loadtest: hard deadline reached, run cut short", file=sys.stderr)
        return 3
    print(format_table(report))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2, default=list) + "\n")
    return 0 if report["ok"] else 1
