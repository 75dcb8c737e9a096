"""livehub/validate.py: what clients send, checked before anything is stored."""

from __future__ import annotations

import json

import pytest

from livehub.core import validate
from livehub.core.errors import BadRequest, InvalidComment


@pytest.mark.parametrize("vid", ["a", "A-z_0-9", "x" * 64, "launch-2024_final", "-", "_"])
def test_valid_video_ids_are_returned_unchanged(vid):
    assert validate.video_id(vid) == vid


@pytest.mark.parametrize(
    "vid",
    ["", "x" * 65, "a b", "a/b", "a.b", "é", "a\n", "a\x00", "%2F", "vidéo", "a+b", "\u0661"],
)
def test_bad_video_ids_are_400_invalid_video_id(vid):
    with pytest.raises(BadRequest) as info:
        validate.video_id(vid)
    assert info.value.code == "invalid_video_id"


@pytest.mark.parametrize(
    ("raw", "value"),
    [(None, None), ("0", 0), ("42", 42), (" 7 ", 7), ("007", 7), (str(2**62), 2**62)],
)
def test_non_negative_ints_parse(raw, value):
    assert validate.non_negative_int("cursor", raw) == value


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "-1",
        "+1",
        "1.5",
        "1e3",
        "abc",
        "0x10",
        "\u0661\u0662",
        "\u00b2",
        "1 2",
        str(2**62 + 1),
        "9" * 40,
    ],
)
def test_bad_ints_are_400_named_after_the_parameter(raw):
    with pytest.raises(BadRequest) as info:
        validate.non_negative_int("pagesize", raw)
    assert info.value.code == "invalid_pagesize"
    assert "pagesize" in info.value.message


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def test_message_is_trimmed_and_other_keys_ignored():
    raw = body({"message": "  hello \n", "user_id": "mallory", "seq": 5})
    assert validate.comment_message(raw, 2000) == "hello"


def test_message_keeps_inner_whitespace_and_unicode():
    msg = "line 1\nline 2\t🎉 é 中文"
    assert validate.comment_message(body({"message": msg}), 2000) == msg


def test_message_limit_counts_characters_not_bytes_after_trimming():
    assert validate.comment_message(body({"message": "🎉" * 10}), 10) == "🎉" * 10
    assert validate.comment_message(body({"message": "  " + "a" * 10 + "  "}), 10) == "a" * 10
    with pytest.raises(InvalidComment) as info:
        validate.comment_message(body({"message": "a" * 11}), 10)
    assert info.value.code == "message_too_long"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"message": "caf\xe9"}', "invalid_utf8"),
        (b"", "invalid_json"),
        (b"{message: 1}", "invalid_json"),
        (b'{"message": "x"', "invalid_json"),
        (b'{"message": "x", "n": ' + b"1" * 5000 + b"}", "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
        (b'["message"]', "invalid_json"),
        (b'"message"', "invalid_json"),
        (b"null", "invalid_json"),
        (b"42", "invalid_json"),
    ],
)
def test_malformed_bodies_are_400(raw, code):
    with pytest.raises(BadRequest) as info:
        validate.comment_message(raw, 2000)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{}", "message_missing"),
        (b'{"msg": "hi"}', "message_missing"),
        (b'{"message": null}', "message_not_string"),
        (b'{"message": 5}', "message_not_string"),
        (b'{"message": ["hi"]}', "message_not_string"),
        (b'{"message": {"text": "hi"}}', "message_not_string"),
        (b'{"message": ""}', "message_empty"),
        (b'{"message": " \\n\\t\\u3000 "}', "message_empty"),
        (b'{"message": "a\\u0000b"}', "message_invalid"),
        (b'{"message": "\\ud800"}', "message_invalid"),
        (b'{"message": "x\\udfff y"}', "message_invalid"),
    ],
)
def test_unacceptable_comments_are_422(raw, code):
    with pytest.raises(InvalidComment) as info:
        validate.comment_message(raw, 2000)
    assert info.value.code == code


def test_escaped_surrogate_pair_is_one_valid_character():
    assert validate.comment_message(b'{"message": "\\ud83c\\udf89"}', 2000) == "🎉"


def test_last_event_id_header_wins_over_query():
    assert validate.last_event_id("5", "9") == 5
    assert validate.last_event_id(None, "9") == 9
    assert validate.last_event_id("", "9") == 9  # an empty header is no header
    assert validate.last_event_id("0", None) == 0
    assert validate.last_event_id(None, None) is None
    assert validate.last_event_id("", "") is None


@pytest.mark.parametrize(("header", "query"), [("abc", None), (None, "-1"), ("1.0", "3")])
def test_last_event_id_that_is_not_a_seq_is_400(header, query):
    with pytest.raises(BadRequest) as info:
        validate.last_event_id(header, query)
    assert info.value.code == "invalid_last_event_id"
