"""Cut connections that stop reading: TCP_USER_TIMEOUT on the listening sockets.

Hypercorn sends under a shielded cancel scope, so a viewer that stays connected but
never reads blocks its own handler forever once kernel buffers fill, and nothing in
the app can cancel that send. The kernel can: with TCP_USER_TIMEOUT set, a
connection whose sent data stays unacknowledged (zero-window probes included, Linux
>= 5.1) that long is aborted, the blocked send fails, and the handler unwinds.
Accepted sockets inherit the option from their listener.
"""

from __future__ import annotations

import os
import socket


def set_user_timeout_on_listeners(timeout_seconds: float) -> int:
    """Set TCP_USER_TIMEOUT on every listening TCP socket of this process.

    Returns how many listeners were changed (0 where the platform lacks the option).
    Works whether Hypercorn was started by ``livehub serve`` or by an operator.
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if option is None or not os.path.isdir("/proc/self/fd"):
        return 0
    changed = 0
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if sock.type != socket.SOCK_STREAM or sock.family not in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                continue
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                continue
            sock.setsockopt(socket.IPPROTO_TCP, option, int(timeout_seconds * 1000))
            changed += 1
        except OSError:
            continue
        finally:
            sock.close()
    return changed
