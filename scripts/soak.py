"""Soak: the load tester against ``livehub serve --workers 2`` under chaos (issue 12).

For ``--minutes`` (default 20) the load tester posts and watches (viewers resume with
Last-Event-ID when cut) while a chaos loop, every ``--chaos-every`` seconds, in turn:
restarts Postgres (``pg_ctl stop -m fast`` then start on the same port), SIGKILLs one
worker (``livehub serve`` must restart it), and floods the node with malformed
requests (a body shorter than its Content-Length then close, bad JSON, a 5,000-digit
integer, invalid UTF-8 on a WebSocket, NUL in a token's sub, ``//`` paths, garbage).
At the end: the load tester's delivery audit must be clean, and Postgres must hold
every accepted comment once: per video no seq holes, no message stored twice, and as
many comments as 201s (plus at most the posts that got no answer).

Everything runs on 127.0.0.1, is bounded in count and time, and is stopped by PID.
Not run by CI: ``scripts/soak --minutes 3`` for a short run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from livehub_loadtest.stack import ROOT, LivehubNode, ThrowawayPostgres, _stop_pid, new_secret

from livehub.identity.auth import mint

FLOOD_REQUESTS = 150  # malformed requests per flood round
SOCKET_TIMEOUT_S = 3.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--viewers", type=int, default=200)
    p.add_argument("--videos", type=int, default=20)
    p.add_argument("--rate", type=float, default=100.0, help="comments/s")
    p.add_argument("--chaos-every", type=float, default=20.0, help="seconds between faults")
    p.add_argument("--out", default=str(ROOT / ".livehub" / "soak"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    duration = args.minutes * 60
    pg = ThrowawayPostgres(durable=True)
    node = None
    loadtest = None
    events: dict[str, int] = {"pg_restarts": 0, "workers_killed": 0, "floods": 0}
    flood_status: dict[str, int] = {}
    health_failures = 0
    started = time.time()
    try:
        pg.start()
        secret = new_secret()
        env = {
            "LIVEHUB_POST_RATE_PER_SECOND": "1000000",
            "LIVEHUB_POST_BURST": "1000000",
            "LIVEHUB_SSE_RETRY_MS": "200",
        }
        node = LivehubNode(pg.dsn(), secret, args.workers, env, out / "livehub.log").start()
        report_path = out / "loadtest.json"
        with open(out / "loadtest.txt", "wb") as log:  # the child writes it
            loadtest = subprocess.Popen(
                [
                    *(sys.executable, "-m", "livehub_loadtest", "--url", node.url),
                    *("--target", "livehub", "--jwt-secret", secret),
                    *("--viewers", str(args.viewers), "--videos", str(args.videos)),
                    *("--rate", str(args.rate), "--duration", str(duration)),
                    *("--drain", "30", "--connect-timeout", "30", "--json", str(report_path)),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + duration + 180  # posting + drain + a wide margin
        actions = [_restart_postgres, _kill_worker, _flood]
        turn = 0
        next_fault = time.monotonic() + min(args.chaos_every, 10)
        while loadtest.poll() is None and time.monotonic() < deadline:
            if time.monotonic() >= next_fault and time.monotonic() < deadline - 180:
                action = actions[turn % len(actions)]
                turn += 1
                result = action(pg, node, secret)
                if action is _flood:
                    events["floods"] += 1
                    for status, n in result.items():
                        flood_status[status] = flood_status.get(status, 0) + n
                else:
                    events["pg_restarts" if action is _restart_postgres else "workers_killed"] += 1
                print(f"soak: {time.time() - started:7.1f}s {action.__name__[1:]}", flush=True)
                next_fault = time.monotonic() + args.chaos_every
            if _status(node.url + "/healthz") != 200:
                health_failures += 1
            time.sleep(0.5)
        if loadtest.poll() is None:
            print("soak: the load tester overran its bound; stopping it", flush=True)
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        restarts = node.metric("livehub_worker_restarts")
        store = _check_store(pg, report)
    finally:
        if loadtest is not None and loadtest.poll() is None:
            _stop_pid(loadtest.pid)
        if node is not None:
            node.stop()
        pg.stop()
    summary = {
        "minutes": args.minutes,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load": {k: getattr(args, k) for k in ("workers", "viewers", "videos", "rate")},
        "chaos_every_s": args.chaos_every,
        "events": events,
        "worker_restarts_metric": restarts,
        "flood_status": flood_status,
        "healthz_failures": health_failures,
        "audit": report and report["audit"],
        "posts": report and {k: report["posts"][k] for k in ("accepted", "by_status", "failed")},
        "loadtest_ok": bool(report and report["ok"]),
        "store": store,
    }
    summary["ok"] = bool(
        summary["loadtest_ok"]
        and store["ok"]
        and not any(s.startswith("5") and s != "503" for s in flood_status)
    )
    (out / "soak.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    print("SOAK: " + ("PASS" if summary["ok"] else "FAIL"))
    return 0 if summary["ok"] else 1


def _restart_postgres(pg: ThrowawayPostgres, node, secret) -> None:
    port = pg.cluster.port
    pg.cluster.stop()
    time.sleep(2)  # the node sees a dead database for a while
    pg.cluster.start(port=port)


def _kill_worker(pg, node: LivehubNode, secret) -> None:
    alive = [pid for pid in _worker_pids(node) if _alive(pid)]
    if alive:
        os.kill(random.choice(alive), signal.SIGKILL)


def _flood(pg, node: LivehubNode, secret) -> dict[str, int]:
    """Malformed requests, each on its own connection; returns status -> count."""
    host, port = "127.0.0.1", node.port
    bad_sub = mint("evil\x00sub", secret, 600)
    requests = [
        # item 1 of issue 12: a body shorter than its Content-Length, then close
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab",
        b"POST /comments/soak HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab",
        _post(b'{"message": "hi", "n": ' + b"9" * 5000 + b"}", mint("flood", secret, 600)),
        _post(b"{not json", mint("flood", secret, 600)),
        _post(b'{"message": "caf\xe9"}', mint("flood", secret, 600)),
        _post(b'{"message": "sub with a NUL"}', bad_sub),
        b"POST /comments//stream HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        b"\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n",
        b"GET /comments/soak/stream HTTP/1.1\r\nHost: x\r\nLast-Event-ID: "
        + b"9" * 50
        + b"\r\n\r\n",
        b"GET /comments/soak/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
        + b"\x81\x84\x01\x02\x03\x04"
        + bytes([0xFF ^ 1, 0xFE ^ 2, 0x41 ^ 3, 0x42 ^ 4]),
    ]
    counts: dict[str, int] = {}
    for i in range(FLOOD_REQUESTS):
        raw = requests[i % len(requests)]
        status = "none"
        try:
            with socket.create_connection((host, port), timeout=SOCKET_TIMEOUT_S) as s:
                s.sendall(raw)
                if i % 3 == 0:
                    s.close()  # close at once, whatever the server is doing
                else:
                    head = s.recv(64)
                    if head.startswith(b"HTTP/1.1 "):
                        status = head[9:12].decode(errors="replace")
        except OSError:
            status = "error"
        counts[status] = counts.get(status, 0) + 1
    return counts


def _post(body: bytes, token: str) -> bytes:
    return (
        b"POST /comments/soak HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def _check_store(pg: ThrowawayPostgres, report: dict | None) -> dict:
    """Every accepted comment stored once: per video no holes and no message twice."""
    rows = pg.psql(
        "SELECT video_id, count(*), max(seq), count(DISTINCT message) FROM comments"
        " GROUP BY video_id"
    )
    videos = [line.split("|") for line in rows.splitlines() if line]
    holes = [v for v, n, top, _ in videos if int(n) != int(top)]
    twice = [v for v, n, _, distinct in videos if int(n) != int(distinct)]
    stored = sum(int(n) for _, n, _, _ in videos)
    accepted = report["posts"]["accepted"] if report else -1
    unanswered = report["posts"]["failed"] + report["posts"]["cut_in_flight"] if report else 0
    return {
        "stored": stored,
        "accepted": accepted,
        "videos_with_holes": holes,
        "videos_with_a_message_twice": twice,
        "ok": bool(report)
        and not holes
        and not twice
        and accepted <= stored <= accepted + unanswered,
    }


def _worker_pids(node: LivehubNode) -> list[int]:
    pids = []
    for line in node.log_path.read_text(errors="replace").splitlines():
        if '"worker started"' in line:
            try:
                pids.append(json.loads(line)["worker_pid"])
            except (ValueError, KeyError):
                continue
    return pids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        return not raw[raw.rfind(b")") + 2 :].startswith(b"Z")
    except OSError:
        return False


def _status(url: str) -> int | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
