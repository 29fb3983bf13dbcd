"""Sans-I/O state machine of one ``/v1/listen`` connection, client side in.

Frames in, :class:`ClientEvent` values out; no sockets, no asyncio. Binary
frames are decoded to 16 kHz per-channel audio (raw samples, or a container
sniffed or named by ``encoding``: :mod:`gateway.core.livecontainers`); text frames are parsed as
Deepgram control messages. Malformed input raises a
:class:`~gateway.core.errors.StreamError` carrying its close code.

States: ``OPEN`` -> ``CLOSING`` (CloseStream or an empty frame received:
flush, then Metadata) -> ``CLOSED``. A transition the state forbids raises
:class:`~gateway.core.errors.InvalidTransition`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gateway.core.audio import DecodedFrame
from gateway.core.errors import FrameTooLarge, InvalidMessage, InvalidTransition
from gateway.core.livecontainers import FrameDecoder, make_decoder
from gateway.core.params import StreamParams


class State(Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_ALLOWED = {
    State.OPEN: {State.CLOSING, State.CLOSED},
    State.CLOSING: {State.CLOSED},
    State.CLOSED: set(),
}


@dataclass(frozen=True, slots=True)
class AudioReceived:
    frame: DecodedFrame


@dataclass(frozen=True, slots=True)
class KeepAlive:
    pass


@dataclass(frozen=True, slots=True)
class Finalize:
    pass


@dataclass(frozen=True, slots=True)
class CloseStream:
    pass


@dataclass(frozen=True, slots=True)
class Configure:
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A JSON message of a type we do not know: answered with an Error, stream kept."""

    type: str


@dataclass(frozen=True, slots=True)
class IgnoredAudio:
    """Audio after CloseStream: dropped, the stream is already flushing."""

    nbytes: int


ClientEvent = AudioReceived | KeepAlive | Finalize | CloseStream | Configure | UnknownMessage | IgnoredAudio

_CONTROL: dict[str, type[KeepAlive | Finalize | CloseStream]] = {
    "KeepAlive": KeepAlive,
    "Finalize": Finalize,
    "CloseStream": CloseStream,
}


class ListenProtocol:
    """Client-to-server half of one Deepgram live connection."""

    def __init__(self, params: StreamParams, max_frame_bytes: int = 1 << 20) -> None:
        self.params = params
        self.max_frame_bytes = max_frame_bytes
        self.decoder: FrameDecoder = make_decoder(params)
        self.state = State.OPEN
        self.audio_seconds = 0.0
        self.bytes_received = 0

    def _transition(self, to: State) -> None:
        if to not in _ALLOWED[self.state]:
            raise InvalidTransition(f"listen protocol cannot go from {self.state.value} to {to.value}")
        self.state = to

    def receive_bytes(self, data: bytes) -> ClientEvent:
        """One binary frame: audio, or (empty) the deprecated close signal."""
        if len(data) > self.max_frame_bytes:
            raise FrameTooLarge(f"audio frame of {len(data)} bytes exceeds the {self.max_frame_bytes} byte limit")
        if self.state is not State.OPEN:
            return IgnoredAudio(len(data))
        if not data:
            self._transition(State.CLOSING)
            return CloseStream()
        frame = self.decoder.decode(data)
        self.bytes_received += len(data)
        self.audio_seconds += frame.input_seconds
        return AudioReceived(frame)

    def tail(self) -> DecodedFrame | None:
        """At the end: audio still inside the decoder (a container parser's held frames, the resampler's tail)."""
        frame = self.decoder.flush_frame()
        if frame is not None:
            self.audio_seconds += frame.input_seconds
        return frame

    def receive_text(self, text: str) -> ClientEvent:
        """One text frame: a JSON control message."""
        if len(text) > 64 * 1024:
            raise FrameTooLarge(f"text message of {len(text)} characters exceeds the 65536 limit")
        try:
            body = json.loads(text)
        except ValueError:
            raise InvalidMessage("text message is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise InvalidMessage('text message must be a JSON object with a string "type"')
        kind = body["type"]
        if kind == "Configure":
            return Configure(body)
        if kind not in _CONTROL:
            return UnknownMessage(kind[:64])
        event: KeepAlive | Finalize | CloseStream = _CONTROL[kind]()
        if isinstance(event, CloseStream) and self.state is State.OPEN:
            self._transition(State.CLOSING)
        return event

    def close(self) -> None:
        """The connection is gone (or closed by us)."""
        if self.state is not State.CLOSED:
            self._transition(State.CLOSED)
