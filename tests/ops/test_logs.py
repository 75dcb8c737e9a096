"""Structured logs from a real `livehub serve`: one JSON object per line, a request id
per request (the caller's X-Request-Id or a generated one, echoed back), and no
message bodies, tokens or query strings in them."""

from __future__ import annotations

import json
import re

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from ..support import auth, start_livehub, token

pytestmark = pytest.mark.slow

SECRET_TEXT = "do-not-log-this-body-7c1e"


async def test_logs_are_json_lines_with_request_ids_and_no_secrets(dsn):
    server = start_livehub(dsn)
    try:
        headers = {**auth("logger"), "X-Request-Id": "trace-abc.123"}
        ws_token = token("wsuser")
        with trio.fail_after(20):
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
                r = await c.post("/comments/logged", json={"message": SECRET_TEXT}, headers=headers)
                assert r.status_code == 201
                assert r.headers["X-Request-Id"] == "trace-abc.123"
                mine = await c.get("/comments/logged?since=0")
                generated = mine.headers["X-Request-Id"]
                assert re.fullmatch(r"[0-9a-f]{32}", generated)
                junk = await c.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
                assert re.fullmatch(r"[0-9a-f]{32}", junk.headers["X-Request-Id"])
                refused = await c.post(
                    "/comments/logged",
                    json={"message": "x"},
                    headers={"Authorization": "Bearer nope"},
                )
                assert refused.status_code == 401
            ws_url = (
                server.url.replace("http://", "ws://") + f"/comments/logged/ws?token={ws_token}"
            )
            async with open_websocket_url(ws_url) as ws:
                await ws.send_message(json.dumps({"type": "post", "message": SECRET_TEXT}))
                while json.loads(await ws.get_message())["type"] != "posted":
                    pass
    finally:
        assert server.stop() == 0
    lines = [line for line in server.log().splitlines() if line.strip()]
    records = []
    for line in lines:
        if line.startswith("livehub: "):
            continue  # the supervisor's own status lines (serving on ..., stopping ...)
        records.append(json.loads(line))  # anything else must be one JSON object
    assert all({"ts", "level", "logger", "msg"} <= rec.keys() for rec in records)
    access = [rec for rec in records if rec["logger"] == "livehub.access"]
    post = [rec for rec in access if rec.get("request_id") == "trace-abc.123"]
    assert len(post) == 1
    assert post[0]["method"] == "POST"
    assert post[0]["path"] == "/comments/logged"
    assert post[0]["status"] == 201
    assert post[0]["duration_ms"] >= 0
    assert any(rec.get("request_id") == generated and rec["status"] == 200 for rec in access)
    assert any(rec.get("status") == 401 for rec in access)
    assert any(rec["msg"] == "websocket" and rec["path"] == "/comments/logged/ws" for rec in access)
    text = server.log()
    assert SECRET_TEXT not in text
    assert ws_token not in text
    assert auth("logger")["Authorization"].split()[1] not in text
    assert "since=0" not in text  # paths only, never query strings
