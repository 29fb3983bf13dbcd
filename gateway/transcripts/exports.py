"""Stored transcripts as JSON, plain text, SRT and WebVTT (pure).

Every format labels speech with its channel's speaker ("customer"/"agent"
for Twilio calls, "channel 0".. for listen streams) and orders it by time
across channels, so a two-party call reads as a conversation. Subtitle cues
are cut from word timings: a cue ends at a sentence end or when it would
pass ``max_chars`` characters or ``max_seconds`` seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.transcripts.records import FinalRecord, StreamRecord


class ExportFormat(StrEnum):
    JSON = "json"
    TEXT = "text"
    SRT = "srt"
    VTT = "vtt"

    @property
    def content_type(self) -> str:
        return {
            ExportFormat.JSON: "application/json",
            ExportFormat.TEXT: "text/plain; charset=utf-8",
            ExportFormat.SRT: "application/x-subrip; charset=utf-8",
            ExportFormat.VTT: "text/vtt; charset=utf-8",
        }[self]


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    speaker: str
    text: str


MIN_CUE_S = 0.2


def _ordered(finals: list[FinalRecord]) -> list[FinalRecord]:
    return sorted(finals, key=lambda f: (f.start, f.channel))


def to_json(record: StreamRecord, finals: list[FinalRecord]) -> dict[str, Any]:
    """The whole stream: summary, per-channel transcripts, every final with words."""
    info = record.info
    ordered = _ordered(finals)
    channels = [
        {
            "channel": index,
            "speaker": label,
            "transcript": " ".join(f.text for f in ordered if f.channel == index),
        }
        for index, label in enumerate(info.labels)
    ]
    return {
        **record.summary(),
        "params": info.params,
        "stats": record.stats,
        "channels": channels,
        "finals": [
            {
                "channel": f.channel,
                "speaker": info.label(f.channel),
                "start": round(f.start, 3),
                "end": round(f.end, 3),
                "text": f.text,
                "speech_final": f.speech_final,
                "words": list(f.words),
            }
            for f in ordered
        ],
    }


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_text(record: StreamRecord, finals: list[FinalRecord]) -> str:
    """One line per speaker turn: ``[mm:ss.s] speaker: text``."""
    lines: list[str] = []
    turn: list[FinalRecord] = []
    for final in [*_ordered(finals), None]:
        if turn and (final is None or final.channel != turn[0].channel):
            minutes, seconds = divmod(turn[0].start, 60)
            speaker = record.info.label(turn[0].channel)
            lines.append(f"[{int(minutes):02d}:{seconds:04.1f}] {speaker}: {' '.join(f.text for f in turn)}")
            turn = []
        if final is not None:
            turn.append(final)
    return "\n".join(lines) + ("\n" if lines else "")


def cues(record: StreamRecord, finals: list[FinalRecord], max_chars: int = 84, max_seconds: float = 7.0) -> list[Cue]:
    """Subtitle cues of every final, in time order."""
    out: list[Cue] = []
    for final in _ordered(finals):
        speaker = record.info.label(final.channel)
        words = [w for w in final.words if _word(w)]
        if not words:
            out.append(Cue(final.start, max(final.end, final.start + MIN_CUE_S), speaker, final.text))
            continue
        group: list[dict[str, Any]] = []
        length = 0
        for word in words:
            text = _word(word)
            too_long = length + 1 + len(text) > max_chars
            if group and (too_long or float(word["end"]) - float(group[0]["start"]) > max_seconds):
                out.append(_cue(group, speaker))
                group, length = [], 0
            group.append(word)
            length += len(text) + (1 if length else 0)
            if text.endswith((".", "?", "!")):
                out.append(_cue(group, speaker))
                group, length = [], 0
        if group:
            out.append(_cue(group, speaker))
    return sorted(out, key=lambda c: c.start)


def _word(word: dict[str, Any]) -> str:
    return str(word.get("punctuated_word") or word.get("word") or "")


def _cue(words: list[dict[str, Any]], speaker: str) -> Cue:
    start = float(words[0]["start"])
    end = max(float(words[-1]["end"]), start + MIN_CUE_S)
    return Cue(start, end, speaker, " ".join(_word(w) for w in words))


def to_srt(record: StreamRecord, finals: list[FinalRecord]) -> str:
    blocks = [
        f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.speaker}: {c.text}\n"
        for i, c in enumerate(cues(record, finals), start=1)
    ]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(record: StreamRecord, finals: list[FinalRecord]) -> str:
    blocks = ["WEBVTT\n"]
    for c in cues(record, finals):
        speaker = _vtt_escape(c.speaker)
        blocks.append(f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n<v {speaker}>{_vtt_escape(c.text)}</v>\n")
    return "\n".join(blocks)


def render(fmt: ExportFormat, record: StreamRecord, finals: list[FinalRecord]) -> str:
    """The stream in ``fmt`` (JSON as a string)."""
    if fmt is ExportFormat.JSON:
        return json.dumps(to_json(record, finals), ensure_ascii=False)
    if fmt is ExportFormat.TEXT:
        return to_text(record, finals)
    if fmt is ExportFormat.SRT:
        return to_srt(record, finals)
    return to_vtt(record, finals)
