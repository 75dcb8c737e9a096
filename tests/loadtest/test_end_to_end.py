"""The whole load tester against an in-test fake of livehub's HTTP surface."""

import trio
from livehub_loadtest.cli import _parser, build_config
from livehub_loadtest.report import build_report
from livehub_loadtest.runner import run_load

from .fake_livehub import FakeLivehub, serve_fake


async def run_against(fake: FakeLivehub, *flags: str) -> dict:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_fake, fake)
        args = _parser().parse_args(
            [
                "--url",
                f"http://127.0.0.1:{port}",
                "--target",
                "livehub",
                "--jwt-secret",
                "s" * 32,
                "--settle",
                "0.1",
                "--drain",
                "2",
                *flags,
            ]
        )
        with trio.fail_after(20):
            report = build_report(build_config(args), await run_load(build_config(args)))
        nursery.cancel_scope.cancel()
    return report


async def test_every_comment_once_with_resume():
    report = await run_against(
        FakeLivehub(),
        "--viewers",
        "8",
        "--videos",
        "2",
        "--rate",
        "40",
        "--duration",
        "1.5",
        "--resume-fraction",
        "0.5",
        "--resume-pause",
        "0.3",
        "--resume-at",
        "0.5",
    )
    audit = report["audit"]
    assert report["ok"], report["failed_viewers"]
    assert report["posts"]["accepted"] == 60
    assert audit["received"] == audit["expected"] == 8 * 30
    assert audit["resumers"] == 4 and report["delivery_latency_resumed"]["count"] > 0
    assert report["delivery_latency"]["p99_ms"] is not None


async def test_a_lost_event_fails_the_audit():
    report = await run_against(
        FakeLivehub(drop_seq=5),
        "--viewers",
        "3",
        "--rate",
        "20",
        "--duration",
        "1",
    )
    assert not report["ok"]
    assert report["audit"]["missing"] == 3 and report["audit"]["seq_gaps"] == 3
