"""The request body of a Quart route, bounded in size (413) and time (408).

The raw ASGI routes read theirs with ``raw.Request.body``; the Quart routes that take a
body (moderation, the dev token) use this.
"""

from __future__ import annotations

import trio
from quart import request

from livehub.core.errors import PayloadTooLarge, RequestTimeout


async def read_body(max_bytes: int, timeout_seconds: float) -> bytes:
    """The request body: 413 past ``max_bytes``, 408 when it stalls.

    Raises:
        PayloadTooLarge, RequestTimeout.
    """
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    with trio.move_on_after(timeout_seconds):
        async for chunk in request.body:
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    raise RequestTimeout("the request body did not arrive in time")
