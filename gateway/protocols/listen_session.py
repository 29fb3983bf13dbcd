"""The asyncio shell around one ``/v1/listen`` connection.

Feeds frames to the sans-I/O :class:`~gateway.protocols.listen.ListenProtocol`,
hands the resulting audio and control events to the engine stream and sends
what the engine emits, to the client and to every sink. The run/finish/flush
skeleton is :class:`~gateway.protocols.stream.StreamShell`'s: finals are
delivered on CloseStream, on errors and (to the sinks) on disconnect.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.core import configure, messages
from gateway.core.audio import DecodedFrame
from gateway.core.errors import StreamError
from gateway.core.params import StreamParams
from gateway.engines.base import Configurable, Engine, EngineStream
from gateway.protocols.listen import (
    AudioReceived,
    CloseStream,
    Configure,
    Finalize,
    IgnoredAudio,
    KeepAlive,
    ListenProtocol,
    UnknownMessage,
)
from gateway.protocols.stream import StreamShell

log = logging.getLogger(__name__)

Sink = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Receives (request id, message) for every message a stream sends."""


class ListenSession(StreamShell):
    """One client stream from upgrade to close."""

    idle_message = "Deepgram did not receive audio data or a text message within the timeout window"

    def __init__(
        self,
        websocket: ServerConnection,
        params: StreamParams,
        engine: Engine,
        request_id: str,
        *,
        idle_timeout_s: float = 10.0,
        max_frame_bytes: int = 1 << 20,
        sinks: tuple[Sink, ...] = (),
    ) -> None:
        super().__init__(websocket, idle_timeout_s=idle_timeout_s)
        self.params = params
        self.request_id = request_id
        self.protocol = ListenProtocol(params, max_frame_bytes)
        self.sinks = sinks
        self.created = datetime.now(UTC)
        self._sha = hashlib.sha256()
        self.engine = engine
        self.messages_sent = 0
        self.stream: EngineStream = engine.open_stream(params, request_id, self.emit, self.on_failure)

    @property
    def label(self) -> str:
        return f"stream {self.request_id}"

    async def emit(self, message: dict[str, Any]) -> None:
        """Send one message to the client (if still there) and every sink."""
        for sink in self.sinks:
            await sink(self.request_id, message)
        if self.client_gone:
            return
        try:
            await self.websocket.send(json.dumps(message, separators=(",", ":")))
            self.messages_sent += 1
        except ConnectionClosed:
            # The reader sees the same close and runs the disconnect path.
            self.client_gone = True

    async def on_frame(self, data: str | bytes) -> bool:
        event = self.protocol.receive_bytes(data) if isinstance(data, bytes) else self.protocol.receive_text(data)
        if isinstance(event, AudioReceived):
            assert isinstance(data, bytes)
            self._sha.update(data)
            await self.stream.push(event.frame, data)
        elif isinstance(event, KeepAlive):
            await self.stream.keep_alive()
        elif isinstance(event, Finalize):
            await self.stream.finalize()
        elif isinstance(event, CloseStream):
            return True
        elif isinstance(event, Configure):
            await self.emit(await self.configure(event.body))
        elif isinstance(event, UnknownMessage):
            await self.emit(messages.error(f"unknown message type {event.type!r}", variant="unknown_message_type"))
        elif isinstance(event, IgnoredAudio):
            log.debug("stream %s: %d bytes after CloseStream ignored", self.request_id, event.nbytes)
        return False

    async def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a ``Configure`` and say how it went (ConfigureSuccess / ConfigureFailure)."""
        try:
            change = configure.parse_configure(body)
            if not isinstance(self.stream, Configurable):
                raise configure.ConfigureRejected(
                    configure.KEYTERMS_NOT_SUPPORTED, "this stream's engine does not take Configure"
                )
        except configure.ConfigureRejected as exc:
            return configure.failure(self.request_id, exc.code, exc.description)
        await self.stream.configure(change)
        return configure.success(self.request_id, change)

    def tail_frame(self) -> DecodedFrame | None:
        return self.protocol.tail()  # held container frames, the last few ms inside the resampler

    def close_protocol(self) -> None:
        self.protocol.close()

    async def goodbye(self, error: StreamError | None) -> None:
        if error is not None:
            await self.emit(messages.error(error.message, variant=error.tag))
            return
        await self.emit(
            messages.metadata(
                request_id=self.request_id,
                created=self.created,
                duration=self.protocol.audio_seconds,
                channels=self.params.channels,
                sha256=self._sha.hexdigest(),
                model=_model(self.engine),
                extra={"usage": self.stream.usage.as_dict(), **endpointing_info(self.params, self.engine)},
            )
        )


def _model(engine: Engine) -> messages.ModelInfo:
    info = engine.model_info()
    return messages.ModelInfo(info["name"], info["version"], info["arch"], info["uuid"])


def endpointing_info(params: StreamParams, engine: Engine) -> dict[str, Any]:
    """What endpointing the stream got: the local engine floors it (Whisper needs some silence to be sure)."""
    config = getattr(engine, "base_config", None)
    floor = getattr(config, "min_endpointing_ms", None)
    if not isinstance(floor, int) or params.endpointing_ms is None:
        return {}
    return {
        "endpointing": {
            "requested_ms": params.endpointing_ms,
            "applied_ms": max(params.endpointing_ms, floor),
            "floor_ms": floor,
        }
    }
