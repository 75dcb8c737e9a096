"""livehub/auth.py: HS256 bearer tokens whose ``sub`` is the user id."""

from __future__ import annotations

import time

import jwt
import pytest

from livehub.auth import mint, user_from_header, verify
from livehub.errors import Unauthorized

SECRET = "unit-test-secret-" + "0123456789abcdef" * 4


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_minted_token_verifies_to_its_user():
    token = mint("alice", SECRET)
    assert verify(token, SECRET) == "alice"
    assert user_from_header(bearer(token), SECRET) == "alice"


def test_minted_token_carries_iat_and_exp():
    claims = jwt.decode(
        mint("bob", SECRET, 120, now=1_700_000_000), options={"verify_signature": False}
    )
    assert claims == {"sub": "bob", "iat": 1_700_000_000, "exp": 1_700_000_120}


@pytest.mark.parametrize("header", ["bearer {t}", "BEARER {t}", "  Bearer {t}  ", "Bearer   {t}"])
def test_scheme_is_case_insensitive_and_whitespace_tolerant(header):
    assert user_from_header(header.format(t=mint("carol", SECRET)), SECRET) == "carol"


def test_non_ascii_user_ids_round_trip():
    assert user_from_header(bearer(mint("zoë-🎉", SECRET)), SECRET) == "zoë-🎉"


def _claims_token(claims: dict, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _later() -> int:
    return int(time.time()) + 600


BAD_HEADERS = {
    "missing": None,
    "empty": "",
    "scheme only": "Bearer",
    "scheme and spaces": "Bearer    ",
    "basic": "Basic YWxpY2U6cHc=",
    "token without scheme": mint("alice", SECRET),
    "garbage": "Bearer not.a.jwt",
    "wrong secret": bearer(mint("alice", "another-secret-0123456789abcdef-xyz")),
    "expired": bearer(mint("alice", SECRET, 60, now=time.time() - 3600)),
    "tampered payload": None,  # filled below
    "alg none": bearer(_claims_token({"sub": "alice", "exp": _later()}, "", "none")),
    "no exp": bearer(_claims_token({"sub": "alice"})),
    "no sub": bearer(_claims_token({"exp": _later()})),
    "blank sub": bearer(_claims_token({"sub": "   ", "exp": _later()})),
    "numeric sub": bearer(_claims_token({"sub": 42, "exp": _later()})),
    "sub too long": bearer(_claims_token({"sub": "x" * 129, "exp": _later()})),
    "HS512": bearer(_claims_token({"sub": "alice", "exp": _later()}, algorithm="HS512")),
}


def _tampered() -> str:
    head, payload, sig = mint("alice", SECRET).split(".")
    other = mint("admin", SECRET).split(".")[1]
    assert other != payload
    return bearer(f"{head}.{other[:-2]}{payload[-2:]}.{sig}")


BAD_HEADERS["tampered payload"] = _tampered()


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_bad_headers_are_unauthorized(case):
    with pytest.raises(Unauthorized) as info:
        user_from_header(BAD_HEADERS[case], SECRET)
    assert info.value.code == "unauthorized"
    assert info.value.message


def test_expired_token_says_so():
    with pytest.raises(Unauthorized, match="expired"):
        verify(mint("alice", SECRET, 60, now=time.time() - 3600), SECRET)


def test_longest_allowed_user_id_is_accepted():
    assert verify(_claims_token({"sub": "x" * 128, "exp": _later()}), SECRET) == "x" * 128


def test_claims_come_back_with_the_user_read_only():
    from livehub.auth import claims_from_header, verify_claims

    key = "k" * 32
    token = mint("mod", key, extra={"roles": ["moderator:v"], "sub": "ignored"})
    user, claims = verify_claims(token, key)
    assert user == "mod" and claims["roles"] == ["moderator:v"]  # extra cannot override sub
    with pytest.raises(TypeError):
        claims["roles"] = ["moderator"]  # type: ignore[index]
    assert claims_from_header(f"Bearer {token}", key)[0] == "mod"
    with pytest.raises(Unauthorized):
        claims_from_header("Basic abc", key)
