"""create_app: the Quart-Trio app; the service runs in the lifespan nursery."""

from __future__ import annotations

import logging

import trio
from quart_trio import QuartTrio

from ..config import Settings
from ..service import open_service
from ..sockets import set_user_timeout_on_listeners
from . import comments, devtoken, errors, ops, stream, viewer, ws

log = logging.getLogger("livehub.http")


def create_app(settings: Settings | None = None) -> QuartTrio:
    """The livehub ASGI app. ``settings`` default: ``Settings.from_env()``."""
    settings = settings or Settings.from_env()
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # we enforce max_body_bytes ourselves (413 JSON)
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 5  # non-None: after_serving may await
    app.config["RESPONSE_TIMEOUT"] = 30
    app.settings = settings
    app.service = None
    app.listeners_tuned = False
    errors.install(app)
    app.register_blueprint(comments.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(viewer.bp)
    app.register_blueprint(devtoken.bp)
    app.register_blueprint(ws.bp)

    @app.before_serving
    async def start_service() -> None:
        if not settings.jwt_secret:
            raise RuntimeError("LIVEHUB_JWT_SECRET is not set")
        app.service = await app.nursery.start(_run_service, settings)
        _tune_listeners(app)

    @app.before_request
    async def tune_once() -> None:
        # In-process servers create their listeners after startup: catch those too.
        if not app.listeners_tuned:
            _tune_listeners(app)

    return app


def _tune_listeners(app: QuartTrio) -> None:
    seconds = app.settings.stall_timeout_seconds
    n = set_user_timeout_on_listeners(seconds)
    if n:
        app.listeners_tuned = True
        log.info("stall timeout %.0fs set on %d listener(s)", seconds, n)


async def _run_service(settings: Settings, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with open_service(settings) as service:
        task_status.started(service)
        await trio.sleep_forever()
