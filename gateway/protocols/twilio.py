"""Twilio Media Streams, sans-I/O: JSON events in, aligned call audio out.

:class:`MediaStreamProtocol` is the state machine of one Twilio stream
(``AWAITING_START`` -> ``STREAMING`` -> ``STOPPED``). Each text frame gives
zero or more :class:`TwilioEvent` values. Media of every announced track
(``inbound`` = the caller, labelled "customer"; ``outbound`` = what the call
plays to the caller, labelled "agent") goes on one
:class:`~gateway.core.timeline.Timeline` by ``media.timestamp`` (ms since the
stream started), so tracks stay aligned and a missing chunk becomes silence
of its length; the audio released is decoded as one multichannel frame, one
channel per track in ``inbound``, ``outbound`` order.

Malformed input raises a :class:`~gateway.core.errors.StreamError`: bad JSON
(:class:`InvalidMessage`), bad base64 or an unsupported media format
(:class:`InvalidAudio`), an unknown event or one out of order
(:class:`TwilioProtocolError`).

Also here: Twilio's request signature (``X-Twilio-Signature``), computed as
Twilio does: base64(HMAC-SHA1(auth token, URL + sorted POST parameters)).
A WebSocket handshake has no POST parameters, so it signs the URL alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from gateway.core.audio import AudioDecoder, DecodedFrame
from gateway.core.errors import FrameTooLarge, InvalidAudio, InvalidMessage, InvalidTransition, TwilioProtocolError
from gateway.core.params import Encoding
from gateway.core.timeline import Timeline, TimelineStats

SAMPLE_RATE = 8_000
SAMPLES_PER_MS = SAMPLE_RATE // 1000
TRACKS = ("inbound", "outbound")
"""Twilio's track names, in channel order."""
TRACK_LABELS = {"inbound": "customer", "outbound": "agent"}
MAX_MESSAGE_CHARS = 64 * 1024


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """How forgiving the timeline is."""

    reorder_window_ms: int = 200
    """How long a gap is waited for before it is filled with silence."""
    max_jump_ms: int = 60_000
    """A media timestamp further than this past the newest audio is refused."""


class State(Enum):
    AWAITING_START = "awaiting start"
    STREAMING = "streaming"
    STOPPED = "stopped"


_ALLOWED = {
    State.AWAITING_START: {State.STREAMING, State.STOPPED},
    State.STREAMING: {State.STOPPED},
    State.STOPPED: set(),
}


@dataclass(frozen=True, slots=True)
class CallStart:
    """What the ``start`` event announced."""

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    """Announced tracks in channel order (``inbound`` first)."""
    custom_parameters: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[str, ...]:
        """Speaker label of each channel."""
        return tuple(TRACK_LABELS[track] for track in self.tracks)


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Started:
    start: CallStart


@dataclass(frozen=True, slots=True)
class Audio:
    """Audio of every channel for the same span of the call."""

    frame: DecodedFrame


@dataclass(frozen=True, slots=True)
class Dtmf:
    channel: int
    digit: str
    time: float
    """Call seconds of the newest audio when the digit arrived."""


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Stopped:
    """The call's stream ended; ``frame`` holds the audio still buffered."""

    frame: DecodedFrame | None


TwilioEvent = Connected | Started | Audio | Dtmf | Mark | Stopped


def _object(body: Mapping[str, Any], name: str, event: str) -> Mapping[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise TwilioProtocolError(f"'{event}' event needs an object '{name}'")
    return value


def _string(body: Mapping[str, Any], name: str, event: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise TwilioProtocolError(f"'{event}' event needs a string '{name}'")
    return value


def _integer(value: Any, name: str) -> int | None:
    """Twilio sends numbers as strings; accept both, refuse anything else."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TwilioProtocolError(f"media.{name} must be an integer, got {value!r}"[:100])
    try:
        number = int(value)
    except ValueError:
        raise TwilioProtocolError(f"media.{name} must be an integer, got {value!r}"[:100]) from None
    if number < 0:
        raise TwilioProtocolError(f"media.{name} must not be negative, got {number}")
    return number


class MediaStreamProtocol:
    """One Twilio Media Stream, from ``connected`` to ``stop``."""

    def __init__(self, config: TwilioConfig | None = None) -> None:
        self.config = config or TwilioConfig()
        self.state = State.AWAITING_START
        self.start: CallStart | None = None
        self.timeline: Timeline | None = None
        self._decoder: AudioDecoder | None = None
        self._track_ends: list[int] = []

    @property
    def audio_seconds(self) -> float:
        """Call audio released so far (every channel covers the same span)."""
        return self.timeline.released / SAMPLE_RATE if self.timeline else 0.0

    @property
    def stats(self) -> TimelineStats:
        return self.timeline.stats if self.timeline else TimelineStats()

    def _transition(self, to: State) -> None:
        if to not in _ALLOWED[self.state]:
            raise InvalidTransition(f"Twilio stream cannot go from {self.state.value} to {to.value}")
        self.state = to

    def _expect(self, event: str, state: State) -> None:
        if self.state is state:
            return
        if self.state is State.AWAITING_START:
            raise TwilioProtocolError(f"'{event}' event before 'start'")
        if self.state is State.STOPPED:
            raise TwilioProtocolError(f"'{event}' event after 'stop'")
        raise TwilioProtocolError(f"'{event}' event after 'start'")

    def receive_text(self, text: str) -> list[TwilioEvent]:
        """One text frame from Twilio."""
        if len(text) > MAX_MESSAGE_CHARS:
            raise FrameTooLarge(f"Twilio message of {len(text)} characters exceeds the {MAX_MESSAGE_CHARS} limit")
        try:
            body = json.loads(text)
        except ValueError:
            raise InvalidMessage("Twilio message is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("event"), str):
            raise InvalidMessage('Twilio message must be a JSON object with a string "event"')
        event: str = body["event"]
        if event == "media":
            return self._media(body)
        if event == "connected":
            self._expect(event, State.AWAITING_START)
            return [Connected(str(body.get("protocol", "")), str(body.get("version", "")))]
        if event == "start":
            return [self._start(body)]
        if event == "dtmf":
            return [self._dtmf(body)]
        if event == "mark":
            self._expect(event, State.STREAMING)
            return [Mark(str(_object(body, "mark", event).get("name", "")))]
        if event == "stop":
            return [self._stop()]
        raise TwilioProtocolError(f"unknown Twilio event {event[:40]!r}")

    def _start(self, body: Mapping[str, Any]) -> Started:
        self._expect("start", State.AWAITING_START)
        start = _object(body, "start", "start")
        raw_tracks = start.get("tracks", ["inbound"])
        if not isinstance(raw_tracks, list) or not raw_tracks or not all(t in TRACKS for t in raw_tracks):
            raise TwilioProtocolError(f"start.tracks must list 'inbound' and/or 'outbound', got {raw_tracks!r}"[:100])
        tracks = tuple(t for t in TRACKS if t in raw_tracks)
        media_format = start.get("mediaFormat") or {}
        if not isinstance(media_format, dict):
            raise TwilioProtocolError("start.mediaFormat must be an object")
        encoding = media_format.get("encoding", "audio/x-mulaw")
        rate = media_format.get("sampleRate", SAMPLE_RATE)
        channels = media_format.get("channels", 1)
        if encoding != "audio/x-mulaw" or rate != SAMPLE_RATE or channels != 1:
            raise InvalidAudio(f"unsupported mediaFormat {encoding}/{rate}/{channels}; expected audio/x-mulaw/8000/1")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise TwilioProtocolError("start.customParameters must be an object")
        stream_sid = start.get("streamSid") or body.get("streamSid")
        if not isinstance(stream_sid, str) or not stream_sid:
            raise TwilioProtocolError("'start' event needs a string 'streamSid'")
        self.start = CallStart(
            stream_sid=stream_sid,
            call_sid=_string(start, "callSid", "start"),
            account_sid=str(start.get("accountSid", "")),
            tracks=tracks,
            custom_parameters={str(k): str(v) for k, v in params.items()},
        )
        self.timeline = Timeline(
            len(tracks),
            window=self.config.reorder_window_ms * SAMPLES_PER_MS,
            max_jump=self.config.max_jump_ms * SAMPLES_PER_MS,
        )
        self._decoder = AudioDecoder(Encoding.MULAW, SAMPLE_RATE, len(tracks), multichannel=True)
        self._track_ends = [0] * len(tracks)
        self._transition(State.STREAMING)
        return Started(self.start)

    def _channel(self, track: Any, event: str) -> int:
        assert self.start is not None
        if track is None:
            if len(self.start.tracks) == 1:
                return 0
            raise TwilioProtocolError(f"'{event}' event needs a 'track': the stream has two")
        # Twilio names tracks "inbound"/"outbound" in media and
        # "inbound_track"/"outbound_track" in TwiML; accept both.
        name = track.removesuffix("_track") if isinstance(track, str) else track
        if name not in self.start.tracks:
            raise TwilioProtocolError(f"'{event}' for track {track!r}, which 'start' did not announce"[:100])
        return self.start.tracks.index(name)

    def _media(self, body: Mapping[str, Any]) -> list[TwilioEvent]:
        self._expect("media", State.STREAMING)
        assert self.timeline is not None
        media = _object(body, "media", "media")
        channel = self._channel(media.get("track"), "media")
        raw = media.get("payload")
        if not isinstance(raw, str):
            raise TwilioProtocolError("'media' event needs a string 'payload'")
        try:
            payload = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidAudio("media payload is not valid base64") from None
        timestamp = _integer(media.get("timestamp"), "timestamp")
        chunk = _integer(media.get("chunk"), "chunk")
        if timestamp is not None:
            position = timestamp * SAMPLES_PER_MS
        elif chunk is not None and chunk > 0:
            # Chunks are numbered from 1 and (without timestamps) taken as equal length.
            position = (chunk - 1) * len(payload)
        else:
            position = self._track_ends[channel]
        if not payload:
            return []
        self.timeline.add(channel, position, payload)
        self._track_ends[channel] = max(self._track_ends[channel], position + len(payload))
        released = self.timeline.release()
        return [] if released is None else [Audio(self._decode(released))]

    def _dtmf(self, body: Mapping[str, Any]) -> Dtmf:
        self._expect("dtmf", State.STREAMING)
        dtmf = _object(body, "dtmf", "dtmf")
        assert self.timeline is not None
        return Dtmf(
            self._channel(dtmf.get("track"), "dtmf"),
            str(dtmf.get("digit", ""))[:8],
            self.timeline.horizon / SAMPLE_RATE,
        )

    def _stop(self) -> Stopped:
        if self.state is State.STOPPED:
            raise TwilioProtocolError("second 'stop' event")
        frame = None
        if self.timeline is not None:
            frame = self._last_frame(self.timeline.release(final=True))
        self._transition(State.STOPPED)
        return Stopped(frame)

    def close(self) -> None:
        """The connection is gone (after ``stop`` or not)."""
        if self.state is not State.STOPPED:
            self._transition(State.STOPPED)

    def _last_frame(self, tracks: tuple[bytes, ...] | None) -> DecodedFrame | None:
        """What is still buffered, plus the resampler's delay line (the call's last ms)."""
        assert self._decoder is not None
        frame = None if tracks is None else self._decode(tracks)
        tail = self._decoder.flush()
        if frame is None:
            if not len(tail[0]):
                return None
            return DecodedFrame(tail, tuple(np.zeros(0, np.int16) for _ in tail), 0.0)
        channels = tuple(np.concatenate([audio, rest]) for audio, rest in zip(frame.channels, tail, strict=True))
        return DecodedFrame(channels, frame.vad_channels, frame.input_seconds)

    def _decode(self, tracks: tuple[bytes, ...]) -> DecodedFrame:
        assert self._decoder is not None
        if len(tracks) == 1:
            return self._decoder.decode(tracks[0])
        interleaved = np.stack([np.frombuffer(t, dtype=np.uint8) for t in tracks], axis=1)
        return self._decoder.decode(interleaved.tobytes())


# -- request signatures ----------------------------------------------------------

_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}


def compute_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """Twilio's X-Twilio-Signature of a request to ``url`` with POST ``params``."""
    fields = params or {}
    data = url + "".join(name + fields[name] for name in sorted(fields))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> list[str]:
    """The URL without its port and with the scheme's default port, as Twilio's
    own validator tries both (a proxy may add or drop the port Twilio signed)."""
    parts = urlsplit(url)
    if parts.hostname is None or "@" in parts.netloc:
        return [url]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    variants = [urlunsplit(parts._replace(netloc=host))]
    default = _DEFAULT_PORTS.get(parts.scheme)
    if parts.port is not None:
        variants.append(url)
    elif default is not None:
        variants.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    return variants


def signature_valid(auth_token: str, url: str, signature: str | None, params: Mapping[str, str] | None = None) -> bool:
    """Whether ``signature`` is Twilio's for ``url`` (compared in constant time)."""
    if not signature:
        return False
    matched = False
    for candidate in _port_variants(url):
        expected = compute_signature(auth_token, candidate, params)
        # Check every variant: no early exit that would leak which one matched.
        matched |= hmac.compare_digest(expected.encode(), signature.strip().encode())
    return matched


def signed_url(public_base: str | None, host: str | None, path: str) -> str:
    """The URL Twilio connected to: the configured public base (the gateway is
    behind a proxy), else ``wss://`` and the Host header, plus the request path."""
    if public_base:
        return public_base.rstrip("/") + path
    return f"wss://{host or ''}{path}"
