"""Structured logs: one JSON object per line (or key=value), with the request id.

``configure()`` installs the one handler on the root logger (Hypercorn's error log
goes through it too). ``request_id`` is a context variable set per request by the
HTTP layer; every record logged while handling that request carries it.

What never goes into a log: message bodies, tokens, query strings (``?token=`` on
WebSocket URLs). The access line holds method, path, status, duration, node, request
id, and the client address.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import re
import sys
import time
import uuid

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "livehub_request_id", default=None
)

# An X-Request-Id we accept from a client or proxy: short and harmless in a log line.
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


# New request ids: a random per-process prefix and a counter. Unique across nodes and
# restarts like a uuid4, without a getrandom system call per request.
_ID_PREFIX = uuid.uuid4().hex[:16]
_id_counter = itertools.count(1)


def accept_request_id(header: str | None) -> str:
    """The client's ``X-Request-Id`` when it is a sane token, else a new one."""
    if header is not None and _VALID_ID.fullmatch(header):
        return header
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


def _fields(record: logging.LogRecord) -> dict[str, object]:
    out: dict[str, object] = {
        "ts": round(record.created, 6),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and value is not None:
            out[key] = value
    if record.exc_info:
        out["exc"] = logging.Formatter().formatException(record.exc_info)
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False, default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = []
        for key, value in _fields(record).items():
            text = str(value)
            if not text or any(c in text for c in ' "=\n'):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f"{key}={text}")
        return " ".join(parts)


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    """Log to stderr, one record per line, as ``fmt`` ("json" or "text": key=value)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter() if fmt == "text" else JsonFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)


access_log = logging.getLogger("livehub.access")


def log_access(method: str, path: str, status: int, started: float, **extra: object) -> None:
    """One access line (path only, never the query string)."""
    access_log.info(
        "request",
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            **extra,
        },
    )
