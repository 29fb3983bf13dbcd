"""The asyncio shell around one ``/v1/listen`` connection.

Reads frames, feeds them to the sans-I/O :class:`~gateway.protocols.listen.ListenProtocol`,
hands the resulting audio and control events to the engine stream and sends
what the engine emits. Every way a stream ends goes through :meth:`_finish`,
which flushes the engine first, so finals are delivered on CloseStream,
on errors and (to the stream's sinks) on disconnect.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.core import messages
from gateway.core.errors import CloseCode, IdleTimeout, StreamError, UpstreamError
from gateway.core.params import StreamParams
from gateway.engines.base import Engine, EngineStream
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

log = logging.getLogger(__name__)

Sink = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Receives (request id, message) for every message a stream sends."""


class ListenSession:
    """One client stream from upgrade to close."""

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
        self.websocket = websocket
        self.params = params
        self.request_id = request_id
        self.protocol = ListenProtocol(params, max_frame_bytes)
        self.idle_timeout_s = idle_timeout_s
        self.sinks = sinks
        self.created = datetime.now(UTC)
        self._sha = hashlib.sha256()
        self._failure: BaseException | None = None
        self._reader: asyncio.Task[None] | None = None
        self._client_gone = False
        self.stream: EngineStream = engine.open_stream(params, request_id, self.emit, self._on_failure)
        self.engine = engine
        self.messages_sent = 0

    async def emit(self, message: dict[str, Any]) -> None:
        """Send one message to the client (if still there) and every sink."""
        for sink in self.sinks:
            await sink(self.request_id, message)
        if self._client_gone:
            return
        try:
            await self.websocket.send(json.dumps(message, separators=(",", ":")))
            self.messages_sent += 1
        except ConnectionClosed:
            # The reader sees the same close and runs the disconnect path.
            self._client_gone = True

    def _on_failure(self, exc: BaseException) -> None:
        self._failure = exc
        if self._reader is not None:
            self._reader.cancel()

    def _failure_error(self) -> StreamError:
        if isinstance(self._failure, StreamError):
            return self._failure  # the engine said what went wrong (e.g. the relay's upstream refused)
        return UpstreamError(f"engine failed: {self._failure}")

    async def run(self) -> None:
        """Serve the stream until it ends, whichever way."""
        self._reader = asyncio.current_task()
        try:
            await self._read()
        except StreamError as exc:
            await self._finish(exc)
        except ConnectionClosed:
            self._client_gone = True
            await self._finish(None)
        except asyncio.CancelledError:
            if self._failure is None:
                await self.stream.abort()
                raise
            await self._finish(self._failure_error())
        else:
            await self._finish(None)

    async def _read(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout_s):
                    data = await self.websocket.recv()
            except TimeoutError:
                raise IdleTimeout(
                    "Deepgram did not receive audio data or a text message within the timeout window"
                ) from None
            event = self.protocol.receive_bytes(data) if isinstance(data, bytes) else self.protocol.receive_text(data)
            if isinstance(event, AudioReceived):
                self._sha.update(data if isinstance(data, bytes) else b"")
                await self.stream.push(event.frame, data if isinstance(data, bytes) else b"")
            elif isinstance(event, KeepAlive):
                await self.stream.keep_alive()
            elif isinstance(event, Finalize):
                await self.stream.finalize()
            elif isinstance(event, CloseStream):
                return
            elif isinstance(event, Configure):
                await self.emit(
                    {
                        "type": "ConfigureFailure",
                        "request_id": self.request_id,
                        "description": "Configure is not supported",
                    }
                )
            elif isinstance(event, UnknownMessage):
                await self.emit(messages.error(f"unknown message type {event.type!r}", variant="unknown_message_type"))
            elif isinstance(event, IgnoredAudio):
                log.debug("stream %s: %d bytes after CloseStream ignored", self.request_id, event.nbytes)

    async def _finish(self, error: StreamError | None) -> None:
        """Flush finals, then say goodbye the way the ending asks for."""
        # From here a failing engine is reported by the ending, not by cancelling this task.
        self._reader = None
        try:
            tail = self.protocol.decoder.flush_frame()
            if tail is not None:  # the last few ms still inside the resampler
                await self.stream.push(tail, b"")
            await self.stream.close()
        except Exception as exc:
            log.exception("stream %s: flush failed", self.request_id)
            error = error or UpstreamError(f"engine failed while flushing: {exc}")
        if error is None and self._failure is not None:
            error = self._failure_error()
        self.protocol.close()
        if self._client_gone:
            return
        if error is not None:
            await self.emit(messages.error(error.message, variant=error.tag))
            await self.websocket.close(error.code, error.reason)
            return
        await self.emit(
            messages.metadata(
                request_id=self.request_id,
                created=self.created,
                duration=self.protocol.audio_seconds,
                channels=self.params.channels,
                sha256=self._sha.hexdigest(),
                model=_model(self.engine),
                extra={"usage": self.stream.usage.as_dict()},
            )
        )
        await self.websocket.close(CloseCode.NORMAL, "")


def _model(engine: Engine) -> messages.ModelInfo:
    info = engine.model_info()
    return messages.ModelInfo(info["name"], info["version"], info["arch"], info["uuid"])
