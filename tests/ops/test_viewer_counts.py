"""livehub.db.viewers on real Postgres: nodes publish their counts, read each other's,
ignore a dead node's stale rows, and delete their own when they stop."""

from __future__ import annotations

import trio

from livehub.db.bridge import open_database
from livehub.db.migrate import migrate
from livehub.db.viewers import ViewerCounts
from livehub.node.gate import Gate


async def test_totals_sum_fresh_rows_of_every_node(dsn):
    with trio.fail_after(20):
        async with open_database(dsn, max_size=2) as db:
            await migrate(db)
            gate_a, gate_b = Gate(100, 1), Gate(100, 1)
            a = ViewerCounts(db, gate_a, "node-a", interval=1, ttl=15)
            b = ViewerCounts(db, gate_b, "node-b", interval=1, ttl=15)
            slots = [gate_a.open_stream("v"), gate_a.open_stream("v"), gate_b.open_stream("v")]
            assert a.total("v") == 2  # local viewers count at once
            await a.publish_once()
            await b.publish_once()
            await a.publish_once()
            assert a.total("v") == 3
            assert b.total("v") == 3
            assert await b.read_total("v") == 3
            assert a.statistics().videos_published == 1

            # a node that died: its row stops being refreshed and leaves the sum
            await db.execute(
                "UPDATE viewer_counts SET updated_at = now() - interval '1 minute'"
                " WHERE node_id = 'node-b'"
            )
            await a.publish_once()
            assert a.total("v") == 2

            # viewers leave: a last 0 is published, then the video is forgotten
            for slot in slots[:2]:
                slot.close()
            await a.publish_once()
            rows = await db.fetch("SELECT count FROM viewer_counts WHERE node_id = 'node-a'")
            assert [r[0] for r in rows] == [0]
            assert a.statistics().videos_published == 0

            # a video nobody here watches: read from Postgres (fresh rows only)
            c = ViewerCounts(db, Gate(100, 1), "node-c", interval=1, ttl=15)
            assert await c.read_total("v") == 0


async def test_a_stopping_node_deletes_its_rows(dsn):
    with trio.fail_after(20):
        async with open_database(dsn, max_size=2) as db:
            await migrate(db)
            gate = Gate(100, 1)
            counts = ViewerCounts(db, gate, "node-x", interval=0.05, ttl=15)
            slot = gate.open_stream("w")
            async with trio.open_nursery() as nursery:
                await nursery.start(counts.run)
                while not await db.fetchval(  # noqa: ASYNC110 - the row is in Postgres
                    "SELECT count(*) FROM viewer_counts WHERE node_id = 'node-x'"
                ):
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()
            slot.close()
            assert await db.fetchval("SELECT count(*) FROM viewer_counts") == 0
