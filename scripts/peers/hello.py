"""A raw ASGI hello for scripts/bench: reads the body, answers a canned 201.

Served by Hypercorn's trio worker (``hypercorn -k trio scripts.peers.hello:app``) or
by livehub's lean layer (``python scripts/peers/hello.py --lean 127.0.0.1:PORT``), so
a run shows what each server layer costs by itself, with no livehub work.
"""

from __future__ import annotations

import sys

BODY = b'{"video_id":"v","seq":1,"user_id":"u","message":"m","created_at":"x"}'


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    import trio
    from hypercorn.config import Config

    from livehub.http.lean import serve_lean

    config = Config()
    config.bind = [sys.argv[-1]]
    trio.run(lambda: serve_lean(app, config, body_timeout=10))


if __name__ == "__main__":
    main()
