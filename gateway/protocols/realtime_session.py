"""The asyncio shell around one OpenAI Realtime transcription connection.

Feeds text frames to the sans-I/O :class:`~gateway.protocols.realtime.RealtimeProtocol`,
opens the engine stream at the first appended audio (the format is settled by
then), and turns every engine message into OpenAI server events. The
run/finish/flush skeleton is :class:`~gateway.protocols.stream.StreamShell`'s.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.core.audio import DecodedFrame
from gateway.core.errors import InvalidMessage, StreamError
from gateway.core.params import StreamParams
from gateway.engines.base import Engine
from gateway.protocols.realtime import AppendAudio, Clear, Commit, RealtimeProtocol, Reply, error_event
from gateway.protocols.stream import StreamShell

log = logging.getLogger(__name__)


class RealtimeSession(StreamShell):
    """One ``/v1/realtime?intent=transcription`` connection from upgrade to close."""

    idle_message = "no client event within the timeout window"

    def __init__(
        self,
        websocket: ServerConnection,
        engine: Engine,
        session_id: str,
        base_params: StreamParams,
        *,
        idle_timeout_s: float = 10.0,
        max_frame_bytes: int = 1 << 20,
    ) -> None:
        super().__init__(websocket, idle_timeout_s=idle_timeout_s)
        self.engine = engine
        self.session_id = session_id
        self.base_params = base_params
        self.protocol = RealtimeProtocol(session_id, max_frame_bytes)

    @property
    def label(self) -> str:
        return f"realtime {self.session_id}"

    async def send(self, event: dict[str, Any]) -> None:
        if self.client_gone:
            return
        try:
            await self.websocket.send(json.dumps(event, separators=(",", ":")))
        except ConnectionClosed:
            self.client_gone = True  # the reader sees the same close

    async def emit(self, message: dict[str, Any]) -> None:
        """An engine message (Deepgram-shaped) becomes OpenAI events."""
        for event in self.protocol.engine_message(message):
            await self.send(event)

    async def run(self) -> None:
        await self.send(self.protocol.created())
        await super().run()

    async def on_frame(self, data: str | bytes) -> bool:
        if isinstance(data, bytes):
            raise InvalidMessage("send client events as JSON text frames (audio goes in input_audio_buffer.append)")
        event = self.protocol.receive_text(data)
        if isinstance(event, Reply):
            for reply in event.events:
                await self.send(reply)
        elif isinstance(event, AppendAudio):
            if self.stream is None:
                params = self.protocol.stream_params(self.base_params)
                self.stream = self.engine.open_stream(params, self.session_id, self.emit, self.on_failure)
            await self.stream.push(event.frame, b"")
        elif isinstance(event, Commit | Clear):
            if self.stream is None:
                await self.send(error_event("the input audio buffer is empty", "input_audio_buffer_commit_empty"))
            else:
                await self.stream.finalize()
        return False

    def tail_frame(self) -> DecodedFrame | None:
        decoder = self.protocol.decoder
        return decoder.flush_frame() if decoder is not None else None

    def close_protocol(self) -> None:
        return None

    async def goodbye(self, error: StreamError | None) -> None:
        if error is not None:
            await self.send(error_event(error.message, error.tag))
