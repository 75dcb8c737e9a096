"""Hostile clients against real server processes: `livehub serve --workers 2` (the lean
layer) and plain `hypercorn --config hypercorn.toml livehub.asgi:app` (Hypercorn's trio
worker, with livehub's fix of its send/close race). A misbehaving client ends its own
connection only; the node keeps serving."""

from __future__ import annotations

import socket
import sys
import time

import httpx
import pytest

from ..support import ROOT, auth, free_port, server_env, start_livehub, start_process

pytestmark = pytest.mark.slow


@pytest.fixture(params=["livehub-serve", "hypercorn"])
def node(request, dsn):
    if request.param == "livehub-serve":
        server = start_livehub(dsn, workers=2, LIVEHUB_BODY_TIMEOUT_SECONDS="1")
    else:
        port = free_port()
        args = [
            sys.executable,
            "-m",
            "hypercorn",
            "--config",
            str(ROOT / "hypercorn.toml"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "livehub.asgi:app",
        ]
        server = start_process(args, server_env(dsn, LIVEHUB_BODY_TIMEOUT_SECONDS="1"), port)
    try:
        yield server
    finally:
        server.stop()


def _hostport(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def test_the_short_body_then_close_flood_leaves_the_node_serving(node):
    # Issue 12, item 1: 200 of these took a whole `livehub serve` down in 0.13 s.
    addr = _hostport(node.url)
    requests = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab",
        b"POST /comments/v HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab",
        b"GET /comments/v HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab",
        b"POST /comments/v HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nab",
    ]
    for i in range(200):
        s = socket.create_connection(addr)
        s.sendall(requests[i % len(requests)])
        s.close()
    time.sleep(0.5)
    assert node.proc.poll() is None, node.log()
    r = httpx.post(
        node.url + "/comments/alive", json={"message": "still here"}, headers=auth(), timeout=10
    )
    assert r.status_code == 201, r.text
    assert "BusyResourceError" not in node.log()


def test_a_stalled_body_gets_408_and_frees_the_connection(node):
    addr = _hostport(node.url)
    s = socket.create_connection(addr)
    s.settimeout(10)
    headers = auth()["Authorization"]
    s.sendall(
        b"POST /comments/slow HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
        b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mess' % headers.encode()
    )
    started = time.monotonic()
    data = b""
    while b"\r\n\r\n" not in data or b"}}" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 408"), data
    assert b'"code": "request_timeout"' in data or b'"code":"request_timeout"' in data
    assert time.monotonic() - started < 5
    s.close()
    history = httpx.get(node.url + "/comments/slow?since=0", timeout=10).json()
    assert history["comments"] == []
