"""The load tester against the real server with its default-like posting limit
(issue 12): many 429s are a warning that says how to lift the limit, not a bare PASS."""

import trio
from livehub_loadtest.cli import _parser, build_config
from livehub_loadtest.report import build_report, format_table
from livehub_loadtest.runner import run_load

from ..conftest import run_server
from ..support import SECRET


async def test_many_429s_warn_and_say_how_to_lift_the_limit(settings):
    limited = settings.replace(post_rate_per_second=2.0, post_burst=2)
    async with run_server(limited) as server:
        flags = ["--url", server.url, "--target", "livehub", "--jwt-secret", SECRET]
        flags += ["--settle", "0.1", "--drain", "1", "--viewers", "2", "--videos", "1"]
        flags += ["--rate", "40", "--posters", "2", "--duration", "1.5"]
        config = build_config(_parser().parse_args(flags))
        with trio.fail_after(30):
            report = build_report(config, await run_load(config))
    assert report["posts"]["by_status"].get("429", 0) > report["posts"]["accepted"]
    table = format_table(report)
    assert "LIVEHUB_POST_RATE_PER_SECOND" in table and "LIVEHUB_POST_BURST" in table
    assert "got 429 rate_limited" in table
    assert table.splitlines()[-1] != "RESULT: PASS"
    assert "rate limited" in table.splitlines()[-1]
