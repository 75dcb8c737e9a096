"""CORS for embedding sites (livehub/http/cors.py) and the security headers, against
the real server: preflights, grants for listed origins only, `*` for reading only,
WebSocket upgrades from other origins refused; nosniff everywhere and frame-ancestors
on the page."""

from __future__ import annotations

import pytest
import trio
from quart_trio import QuartTrio
from trio_websocket import ConnectionRejected, open_websocket_url

from livehub.config import Settings, SettingsError
from livehub.http import create_app
from livehub.http.cors import parse_origins

from ..conftest import run_server
from ..support import auth

SITE = "https://site.example"
OTHER = "https://evil.example"


@pytest.fixture
async def cors_server(settings):
    async with run_server(settings.replace(cors_origins=f"{SITE}, http://127.0.0.1:9")) as s:
        yield s


@pytest.fixture
async def read_anywhere(settings):
    async with run_server(settings.replace(cors_origins=f"{SITE},*")) as s:
        yield s


def preflight(origin: str, method: str = "POST", headers: str = "authorization, content-type"):
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_preflight_from_a_listed_origin_grants_posting(cors_server):
    async with cors_server.client() as client:
        r = await client.options("/comments/v", headers=preflight(SITE))
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SITE
    assert "POST" in r.headers["access-control-allow-methods"]


async def test_preflight_grants_the_moderation_methods_to_a_listed_origin(cors_server):
    # An inline embed's moderator pins (PUT), unpins and deletes (DELETE), closes the
    # chat (PATCH) from the site's origin.
    async with cors_server.client() as client:
        for method, path in (
            ("PUT", "/videos/v/pin"),
            ("DELETE", "/comments/v/3"),
            ("PATCH", "/videos/v/settings"),
        ):
            r = await client.options(path, headers=preflight(SITE, method))
            assert r.status_code == 204, (method, path)
            assert method in r.headers["access-control-allow-methods"].split(", ")
    allowed = {h.strip() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "last-event-id"} <= allowed
    assert r.headers["vary"] == "Origin"
    assert int(r.headers["access-control-max-age"]) > 0


async def test_preflight_from_another_origin_is_403_without_a_grant(cors_server):
    async with cors_server.client() as client:
        r = await client.options("/comments/v", headers=preflight(OTHER))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers


async def test_post_history_and_stream_are_granted_to_the_listed_origin_only(cors_server):
    async with cors_server.client() as client:
        r = await client.post(
            "/comments/v", json={"message": "hi"}, headers={**auth("ann"), "Origin": SITE}
        )
        assert r.status_code == 201
        assert r.headers["access-control-allow-origin"] == SITE
        assert "retry-after" in r.headers["access-control-expose-headers"]
        r = await client.get("/comments/v", headers={"Origin": SITE})
        assert r.headers["access-control-allow-origin"] == SITE
        with trio.fail_after(10):
            async with client.stream(
                "GET", "/comments/v/stream", headers={"Origin": SITE}
            ) as response:
                assert response.status_code == 200
                assert response.headers["access-control-allow-origin"] == SITE
        r = await client.get("/comments/v", headers={"Origin": OTHER})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
        # Errors carry the grant too, so the page can read the reason.
        r = await client.post("/comments/v", json={"message": "x"}, headers={"Origin": SITE})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == SITE


async def test_same_origin_requests_need_no_listing(cors_server):
    host = cors_server.url.removeprefix("http://")
    async with cors_server.client() as client:
        r = await client.get("/comments/v", headers={"Origin": f"http://{host}"})
    assert r.headers["access-control-allow-origin"] == f"http://{host}"


async def test_a_wildcard_grants_reading_to_anyone_but_never_posting(read_anywhere):
    async with read_anywhere.client() as client:
        r = await client.get("/comments/v", headers={"Origin": OTHER})
        assert r.headers["access-control-allow-origin"] == "*"
        r = await client.options("/comments/v/stream", headers=preflight(OTHER, "GET"))
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
        assert "POST" not in r.headers["access-control-allow-methods"]
        r = await client.options("/comments/v", headers=preflight(OTHER, "POST"))
        assert r.status_code == 403
        r = await client.post(
            "/comments/v", json={"message": "x"}, headers={**auth("ann"), "Origin": OTHER}
        )
        assert "access-control-allow-origin" not in r.headers
        r = await client.options("/comments/v", headers=preflight(SITE, "POST"))
        assert r.headers["access-control-allow-origin"] == SITE


def ws_url(server, video: str = "v") -> str:
    return server.url.replace("http://", "ws://", 1) + f"/comments/{video}/ws"


async def test_websocket_from_another_origin_is_refused_with_403(cors_server):
    with trio.fail_after(10):
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(ws_url(cors_server), extra_headers=[("Origin", OTHER)]):
                pass
        assert info.value.status_code == 403
        assert b"origin_not_allowed" in info.value.body
        async with open_websocket_url(ws_url(cors_server), extra_headers=[("Origin", SITE)]) as ws:
            assert "viewers" in await ws.get_message()
        async with open_websocket_url(ws_url(cors_server)) as ws:  # no Origin: not a browser
            assert "viewers" in await ws.get_message()


async def test_without_origins_there_is_no_middleware_and_no_grant(server, client, settings):
    assert isinstance(create_app(settings), QuartTrio)  # nothing wrapped: no cost
    r = await client.get("/comments/v", headers={"Origin": SITE})
    assert "access-control-allow-origin" not in r.headers
    with trio.fail_after(10):
        async with open_websocket_url(ws_url(server), extra_headers=[("Origin", OTHER)]) as ws:
            assert "viewers" in await ws.get_message()  # no origins configured: not checked


@pytest.mark.parametrize("path", ["/comments/v", "/videos/v", "/assets/viewer.js", "/nope"])
async def test_every_response_says_nosniff(client, path):
    r = await client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff", (path, r.status_code)


async def test_the_page_may_be_framed_only_by_itself_and_the_listed_origins(cors_server, client):
    page_csp = (await client.get("/videos/v")).headers["content-security-policy"]
    assert "frame-ancestors 'self'" in page_csp and SITE not in page_csp
    async with cors_server.client() as c:
        r = await c.get("/videos/v")
    csp = r.headers["content-security-policy"]
    assert f"frame-ancestors 'self' http://127.0.0.1:9 {SITE}" in csp
    assert f'data-embed-origins="http://127.0.0.1:9 {SITE}"' in r.text


@pytest.mark.parametrize(
    "bad", ["site.example", "https://site.example/", "https://a.b/path", "ftp://x"]
)
def test_origins_that_are_not_origins_are_a_settings_error(bad):
    with pytest.raises(ValueError):
        parse_origins(bad)
    with pytest.raises(SettingsError, match="LIVEHUB_CORS_ORIGINS"):
        create_app(Settings(cors_origins=bad))
