"""/healthz (process up), /readyz (which shards of Postgres answer), /metrics (Prometheus text)."""

from __future__ import annotations

import json

from quart import Blueprint, Response, current_app

from livehub.http.errors import error_response
from livehub.node.metrics import CONTENT_TYPE

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
async def healthz() -> Response:
    return Response('{"status":"ok"}', content_type="application/json")


@bp.get("/readyz")
async def readyz() -> Response:
    """200 while at least one shard answers (``"status": "degraded"`` when some do
    not): a shard that is down takes down only its own videos, on every node alike,
    so taking nodes out of the balancer would only take the other shards' videos
    down with it. 503 (the error shape) when no shard answers. ``shards`` says which
    ones answer."""
    svc = current_app.service
    answered = await svc.shards_answering()
    shards = [{"shard": i, "ok": ok} for i, ok in enumerate(answered)]
    if not any(answered):
        return error_response(503, "store_unavailable", "the database is not answering")
    status = "ready" if all(answered) else "degraded"
    return Response(
        json.dumps({"status": status, "shards": shards}), content_type="application/json"
    )


@bp.get("/metrics")
async def metrics() -> Response:
    return Response(current_app.service.metrics.render(), content_type=CONTENT_TYPE)
