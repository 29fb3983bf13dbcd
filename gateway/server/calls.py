"""Call-center endpoints: Twilio Media Streams in, transcripts out.

Routes this module adds to the :class:`~gateway.server.app.Gateway` (through :class:`Host`):

``WS /v1/twilio``
    Twilio Media Streams (``<Start><Stream url="wss://HOST/v1/twilio">``).
    Refused with HTTP 403 before the upgrade unless it carries a valid
    ``X-Twilio-Signature`` (when a Twilio auth token is configured) or a
    valid API key (for bridges and the bench); with neither configured it is
    open, and with only API keys configured a signature cannot be checked,
    so an API key is required.
``WS /v1/calls/<call id>/events``
    Live events of a call (a Twilio ``callSid``, or a listen stream's
    request id) for an agent-assist screen: ``Subscribed``, then
    ``StreamStarted``, the streams' messages (Results with ``speaker``),
    ``StreamEnded`` and ``CallEnded``, after which the socket closes 1000.
``GET /v1/transcripts[?call_id=..&limit=..]`` and ``GET /v1/transcripts/<stream id>?format=json|text|srt|vtt``
    Stored transcripts (when the store is enabled).

Subscriber and transcript routes need an API key when keys are configured,
and then show only the caller's tenant's streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sized
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.core.errors import (
    BadRequest,
    CloseCode,
    Forbidden,
    HandshakeError,
    ServerFull,
    SlowSubscriber,
    Unauthorized,
)
from gateway.core.params import StreamParams
from gateway.engines.base import Engine
from gateway.protocols.twilio import signature_valid, signed_url
from gateway.protocols.twilio_session import TwilioSession
from gateway.server.auth import Principal
from gateway.server.config import ServerConfig
from gateway.server.http import body_response, error_response, json_response
from gateway.server.metrics import GatewayMetrics, ObservedFanout
from gateway.transcripts.exports import ExportFormat, render
from gateway.transcripts.hub import Hub, Subscription
from gateway.transcripts.records import StreamInfo, StreamKind, StreamRecord, channel_labels
from gateway.transcripts.store import TranscriptStore
from gateway.transcripts.webhook import WebhookPoster, check_url


class Host(Protocol):
    """What the call center needs of the gateway that mounts it (kept abstract so the
    gateway imports this module and never the other way round)."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def engines(self) -> Mapping[str, Engine]: ...

    @property
    def default_model(self) -> str: ...

    @property
    def active(self) -> Sized: ...

    @property
    def metrics(self) -> GatewayMetrics: ...

    @property
    def draining(self) -> bool: ...

    def principal(self, request: Request | None) -> Principal: ...


log = logging.getLogger(__name__)

TWILIO_PATH = "/v1/twilio"
CALLS_PREFIX = "/v1/calls/"
TRANSCRIPTS_PATH = "/v1/transcripts"
SEND_TIMEOUT_S = 10.0
"""A subscriber whose socket takes longer than this to accept one event is dropped."""
SHUTDOWN_DRAIN_S = 5.0


class CallCenter:
    """Owns the transcript store, the live hub and the webhook of one gateway."""

    def __init__(self, gateway: Host) -> None:
        self.gateway = gateway
        config = gateway.config
        self.hub = Hub(config.subscriber_queue)
        self.store = TranscriptStore(config.store_path) if config.store_path else None
        self.webhook = WebhookPoster(check_url(config.webhook_url)) if config.webhook_url else None
        self.fanout = ObservedFanout(self.store, self.hub, self.webhook, gateway.metrics)
        self.calls: dict[str, TwilioSession] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.ws_routes: dict[str, Callable[[ServerConnection], Awaitable[None]]] = {
            TWILIO_PATH: self.twilio,
            CALLS_PREFIX: self.subscriber,
        }
        self.ws_checks: dict[str, Callable[[Request], Response | None]] = {
            TWILIO_PATH: self.check_twilio,
            CALLS_PREFIX: self.check_subscriber,
        }
        self.http_routes: dict[str, Callable[[Request], Awaitable[Response]]] = {
            TRANSCRIPTS_PATH: self.list_transcripts,
            TRANSCRIPTS_PATH + "/": self.get_transcript,
        }

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        if self.store is not None:
            await self.store.start()
        if self.webhook is not None:
            self._tasks.append(asyncio.create_task(self.webhook.run(), name="webhook"))

    async def aclose(self) -> None:
        """After every stream ended: deliver what is queued, then stop."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.webhook is not None and self.webhook.queued:
            try:
                async with asyncio.timeout(SHUTDOWN_DRAIN_S):
                    await self.webhook.drain()
            except TimeoutError:
                log.warning("webhook: %d events left undelivered at shutdown", self.webhook.queued)
        if self.store is not None:
            await self.store.aclose()

    def stats(self) -> dict[str, Any]:
        return {
            "active_calls": len(self.calls),
            "store": None if self.store is None else {"commits": self.store.commits, "writes": self.store.writes},
            "store_errors": self.fanout.store_errors,
            "subscribers_dropped": self.hub.dropped,
            "webhook": None if self.webhook is None else self.webhook.stats.as_dict(),
        }

    # -- listen streams -------------------------------------------------------

    async def begin_listen(self, request_id: str, params: StreamParams, tenant: str) -> None:
        """Record a /v1/listen stream (its call id is its request id)."""
        settings = {
            "encoding": params.encoding.value,
            "sample_rate": params.sample_rate,
            "channels": params.channels,
            "multichannel": params.multichannel,
            "interim_results": params.interim_results,
            "endpointing": params.endpointing_ms,
            "language": params.language,
            "model": params.model,
            "tags": list(params.tags),
        }
        info = StreamInfo(
            request_id,
            request_id,
            StreamKind.LISTEN,
            tenant,
            channel_labels(params.output_channels),
            datetime.now(UTC),
            settings,
        )
        await self.fanout.begin(info)

    async def end_listen(self, request_id: str) -> None:
        await self.fanout.end(request_id)

    # -- auth -----------------------------------------------------------------

    def _tenant(self, request: Request) -> str | None:
        """The caller's tenant when keys are configured (None: open gateway). Raises Unauthorized."""
        principal = self.gateway.principal(request)
        return principal.tenant if self.gateway.config.api_keys else None

    def _has_key(self, request: Request) -> str | None:
        """The tenant of a valid API key the request carries, else None."""
        if not self.gateway.config.api_keys:
            return None
        try:
            return self.gateway.principal(request).tenant
        except Unauthorized:
            return None

    # -- Twilio ---------------------------------------------------------------

    def check_twilio(self, request: Request) -> Response | None:
        """Before the upgrade: an API key, or Twilio's signature of the URL it connected to."""
        request_id = str(uuid.uuid4())
        config = self.gateway.config
        if self._has_key(request) is not None:
            return None
        token = config.twilio_auth_token
        if token:
            url = signed_url(config.public_url, request.headers.get("Host"), request.path)
            if signature_valid(token, url, request.headers.get("X-Twilio-Signature")):
                return None
            log.warning("twilio handshake refused: bad or missing X-Twilio-Signature for %s", url)
            error: HandshakeError = Forbidden(f"X-Twilio-Signature missing or not valid for {url}")
            return error_response(error, request_id)
        if config.api_keys:
            error = Forbidden("this gateway needs API keys; configure a Twilio auth token to accept Twilio streams")
            return error_response(error, request_id)
        return None

    async def twilio(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        gateway = self.gateway
        if gateway.draining:
            # Upgraded in the instant the drain began: the handshake check came just before it.
            await connection.close(CloseCode.TRY_AGAIN_LATER, ServerFull("the server is shutting down").reason)
            return
        if len(gateway.active) + len(self.calls) >= gateway.config.max_streams:
            full = ServerFull(f"server is at its limit of {gateway.config.max_streams} streams; retry later")
            await connection.close(full.code, full.reason)
            return
        tenant = self._has_key(connection.request) or gateway.config.twilio_tenant
        session = TwilioSession(
            connection,
            gateway.engines[gateway.default_model],
            self.fanout,
            tenant=tenant,
            idle_timeout_s=gateway.config.idle_timeout_s,
        )
        key = str(connection.id)
        self.calls[key] = session
        engine = gateway.engines[gateway.default_model]
        gateway.metrics.stream_opened(key, "twilio", engine.name, tenant, lambda: session.protocol.audio_seconds)
        try:
            await session.run()
        finally:
            del self.calls[key]
            gateway.metrics.stream_closed(key, connection.close_code)

    # -- live subscribers -------------------------------------------------------

    @staticmethod
    def _call_id(path: str) -> str | None:
        rest = path.removeprefix(CALLS_PREFIX)
        call_id, _, tail = rest.partition("/")
        return unquote(call_id) if call_id and tail == "events" else None

    def check_subscriber(self, request: Request) -> Response | None:
        request_id = str(uuid.uuid4())
        path = urlsplit(request.path).path.rstrip("/")
        if self._call_id(path) is None:
            return json_response(404, {"err_code": "NOT_FOUND", "err_msg": f"use {CALLS_PREFIX}<call id>/events"})
        try:
            self._tenant(request)
        except HandshakeError as exc:
            return error_response(exc, request_id)
        return None

    async def subscriber(self, connection: ServerConnection) -> None:
        """Send a call's live events until it ends, the subscriber leaves or falls behind."""
        assert connection.request is not None
        call_id = self._call_id(urlsplit(connection.request.path).path.rstrip("/"))
        assert call_id is not None
        subscription = self.hub.subscribe(call_id, self._tenant(connection.request))
        watcher = asyncio.create_task(_watch(connection, subscription), name=f"subscriber:{call_id}")
        try:
            live = [info.summary() for info in self.hub.live_streams(call_id)]
            await connection.send(json.dumps({"type": "Subscribed", "call_id": call_id, "streams": live}))
            while (event := await subscription.next()) is not None:
                try:
                    async with asyncio.timeout(SEND_TIMEOUT_S):
                        await connection.send(json.dumps(event, separators=(",", ":")))
                except TimeoutError:
                    raise SlowSubscriber(f"subscriber took over {SEND_TIMEOUT_S:.0f} s to take one event") from None
            await connection.close(1000, "call ended")
        except SlowSubscriber as exc:
            log.info("subscriber of %s dropped: %s", call_id, exc.message)
            await connection.close(exc.code, exc.reason)
        except ConnectionClosed:
            log.debug("subscriber of %s left", call_id)
        finally:
            self.hub.unsubscribe(subscription)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    # -- stored transcripts -----------------------------------------------------

    def _status(self, record: StreamRecord) -> StreamRecord:
        # "active" in the store but not live here: the process serving it died.
        if record.status == "active" and record.info.stream_id not in self.fanout:
            return StreamRecord(record.info, record.ended, "interrupted", record.stats)
        return record

    async def list_transcripts(self, request: Request) -> Response:
        try:
            tenant = self._tenant(request)
            query = parse_qs(urlsplit(request.path).query)
            limit = int((query.get("limit") or ["100"])[0])
            if not 1 <= limit <= 1000:
                raise ValueError
        except HandshakeError as exc:
            return error_response(exc, str(uuid.uuid4()))
        except ValueError:
            return error_response(BadRequest("limit must be an integer from 1 to 1000"), str(uuid.uuid4()))
        if self.store is None:
            return _no_store()
        call_id = query["call_id"][0] if query.get("call_id") else None
        records = await self.store.streams(tenant, call_id, limit)
        return json_response(200, {"streams": [self._status(r).summary() for r in records]})

    async def get_transcript(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        url = urlsplit(request.path)
        stream_id = unquote(url.path.rstrip("/").removeprefix(TRANSCRIPTS_PATH + "/"))
        try:
            tenant = self._tenant(request)
            raw_format = (parse_qs(url.query).get("format") or ["json"])[0].lower()
            try:
                fmt = ExportFormat(raw_format)
            except ValueError:
                raise BadRequest(f"format must be json, text, srt or vtt, got {raw_format!r}") from None
        except HandshakeError as exc:
            return error_response(exc, request_id)
        if self.store is None:
            return _no_store()
        record = await self.store.stream(stream_id, tenant) if stream_id and "/" not in stream_id else None
        if record is None:
            return json_response(404, {"err_code": "NOT_FOUND", "err_msg": f"no transcript {stream_id!r}"})
        finals = await self.store.finals(stream_id)
        body = render(fmt, self._status(record), finals)
        return body_response(200, body.encode(), fmt.content_type)


def _no_store() -> Response:
    return json_response(404, {"err_code": "NOT_FOUND", "err_msg": "the transcript store is disabled (--store none)"})


async def _watch(connection: ServerConnection, subscription: Subscription) -> None:
    """Read (and ignore) what a subscriber sends, so its close is noticed at once."""
    try:
        async for _message in connection:
            pass  # subscribers only listen
    except ConnectionClosed:
        log.debug("subscriber of %s closed abnormally", subscription.call_id)
    finally:
        subscription.end()
