"""A demo "site" for examples/embed.html: serves the page and plays the identity
provider, so the embedding can be tried on one machine without an account anywhere.

It makes an RSA key at start, publishes it as a JWKS and signs an RS256 token for
whatever ``?user=`` asks (a real site signs only the person who logged in). Run it
with livehub's venv (it uses PyJWT and cryptography, livehub's dependencies):

    .venv/bin/python examples/embed_site.py --port 8080 &
    LIVEHUB_JWT_JWKS_URL=http://127.0.0.1:8080/.well-known/jwks.json \\
    LIVEHUB_JWT_ISSUER=http://127.0.0.1:8080 LIVEHUB_JWT_AUDIENCE=livehub \\
    LIVEHUB_CORS_ORIGINS=http://127.0.0.1:8080 scripts/run
    # then open http://127.0.0.1:8080/?user=maya
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

PAGE = Path(__file__).with_name("embed.html")
AUDIENCE = "livehub"
KID = "demo-1"
TOKEN_TTL_SECONDS = 3600


class DemoSite:
    """The page, /token and /.well-known/jwks.json on 127.0.0.1:``port`` (0: any)."""

    def __init__(self, port: int = 0) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def jwks_url(self) -> str:
        return self.url + "/.well-known/jwks.json"

    def token(self, user: str, name: str | None = None, ttl: int = TOKEN_TTL_SECONDS) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "aud": AUDIENCE, "sub": user, "iat": min(now, now + ttl)}
        claims.update(exp=now + ttl, name=name or user)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KID})

    def jwks(self) -> dict:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}

    def _handler(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, ctype: str, body: bytes, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path in ("/", "/embed.html"):
                    self._send("text/html; charset=utf-8", PAGE.read_bytes())
                elif parts.path == "/token":
                    token = site.token(query.get("user", "guest"), query.get("name"))
                    self._send("application/json", json.dumps({"token": token}).encode())
                elif parts.path == "/.well-known/jwks.json":
                    self._send("application/json", json.dumps(site.jwks()).encode())
                else:
                    self._send("text/plain", b"not found", 404)

        return Handler

    def start(self) -> DemoSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    port = parser.parse_args().port
    site = DemoSite(port).start()
    print(f"demo site on {site.url} (JWKS {site.jwks_url}); Ctrl-C stops it")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        site.stop()


if __name__ == "__main__":
    main()
