"""create_app: the Quart-Trio app; the service runs in the lifespan nursery."""

from __future__ import annotations

import logging
import time

import trio
from quart import Response, g, request, websocket
from quart_trio import QuartTrio

from livehub.config import Settings, SettingsError
from livehub.http import comments, contract, cors, devtoken, errors, moderation, ops, viewer, ws
from livehub.http.front import front
from livehub.http.hypercorn_internals import capture_raw_send, install
from livehub.node import logs
from livehub.node.service import open_service
from livehub.node.sockets import set_user_timeout_on_listeners

log = logging.getLogger("livehub.http")


def create_app(settings: Settings | None = None) -> QuartTrio:
    """The livehub ASGI app. ``settings`` default: ``Settings.from_env()``.

    With ``cors_origins`` set, the Quart app is wrapped, outermost, in the CORS
    middleware (``cors.py``), which passes its attributes through.

    Raises:
        SettingsError: ``cors_origins`` holds something that is not an origin.
    """
    settings = settings or Settings.from_env()
    try:
        cors.parse_origins(settings.cors_origins)
    except ValueError as exc:
        raise SettingsError(f"LIVEHUB_CORS_ORIGINS: {exc}") from None
    contract.load()  # a broken docs/openapi.yaml stops the start, not a request
    # No framework /static route: our assets are the viewer blueprint's /assets.
    app = QuartTrio(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = None  # we enforce max_body_bytes ourselves (413 JSON)
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 5  # non-None: after_serving may await
    app.config["RESPONSE_TIMEOUT"] = 30
    # "/comments//stream" is a bad path, not a 308 redirect (HTML) to another one.
    app.url_map.merge_slashes = False
    app.settings = settings
    app.service = None
    app.listeners_tuned = False
    errors.install(app)
    app.register_blueprint(comments.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(viewer.bp)
    app.register_blueprint(devtoken.bp)
    app.register_blueprint(ws.bp)
    app.register_blueprint(moderation.bp)
    app.register_blueprint(contract.bp)

    @app.before_serving
    async def start_service() -> None:
        app.service = await app.nursery.start(_run_service, settings)
        _tune_listeners(app)

    @app.before_request
    async def tune_once() -> Response | None:
        # In-process servers create their listeners after startup: catch those too.
        if not app.listeners_tuned:
            _tune_listeners(app)
        g.started = time.perf_counter()
        g.request_id = logs.accept_request_id(request.headers.get("X-Request-Id"))
        logs.request_id.set(g.request_id)
        if request.path == "/readyz" and app.service is not None and app.service.gate.draining:
            # A balancer polling readiness stops sending here while the node drains.
            return errors.error_response(503, "shutting_down", "this node is shutting down")
        return None

    @app.after_request
    async def stamp(response: Response) -> Response:
        """Echo the request id, name the node, count refused posts, log the request."""
        rid = g.get("request_id") or logs.accept_request_id(None)
        response.headers["X-Request-Id"] = rid
        response.headers["X-Content-Type-Options"] = "nosniff"  # every response, assets too
        svc = app.service
        if svc is not None:
            response.headers["X-Livehub-Node"] = svc.node_id
            if svc.gate.draining:
                # Shutting down: no further requests on this connection, so Hypercorn
                # need not wait out graceful_timeout for a busy keep-alive client.
                response.headers["Connection"] = "close"
            if request.method == "POST" and response.status_code >= 400:
                if request.path.startswith("/comments/"):
                    svc.metrics.post_errors.labels(str(response.status_code)).inc()
        if settings.access_log:
            started = g.get("started") or time.perf_counter()
            logs.log_access(request.method, request.path, response.status_code, started)
        return response

    @app.before_websocket
    async def websocket_request_id() -> None:
        g.request_id = logs.accept_request_id(websocket.headers.get("X-Request-Id"))
        logs.request_id.set(g.request_id)
        if settings.access_log:
            logs.access_log.info("websocket", extra={"path": websocket.path})

    install()  # Hypercorn's send/close race fixed, for plain hypercorn too
    # The hot routes are raw ASGI in front of Quart (front.py); the raw send capture
    # lets the SSE route find Hypercorn's socket for direct writes. ``app.front`` is
    # what the lean server calls: CORS (when configured) then the routes, two frames
    # shallower per request and per stream than Quart.__call__ and the capture.
    routes = front(app)
    app.front = cors.wrap(routes, settings.cors_origins)
    app.asgi_app = capture_raw_send(routes)
    return cors.wrap(app, settings.cors_origins)  # outermost: covers every route


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
