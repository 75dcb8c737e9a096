"""deploy/nginx.conf end to end: nginx (from the OS packages) in front of 3 livehub
nodes. Viewers of one video land on one node; a post through nginx, or straight to
another node, reaches them; when their node stops, they reconnect through nginx with
Last-Event-ID, land on another node, and resume with nothing lost and nothing twice."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import trio
from livehub_loadtest.stack import render_nginx
from trio_websocket import open_websocket_url

from livehub.db.cluster import free_port

from ..support import auth, start_livehub
from .viewer import ResumingViewer

pytestmark = pytest.mark.slow


class Nginx:
    """nginx in the foreground of a child process, stopped by its PID."""

    def __init__(self, upstream_ports: list[int]) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.prefix = Path(tempfile.mkdtemp(prefix="livehub-nginx-"))
        (self.prefix / "tmp").mkdir()
        self.port = free_port()
        conf = render_nginx(self.prefix, self.port, upstream_ports)
        base = [
            binary,
            "-p",
            str(self.prefix),
            "-c",
            str(conf),
            "-e",
            str(self.prefix / "error.log"),
        ]
        test = subprocess.run([*base, "-t", "-q"], capture_output=True, text=True)
        assert test.returncode == 0, test.stderr + self.error_log()
        self.proc = subprocess.Popen(
            [*base, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited {self.proc.returncode}: {self.error_log()}")
            try:
                httpx.get(self.url + "/healthz", timeout=0.5)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start: " + self.error_log())

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: let workers finish
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        shutil.rmtree(self.prefix, ignore_errors=True)


@pytest.fixture
def nginx_binary():
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed (apt-get install nginx)")


@pytest.fixture
def cluster_behind_nginx(dsn, nginx_binary):
    env = {"LIVEHUB_SSE_RETRY_MS": "200", "LIVEHUB_DRAIN_TIMEOUT_SECONDS": "3"}
    nodes = []
    proxy = None
    try:
        for _ in range(3):
            nodes.append(start_livehub(dsn, **env))
        proxy = Nginx([int(n.url.rsplit(":", 1)[1]) for n in nodes])
        yield proxy, nodes
    finally:
        if proxy is not None:
            proxy.stop()
        for node in nodes:
            node.stop()


def node_ids(nodes) -> dict[str, object]:
    return {httpx.get(n.url + "/healthz").headers["X-Livehub-Node"]: n for n in nodes}


def viewers_gauge(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("livehub_viewers "):
            return float(line.split()[1])
    raise AssertionError("no livehub_viewers in /metrics")


async def post(c: httpx.AsyncClient, url: str, message: str, user: str) -> httpx.Response:
    return await c.post(f"{url}/comments/launch", json={"message": message}, headers=auth(user))


async def test_viewers_share_a_node_and_fail_over_gaplessly(cluster_behind_nginx):
    proxy, nodes = cluster_behind_nginx
    ids = node_ids(nodes)
    viewers = [ResumingViewer(proxy.url, "launch") for _ in range(4)]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=10) as c:
            for v in viewers:
                await nursery.start(v.run)
            home = {v.nodes[0] for v in viewers}
            assert len(home) == 1, home  # one video, one node
            home_id = home.pop()
            home_node = ids[home_id]
            others = [n for i, n in ids.items() if i != home_id]
            # The node's own gauge says the same: all four viewers, none elsewhere.
            assert viewers_gauge(home_node.url) == 4
            assert [viewers_gauge(n.url) for n in others] == [0, 0]

            # Posts through nginx go to any node (balanced), and reach the viewers on
            # the video's node in order; so does a post straight to another node.
            posted_on = set()
            for i in range(10):
                r = await post(c, proxy.url, f"via-nginx-{i}", f"p{i % 3}")
                assert r.status_code == 201, r.text
                assert r.json()["seq"] == i + 1
                posted_on.add(r.headers["X-Livehub-Node"])
            assert len(posted_on) > 1, posted_on
            r = await post(c, others[0].url, "direct", "d")
            assert r.status_code == 201
            for v in viewers:
                await v.wait_for(11)
            assert [c["message"] for c in viewers[0].comments][-1] == "direct"

            # Stop the video's node while posts keep coming through nginx.
            acked: list[dict] = []
            posting = trio.CancelScope()

            async def keep_posting() -> None:
                i = 0
                with posting:
                    while True:
                        i += 1
                        try:
                            r = await post(c, proxy.url, f"during-{i}", f"q{i % 5}")
                        except httpx.HTTPError:
                            r = None
                        if r is not None and r.status_code == 201:
                            acked.append(r.json())
                        await trio.sleep(0.01)

            nursery.start_soon(keep_posting)
            await trio.sleep(0.3)
            assert await trio.to_thread.run_sync(home_node.stop) == 0
            await trio.sleep(0.5)
            # Posting stops first, so every acknowledged post is below the head the
            # viewers are waited for (one acked after it might not have arrived yet).
            posting.cancel()
            # The video now lives on one of the other nodes, through nginx as well.
            r = await post(c, proxy.url, "after", "z")
            assert r.status_code == 201
            head = r.json()["seq"]
            for v in viewers:
                await v.wait_for(head)
            nursery.cancel_scope.cancel()

    stored = {c["seq"]: c for c in viewers[0].comments}
    for v in viewers:
        assert [c["seq"] for c in v.comments[:head]] == list(range(1, head + 1))
        assert len({c["seq"] for c in v.comments}) == len(v.comments)  # nothing twice
        assert v.nodes[0] == home_id
        assert v.nodes[-1] != home_id  # resumed elsewhere, through nginx
    new_homes = {v.nodes[-1] for v in viewers}
    assert len(new_homes) == 1  # and again all on one node
    assert any(a["message"].startswith("during-") for a in acked)
    for a in acked:
        assert stored[a["seq"]] == a  # every acknowledged post was delivered as stored


async def test_request_ids_and_websockets_pass_through(cluster_behind_nginx):
    proxy, _ = cluster_behind_nginx
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as c:
            r = await c.get("/comments/launch", headers={"X-Request-Id": "from-the-edge-1"})
            assert r.status_code == 200
            assert r.headers["X-Request-Id"] == "from-the-edge-1"
            r = await c.get("/comments/launch")
            assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])  # nginx's own
            assert (await c.get("/metrics")).status_code == 404  # per node, not public
        ws_url = proxy.url.replace("http://", "ws://") + "/comments/launch/ws"
        async with open_websocket_url(ws_url) as ws:
            assert json.loads(await ws.get_message())["type"] == "viewers"
            async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as c:
                assert (await post(c, proxy.url, "to-ws", "w")).status_code == 201
            while True:
                message = json.loads(await ws.get_message())
                if message["type"] == "comment":
                    break
    assert message["comment"]["message"] == "to-ws"


async def open_sse(port: int, video: str) -> tuple[trio.SocketStream, bytes]:
    """A raw SSE request through nginx; returns the stream and the response head."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(f"GET /comments/{video}/stream HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await stream.receive_some(4096)
        assert chunk, head
        head += chunk
    return stream, head


async def test_the_edge_limits_answer_429_as_json(cluster_behind_nginx):
    """deploy/nginx.conf's limit_conn: one address holds at most 100 streams through
    nginx; the next one gets nginx's own 429, in livehub's JSON shape, before it
    reaches a node; a closed stream frees its place."""
    proxy, _ = cluster_behind_nginx
    streams: list[trio.SocketStream] = []
    try:
        with trio.fail_after(60):
            for _ in range(100):
                stream, head = await open_sse(proxy.port, "crowd")
                streams.append(stream)
                assert head.startswith(b"HTTP/1.1 200"), head
            stream, head = await open_sse(proxy.port, "crowd")
            async with stream:
                assert head.startswith(b"HTTP/1.1 429"), head
                assert b"Retry-After: 1" in head
                body = head.split(b"\r\n\r\n", 1)[1]
                while b"}}" not in body:
                    body += await stream.receive_some(4096)
                assert json.loads(body)["error"]["code"] == "too_many_requests"
            await streams.pop().aclose()
            while True:  # once nginx has seen that connection close, a place is free
                stream, head = await open_sse(proxy.port, "crowd")
                if not head.startswith(b"HTTP/1.1 429"):
                    break
                await stream.aclose()
                await trio.sleep(0.05)  # another process: no event to wait on
            streams.append(stream)
            assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        for stream in streams:
            await stream.aclose()


async def test_moderation_goes_to_the_node_of_the_video(cluster_behind_nginx):
    proxy, _ = cluster_behind_nginx
    mod = auth("mod", ["moderator"])
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as c:
            assert (await post(c, proxy.url, "to delete", "w")).status_code == 201
            home = (await c.get("/comments/launch")).headers["X-Livehub-Node"]  # by video
            calls = [
                ("DELETE", "/comments/launch/1", None),
                ("POST", "/videos/launch/bans", {"user_id": "troll", "seconds": 60}),
                ("GET", "/videos/launch/bans", None),
                ("DELETE", "/videos/launch/bans/troll", None),
                ("PATCH", "/videos/launch/settings", {"slow_mode_seconds": 0}),
                ("GET", "/videos/launch/settings", None),
                ("GET", "/videos/launch/moderation", None),
            ]
            for method, path, body in calls:
                kw = {} if body is None else {"json": body}
                r = await c.request(method, path, headers=mod, **kw)
                assert r.status_code < 300, (method, path, r.text)
                assert r.headers["X-Livehub-Node"] == home, (method, path)
            assert (await c.get("/comments/launch")).json()["comments"] == []
