"""The OpenAI Realtime transcription door: ``WS /v1/realtime?intent=transcription``.

The handshake checks the key (``Authorization: Bearer``) and the intent
(conversation sessions are refused with 400: this gateway only transcribes);
the engine is chosen by the same routing policy as a ``/v1/listen`` stream.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sized
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from gateway.core.errors import BadRequest, CloseCode, HandshakeError, ServerFull
from gateway.core.params import StreamParams
from gateway.engines.base import Engine
from gateway.protocols.realtime_session import RealtimeSession
from gateway.server.auth import Principal
from gateway.server.config import ServerConfig
from gateway.server.http import error_response

log = logging.getLogger(__name__)

REALTIME_PATH = "/v1/realtime"


class Host(Protocol):
    @property
    def config(self) -> ServerConfig: ...

    @property
    def active(self) -> Sized: ...

    def principal(self, request: Request | None) -> Principal: ...

    def choose_engine(self, params: StreamParams, principal: Principal) -> Engine: ...


def _params(request: Request) -> StreamParams:
    query = parse_qs(urlsplit(request.path).query)
    intent = (query.get("intent") or [""])[-1]
    if intent != "transcription":
        raise BadRequest("only transcription sessions are served: connect with ?intent=transcription")
    engine = query.get("engine")
    return StreamParams(engine=engine[-1].strip().lower() if engine else None)


class RealtimeDoor:
    """Routes for the server: ``ws_routes`` and ``ws_checks`` keyed by path."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.sessions: dict[str, RealtimeSession] = {}
        self.ws_routes = {REALTIME_PATH: self.realtime}
        self.ws_checks = {REALTIME_PATH: self.check}

    def check(self, request: Request) -> Response | None:
        request_id = str(uuid.uuid4())
        try:
            self.host.choose_engine(_params(request), self.host.principal(request))
        except HandshakeError as exc:
            log.info("realtime refused %s: %s %s", request_id, exc.status, exc.message)
            return error_response(exc, request_id)
        return None

    async def realtime(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        config = self.host.config
        if len(self.host.active) + len(self.sessions) >= config.max_streams:
            full = ServerFull(f"server is at its limit of {config.max_streams} streams; retry later")
            await connection.close(CloseCode.TRY_AGAIN_LATER, full.reason)
            return
        params = _params(connection.request)
        engine = self.host.choose_engine(params, self.host.principal(connection.request))
        session_id = f"sess_{uuid.uuid4().hex[:20]}"
        session = RealtimeSession(
            connection,
            engine,
            session_id,
            params,
            idle_timeout_s=config.idle_timeout_s,
            max_frame_bytes=config.max_frame_bytes,
        )
        self.sessions[session_id] = session
        log.info("realtime %s opened: engine %s", session_id, engine.name)
        try:
            await session.run()
        finally:
            del self.sessions[session_id]
            log.info("realtime %s closed: %.1f s of audio", session_id, session.protocol.audio_seconds)
