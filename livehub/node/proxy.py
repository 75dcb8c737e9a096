"""PublishProxy: the integrator's verdict on each post before it is stored.

A per-video stage in front of the video's post queue (docs/ARCHITECTURE.md, "The
publish proxy"). The first post to a video starts that video's reviewer task in the
proxy's own nursery; while its request is in flight, further posts to the video
queue and go, all together, in the next request (the same group commit as the
batcher's, one step earlier). So a slow proxy holds back only its own video's posts,
never another video's, never the insert merger; and there is one request in flight
per video at most, on a bounded pool of kept-alive connections.

Resource handling: ``run`` owns the HTTP client (httpx, on Trio through anyio) and the
reviewer tasks; leaving it cancels them, and any post still waiting is answered by
the cancellation of its own request.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import NoReturn

import httpx
import trio

from livehub.actors.messages import Reply
from livehub.config import Settings, SettingsError
from livehub.core import signing
from livehub.core.errors import Overloaded, ProxyUnavailable, Rejected
from livehub.core.model import Draft
from livehub.core.proxywire import (
    Accept,
    Candidate,
    Invalid,
    ProxyResponseError,
    Reject,
    Verdict,
    decode_response,
    encode_request,
)
from livehub.node.hookmetrics import HookMetrics

log = logging.getLogger("livehub.node.proxy")

MAX_PENDING_PER_VIDEO = 4096  # posts waiting for one video's next request (as its post queue)
MAX_ANSWER_BYTES = 1024 * 1024  # a proxy's answer larger than this is not an answer
RETRY_AFTER_SECONDS = 1.0  # Retry-After of a 503 under the closed policy
POLICIES = ("open", "closed")


@dataclasses.dataclass(eq=False)
class _Item:
    draft: Draft
    candidate: Candidate
    max_chars: int
    reply: Reply[Draft] = dataclasses.field(default_factory=Reply)


def check_url(name: str, url: str) -> None:
    """Raises SettingsError unless ``url`` is an absolute http(s) URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise SettingsError(f"{name}={url!r} is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise SettingsError(f"{name}={url!r} must be an http:// or https:// URL")


def check_settings(settings: Settings) -> None:
    """The publish proxy's and the webhooks' settings, checked before connecting.

    Raises:
        SettingsError: a URL that is not http(s), a URL without its secret, or a
            failure policy other than open/closed.
    """
    if settings.publish_proxy_url:
        if settings.publish_proxy_failure not in POLICIES:
            raise SettingsError(
                "LIVEHUB_PUBLISH_PROXY_FAILURE must be 'open' or 'closed', not "
                f"{settings.publish_proxy_failure!r}"
            )
        if not settings.publish_proxy_secret:
            raise SettingsError("LIVEHUB_PUBLISH_PROXY_URL needs LIVEHUB_PUBLISH_PROXY_SECRET")
        check_url("LIVEHUB_PUBLISH_PROXY_URL", settings.publish_proxy_url)
    if settings.webhook_url:
        if not settings.webhook_secret:
            raise SettingsError("LIVEHUB_WEBHOOK_URL needs LIVEHUB_WEBHOOK_SECRET")
        check_url("LIVEHUB_WEBHOOK_URL", settings.webhook_url)


class PublishProxy:
    def __init__(
        self,
        settings: Settings,
        metrics: HookMetrics,
        max_chars: Callable[[str], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Raises SettingsError for bad settings (see ``check_settings``)."""
        check_settings(settings)
        self._url = settings.publish_proxy_url
        self._secret = settings.publish_proxy_secret.encode("utf-8")
        self._timeout = settings.publish_proxy_timeout_seconds
        self._closed = settings.publish_proxy_failure == "closed"
        self._batch_max = max(1, settings.publish_proxy_max_batch)
        self._connections = max(1, settings.publish_proxy_max_connections)
        self._metrics = metrics
        self._max_chars = max_chars
        self._clock = clock
        self._queues: dict[str, list[_Item]] = {}
        self._client: httpx.AsyncClient | None = None
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> NoReturn:
        limits = httpx.Limits(
            max_connections=self._connections, max_keepalive_connections=self._connections
        )
        async with (
            httpx.AsyncClient(limits=limits, timeout=self._timeout) as client,
            trio.open_nursery() as nursery,
        ):
            self._client, self._nursery = client, nursery
            task_status.started(self)
            await trio.sleep_forever()

    async def review(
        self,
        video_id: str,
        draft: Draft,
        client_ip: str | None = None,
        transport: str = "http",
    ) -> Draft:
        """The draft to store: ``draft`` itself, or with the proxy's changed message.

        Raises:
            Rejected: the proxy rejected it (403 ``rejected``, its reason).
            ProxyUnavailable: the proxy failed and the policy is closed (503).
            Overloaded: too many posts wait for this video's proxy (503).
        """
        if self._nursery is None:
            raise ProxyUnavailable("the publish proxy is not started", RETRY_AFTER_SECONDS)
        queue = self._queues.get(video_id)
        if queue is None:
            queue = self._queues[video_id] = []
            self._nursery.start_soon(self._serve_video, video_id, queue, name=f"proxy:{video_id}")
        elif len(queue) >= MAX_PENDING_PER_VIDEO:
            raise Overloaded("too many posts wait for the publish proxy")
        candidate = Candidate(draft.user_id, draft.message, draft.user_name, client_ip, transport)
        item = _Item(draft, candidate, self._max_chars(video_id))
        queue.append(item)
        try:
            return await item.reply.wait()
        except BaseException:
            item.reply.abandoned = True  # not sent yet: skipped; sent: the answer is dropped
            raise

    async def _serve_video(self, video_id: str, queue: list[_Item]) -> None:
        """Review the video's queued posts, one request at a time, until none wait."""
        batch: list[_Item] = []
        try:
            while queue:
                batch = [i for i in queue[: self._batch_max] if not i.reply.abandoned]
                del queue[: self._batch_max]
                if not batch:
                    continue
                try:
                    await self._review(video_id, batch)
                except Exception:  # a bug of ours must not take the node down
                    log.exception("publish proxy: review failed")
                    for item in batch:
                        self._answer(item, Invalid("error"))
        finally:
            if self._queues.get(video_id) is queue:
                del self._queues[video_id]
            for item in [*batch, *queue]:  # cancelled (the node stops): nobody is left
                # waiting (a reply already answered keeps its answer)
                item.reply.fail(ProxyUnavailable("the node is stopping", RETRY_AFTER_SECONDS))

    async def _review(self, video_id: str, batch: list[_Item]) -> None:
        body = encode_request(video_id, [i.candidate for i in batch])
        headers = {
            "content-type": "application/json",
            signing.SIGNATURE_HEADER: signing.sign(self._secret, body, int(self._clock())),
        }
        started = time.perf_counter()
        verdicts: list[Verdict] | None = None
        outcome = "ok"
        with trio.move_on_after(self._timeout) as scope:  # pool wait and connect included
            try:
                assert self._client is not None
                resp = await self._client.post(self._url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                outcome = "error"
                log.warning("publish proxy: %s: %s", type(exc).__name__, exc)
            else:
                if not 200 <= resp.status_code < 300:
                    outcome = "status"
                    log.warning("publish proxy answered %s", resp.status_code)
                elif len(resp.content) > MAX_ANSWER_BYTES:
                    outcome = "invalid"
                    log.warning("publish proxy: answer larger than %s bytes", MAX_ANSWER_BYTES)
                else:
                    try:
                        limits = [i.max_chars for i in batch]
                        verdicts = decode_response(resp.content, len(batch), limits)
                    except ProxyResponseError as exc:
                        outcome = "invalid"
                        log.warning("publish proxy: %s", exc)
        if scope.cancelled_caught:
            outcome = "timeout"
            log.warning("publish proxy: no answer within %ss", self._timeout)
        self._metrics.proxy_requests.labels(outcome).inc()
        self._metrics.proxy_latency.observe(time.perf_counter() - started)
        self._metrics.proxy_batch.observe(len(batch))
        if verdicts is None:
            verdicts = [Invalid(outcome)] * len(batch)
        for item, verdict in zip(batch, verdicts, strict=True):
            self._answer(item, verdict)

    def _answer(self, item: _Item, verdict: Verdict) -> None:
        posts = self._metrics.proxy_posts
        if isinstance(verdict, Accept):
            if verdict.message is None or verdict.message == item.draft.message:
                posts.labels("accept").inc()
                item.reply.set(item.draft)
            else:
                posts.labels("modify").inc()
                item.reply.set(dataclasses.replace(item.draft, message=verdict.message))
        elif isinstance(verdict, Reject):
            posts.labels("reject").inc()
            item.reply.fail(Rejected(verdict.reason))
        else:
            if verdict.why not in ("error", "status", "invalid", "timeout"):
                log.warning("publish proxy: unusable result: %s", verdict.why)
            if self._closed:
                posts.labels("failed_closed").inc()
                item.reply.fail(
                    ProxyUnavailable("the publish proxy is unavailable; retry", RETRY_AFTER_SECONDS)
                )
            else:
                posts.labels("failed_open").inc()
                item.reply.set(item.draft)
