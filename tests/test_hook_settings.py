"""Publish proxy and webhook settings are checked before a node connects."""

from __future__ import annotations

import pytest

from livehub.config import Settings, SettingsError
from livehub.node.proxy import check_settings


@pytest.mark.parametrize(
    "kw",
    [
        dict(publish_proxy_url="http://x/", publish_proxy_secret="s", publish_proxy_failure="?"),
        dict(publish_proxy_url="http://x/"),
        dict(publish_proxy_url="ftp://x/", publish_proxy_secret="s"),
        dict(webhook_url="http://x/"),
        dict(webhook_url="not a url", webhook_secret="s"),
    ],
)
def test_bad_settings_are_refused(kw):
    with pytest.raises(SettingsError):
        check_settings(Settings(**kw))


def test_good_settings_pass():
    check_settings(Settings())
    check_settings(
        Settings(
            publish_proxy_url="https://moderation.example/check",
            publish_proxy_secret="s",
            publish_proxy_failure="closed",
            webhook_url="http://127.0.0.1:9000/hook",
            webhook_secret="t",
        )
    )
