"""Scenario n: what each node hears of the bus, before and after channels aligned with
what a node holds.

    .venv/bin/python scripts/bench_n.py [--channels 64 4096] [--videos 200] [--rounds 3]
                                        [--rate 300] [--out DIR]

For each ``LIVEHUB_NOTIFY_CHANNELS`` value: one throwaway Postgres and 3 ``livehub
serve`` nodes (each started and stopped by PID here). Node i holds ``--videos``
videos of its own (one SSE viewer each, so each has an actor and LISTENs to its
channel), and every video gets ``--rounds`` comments, posted to the node holding it at
``--rate`` posts/s in all. No node holds another's videos, so every wake-up a node
decodes is work for nothing; with 64 channels every node LISTENs to nearly every
channel and hears everything. Per node and per comment posted in the cluster: NOTIFYs
received, payloads decoded, wake-ups decoded, and the node's CPU. Writes DIR/n.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livehub_loadtest.procstat import tree_cpu_seconds  # noqa: E402
from livehub_loadtest.stack import livehub_stack, versions  # noqa: E402

from livehub.identity.auth import mint  # noqa: E402

NODES = 3
ENV = {
    "LIVEHUB_POST_RATE_PER_SECOND": "1000000",
    "LIVEHUB_POST_BURST": "1000000",
    "LIVEHUB_ACCESS_LOG": "0",
}
COUNTERS = (
    "livehub_bus_notifications_received",
    "livehub_bus_payloads_decoded",
    "livehub_bus_wakeups_received",
    "livehub_bus_channels",
    "livehub_live_videos",
)


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in COUNTERS:
            out[name] = float(value)
    return out


async def hold(url: str, video: str, ready: trio.Event, count: list[int], need: int) -> None:
    """One SSE viewer of ``video``: reads and discards until cancelled."""
    host, port = url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(
            f"GET /comments/{video}/stream HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(65536)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{video}: {head[:80]!r}")
        count[0] += 1
        if count[0] == need:
            ready.set()
        while await stream.receive_some(65536):
            pass


async def measure(nodes, secret: str, videos: int, rounds: int, rate: float) -> dict:
    held = [[f"n{i}-v{j}" for j in range(videos)] for i in range(NODES)]
    token = mint("bench", secret, 3600)
    ready, count = trio.Event(), [0]
    async with trio.open_nursery() as nursery:
        for node, vids in zip(nodes, held, strict=True):
            for video in vids:
                nursery.start_soon(hold, node.url, video, ready, count, NODES * videos)
        with trio.fail_after(60):
            await ready.wait()
            while any(scrape(n.url).get("livehub_live_videos", 0) < videos for n in nodes):  # noqa: ASYNC110 - polling HTTP
                await trio.sleep(0.2)
        await trio.sleep(1)  # LISTENs applied
        before = [scrape(n.url) for n in nodes]
        cpu0 = [tree_cpu_seconds([n.pid]) for n in nodes]
        posts = [(i, v) for _ in range(rounds) for i in range(NODES) for v in held[i]]
        clients = [httpx.AsyncClient(base_url=n.url, timeout=30) for n in nodes]
        failures = 0
        started = time.monotonic()
        async with trio.open_nursery() as posters:
            for k, (i, video) in enumerate(posts):
                delay = started + k / rate - time.monotonic()
                if delay > 0:
                    await trio.sleep(delay)

                async def one(i=i, video=video, k=k) -> None:
                    nonlocal failures
                    r = await clients[i].post(
                        f"/comments/{video}",
                        json={"message": f"c{k}"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    failures += r.status_code != 201

                posters.start_soon(one)
        await trio.sleep(2)  # the last wake-ups
        after = [scrape(n.url) for n in nodes]
        cpu1 = [tree_cpu_seconds([n.pid]) for n in nodes]
        for c in clients:
            await c.aclose()
        nursery.cancel_scope.cancel()
    comments = len(posts)
    per_node = []
    for b, a, c0, c1 in zip(before, after, cpu0, cpu1, strict=True):
        d = {k: a.get(k, 0) - b.get(k, 0) for k in COUNTERS[:3]}
        per_node.append(
            {
                "channels": a.get("livehub_bus_channels", 0),
                "notifications_per_comment": d["livehub_bus_notifications_received"] / comments,
                "payloads_decoded_per_comment": d["livehub_bus_payloads_decoded"] / comments,
                "wakeups_decoded_per_comment": d["livehub_bus_wakeups_received"] / comments,
                "cpu_us_per_comment": (c1 - c0) / comments * 1e6,
            }
        )
    return {"comments": comments, "failures": failures, "nodes": per_node}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, nargs="+", default=[64, 4096])
    ap.add_argument("--videos", type=int, default=200, help="videos per node")
    ap.add_argument("--rounds", type=int, default=3, help="comments per video")
    ap.add_argument("--rate", type=float, default=300.0, help="posts/s, all nodes")
    ap.add_argument("--out", type=Path, default=ROOT / ".livehub/bench")
    ap.add_argument("--peer", default="livehub")  # scripts/bench passes these
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--duration")
    args = ap.parse_args()
    results = {}
    for channels in args.channels:
        env = dict(ENV, LIVEHUB_NOTIFY_CHANNELS=str(channels))
        with livehub_stack(nodes=NODES, env=env) as (_pg, nodes):
            secret = nodes[0].jwt_secret
            results[channels] = trio.run(
                measure, nodes, secret, args.videos, args.rounds, args.rate
            )
    print(f"{NODES} nodes x {args.videos} videos each, {args.rounds} comments per video")
    print("channels  node  LISTENs  NOTIFYs/c  decoded/c  wake-ups/c  CPU us/c")
    for channels, r in results.items():
        for i, n in enumerate(r["nodes"]):
            heard = n["notifications_per_comment"]
            decoded = n["payloads_decoded_per_comment"]
            wakeups = n["wakeups_decoded_per_comment"]
            print(
                f"{channels:8d}  {i:4d}  {n['channels']:7.0f}  {heard:9.3f}  {decoded:9.3f}"
                f"  {wakeups:10.3f}  {n['cpu_us_per_comment']:8.0f}"
            )
        if r["failures"]:
            print(f"  {r['failures']} posts failed")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "n.json").write_text(
        json.dumps({"results": results, "versions": versions()}, indent=2)
    )
    return 1 if any(r["failures"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
