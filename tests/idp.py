"""A tiny identity provider (and embedding site) for tests: a real HTTP server on
127.0.0.1 in a thread, serving a JWKS that a test can rotate or take down, signing
RS256/ES256 tokens with its keys, and serving pages (the embed example) as another
origin than livehub's."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER_PATH = "/"  # the issuer is the server's base URL
JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: object

    @classmethod
    def new(cls, alg: str = "RS256", kid: str | None = None) -> SigningKey:
        if alg == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(alg)
        return cls(kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", alg, private)

    def jwk(self) -> dict:
        algo = jwt.algorithms.RSAAlgorithm if self.alg == "RS256" else jwt.algorithms.ECAlgorithm
        data = algo.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", "alg": self.alg}


@dataclass
class IdP:
    """What the HTTP server serves; mutate it from the test (under the GIL: plain
    attribute swaps)."""

    keys: list[SigningKey] = field(default_factory=list)
    audience: str = "livehub-test"
    down: bool = False  # the JWKS answers 503
    pages: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # path -> type, body
    jwks_requests: int = 0
    url: str = ""

    @property
    def issuer(self) -> str:
        return self.url + ISSUER_PATH

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    def token(
        self,
        sub: object = "alice",
        key: SigningKey | None = None,
        ttl: float = 600,
        headers: dict | None = None,
        **claims: object,
    ) -> str:
        key = key or self.keys[0]
        now = int(time.time())
        body = {"iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + ttl}
        if sub is not None:
            body["sub"] = sub
        body.update(claims)
        return jwt.encode(
            body, key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})}
        )


def _handler(idp: IdP):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == JWKS_PATH:
                idp.jwks_requests += 1
                if idp.down:
                    self._send(503, "text/plain", b"down")
                    return
                doc = {"keys": [k.jwk() for k in idp.keys]}
                self._send(200, "application/json", json.dumps(doc).encode())
                return
            if path == "/token":  # the embedding site's own "signed-in user" endpoint
                query = dict(
                    p.split("=", 1) for p in self.path.partition("?")[2].split("&") if "=" in p
                )
                user = query.get("user", "alice")
                token = idp.token(user, name=query.get("name", user).replace("+", " "))
                self._send(200, "application/json", json.dumps({"token": token}).encode())
                return
            if path in idp.pages:
                ctype, body = idp.pages[path]
                self._send(200, ctype, body)
                return
            self._send(404, "text/plain", b"not found")

    return Handler


class IdPServer:
    """Run ``idp`` on 127.0.0.1 (a free port) until :meth:`stop`."""

    def __init__(self, idp: IdP) -> None:
        self.idp = idp
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(idp))
        self._server.daemon_threads = True
        idp.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> IdPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
