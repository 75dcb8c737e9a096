"""The HMAC signature header of proxy and webhook requests (pure)."""

from __future__ import annotations

import hashlib
import hmac

from livehub.core import signing

SECRET = b"s3cret"


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    header = signing.sign(SECRET, b'{"a":1}', 1700000000)
    expected = hmac.new(SECRET, b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_verify_accepts_the_signed_body_only():
    header = signing.sign(SECRET, b"body", 1000)
    assert signing.verify(SECRET, b"body", header, now=1000)
    assert not signing.verify(SECRET, b"body!", header, now=1000)
    assert not signing.verify(b"other", b"body", header, now=1000)


def test_verify_refuses_old_and_future_timestamps():
    header = signing.sign(SECRET, b"body", 1000)
    assert signing.verify(SECRET, b"body", header, now=1000 + 299)
    assert not signing.verify(SECRET, b"body", header, now=1000 + 301)
    assert not signing.verify(SECRET, b"body", header, now=1000 - 301)


def test_a_changed_timestamp_breaks_the_signature():
    sig = signing.signature(SECRET, b"body", 1000)
    assert not signing.verify(SECRET, b"body", f"t=1001,v1={sig}", now=1001)


def test_malformed_headers_do_not_verify():
    for header in ("", "t=1", "v1=abc", "t=x,v1=abc", "garbage"):
        assert not signing.verify(SECRET, b"body", header, now=1)


def test_several_v1_values_any_may_match():
    good = signing.signature(SECRET, b"b", 5)
    assert signing.verify(SECRET, b"b", f"t=5,v1=deadbeef,v1={good}", now=5)
