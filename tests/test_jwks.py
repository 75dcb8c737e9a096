"""livehub/auth.py + livehub/jwks.py against an identity provider's JWKS served over
real HTTP on 127.0.0.1 (tests/idp.py): RS256 and ES256, issuer/audience/kid checks,
algorithm confusion, key rotation without restart, and a JWKS that cannot be fetched."""

from __future__ import annotations

import hashlib
import hmac
import json

import jwt
import pytest
import trio
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from livehub.core.errors import KeysUnavailable, Unauthorized
from livehub.identity.auth import Identity, TokenVerifier, load_public_key
from livehub.identity.jwks import JwksKeys

from .idp import IdP, IdPServer, SigningKey

MIN_REFRESH = 0.3  # seconds between fetches at most; short so rotation tests run fast


@pytest.fixture
def idp():
    provider = IdP(keys=[SigningKey.new("RS256"), SigningKey.new("ES256")])
    server = IdPServer(provider).start()
    yield provider
    server.stop()


def make_verifier(idp: IdP, refresh: float = 300.0, **kw) -> TokenVerifier:
    keys = JwksKeys(idp.jwks_url, refresh, MIN_REFRESH, timeout_seconds=2.0)
    return TokenVerifier(
        jwks=keys, issuer=idp.issuer, audience=(idp.audience,), name_claim="name", **kw
    )


@pytest.fixture
async def verifier(idp, nursery):
    v = make_verifier(idp)
    await nursery.start(v.run)
    return v


async def test_rs256_and_es256_tokens_verify_by_kid(idp, verifier):
    with trio.fail_after(10):
        for key in idp.keys:
            token = idp.token("alice", key, name="Alice A.")
            assert await verifier.verify(token) == Identity("alice", "Alice A.")
            assert await verifier.verify_header("Bearer " + token) == Identity("alice", "Alice A.")


async def test_a_verified_token_is_remembered_not_fetched_again(idp, verifier):
    with trio.fail_after(10):
        token = idp.token("alice")
        await verifier.verify(token)
        fetched = idp.jwks_requests
        for _ in range(50):
            assert (await verifier.verify(token)).user_id == "alice"
        assert idp.jwks_requests == fetched


async def _refused(verifier: TokenVerifier, token: str, match: str) -> None:
    with trio.fail_after(10), pytest.raises(Unauthorized, match=match) as info:
        await verifier.verify(token)
    assert info.value.code == "unauthorized"


async def test_wrong_issuer_audience_kid_and_expired_are_refused(idp, verifier):
    await _refused(verifier, idp.token(iss="https://evil.example/"), "issuer")
    await _refused(verifier, idp.token(aud="someone-else"), "audience")
    await _refused(verifier, idp.token(headers={"kid": "no-such-key"}), "not in the")
    await _refused(verifier, idp.token(ttl=-10), "expired")
    await _refused(verifier, idp.token(sub=None), "sub")
    stranger = SigningKey.new("RS256", kid=idp.keys[0].kid)  # a known kid, another key
    await _refused(verifier, idp.token(key=stranger), "Signature verification failed")


async def test_a_missing_issuer_or_audience_claim_is_refused(idp, verifier):
    key = idp.keys[0]
    claims = {"sub": "alice", "exp": 2**31}
    no_aud = jwt.encode({**claims, "iss": idp.issuer}, key.private, "RS256", {"kid": key.kid})
    no_iss = jwt.encode({**claims, "aud": idp.audience}, key.private, "RS256", {"kid": key.kid})
    await _refused(verifier, no_aud, "aud")
    await _refused(verifier, no_iss, "iss")


async def test_bad_user_id_claims_are_refused(idp, verifier):
    for sub in ("al\x00ice", "al\x07ice", "al\udc80ice", "x" * 129, "", 7):
        await _refused(verifier, idp.token(sub=sub), "user id|Subject must be a string")


async def test_alg_confusion_and_none_are_refused(idp, verifier):
    rsa_key = idp.keys[0]
    pem = rsa_key.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    claims = {"sub": "mallory", "iss": idp.issuer, "aud": idp.audience, "exp": 2**31}
    # HS256 "signed" with the public key as the HMAC secret (PyJWT refuses to make one
    # from a PEM, so sign by hand).
    head = jwt.utils.base64url_encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}).encode()
    )
    body = jwt.utils.base64url_encode(json.dumps(claims).encode())
    sig = jwt.utils.base64url_encode(hmac.new(pem, head + b"." + body, hashlib.sha256).digest())
    confused = b".".join([head, body, sig]).decode()
    await _refused(verifier, confused, "'HS256' is not accepted")
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": rsa_key.kid})
    await _refused(verifier, unsigned, "'none' is not accepted")
    # An ES256 token claiming the RSA key's kid: the key's algorithm wins.
    es = idp.keys[1]
    swapped = jwt.encode(claims, es.private, algorithm="ES256", headers={"kid": rsa_key.kid})
    await _refused(verifier, swapped, "does not match")


async def test_key_rotation_needs_no_restart(idp, verifier):
    with trio.fail_after(15):
        old = idp.keys[0]
        old_token = idp.token("alice", old)
        assert (await verifier.verify(old_token)).user_id == "alice"
        await trio.sleep(MIN_REFRESH)  # past the rate limit of the start-up fetch
        new = SigningKey.new("RS256")
        idp.keys = [new, *idp.keys]  # the provider publishes a new key
        assert (await verifier.verify(idp.token("bob", new))).user_id == "bob"
        # The provider then drops the old key: once a refresh sees that, the old
        # token stops working, although it is remembered and not expired.
        idp.keys = [k for k in idp.keys if k is not old]
        await trio.sleep(MIN_REFRESH)
        await _refused(verifier, idp.token("carol", SigningKey.new("RS256")), "not in the")
        await _refused(verifier, old_token, "not in the")


async def test_periodic_refresh_drops_a_removed_key(idp, nursery):
    v = make_verifier(idp, refresh=0.5)
    await nursery.start(v.run)
    with trio.fail_after(10):
        token = idp.token("alice", idp.keys[0])
        assert (await v.verify(token)).user_id == "alice"
        idp.keys = idp.keys[1:]
        before = idp.jwks_requests
        while idp.jwks_requests == before:  # noqa: ASYNC110 (a counter of the IdP's thread)
            await trio.sleep(0.05)
        await trio.sleep(0.1)
        await _refused(v, token, "not in the")


async def test_a_flood_of_unknown_kids_fetches_at_most_once_per_interval(idp, verifier):
    with trio.fail_after(10):
        await verifier.verify(idp.token())  # start-up fetch done
        before = idp.jwks_requests
        started = trio.current_time()
        for i in range(200):
            with pytest.raises(Unauthorized):
                await verifier.verify(idp.token(headers={"kid": f"made-up-{i}"}))
        elapsed = trio.current_time() - started
        assert idp.jwks_requests - before <= 1 + elapsed / MIN_REFRESH


async def test_jwks_unreachable_at_start_is_503_then_recovers(idp, nursery):
    idp.down = True
    v = make_verifier(idp)
    await nursery.start(v.run)
    with trio.fail_after(15):
        with pytest.raises(KeysUnavailable) as info:
            await v.verify(idp.token())
        assert info.value.code == "jwks_unavailable"
        assert "cannot be fetched" in info.value.message
        idp.down = False
        while True:  # the next allowed fetch brings the keys
            try:
                assert (await v.verify(idp.token())).user_id == "alice"
                break
            except KeysUnavailable:
                await trio.sleep(0.1)


async def test_cached_keys_keep_working_while_the_jwks_is_down(idp, verifier):
    with trio.fail_after(10):
        assert (await verifier.verify(idp.token("alice"))).user_id == "alice"
        idp.down = True
        await trio.sleep(MIN_REFRESH)
        # A new token signed by a held key: verified without the provider.
        assert (await verifier.verify(idp.token("bob", idp.keys[1]))).user_id == "bob"
        # An unknown kid while the refresh fails: maybe a rotation we cannot see, 503.
        with pytest.raises(KeysUnavailable):
            await verifier.verify(idp.token(headers={"kid": "rotated-in"}))


async def test_jwks_with_no_usable_key_keeps_the_last_good_set(idp, verifier):
    with trio.fail_after(10):
        held = idp.keys[0]
        assert (await verifier.verify(idp.token("alice", held))).user_id == "alice"
        idp.keys = []  # an empty document is refused, the held keys stay
        await trio.sleep(MIN_REFRESH)
        with pytest.raises(KeysUnavailable):
            await verifier.verify(idp.token(key=held, headers={"kid": "x"}))
        assert (await verifier.verify(idp.token("bob", held))).user_id == "bob"


async def test_a_fixed_pem_public_key_verifies_and_refuses_hs256(idp, tmp_path):
    key = idp.keys[1]  # ES256
    pem = tmp_path / "idp.pem"
    pem.write_bytes(
        key.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    v = TokenVerifier(public_key=load_public_key(pem), issuer=idp.issuer, audience=("x", "y"))
    with trio.fail_after(10):
        assert (await v.verify(idp.token("dora", key, aud="y"))).user_id == "dora"
        await _refused(v, idp.token("dora", idp.keys[0], aud="y"), "'RS256' is not accepted")
        hs = jwt.encode({"sub": "m", "exp": 2**31}, "whatever-secret-0123456789abcdef")
        await _refused(v, hs, "'HS256' is not accepted")


def _forged(header: object, payload: bytes = b'{"sub":"a","exp":2147483647}') -> str:
    enc = jwt.utils.base64url_encode
    return b".".join([enc(json.dumps(header).encode()), enc(payload), enc(b"sig")]).decode()


@pytest.mark.parametrize(
    "token",
    [
        _forged({"alg": ["RS256"]}),
        _forged({"alg": {"x": 1}, "kid": "k"}),
        _forged({"alg": "RS256", "kid": 5}),
        _forged({"alg": "RS256", "kid": ["a"]}),
        _forged({"alg": "RS256"}, b"not json"),
        _forged({"alg": "ES256", "kid": "k" * 5000}),
        _forged(["not", "an", "object"]),
        "a.b",
        "é.é.é",
        "",
    ],
)
async def test_forged_tokens_are_always_a_401_never_another_error(idp, verifier, token):
    with trio.fail_after(10), pytest.raises(Unauthorized) as info:
        await verifier.verify(token)
    assert len(info.value.message) < 300
