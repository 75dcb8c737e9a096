"""livehub/config.py: settings from LIVEHUB_* variables, once."""

from __future__ import annotations

import pickle

import pytest

from livehub.config import FORMER_NAMES, Settings, SettingsError


def test_variables_parse_as_their_fields_types():
    s = Settings.from_env(
        {
            "LIVEHUB_MAX_STREAMS": "7",
            "LIVEHUB_HEARTBEAT_SECONDS": "2.5",
            "LIVEHUB_DEV_TOKENS": "yes",
            "LIVEHUB_CORS_ORIGINS": "https://a.example",
        }
    )
    assert (s.max_streams, s.heartbeat_seconds, s.dev_tokens) == (7, 2.5, True)
    assert s.cors_origins == "https://a.example"


def test_a_bad_value_names_the_variable():
    with pytest.raises(SettingsError, match="LIVEHUB_MAX_BATCH"):
        Settings.from_env({"LIVEHUB_MAX_BATCH": "many"})


@pytest.mark.parametrize(("new", "old"), sorted(FORMER_NAMES.items()))
def test_a_limit_is_still_read_under_its_former_name(new, old):
    assert getattr(Settings.from_env({f"LIVEHUB_{old.upper()}": "3"}), new) == 3
    both = {f"LIVEHUB_{old.upper()}": "3", f"LIVEHUB_{new.upper()}": "4"}
    assert getattr(Settings.from_env(both), new) == 4  # the current name wins


def test_limits_are_named_max_something():
    limits = [f for f in Settings.__dataclass_fields__ if f.endswith("_max")]
    assert limits == []


def test_settings_travel_to_worker_processes_as_a_value():
    s = Settings.from_env({"LIVEHUB_DATABASE_URL": "postgresql://x/y"}, jwt_secret="k")
    assert pickle.loads(pickle.dumps(s)) == s
