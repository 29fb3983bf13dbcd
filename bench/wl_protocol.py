"""WhisperLive's WebSocket protocol, sans I/O: the handshake options and a segment tracker.

Server messages carry ``segments`` (``start``/``end`` as strings, ``text``,
``completed``, and ``words`` when word timestamps are on), re-sending the last
few completed segments plus the one in progress. The tracker turns that stream
into :class:`~bench.timeline.Update` values: each completed segment becomes a
final once (deduplicated as WhisperLive's own client does, by start time), and
the trailing incomplete segment becomes an interim when it changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.latency import word_key
from bench.timeline import Update, Word

END_OF_AUDIO = b"END_OF_AUDIO"
SERVER_READY = "SERVER_READY"
DISCONNECT = "DISCONNECT"


def handshake(uid: str, model: str, *, word_timestamps: bool = True, use_vad: bool = True) -> str:
    """The first (JSON text) frame a WhisperLive client sends."""
    return json.dumps(
        {
            "uid": uid,
            "language": "en",
            "task": "transcribe",
            "model": model,
            "use_vad": use_vad,
            "send_last_n_segments": 10,
            "no_speech_thresh": 0.45,
            "clip_audio": False,
            "same_output_threshold": 10,
            "word_timestamps": word_timestamps,
        }
    )


def _words(segment: Mapping[str, Any]) -> tuple[Word, ...]:
    return tuple(
        Word(text=str(w.get("word", "")).strip(), start=float(w["start"]), end=float(w["end"]))
        for w in segment.get("words") or []
    )


@dataclass(slots=True)
class SegmentTracker:
    """Deduplicates WhisperLive segments into finals and interims.

    ``status`` holds the last status message (``WAIT``, ``ERROR``, ``WARNING``)
    with its text; ``ready`` turns true on ``SERVER_READY``.
    """

    updates: list[Update] = field(default_factory=list)
    ready: bool = False
    disconnected: bool = False
    status: str | None = None
    _last_final_end: float = float("-inf")
    _interim: Update | None = None
    _interim_seen: float = 0.0

    def feed(self, raw: str, arrival: float) -> list[Update]:
        """Record one server message; return the updates it produced."""
        message = json.loads(raw)
        if not isinstance(message, dict):
            return []
        if message.get("message") == SERVER_READY:
            self.ready = True
        elif message.get("message") == DISCONNECT:
            self.disconnected = True
        if "status" in message:
            self.status = f"{message['status']}: {message.get('message')}"
        segments = message.get("segments")
        if not isinstance(segments, list) or not segments:
            return []
        return self._segments(segments, arrival)

    def _segments(self, segments: Sequence[Mapping[str, Any]], arrival: float) -> list[Update]:
        produced: list[Update] = []
        for index, seg in enumerate(segments):
            start, end = float(seg["start"]), float(seg["end"])
            text = str(seg.get("text", "")).strip()
            if seg.get("completed"):
                if start < self._last_final_end - 1e-6:
                    continue  # already recorded
                self._last_final_end = end
                produced.append(
                    Update(arrival=arrival, is_final=True, transcript=text, words=self._final_words(seg, text))
                )
                self._interim = None
            elif index == len(segments) - 1 and text:
                words = _words(seg)
                previous = self._interim
                self._interim_seen = arrival
                if previous is None or previous.transcript != text or previous.words != words:
                    self._interim = Update(arrival=arrival, is_final=False, transcript=text, words=words)
                    produced.append(self._interim)
        self.updates.extend(produced)
        return produced

    def _final_words(self, seg: Mapping[str, Any], text: str) -> tuple[Word, ...]:
        """Words of a completed segment; WhisperLive omits them when it completes a segment by
        repetition, and then the words of the identical interim before it are used."""
        words = _words(seg)
        interim = self._interim
        if not words and interim is not None and _same_text(interim.transcript, text):
            words = interim.words
        return words

    def finish(self) -> Update | None:
        """Close the stream: the segment still in progress counts as final (as WhisperLive's
        client does when it writes its transcript), at the last arrival that carried it."""
        interim = self._interim
        if interim is None:
            return None
        final = Update(arrival=self._interim_seen, is_final=True, transcript=interim.transcript, words=interim.words)
        self.updates.append(final)
        self._interim = None
        return final


def _same_text(a: str, b: str) -> bool:
    return [word_key(w) for w in a.split()] == [word_key(w) for w in b.split()]
