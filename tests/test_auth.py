"""livehub/auth.py with a shared secret: HS256 bearer tokens, claims checked like
messages (printable, bounded user ids), iat/nbf leeway, the verified-token cache."""

from __future__ import annotations

import time

import jwt
import pytest

from livehub.config import Settings, SettingsError
from livehub.core.errors import Unauthorized
from livehub.identity.auth import Identity, TokenVerifier, bearer_token, mint

SECRET = "unit-test-secret-" + "0123456789abcdef" * 4


def verifier(**kw) -> TokenVerifier:
    return TokenVerifier(secret=SECRET, **kw)


def bearer(token: str) -> str:
    return f"Bearer {token}"


def _claims_token(claims: dict, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def _later() -> int:
    return int(time.time()) + 600


async def test_minted_token_verifies_to_its_user_and_name():
    v = verifier(name_claim="name")
    assert await v.verify(mint("alice", SECRET)) == Identity("alice", None)
    assert await v.verify_header(bearer(mint("bob", SECRET, name="Bob B."))) == Identity(
        "bob", "Bob B."
    )


def test_minted_token_carries_iat_and_exp():
    claims = jwt.decode(
        mint("bob", SECRET, 120, now=1_700_000_000), options={"verify_signature": False}
    )
    assert claims == {"sub": "bob", "iat": 1_700_000_000, "exp": 1_700_000_120}


@pytest.mark.parametrize("header", ["bearer {t}", "BEARER {t}", "  Bearer {t}  ", "Bearer   {t}"])
async def test_scheme_is_case_insensitive_and_whitespace_tolerant(header):
    assert (await verifier().verify_header(header.format(t=mint("carol", SECRET)))).user_id == (
        "carol"
    )


async def test_non_ascii_user_ids_round_trip():
    assert (await verifier().verify(mint("zoë-🎉", SECRET))).user_id == "zoë-🎉"


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
    "sub with NUL": bearer(_claims_token({"sub": "al\x00ice", "exp": _later()})),
    "sub with a control character": bearer(_claims_token({"sub": "al\x1bice", "exp": _later()})),
    "sub with a line break": bearer(_claims_token({"sub": "alice\nadmin", "exp": _later()})),
    "sub with a lone surrogate": bearer(_claims_token({"sub": "al\udc80ice", "exp": _later()})),
    "name with NUL": bearer(_claims_token({"sub": "a", "name": "x\x00", "exp": _later()})),
    "HS512": bearer(_claims_token({"sub": "alice", "exp": _later()}, algorithm="HS512")),
    "RS256 header on an HMAC": None,  # filled below
}


def _tampered() -> str:
    head, payload, sig = mint("alice", SECRET).split(".")
    other = mint("admin", SECRET).split(".")[1]
    assert other != payload
    return bearer(f"{head}.{other[:-2]}{payload[-2:]}.{sig}")


def _relabelled() -> str:
    """An HS256 token whose header claims RS256: no public key is configured."""
    _, payload, sig = mint("alice", SECRET).split(".")
    head = jwt.utils.base64url_encode(b'{"alg":"RS256","typ":"JWT"}').decode()
    return bearer(f"{head}.{payload}.{sig}")


BAD_HEADERS["tampered payload"] = _tampered()
BAD_HEADERS["RS256 header on an HMAC"] = _relabelled()


@pytest.mark.parametrize("case", BAD_HEADERS)
async def test_bad_headers_are_unauthorized(case):
    with pytest.raises(Unauthorized) as info:
        await verifier(name_claim="name").verify_header(BAD_HEADERS[case])
    assert info.value.code == "unauthorized"
    assert info.value.message


@pytest.mark.parametrize(
    ("sub", "words"),
    [("al\x00ice", "control"), ("al\udc80ice", "surrogate"), ("x" * 129, "longer than 128")],
)
async def test_a_bad_user_id_claim_says_what_is_wrong(sub, words):
    with pytest.raises(Unauthorized, match=words):
        await verifier().verify(_claims_token({"sub": sub, "exp": _later()}))


async def test_expired_token_says_so():
    with pytest.raises(Unauthorized, match="expired"):
        await verifier().verify(mint("alice", SECRET, 60, now=time.time() - 3600))


async def test_longest_allowed_user_id_is_accepted():
    token = _claims_token({"sub": "x" * 128, "exp": _later()})
    assert (await verifier().verify(token)).user_id == "x" * 128


async def test_display_names_are_trimmed_and_cut_and_optional():
    v = verifier(name_claim="name")
    name = await v.verify(_claims_token({"sub": "a", "name": "  " + "n" * 80, "exp": _later()}))
    assert name.user_name == "n" * 64
    for odd in ("   ", 42, None):
        t = _claims_token({"sub": "a", "name": odd, "exp": _later()})
        assert (await v.verify(t)).user_name is None
    # Without a name claim configured, a name in the token is ignored.
    assert (await verifier().verify(mint("a", SECRET, name="A"))).user_name is None


async def test_the_user_claim_is_configurable():
    token = _claims_token({"sub": "opaque", "email": "ann@example.org", "exp": _later()})
    assert (await verifier(user_claim="email").verify(token)).user_id == "ann@example.org"
    with pytest.raises(Unauthorized):
        await verifier(user_claim="uid").verify(token)


@pytest.mark.parametrize("claim", ["iat", "nbf"])
async def test_iat_and_nbf_get_the_clock_skew_leeway(claim):
    now = time.time()
    soon = _claims_token({"sub": "a", claim: int(now) + 20, "exp": _later()})
    late = _claims_token({"sub": "a", claim: int(now) + 60, "exp": _later()})
    assert (await verifier(leeway_seconds=30).verify(soon)).user_id == "a"
    with pytest.raises(Unauthorized, match="not valid yet"):
        await verifier(leeway_seconds=30).verify(late)
    with pytest.raises(Unauthorized, match="not valid yet"):
        await verifier(leeway_seconds=0).verify(soon)


async def test_the_leeway_does_not_extend_exp():
    token = _claims_token({"sub": "a", "exp": int(time.time()) - 5})
    with pytest.raises(Unauthorized, match="expired"):
        await verifier(leeway_seconds=30).verify(token)


async def test_a_remembered_token_is_not_served_past_its_exp():
    clock = [time.time()]
    v = verifier(clock=lambda: clock[0])
    token = mint("alice", SECRET, 60, now=clock[0])
    assert (await v.verify(token)).user_id == "alice"
    assert (await v.verify(token)).user_id == "alice"  # from the cache
    clock[0] += 61
    with pytest.raises(Unauthorized, match="expired"):
        await v.verify(token)


def test_settings_without_any_key_are_refused():
    with pytest.raises(SettingsError, match="LIVEHUB_JWT_JWKS_URL"):
        TokenVerifier.from_settings(Settings())


def test_an_unreadable_public_key_file_is_a_settings_error(tmp_path):
    bad = tmp_path / "key.pem"
    bad.write_text("not a key")
    with pytest.raises(SettingsError, match="LIVEHUB_JWT_PUBLIC_KEY"):
        TokenVerifier.from_settings(Settings(jwt_public_key=str(bad)))
    with pytest.raises(SettingsError, match="LIVEHUB_JWT_PUBLIC_KEY"):
        TokenVerifier.from_settings(Settings(jwt_public_key=str(tmp_path / "missing.pem")))


def test_bearer_token_takes_the_token_out_of_the_header():
    assert bearer_token("Bearer abc") == "abc"
    with pytest.raises(Unauthorized):
        bearer_token("Token abc")


async def test_claims_come_back_with_the_identity_read_only():
    token = mint("mod", SECRET, extra={"roles": ["moderator:v"], "sub": "ignored"})
    who = await verifier().verify(token)
    assert who.user_id == "mod" and who.claims["roles"] == ["moderator:v"]  # sub not overridden
    with pytest.raises(TypeError):
        who.claims["roles"] = ["moderator"]  # type: ignore[index]
    assert (await verifier().verify_header(f"Bearer {token}")).claims["roles"] == ["moderator:v"]
