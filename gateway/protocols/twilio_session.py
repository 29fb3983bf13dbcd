"""The asyncio shell around one Twilio Media Streams connection.

Reads Twilio's JSON frames, feeds them to the sans-I/O
:class:`~gateway.protocols.twilio.MediaStreamProtocol`, runs one engine stream with a
channel per track, and hands what the engine emits to the
:class:`~gateway.transcripts.fanout.Fanout` (store, subscribers, webhook). Nothing is
ever sent to Twilio: ``<Start><Stream>`` is one-way, and ``<Connect><Stream>``
only needs answers to audio we would play, which we never do. The socket is
only closed: 1000 after ``stop``, or the error's close code and reason.

The run/finish/flush skeleton is :class:`~gateway.protocols.stream.StreamShell`'s,
so the finals of a call cut off mid-sentence are still stored and published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection

from gateway.core.errors import InvalidMessage, StreamError, TwilioProtocolError
from gateway.core.params import Encoding, StreamParams
from gateway.engines.base import Engine
from gateway.protocols.stream import StreamShell
from gateway.protocols.twilio import (
    SAMPLE_RATE,
    Audio,
    CallStart,
    Connected,
    Dtmf,
    Mark,
    MediaStreamProtocol,
    Started,
    Stopped,
    TwilioConfig,
)
from gateway.transcripts.fanout import DuplicateStream, Fanout
from gateway.transcripts.records import StreamInfo, StreamKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallTuning:
    """How calls are transcribed: the Deepgram parameters a call stream gets."""

    endpointing_ms: int = 500
    """Silence before speech_final. On real 8 kHz recordings (OSR Harvard lists
    through this endpoint) 300/500/800 ms gave the same WER within run-to-run
    noise, while longer values split a caller's sentences into fewer finals;
    500 ms keeps finals whole without delaying them much."""
    utterance_end_ms: int = 1000
    interim_results: bool = True
    vad_events: bool = True

    def params(self, channels: int) -> StreamParams:
        return StreamParams(
            encoding=Encoding.MULAW,
            sample_rate=SAMPLE_RATE,
            channels=channels,
            multichannel=True,
            interim_results=self.interim_results,
            endpointing_ms=self.endpointing_ms,
            utterance_end_ms=self.utterance_end_ms,
            vad_events=self.vad_events,
            punctuate=True,
        )


class TwilioSession(StreamShell):
    """One Twilio media stream from upgrade to close."""

    idle_message = "no Twilio message within the timeout window"

    def __init__(
        self,
        websocket: ServerConnection,
        engine: Engine,
        fanout: Fanout,
        *,
        tenant: str,
        idle_timeout_s: float = 10.0,
        config: TwilioConfig | None = None,
        tuning: CallTuning | None = None,
    ) -> None:
        super().__init__(websocket, idle_timeout_s=idle_timeout_s)
        self.engine = engine
        self.fanout = fanout
        self.tenant = tenant
        self.protocol = MediaStreamProtocol(config)
        self.tuning = tuning or CallTuning()
        self.info: StreamInfo | None = None

    @property
    def stream_id(self) -> str | None:
        return self.info.stream_id if self.info else None

    @property
    def label(self) -> str:
        return f"twilio {self.stream_id or '(not started)'}"

    async def on_frame(self, data: str | bytes) -> bool:
        if isinstance(data, bytes):
            raise InvalidMessage("Twilio Media Streams sends JSON text frames; got a binary frame")
        for event in self.protocol.receive_text(data):
            if isinstance(event, Audio):
                assert self.stream is not None
                await self.stream.push(event.frame, b"")
            elif isinstance(event, Started):
                await self._begin(event.start)
            elif isinstance(event, Dtmf):
                await self._emit(
                    {
                        "type": "Dtmf",
                        "channel": [event.channel, len(self.info.labels) if self.info else 1],
                        "digit": event.digit,
                        "timestamp": round(event.time, 3),
                    }
                )
            elif isinstance(event, Stopped):
                if event.frame is not None and self.stream is not None:
                    await self.stream.push(event.frame, b"")
                return True
            elif isinstance(event, Mark | Connected):
                log.debug("%s: %s", self.label, event)
        return False

    async def _begin(self, start: CallStart) -> None:
        info = StreamInfo(
            stream_id=start.stream_sid,
            call_id=start.call_sid,
            kind=StreamKind.TWILIO,
            tenant=self.tenant,
            labels=start.labels,
            started=datetime.now(UTC),
            params={
                "account_sid": start.account_sid,
                "tracks": list(start.tracks),
                "custom_parameters": start.custom_parameters,
            },
        )
        try:
            await self.fanout.begin(info)
        except DuplicateStream as exc:
            raise TwilioProtocolError(str(exc)) from None
        self.info = info
        params = self.tuning.params(len(start.tracks))
        self.stream = self.engine.open_stream(params, start.stream_sid, self._emit, self.on_failure)
        log.info("twilio call %s stream %s started (%s)", start.call_sid, start.stream_sid, ", ".join(start.labels))

    async def _emit(self, message: dict[str, Any]) -> None:
        assert self.info is not None
        await self.fanout.message(self.info.stream_id, message)

    def _stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "audio_seconds": round(self.protocol.audio_seconds, 3),
            **self.protocol.stats.as_dict(),
        }
        if self.stream is not None:
            stats["usage"] = self.stream.usage.as_dict()
        return stats

    def close_protocol(self) -> None:
        self.protocol.close()

    async def on_end(self, error: StreamError | None) -> None:
        """Record how the call ended (nothing is ever sent to Twilio but the close frame)."""
        status = "disconnected" if self.client_gone else "completed"
        if error is not None:
            status = f"error: {error.message}"
        if self.info is not None:
            await self.fanout.end(self.info.stream_id, status, self._stats())

    async def on_abort(self) -> None:
        if self.info is not None:
            await self.fanout.end(self.info.stream_id, "aborted", self._stats())
