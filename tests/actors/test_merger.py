"""Node-wide group commit with a poisoned draft (issue 12): one bad row never fails
the others' posts. Real Postgres; the bad rows are refused, every innocent one is
stored exactly once, in order."""

from __future__ import annotations

import httpx
import trio

from livehub.actors.merger import InsertMerger
from livehub.core.errors import Unstorable
from livehub.core.model import Comment, Draft
from livehub.db.bridge import open_database
from livehub.db.migrate import migrate
from livehub.db.store import PgCommentStore

from ..support import token

POISON = {
    ("v3", 4): Draft("nul\x00user", "hello"),  # asyncpg sends it; Postgres refuses it
    ("v7", 0): Draft("\ud800", "hello"),  # asyncpg cannot even encode it
    ("v9", 9): Draft("bob", "bad\x00message"),
    ("v5", 2): Draft("carol", "poison"),  # passes every check; a CHECK refuses it
}


async def test_poisoned_drafts_in_one_merged_transaction_fail_alone(dsn):
    async with open_database(dsn) as db:
        await migrate(db)
        # A constraint only this test has: data Postgres refuses that no pre-check
        # catches, so the merger must find the offending row itself.
        await db.execute(
            "ALTER TABLE comments ADD CONSTRAINT no_poison CHECK (message <> 'poison')"
        )
        store = PgCommentStore(db)
        merger = InsertMerger(store)
        batches = {}
        for v in range(12):
            video = f"v{v}"
            batches[video] = [
                POISON.get((video, i), Draft(f"u{i}", f"{video}-m{i}")) for i in range(10)
            ]
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                # All queued before the merger runs: one merged transaction holds them.
                replies = {video: merger.submit(video, drafts) for video, drafts in batches.items()}
                await nursery.start(merger.run)
                results = {video: await reply.wait() for video, reply in replies.items()}
                nursery.cancel_scope.cancel()
            stored = {}
            for video in batches:
                stored[video] = await store.read_range(video, 0)
    for video, drafts in batches.items():
        innocent = [d.message for i, d in enumerate(drafts) if (video, i) not in POISON]
        # every innocent draft stored once, in post order, with gapless seqs
        assert [c.message for c in stored[video]] == innocent
        assert [c.seq for c in stored[video]] == list(range(1, len(innocent) + 1))
        for i, result in enumerate(results[video]):
            if (video, i) in POISON:
                assert isinstance(result, Unstorable), (video, i, result)
            else:
                assert isinstance(result, Comment), (video, i, result)
                assert result.message == drafts[i].message
                assert result in stored[video]


async def test_a_token_whose_sub_holds_nul_fails_only_its_own_post(server, client):
    """Many users post at once; one token's ``sub`` holds a NUL (or a lone surrogate).
    Its post is refused (4xx, never 'retry'); every other post gets its 201."""
    videos = [f"p{i}" for i in range(8)]
    codes: dict[tuple[str, int], int] = {}

    async def post(video: str, i: int, user: str) -> None:
        headers = {"Authorization": f"Bearer {token(user)}"}
        r = await client.post(f"/comments/{video}", json={"message": f"m{i}"}, headers=headers)
        codes[(video, i)] = r.status_code

    bad = {("p3", 5): "evil\x00sub", ("p6", 7): "evil\ud800sub"}
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for i in range(25):
                for video in videos:
                    nursery.start_soon(post, video, i, bad.get((video, i), f"user{i}"))
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
            pages = {v: (await c.get(f"/comments/{v}?since=0&pagesize=500")).json() for v in videos}
    for key, status in codes.items():
        if key in bad:
            assert 400 <= status < 500, (key, status)
        else:
            assert status == 201, (key, status)
    for video in videos:
        messages = sorted(c["message"] for c in pages[video]["comments"])
        want = sorted(f"m{i}" for i in range(25) if (video, i) not in bad)
        assert messages == want  # each innocent post stored once; the bad ones not
        assert sorted(c["seq"] for c in pages[video]["comments"]) == list(range(1, len(want) + 1))
