"""Values describing stored streams and their finals (pure, no I/O).

A *stream* is one ``/v1/listen`` connection or one Twilio media stream; a
*call* groups the streams live subscribers follow (a Twilio ``callSid``, or
the request id of a listen stream). A :class:`FinalRecord` is one final
Results message with text, reduced to what transcripts need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class StreamKind(StrEnum):
    LISTEN = "listen"
    TWILIO = "twilio"


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What is known of a stream when it starts."""

    stream_id: str
    call_id: str
    kind: StreamKind
    tenant: str
    labels: tuple[str, ...]
    """Speaker label per channel ("customer", "agent", or "channel 0"...)."""
    started: datetime
    params: dict[str, Any] = field(default_factory=dict)

    def label(self, channel: int) -> str:
        return self.labels[channel] if 0 <= channel < len(self.labels) else f"channel {channel}"

    def summary(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "call_id": self.call_id,
            "kind": self.kind.value,
            "labels": list(self.labels),
            "started": iso(self.started),
        }


def channel_labels(channels: int) -> tuple[str, ...]:
    """Labels of a listen stream's channels."""
    return tuple(f"channel {i}" for i in range(channels))


@dataclass(frozen=True, slots=True)
class FinalRecord:
    """One final with words; times are seconds from the stream's start.

    ``start``/``end`` bound the words (the Results span may include silence).
    """

    channel: int
    start: float
    end: float
    text: str
    words: tuple[dict[str, Any], ...] = ()
    speech_final: bool = False

    @classmethod
    def from_results(cls, message: dict[str, Any]) -> FinalRecord | None:
        """The record of a final Results message, or None (interim, no words, or not Results-shaped).

        Relayed messages come from upstream as they are: a malformed one is
        skipped here (the client still gets it), never an exception.
        """
        if message.get("type") != "Results" or not message.get("is_final"):
            return None
        try:
            return cls._read(message)
        except (AttributeError, TypeError, ValueError, IndexError, KeyError, OverflowError):
            return None

    @classmethod
    def _read(cls, message: dict[str, Any]) -> FinalRecord | None:
        alternatives = (message.get("channel") or {}).get("alternatives") or [{}]
        text = str(alternatives[0].get("transcript", "")).strip()
        if not text:
            return None
        words = tuple(alternatives[0].get("words") or ())
        if not all(isinstance(w, dict) for w in words):
            return None
        span_start = float(message.get("start", 0.0))
        span_end = span_start + float(message.get("duration", 0.0))
        start = float(words[0]["start"]) if words else span_start
        end = float(words[-1]["end"]) if words else span_end
        if not all(math.isfinite(t) for t in (start, end)):
            return None
        return cls(
            channel=int(message.get("channel_index", [0])[0]),
            start=start,
            end=max(start, end),
            text=text,
            words=words,
            speech_final=bool(message.get("speech_final")),
        )


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """A stored stream, as read back."""

    info: StreamInfo
    ended: datetime | None
    status: str
    """``active``, ``completed``, ``disconnected``, ``error: ...``; an
    ``active`` stream that is not live any more was cut off by a crash."""
    stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            **self.info.summary(),
            "ended": iso(self.ended) if self.ended else None,
            "status": self.status,
        }


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
