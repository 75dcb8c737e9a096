"""/healthz (process up), /readyz (Postgres answers), /metrics (Prometheus text)."""

from __future__ import annotations

import trio
from quart import Blueprint, Response, current_app

from livehub.core.errors import StoreUnavailable
from livehub.http.errors import error_response
from livehub.node.metrics import CONTENT_TYPE

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
async def healthz() -> Response:
    return Response('{"status":"ok"}', content_type="application/json")


@bp.get("/readyz")
async def readyz() -> Response:
    svc = current_app.service
    try:
        with trio.fail_after(svc.settings.ready_timeout_seconds):
            await svc.store.ping()
    except (StoreUnavailable, trio.TooSlowError):
        return error_response(503, "store_unavailable", "the database is not answering")
    return Response('{"status":"ready"}', content_type="application/json")


@bp.get("/metrics")
async def metrics() -> Response:
    return Response(current_app.service.metrics.render(), content_type=CONTENT_TYPE)
