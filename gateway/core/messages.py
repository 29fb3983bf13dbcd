"""Server-to-client messages of Deepgram's live protocol, as JSON-ready dicts.

Pure builders: the shell serialises what these return. Field names follow
``../shared/specs/deepgram-live.md`` and deepgram-sdk's response types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.core.transcriber import Transcript
from gateway.core.types import Word

_STRIP = re.compile(r"^[^\w'*]+|[^\w'*]+$")  # asterisks are masked words (redact, profanity_filter)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    version: str
    arch: str
    uuid: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "arch": self.arch}


def _bare(word: str) -> str:
    return _STRIP.sub("", word).lower() or word.lower()


def word_json(word: Word, formatted: bool) -> dict[str, Any]:
    bare = _bare(word.text)
    return {
        "word": bare,
        "start": round(word.start, 3),
        "end": round(word.end, 3),
        "confidence": round(word.probability, 4),
        "punctuated_word": word.text if formatted else bare,
    }


def transcript_text(words: tuple[Word, ...] | list[Word], formatted: bool) -> str:
    """Deepgram joins words with spaces; unformatted text is lower case, no punctuation."""
    return " ".join(w.text if formatted else _bare(w.text) for w in words)


def results(
    event: Transcript,
    *,
    channel: int,
    channels: int,
    request_id: str,
    model: ModelInfo,
    formatted: bool,
) -> dict[str, Any]:
    words = event.words
    confidence = sum(w.probability for w in words) / len(words) if words else 0.0
    return {
        "type": "Results",
        "channel_index": [channel, channels],
        "duration": round(event.duration, 3),
        "start": round(event.start, 3),
        "is_final": event.is_final,
        "speech_final": event.speech_final,
        "from_finalize": event.from_finalize,
        "channel": {
            "alternatives": [
                {
                    "transcript": transcript_text(words, formatted),
                    "confidence": round(confidence, 4),
                    "words": [word_json(w, formatted) for w in words],
                }
            ]
        },
        "metadata": {"request_id": request_id, "model_uuid": model.uuid, "model_info": model.as_dict()},
    }


def speech_started(channel: int, channels: int, time: float) -> dict[str, Any]:
    return {"type": "SpeechStarted", "channel": [channel, channels], "timestamp": round(time, 3)}


def utterance_end(channel: int, channels: int, last_word_end: float) -> dict[str, Any]:
    return {"type": "UtteranceEnd", "channel": [channel, channels], "last_word_end": round(last_word_end, 3)}


def metadata(
    *,
    request_id: str,
    created: datetime,
    duration: float,
    channels: int,
    sha256: str,
    model: ModelInfo,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": request_id,
        "sha256": sha256,
        "created": created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "duration": round(duration, 3),
        "channels": channels,
        "models": [model.uuid],
        "model_info": {model.uuid: model.as_dict()},
    }
    if extra:
        body.update(extra)
    return body


def error(description: str, variant: str = "error", message: str = "") -> dict[str, Any]:
    return {"type": "Error", "variant": variant, "description": description, "message": message or description}


def engine_info(
    *,
    request_id: str,
    engine: str,
    model: str,
    previous: str,
    reason: str,
    variant: str,
    start: float,
) -> dict[str, Any]:
    """The stream moved to another engine (failover): from ``start`` on, ``engine`` transcribes.

    Not a Deepgram message: deepgram-sdk hands unknown types to the caller as None.
    """
    return {
        "type": "EngineInfo",
        "request_id": request_id,
        "engine": engine,
        "model": model,
        "previous_engine": previous,
        "failover": True,
        "reason": reason,
        "variant": variant,
        "start": round(start, 3),
    }
