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


def start_plain_hypercorn(dsn: str, **env: str):
    """What an operator runs: ``hypercorn --config hypercorn.toml livehub.asgi:app``."""
    port = free_port()
    args = [sys.executable, "-m", "hypercorn", "--config", str(ROOT / "hypercorn.toml")]
    args += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "livehub.asgi:app"]
    return start_process(args, server_env(dsn, **env), port)


@pytest.fixture(params=["livehub-serve", "hypercorn"])
def node(request, dsn):
    if request.param == "livehub-serve":
        server = start_livehub(dsn, workers=2, LIVEHUB_BODY_TIMEOUT_SECONDS="1")
    else:
        server = start_plain_hypercorn(dsn, LIVEHUB_BODY_TIMEOUT_SECONDS="1")
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
        try:
            s.sendall(requests[i % len(requests)])
        except OSError:
            pass  # the node may answer (413) and close first: that is its right
        s.close()
    # The node may refuse while it unwinds the flood (a 503 is its right), but it is
    # up throughout and serves again within seconds.
    deadline = time.monotonic() + 20
    while True:
        assert node.proc.poll() is None, node.log()
        r = httpx.post(
            node.url + "/comments/alive", json={"message": "still here"}, headers=auth(), timeout=10
        )
        if r.status_code == 201 or time.monotonic() > deadline:
            break
        assert r.status_code == 503, r.text
        time.sleep(0.5)
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


def test_plain_hypercorn_caps_streams_per_http2_connection(dsn):
    # h2c with prior knowledge: the SETTINGS Hypercorn sends hold hypercorn.toml's cap,
    # so one TCP connection cannot hold a hundred stream slots.
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings

    server = start_plain_hypercorn(dsn)
    port = _hostport(server.url)[1]
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(5)
        s.sendall(conn.data_to_send())
        cap = None
        while cap is None:
            data = s.recv(65536)
            assert data, "closed before SETTINGS"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    changed = event.changed_settings.get(
                        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
                    )
                    if changed is not None:
                        cap = changed.new_value
        s.close()
        assert cap == 8
    finally:
        server.stop()
