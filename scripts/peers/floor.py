"""The stack's floor: a bare Trio + h11 server answering every request with a canned 201.

A peer for scripts/bench (issue 9's targets are ratios to it): it parses each request
with h11 exactly as livehub's lean server does, reads and drops the body, and answers
with one send_all, with no app, no database and no ASGI. Run:
    python scripts/peers/floor.py 127.0.0.1:PORT
"""

from __future__ import annotations

import sys

import h11
import trio

BODY = b'{"video_id":"v","seq":1,"user_id":"u","message":"m","created_at":"x"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def handle(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return
                conn.receive_data(data)
                continue
            if isinstance(event, h11.EndOfMessage):
                out = conn.send(h11.Response(status_code=201, headers=HEADERS))
                out += conn.send(h11.Data(data=BODY)) + conn.send(h11.EndOfMessage())
                await stream.send_all(out)
                if conn.our_state is not h11.DONE:
                    return  # Connection: close, HTTP/1.0
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return
    except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await stream.aclose()


def main() -> None:
    host, _, port = sys.argv[1].rpartition(":")

    async def serve() -> None:
        await trio.serve_tcp(handle, int(port), host=host)

    trio.run(serve)


if __name__ == "__main__":
    main()
