"""GET /videos/{video_id} (the viewer page, its assets) and the dev-only POST /dev/token.
What the page does in a browser is tested in tests/browser/."""

from __future__ import annotations

import re

import pytest

from ..conftest import run_server


async def test_viewer_page_is_html_naming_the_video_with_its_assets(client):
    r = await client.get("/videos/launch-1")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"
    page = r.text
    assert 'data-video="launch-1"' in page
    assert 'data-max-chars="2000"' in page
    assert "<title>Live comments · launch-1</title>" in page
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page)
    assert sorted(a.split("?")[0] for a in assets) == ["/assets/viewer.css", "/assets/viewer.js"]
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 500, asset
    js = await client.get(next(a for a in assets if "viewer.js" in a))
    assert "javascript" in js.headers["content-type"]
    assert "innerHTML" not in js.text  # user text goes in with textContent only


async def test_viewer_page_refuses_a_bad_video_id(client):
    r = await client.get("/videos/no%20spaces")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_video_id"


async def test_unknown_static_file_is_404(client):
    assert (await client.get("/assets/nope.js")).status_code == 404


async def test_dev_token_endpoint_is_off_by_default(client):
    r = await client.post("/dev/token", json={"user": "alice"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


@pytest.fixture
async def dev_client(settings):
    async with run_server(settings.replace(dev_tokens=True)) as server, server.client() as c:
        yield c


async def test_dev_token_lets_a_display_name_post(dev_client):
    r = await dev_client.post("/dev/token", json={"user": "  Zoë 🎬 "})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["user"] == "Zoë 🎬"
    posted = await dev_client.post(
        "/comments/v", json={"message": "hi"}, headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["user_id"] == "Zoë 🎬"


@pytest.mark.parametrize(
    "body", [b"{}", b'{"user": ""}', b'{"user": "   "}', b'{"user": 5}', b"[]", b"nope",
             b'{"user": "' + b"x" * 65 + b'"}', b'{"user": "a\\nb"}']
)  # fmt: skip
async def test_dev_token_refuses_a_bad_name(dev_client, body):
    r = await dev_client.post("/dev/token", content=body)
    assert r.status_code == 400, (body, r.text)
    assert r.json()["error"]["code"] in ("invalid_user", "invalid_json")
