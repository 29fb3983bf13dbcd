"""The asyncio server: HTTP routes, the WebSocket handshake, and routing.

Everything before the upgrade happens in :meth:`Gateway.process_request`:
parameters and credentials are checked there, so a bad request is an HTTP
400/401 with Deepgram's JSON error body, never an upgraded socket. After the
upgrade, :meth:`Gateway.handler` dispatches on the path to a stream handler.
The routes of the other doors are mounted from their modules (``calls``,
``realtime``, ``prerecorded``, ``status``); the ``/v1/listen`` stream is here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from gateway.core.errors import BadRequest, CloseCode, Draining, HandshakeError, ServerFull, Unauthorized
from gateway.core.params import StreamParams, parse_params
from gateway.core.types import Backend
from gateway.engines.base import Engine
from gateway.engines.failover import RoutedEngine
from gateway.engines.local import WhisperEngine
from gateway.engines.scheduler import Scheduler
from gateway.protocols.listen_session import ListenSession, Sink
from gateway.protocols.twilio_session import TwilioSession
from gateway.server.auth import Principal, authenticate, split_subprotocols
from gateway.server.backends import load_backends
from gateway.server.callback import StreamCallback
from gateway.server.calls import CallCenter
from gateway.server.config import ServerConfig
from gateway.server.dispatch import EngineRouter
from gateway.server.http import error_response, json_response, redacted_query, static_file
from gateway.server.httpbody import connection_class
from gateway.server.metrics import GatewayMetrics, LiveCollector, ObservedBackend
from gateway.server.prerecorded import PrerecordedDoors
from gateway.server.realtime import RealtimeDoor
from gateway.server.status import StatusRoutes

log = logging.getLogger(__name__)

LISTEN_PATH = "/v1/listen"
STREAM_PATHS = (LISTEN_PATH, "/v1/twilio")
"""Routes that open a transcription stream: refused while draining."""

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# Model names Deepgram clients send (the SDK requires one): served by the default model.
DEEPGRAM_MODEL_PREFIXES = ("nova", "enhanced", "base", "general", "whisper", "phonecall", "meeting")

WsHandler = Callable[[ServerConnection], Awaitable[None]]
HttpHandler = Callable[[Request], Response | Awaitable[Response]]
WsCheck = Callable[[Request], Response | None]
_Route = TypeVar("_Route")


def match_route(routes: dict[str, _Route], path: str) -> _Route | None:
    """The route for ``path``: an exact key, else the longest key ending in "/" that prefixes it."""
    if path in routes:
        return routes[path]
    prefixes = [key for key in routes if key.endswith("/") and path.startswith(key)]
    return routes[max(prefixes, key=len)] if prefixes else None


class Gateway:
    """The whole server. Use ``async with Gateway(config) as gw`` (or :func:`run`)."""

    def __init__(self, config: ServerConfig, backends: dict[str, Backend] | None = None) -> None:
        self.config = config
        self._backends = backends
        self.engines: dict[str, WhisperEngine] = {}
        self.default_model = ""
        self.active: dict[str, ListenSession] = {}
        self.sinks: list[Sink] = []
        """Receive every message of every /v1/listen stream (store, subscribers)."""
        self.draining = False
        """SIGTERM was received: no new streams; open ones end within the drain timeout."""
        self.metrics = GatewayMetrics(self._twilio_key)
        self.ws_routes: dict[str, WsHandler] = {LISTEN_PATH: self.listen}
        self.router = EngineRouter(config)
        """Routing policy, relay engine and usage ledger."""
        self.status = StatusRoutes(self)
        """/healthz, /readyz, /metrics, /v1/config, /v1/stats and the live gauges."""
        self.http_routes: dict[str, HttpHandler] = {**self.status.http_routes}
        self.http_routes["/v1/usage"] = self.router.usage_route(self.principal)
        self.ws_checks: dict[str, WsCheck] = {}
        """Handshake checks of WebSocket routes other than /v1/listen (same keys as ws_routes)."""
        self.callcenter = CallCenter(self)
        self.ws_routes.update(self.callcenter.ws_routes)
        self.http_routes.update(self.callcenter.http_routes)
        self.ws_checks.update(self.callcenter.ws_checks)
        self.realtime = RealtimeDoor(self)
        self.ws_routes.update(self.realtime.ws_routes)
        self.ws_checks.update(self.realtime.ws_checks)
        self.files = PrerecordedDoors(self)
        """Pre-recorded POST routes (Deepgram /v1/listen, OpenAI /v1/audio/transcriptions)."""
        self.static_dir = Path(config.static_dir) if config.static_dir else STATIC_DIR
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.metrics.registry.register(LiveCollector(self.metrics, self.status.gauges))

    # -- lifecycle ----------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    async def __aenter__(self) -> Gateway:
        backends = self._backends
        if backends is None:
            backends = await anyio.to_thread.run_sync(load_backends, self.config)
        for name, backend in backends.items():
            scheduler = Scheduler(ObservedBackend(backend, self.metrics))
            self._tasks.append(asyncio.create_task(scheduler.run(), name=f"scheduler:{name}"))
            self.engines[name] = WhisperEngine(scheduler, name, self.config.transcriber)
        self.default_model = next(iter(self.engines))
        self._tasks.append(asyncio.create_task(self.metrics.watch_loop(), name="loop-lag"))
        await self.callcenter.start()
        self._server = await serve(
            self.handler,
            self.config.host,
            self.config.port,
            process_request=self.process_request,
            process_response=self.process_response,
            select_subprotocol=self.select_subprotocol,
            max_size=self.config.max_frame_bytes,
            max_queue=64,
            server_header="transcription-gateway",
            create_connection=connection_class(self.config.max_upload_bytes, self.config.file_timeout_s),
            open_timeout=None,  # BodyConnection times the request and the answer itself
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        await self.callcenter.aclose()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- handshake ------------------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Response | Awaitable[Response] | None:
        url = urlsplit(request.path)
        path = url.path.rstrip("/") or "/"
        if request.method != "GET":
            return self._post(path, request)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            if path == LISTEN_PATH:
                return self._listen_probe(request)
            return self._http(path, request)
        response = self._upgrade_check(path, url.query, request)
        if response is not None:
            self.metrics.refused(response.status_code)
        return response

    def _upgrade_check(self, path: str, query: str, request: Request) -> Response | None:
        request_id = str(uuid.uuid4())
        if match_route(self.ws_routes, path) is None:
            return json_response(404, {"err_code": "NOT_FOUND", "err_msg": f"no WebSocket endpoint at {path}"})
        if self.draining and path in STREAM_PATHS:
            return error_response(Draining("the server is shutting down; connect to another instance"), request_id)
        if path != LISTEN_PATH:
            check = match_route(self.ws_checks, path)
            return check(request) if check is not None else None
        try:
            principal = self.principal(request)
            params = parse_params(query)
            self.choose_engine(params, principal)
        except HandshakeError as exc:
            log.info("refused %s: %s %s", request_id, exc.status, exc.message)
            return error_response(exc, request_id)
        request.headers["X-Gateway-Request-Id"] = request_id
        return None

    def _listen_probe(self, request: Request) -> Response:
        """A plain GET of /v1/listen: the same checks as the upgrade, then 426.

        Browsers cannot read the status of a refused upgrade (the socket just
        closes with 1006), so the captions page asks again this way to learn
        whether the key or the parameters were refused.
        """
        request_id = str(uuid.uuid4())
        try:
            self.choose_engine(parse_params(urlsplit(request.path).query), self.principal(request))
        except HandshakeError as exc:
            return error_response(exc, request_id)
        body = {"err_code": "UPGRADE_REQUIRED", "err_msg": "connect with a WebSocket upgrade", "request_id": request_id}
        return json_response(426, body, {"Upgrade": "websocket"})

    def process_response(self, connection: ServerConnection, request: Request, response: Response) -> None:
        protocol = connection.protocol
        if protocol.eof_sent and protocol.state is State.CONNECTING:
            # The client sent an invalid frame behind its upgrade request without waiting for
            # the answer, and the protocol has already failed on it (EOF sent). Answering now
            # trips an assertion inside websockets (<= 17: "unexpected internal error"); a
            # closed state makes it drop the connection without a word instead.
            protocol.state = State.CLOSED
            return
        request_id = request.headers.get("X-Gateway-Request-Id")
        if request_id and response.status_code == 101:
            response.headers["dg-request-id"] = request_id

    def select_subprotocol(self, connection: ServerConnection, subprotocols: Any) -> Subprotocol | None:
        try:
            principal = self.principal(connection.request) if connection.request else None
        except Unauthorized:
            return None  # a route that passed process_request without a key (a signed Twilio stream)
        if principal is not None and principal.subprotocol and principal.subprotocol in subprotocols:
            return Subprotocol(principal.subprotocol)
        return None

    def principal(self, request: Request | None) -> Principal:
        assert request is not None
        return authenticate(
            request.headers.get("Authorization"),
            split_subprotocols(request.headers.get("Sec-WebSocket-Protocol")),
            self.config.api_keys,
        )

    def choose_engine(self, params: StreamParams, principal: Principal) -> Engine:
        """The engine serving a stream, as the routing policy decides (see gateway.server.dispatch)."""
        engine = self.router.choose(params, principal.tenant, self.local_engine)
        if params.diarize and not (isinstance(engine, RoutedEngine) and engine.fallback is None):
            # Deepgram itself diarizes a relayed stream; a stream Whisper may serve cannot be.
            raise BadRequest(
                "parameter 'diarize': no diarization model is available here (relay the stream to diarize)"
            )
        return engine

    def local_engine(self, params: StreamParams, strict: bool = True) -> WhisperEngine:
        """The local engine of the requested model, else the default (not strict: whatever the model)."""
        if params.model is None or params.model in self.engines:
            return self.engines[params.model or self.default_model]
        if params.model.lower().startswith(DEEPGRAM_MODEL_PREFIXES) or not strict:
            return self.engines[self.default_model]
        raise BadRequest(f"unknown model {params.model!r}; served: {', '.join(self.engines)}")

    # -- HTTP -------------------------------------------------------------------

    def _http(self, path: str, request: Request) -> Response | Awaitable[Response]:
        route = match_route(self.http_routes, path)
        if route is not None:
            return route(request)
        static = static_file(self.static_dir, path)
        if static is not None:
            return static
        return json_response(404, {"err_code": "NOT_FOUND", "err_msg": f"nothing at {path}"})

    def _post(self, path: str, request: Request) -> Response | Awaitable[Response]:
        route = self.files.post_routes.get(path)
        if route is None or request.method != "POST":
            return json_response(405, {"err_code": "METHOD_NOT_ALLOWED", "err_msg": f"{request.method} {path}"})
        return route(request)

    # -- streams ----------------------------------------------------------------

    async def handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        path = urlsplit(connection.request.path).path.rstrip("/") or "/"
        route = match_route(self.ws_routes, path)
        assert route is not None  # process_request refused unknown paths
        await route(connection)

    async def listen(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        assert connection.response is not None
        request_id = connection.response.headers.get("dg-request-id") or str(uuid.uuid4())
        if self.draining:
            # Upgraded in the instant the drain began: the handshake check came just before it.
            await connection.close(CloseCode.TRY_AGAIN_LATER, ServerFull("the server is shutting down").reason)
            return
        if len(self.active) + len(self.callcenter.calls) >= self.config.max_streams:
            full = ServerFull(f"server is at its limit of {self.config.max_streams} streams; retry later")
            await connection.close(CloseCode.TRY_AGAIN_LATER, full.reason)
            return
        params = parse_params(urlsplit(connection.request.path).query)
        principal = self.principal(connection.request)
        engine = self.choose_engine(params, principal)
        callback = StreamCallback(params.callback, params.callback_method) if params.callback else None
        # Recorded before the engine stream opens: a relay refused at once fails over (and
        # says so) before the session is even built, and every message needs its record.
        await self.callcenter.begin_listen(request_id, params, principal.tenant)
        try:
            session = ListenSession(
                connection,
                params,
                engine,
                request_id,
                idle_timeout_s=self.config.idle_timeout_s,
                max_frame_bytes=self.config.max_frame_bytes,
                sinks=(*self.sinks, self.callcenter.fanout.message, *([callback] if callback else [])),
            )
        except BaseException:
            await self.callcenter.end_listen(request_id)
            raise
        self.active[request_id] = session
        self.router.ledger.start(request_id, principal.tenant, session.stream.usage)
        self.metrics.stream_opened(
            request_id, "listen", engine.name, principal.tenant, lambda: session.protocol.audio_seconds
        )
        log.info(
            "stream %s opened: tenant %s, engine %s, query %s, user agent %r",
            request_id,
            principal.tenant,
            engine.name,
            redacted_query(urlsplit(connection.request.path).query),
            connection.request.headers.get("User-Agent", ""),
        )
        try:
            await session.run()
        finally:
            del self.active[request_id]
            self.metrics.stream_closed(request_id, connection.close_code)
            log.info(
                "stream %s closed: %.1f s of audio, close %s",
                request_id,
                session.protocol.audio_seconds,
                connection.close_code,
            )
            self.router.ledger.finish(request_id)
            await self.callcenter.end_listen(request_id)
            if callback is not None:
                await callback.close()

    def sessions(self) -> list[ListenSession | TwilioSession]:
        """Every open transcription stream (listen and Twilio)."""
        return [*self.active.values(), *self.callcenter.calls.values()]

    def _twilio_key(self, stream_id: str) -> str | None:
        """The metrics key of the Twilio call whose streamSid is ``stream_id``."""
        for key, session in self.callcenter.calls.items():
            if session.stream_id == stream_id:
                return key
        return None


@contextlib.asynccontextmanager
async def running(config: ServerConfig, backends: dict[str, Backend] | None = None) -> AsyncIterator[Gateway]:
    async with Gateway(config, backends) as gateway:
        yield gateway
