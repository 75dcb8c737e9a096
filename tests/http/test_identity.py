"""Tokens from an identity provider against the real server: RS256/ES256 posts through
a JWKS served on 127.0.0.1, the display name carried with the comment (POST, history,
SSE, WebSocket, another node's wake-up), bad user ids refused before the database, and
a JWKS that cannot be fetched answered 503."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from ..conftest import run_server
from ..idp import IdP, IdPServer, SigningKey
from ..support import SSEReader, start_livehub, token


@pytest.fixture
def idp():
    provider = IdP(keys=[SigningKey.new("RS256"), SigningKey.new("ES256")])
    server = IdPServer(provider).start()
    yield provider
    server.stop()


@pytest.fixture
def idp_settings(settings, idp):
    return settings.replace(
        jwt_secret="",  # only the provider's keys: HS256 must be refused
        jwt_jwks_url=idp.jwks_url,
        jwt_issuer=idp.issuer,
        jwt_audience=idp.audience,
        jwks_min_refresh_seconds=0.2,
    )


@pytest.fixture
async def live(idp_settings):
    async with run_server(idp_settings) as server:
        yield server


def bearer(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


async def test_rs256_and_es256_posts_carry_the_display_name_everywhere(live, idp):
    async with live.client() as client:
        with trio.fail_after(20):
            async with client.stream("GET", "/comments/idp/stream") as response:
                reader = SSEReader(response)
                r = await client.post(
                    "/comments/idp",
                    json={"message": "hello"},
                    headers=bearer(idp.token("u-1", idp.keys[0], name="Ada <b>L</b>")),
                )
                assert r.status_code == 201, r.text
                assert r.json()["user_id"] == "u-1"
                assert r.json()["user_name"] == "Ada <b>L</b>"
                r = await client.post(
                    "/comments/idp",
                    json={"message": "no name"},
                    headers=bearer(idp.token("u-2", idp.keys[1])),
                )
                assert r.status_code == 201, r.text
                assert "user_name" not in r.json()  # absent, not null, when unknown
                streamed = await reader.comments(2)
        assert [c.get("user_name") for c in streamed] == ["Ada <b>L</b>", None]
        page = (await client.get("/comments/idp")).json()["comments"]
        assert [c.get("user_name") for c in page] == [None, "Ada <b>L</b>"]


async def test_another_node_gets_the_display_name_in_its_wake_up(idp_settings, idp):
    async with run_server(idp_settings) as a, run_server(idp_settings) as b:
        async with a.client() as ca, b.client() as cb:
            with trio.fail_after(20):
                async with cb.stream("GET", "/comments/nodes/stream") as response:
                    reader = SSEReader(response)
                    r = await ca.post(
                        "/comments/nodes",
                        json={"message": "from A"},
                        headers=bearer(idp.token("ann", name="Ann")),
                    )
                    assert r.status_code == 201, r.text
                    (seen,) = await reader.comments(1)
    assert (seen["user_id"], seen["user_name"], seen["message"]) == ("ann", "Ann", "from A")


async def test_websocket_posts_use_the_provider_token(live, idp):
    url = (
        live.url.replace("http://", "ws://")
        + "/comments/wsidp/ws?token="
        + idp.token("wes", name="Wes")
    )
    with trio.fail_after(15):
        async with open_websocket_url(url) as ws:
            await ws.send_message(json.dumps({"type": "post", "message": "hi"}))
            while True:
                message = json.loads(await ws.get_message())
                if message["type"] == "posted":
                    break
    assert message["comment"]["user_name"] == "Wes"


async def test_hs256_is_refused_when_only_provider_keys_are_configured(live):
    async with live.client() as client:
        r = await client.post("/comments/v", json={"message": "x"}, headers=bearer(token("eve")))
    assert r.status_code == 401
    assert "'HS256' is not accepted" in r.json()["error"]["message"]


@pytest.mark.parametrize("sub", ["al\x00ice", "al\udc80ice", "bell\x07", "x" * 129])
async def test_a_bad_user_id_is_401_and_never_reaches_the_store(live, idp, sub):
    async with live.client() as client:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                good = []

                async def innocent(i: int) -> None:
                    r = await client.post(
                        "/comments/poison",
                        json={"message": f"ok {i}"},
                        headers=bearer(idp.token(f"user{i}")),
                    )
                    good.append(r.status_code)

                for i in range(20):
                    nursery.start_soon(innocent, i)
                r = await client.post(
                    "/comments/poison", json={"message": "bad"}, headers=bearer(idp.token(sub))
                )
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthorized"
        assert "user id" in r.json()["error"]["message"]
        assert good == [201] * 20  # the others' posts were not failed by it
        page = (await client.get("/comments/poison?pagesize=100")).json()["comments"]
    assert len(page) == 20 and "bad" not in [c["message"] for c in page]


async def test_jwks_unreachable_is_503_and_reading_still_works(idp_settings, idp):
    idp.down = True
    async with run_server(idp_settings) as server, server.client() as client:
        with trio.fail_after(20):
            r = await client.post(
                "/comments/down", json={"message": "x"}, headers=bearer(idp.token())
            )
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "jwks_unavailable"
            assert int(r.headers["retry-after"]) >= 1
            assert (await client.get("/comments/down")).status_code == 200
            scrape = (await client.get("/metrics")).text
            assert "livehub_jwks_healthy 0.0" in scrape
            assert "livehub_jwks_failures_total 0.0" not in scrape
            idp.down = False  # the provider is back: posts go through without a restart
            while True:
                r = await client.post(
                    "/comments/down", json={"message": "x"}, headers=bearer(idp.token())
                )
                if r.status_code != 503:
                    break
                await trio.sleep(0.2)
            assert r.status_code == 201, r.text
            scrape = (await client.get("/metrics")).text
            assert "livehub_jwks_healthy 1.0" in scrape
            assert "livehub_jwks_keys 2.0" in scrape


def test_livehub_serve_with_two_workers_needs_no_secret_with_a_jwks(dsn, idp):
    """The real `livehub serve --workers 2` configured only by the provider's keys and
    an embedding origin: no shared secret is generated or needed."""
    site = "http://127.0.0.1:9"
    server = start_livehub(
        dsn,
        workers=2,
        LIVEHUB_JWT_SECRET="",
        LIVEHUB_JWT_JWKS_URL=idp.jwks_url,
        LIVEHUB_JWT_ISSUER=idp.issuer,
        LIVEHUB_JWT_AUDIENCE=idp.audience,
        LIVEHUB_CORS_ORIGINS=site,
    )
    try:
        for i in range(4):  # connections land on either worker
            r = httpx.post(
                server.url + "/comments/procs",
                json={"message": f"m{i}"},
                headers={**bearer(idp.token(f"p{i}", name=f"P {i}")), "Origin": site},
            )
            assert r.status_code == 201, r.text
            assert r.json()["user_name"] == f"P {i}"
            assert r.headers["access-control-allow-origin"] == site
        r = httpx.post(
            server.url + "/comments/procs", json={"message": "x"}, headers=bearer(token("e"))
        )
        assert r.status_code == 401
    finally:
        assert server.stop() == 0, server.log()
