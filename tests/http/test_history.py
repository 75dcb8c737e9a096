"""GET /comments/{video_id}: keyset pages newest first, and ?since= oldest first."""

from __future__ import annotations

import pytest

from ..support import auth


async def _fill(server, video: str, n: int) -> None:
    # Straight through the store in batches: the HTTP path is covered elsewhere.
    from livehub.core.model import Draft

    store = server.service.store
    for start in range(0, n, 250):
        await store.insert(video, [Draft("u", f"c{i}") for i in range(start, min(n, start + 250))])


@pytest.mark.parametrize("pagesize", [1, 7, 50, 333, 500])
async def test_history_pages_cover_1000_comments_exactly_once_newest_first(
    server, client, pagesize
):
    await _fill(server, "deep", 1000)
    seen: list[int] = []
    cursor = None
    for _ in range(2000):
        params = {"pagesize": pagesize} | ({"cursor": cursor} if cursor is not None else {})
        r = await client.get("/comments/deep", params=params)
        assert r.status_code == 200
        page = r.json()
        assert len(page["comments"]) <= pagesize
        seen += [c["seq"] for c in page["comments"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(1000, 0, -1))


@pytest.mark.parametrize("pagesize", [1, 50, 500])
async def test_since_pages_cover_1000_comments_exactly_once_oldest_first(server, client, pagesize):
    await _fill(server, "deep", 1000)
    seen: list[int] = []
    since = 0
    for _ in range(2000):
        page = (
            await client.get("/comments/deep", params={"since": since, "pagesize": pagesize})
        ).json()
        if not page["comments"]:
            break
        seen += [c["seq"] for c in page["comments"]]
        since = page["next_since"]
    assert seen == list(range(1, 1001))


async def test_page_size_defaults_to_50_and_is_clamped_to_500(server, client):
    await _fill(server, "v", 600)
    assert len((await client.get("/comments/v")).json()["comments"]) == 50
    assert len((await client.get("/comments/v?pagesize=100000")).json()["comments"]) == 500


async def test_unknown_video_is_an_empty_page(client):
    r = await client.get("/comments/never-posted")
    assert r.status_code == 200
    assert r.json() == {"comments": [], "next_cursor": None, "viewers": 0, "pinned": None}


async def test_cursor_beyond_the_start_is_empty(server, client):
    await client.post("/comments/v", json={"message": "x"}, headers=auth())
    assert (await client.get("/comments/v?cursor=1")).json() == {
        "comments": [],
        "next_cursor": None,
        "viewers": 0,
        "pinned": None,
    }


@pytest.mark.parametrize(
    "query",
    [
        "cursor=-1",
        "cursor=abc",
        "pagesize=-5",
        "since=1.5",
        "since=",
        "cursor=1e3",
        "pagesize=99999999999999999999999",
    ],
)
async def test_bad_numbers_are_400(client, query):
    r = await client.get(f"/comments/v?{query}")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"].startswith("invalid_")
