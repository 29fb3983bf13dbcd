"""Sans-I/O OpenAI Realtime transcription session (``/v1/realtime?intent=transcription``).

Client events in (JSON text frames), engine messages in (the Deepgram-shaped
dicts every engine emits), OpenAI server events out; no sockets, no asyncio.

Mapping (one *item* is one user turn):

- ``session.update`` / ``transcription_session.update``: audio format
  (``audio/pcm`` 24 kHz by default, ``audio/pcmu``, ``audio/pcma``), turn
  detection (``server_vad`` with ``silence_duration_ms``, or ``null`` for
  manual commits), ``transcription.prompt``. Answered with ``session.updated``.
  The format may change only before the first audio.
- ``input_audio_buffer.append``: base64 audio, decoded to 16 kHz.
- ``SpeechStarted`` -> ``input_audio_buffer.speech_started``;
  each final -> ``conversation.item.input_audio_transcription.delta`` (finals
  never change, so deltas only ever append);
  an endpoint (``speech_final``), or the flush a client's
  ``input_audio_buffer.commit`` asks for -> ``speech_stopped`` (server VAD),
  ``input_audio_buffer.committed`` and
  ``conversation.item.input_audio_transcription.completed``.
- ``input_audio_buffer.clear``: the turn so far is flushed and its text
  dropped; ``input_audio_buffer.cleared``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.core.audio import AudioDecoder, DecodedFrame
from gateway.core.errors import FrameTooLarge, InvalidMessage
from gateway.core.params import Encoding, StreamParams

DEFAULT_SILENCE_MS = 500
_FORMATS = {
    "audio/pcm": (Encoding.LINEAR16, 24_000),
    "pcm16": (Encoding.LINEAR16, 24_000),
    "audio/pcmu": (Encoding.MULAW, 8_000),
    "g711_ulaw": (Encoding.MULAW, 8_000),
    "audio/pcma": (Encoding.ALAW, 8_000),
    "g711_alaw": (Encoding.ALAW, 8_000),
}
MAX_TEXT = 16 * 1024 * 1024  # OpenAI allows 15 MiB of base64 audio per append


@dataclass(frozen=True, slots=True)
class AppendAudio:
    frame: DecodedFrame
    nbytes: int


@dataclass(frozen=True, slots=True)
class Commit:
    pass


@dataclass(frozen=True, slots=True)
class Clear:
    pass


@dataclass(frozen=True, slots=True)
class Reply:
    """Events to send back at once (session.updated, error, ...)."""

    events: tuple[dict[str, Any], ...]


RealtimeEvent = AppendAudio | Commit | Clear | Reply


@dataclass(slots=True)
class SessionConfig:
    format: str = "audio/pcm"
    rate: int = 24_000
    encoding: Encoding = Encoding.LINEAR16
    server_vad: bool = True
    silence_ms: int = DEFAULT_SILENCE_MS
    prompt: str = ""
    model: str = "whisper-1"
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def event_id() -> str:
    return f"event_{uuid.uuid4().hex[:20]}"


def error_event(
    message: str, code: str, client_event_id: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": event_id(),
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    }


class RealtimeProtocol:
    """One transcription session: client events and engine messages in, server events out."""

    def __init__(self, session_id: str, max_frame_bytes: int = 1 << 20) -> None:
        self.session_id = session_id
        self.config = SessionConfig()
        self.max_frame_bytes = max_frame_bytes
        self.decoder: AudioDecoder | None = None
        self.audio_seconds = 0.0
        self._item: str | None = None
        self._previous_item: str | None = None
        self._text: list[str] = []
        self._speaking = False
        self._commit_pending = False
        self._clear_pending = False
        self._turn_from_s = 0.0
        self._held_starts: list[float] = []

    # -- the session ------------------------------------------------------------

    @property
    def audio_started(self) -> bool:
        return self.decoder is not None

    def stream_params(self, base: StreamParams | None = None) -> StreamParams:
        """What the engine stream is opened with (on the first audio)."""
        c = self.config
        return replace(
            base or StreamParams(),
            encoding=c.encoding,
            sample_rate=c.rate,
            interim_results=False,
            endpointing_ms=c.silence_ms if c.server_vad else None,
            vad_events=True,
            punctuate=True,
        )

    def session_json(self) -> dict[str, Any]:
        c = self.config
        fmt: dict[str, Any] = {"type": c.format if c.format.startswith("audio/") else _GA_NAME.get(c.format, c.format)}
        if fmt["type"] == "audio/pcm":
            fmt["rate"] = c.rate
        turn = (
            {"type": "server_vad", "silence_duration_ms": c.silence_ms, "prefix_padding_ms": 300, "threshold": 0.5}
            if c.server_vad
            else None
        )
        return {
            "type": "transcription",
            "id": self.session_id,
            "object": "realtime.transcription_session",
            "audio": {
                "input": {
                    "format": fmt,
                    "transcription": {"model": c.model, "prompt": c.prompt, "language": c.language},
                    "turn_detection": turn,
                    "noise_reduction": None,
                }
            },
            "include": [],
        }

    def created(self) -> dict[str, Any]:
        return {"type": "session.created", "event_id": event_id(), "session": self.session_json()}

    # -- client events ----------------------------------------------------------

    def receive_text(self, text: str) -> RealtimeEvent:
        if len(text) > MAX_TEXT:
            raise FrameTooLarge(f"client event of {len(text)} characters exceeds the {MAX_TEXT} limit")
        try:
            body = json.loads(text)
        except ValueError:
            raise InvalidMessage("client event is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise InvalidMessage('client event must be a JSON object with a string "type"')
        kind: str = body["type"]
        client_id = body.get("event_id") if isinstance(body.get("event_id"), str) else None
        if kind in ("session.update", "transcription_session.update"):
            return self._update(body.get("session"), client_id)
        if kind == "input_audio_buffer.append":
            return self._append(body.get("audio"), client_id)
        if kind == "input_audio_buffer.commit":
            self._commit_pending = True
            return Commit()
        if kind == "input_audio_buffer.clear":
            self._clear_pending = True
            return Clear()
        message = f"event type {kind[:64]!r} is not supported by this transcription-only gateway"
        return Reply((error_event(message, "unsupported_event", client_id),))

    def _append(self, audio: Any, client_id: str | None) -> RealtimeEvent:
        if not isinstance(audio, str):
            return Reply((error_event("'audio' must be a base64 string", "invalid_value", client_id, "audio"),))
        try:
            raw = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            return Reply((error_event("'audio' is not valid base64", "invalid_value", client_id, "audio"),))
        if len(raw) > self.max_frame_bytes * 16:
            raise FrameTooLarge(f"audio chunk of {len(raw)} bytes is too large")
        if self.decoder is None:
            self.decoder = AudioDecoder(self.config.encoding, self.config.rate)
        if len(raw) % self.decoder.frame_bytes:
            raw = raw[: len(raw) - len(raw) % self.decoder.frame_bytes]  # a split sample: drop the odd byte
        frame = self.decoder.decode(raw)
        self.audio_seconds += frame.input_seconds
        return AppendAudio(frame, len(raw))

    def _update(self, session: Any, client_id: str | None) -> RealtimeEvent:
        if not isinstance(session, dict):
            return Reply((error_event("'session' must be an object", "invalid_value", client_id, "session"),))
        c = replace(self.config)
        audio_input = session.get("audio", {}).get("input", {}) if isinstance(session.get("audio"), dict) else {}
        if not isinstance(audio_input, dict):
            audio_input = {}
        # GA shape (session.audio.input.*) first, then the beta's flat fields.
        fmt = audio_input.get("format", session.get("input_audio_format"))
        if fmt is not None:
            name = fmt.get("type") if isinstance(fmt, dict) else fmt
            if name not in _FORMATS:
                return Reply((error_event(f"audio format {name!r} is not supported", "invalid_value", client_id),))
            c.format = str(name)
            c.encoding, c.rate = _FORMATS[c.format]
            if isinstance(fmt, dict) and fmt.get("rate") not in (None, c.rate):
                return Reply((error_event("audio/pcm is 24000 Hz only", "invalid_value", client_id),))
        key = "turn_detection"
        turn = audio_input[key] if key in audio_input else session.get(key, "unset")
        if turn is None:
            c.server_vad = False
        elif isinstance(turn, dict):
            if turn.get("type", "server_vad") not in ("server_vad", "semantic_vad"):
                return Reply((error_event(f"turn detection {turn.get('type')!r} is not supported", "invalid_value"),))
            c.server_vad = True
            silence = turn.get("silence_duration_ms")
            if isinstance(silence, int) and 0 < silence <= 10_000:
                c.silence_ms = silence
        transcription = audio_input.get("transcription", session.get("input_audio_transcription"))
        if isinstance(transcription, dict):
            c.prompt = str(transcription.get("prompt") or "")
            c.model = str(transcription.get("model") or c.model)
            language = transcription.get("language")
            if language not in (None, "", "en"):
                return Reply((error_event(f"language {language!r} is not served (English only)", "invalid_value"),))
            c.language = language or None
        if self.audio_started and (c.encoding, c.rate, c.server_vad, c.silence_ms) != (
            self.config.encoding,
            self.config.rate,
            self.config.server_vad,
            self.config.silence_ms,
        ):
            message = "audio format and turn detection cannot change once audio has been appended"
            return Reply((error_event(message, "session_locked", client_id),))
        self.config = c
        return Reply(({"type": "session.updated", "event_id": event_id(), "session": self.session_json()},))

    # -- engine messages --------------------------------------------------------

    def _item_id(self) -> str:
        if self._item is None:
            self._item = f"item_{uuid.uuid4().hex[:20]}"
        return self._item

    def engine_message(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """The OpenAI events one engine message makes (often none)."""
        kind = message.get("type")
        if kind == "SpeechStarted":
            if not self.config.server_vad:
                return []
            time = float(message.get("timestamp", 0.0))
            if self._speaking:
                # Mid-turn (after a short pause), or the next turn starting before this
                # turn's final came back: the turn's end time tells which (see _complete).
                self._held_starts.append(time)
                return []
            return [self._speech_started(time)]
        if kind != "Results" or not message.get("is_final"):
            return []
        alternative = message["channel"]["alternatives"][0]
        text = str(alternative.get("transcript", ""))
        events: list[dict[str, Any]] = []
        if text and not self._clear_pending:
            delta = (" " if self._text else "") + text
            self._text.append(text)
            events.append(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "event_id": event_id(),
                    "item_id": self._item_id(),
                    "content_index": 0,
                    "delta": delta,
                }
            )
        flushed = bool(message.get("speech_final") or message.get("from_finalize"))
        ends_turn = (message.get("speech_final") and self.config.server_vad) or (flushed and self._commit_pending)
        if flushed and self._clear_pending:
            self._clear_pending = False
            self._text = []
            self._item = None
            self._speaking = False
            self._held_starts = []
            return [{"type": "input_audio_buffer.cleared", "event_id": event_id()}]
        if ends_turn:
            end_s = float(message.get("start", 0.0)) + float(message.get("duration", 0.0))
            events.extend(self._complete(end_s))
        return events

    def _speech_started(self, time: float) -> dict[str, Any]:
        self._speaking = True
        return {
            "type": "input_audio_buffer.speech_started",
            "event_id": event_id(),
            "audio_start_ms": int(time * 1000),
            "item_id": self._item_id(),
        }

    def _complete(self, end_s: float) -> list[dict[str, Any]]:
        item = self._item_id()
        events: list[dict[str, Any]] = []
        if self._speaking:
            events.append(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "event_id": event_id(),
                    "audio_end_ms": int(end_s * 1000),
                    "item_id": item,
                }
            )
        events.append(
            {
                "type": "input_audio_buffer.committed",
                "event_id": event_id(),
                "item_id": item,
                "previous_item_id": self._previous_item,
            }
        )
        events.append(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "event_id": event_id(),
                "item_id": item,
                "content_index": 0,
                "transcript": " ".join(self._text),
                "usage": {"type": "duration", "seconds": round(self.audio_seconds - self._turn_from_s, 3)},
            }
        )
        self._previous_item, self._item = item, None
        self._turn_from_s = self.audio_seconds
        self._text = []
        self._speaking = False
        self._commit_pending = False
        later = [t for t in self._held_starts if t >= end_s - 0.05]
        self._held_starts = []
        if later and self.config.server_vad:
            events.append(self._speech_started(later[0]))
        return events


_GA_NAME = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
