"""Load tester for livehub (and its peer, nginx + nchan): SSE viewers, posters, delivery audit.

Run it with ``python -m livehub_loadtest --help`` or ``scripts/loadtest``.
The pure parts (``http1``, ``sse``, ``stats``, ``audit``) never import trio.
"""
