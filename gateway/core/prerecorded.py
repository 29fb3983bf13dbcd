"""Responses for whole-file (pre-recorded) transcription, as JSON-ready values.

Pure: Whisper's segments (each a tuple of :class:`Word` in file time) in,
Deepgram's ``POST /v1/listen`` response or OpenAI's ``/v1/audio/transcriptions``
bodies out. Field names follow deepgram-sdk 7's ``ListenV1Response`` and the
openai SDK's ``Transcription`` / ``TranscriptionVerbose`` types.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.core.messages import ModelInfo, metadata, transcript_text, word_json
from gateway.core.types import Word

Segment = tuple[Word, ...]
"""One Whisper segment: consecutive words, file times in seconds."""

SENTENCE_END = (".", "?", "!")


@dataclass(frozen=True, slots=True)
class FileOptions:
    """What a pre-recorded request asked for beyond the transcript."""

    formatted: bool = False
    utterances: bool = False
    utt_split_s: float = 0.8
    paragraphs: bool = False


def _confidence(words: Sequence[Word]) -> float:
    return round(sum(w.probability for w in words) / len(words), 4) if words else 0.0


def split_utterances(words: Sequence[Word], gap_s: float) -> list[list[Word]]:
    """Runs of words separated by at least ``gap_s`` of silence (Deepgram's ``utt_split``)."""
    runs: list[list[Word]] = []
    for word in words:
        if runs and word.start - runs[-1][-1].end < gap_s:
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs


def _sentences(words: Sequence[Word]) -> list[list[Word]]:
    sentences: list[list[Word]] = [[]]
    for word in words:
        sentences[-1].append(word)
        if word.text.endswith(SENTENCE_END):
            sentences.append([])
    return [s for s in sentences if s]


def paragraphs(words: Sequence[Word], gap_s: float = 1.5) -> dict[str, Any]:
    """Deepgram's ``paragraphs`` block: a new paragraph after ``gap_s`` of silence, sentences inside."""
    blocks = []
    texts = []
    for run in split_utterances(words, gap_s):
        parts = _sentences(run)
        sentences = [
            {"text": transcript_text(s, True), "start": round(s[0].start, 3), "end": round(s[-1].end, 3)} for s in parts
        ]
        blocks.append(
            {
                "sentences": sentences,
                "num_words": len(run),
                "start": round(run[0].start, 3),
                "end": round(run[-1].end, 3),
            }
        )
        texts.append(" ".join(transcript_text(s, True) for s in parts))
    return {"transcript": "\n\n".join(texts), "paragraphs": blocks}


def deepgram_response(
    segments: Sequence[Segment],
    options: FileOptions,
    *,
    request_id: str,
    created: datetime,
    duration: float,
    sha256: str,
    model: ModelInfo,
) -> dict[str, Any]:
    """The body of Deepgram's pre-recorded response (one channel, one alternative)."""
    words = [w for segment in segments for w in segment]
    alternative: dict[str, Any] = {
        "transcript": transcript_text(words, options.formatted),
        "confidence": _confidence(words),
        "words": [word_json(w, options.formatted) for w in words],
    }
    if options.paragraphs:
        alternative["paragraphs"] = paragraphs(words)
    results: dict[str, Any] = {"channels": [{"alternatives": [alternative]}]}
    if options.utterances:
        results["utterances"] = [
            {
                "start": round(run[0].start, 3),
                "end": round(run[-1].end, 3),
                "confidence": _confidence(run),
                "channel": 0,
                "transcript": transcript_text(run, options.formatted),
                "words": [word_json(w, options.formatted) for w in run],
                "id": f"{request_id}:{index}",
            }
            for index, run in enumerate(split_utterances(words, options.utt_split_s))
        ]
    meta = metadata(request_id=request_id, created=created, duration=duration, channels=1, sha256=sha256, model=model)
    del meta["type"]
    return {"metadata": meta, "results": results}


# -- OpenAI ----------------------------------------------------------------------


class ResponseFormat(StrEnum):
    """OpenAI's ``response_format`` values for transcriptions."""

    JSON = "json"
    VERBOSE_JSON = "verbose_json"
    TEXT = "text"
    SRT = "srt"
    VTT = "vtt"

    @property
    def content_type(self) -> str:
        if self in (ResponseFormat.JSON, ResponseFormat.VERBOSE_JSON):
            return "application/json"
        if self is ResponseFormat.VTT:
            return "text/vtt; charset=utf-8"
        return "text/plain; charset=utf-8"


def segment_text(segment: Segment) -> str:
    return " ".join(w.text for w in segment)


def _compression_ratio(text: str) -> float:
    raw = text.encode()
    return len(raw) / max(1, len(zlib.compress(raw)))


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def openai_body(
    segments: Sequence[Segment],
    fmt: ResponseFormat,
    *,
    duration: float,
    language: str = "english",
    timestamp_granularities: Sequence[str] = ("segment",),
) -> str | dict[str, Any]:
    """OpenAI's transcription response: a dict for the JSON formats, else text."""
    segments = [s for s in segments if s]
    text = " ".join(segment_text(s) for s in segments)
    if fmt is ResponseFormat.JSON:
        return {"text": text}
    if fmt is ResponseFormat.TEXT:
        return text + "\n"
    if fmt is ResponseFormat.SRT:
        cues = [
            f"{i}\n{_clock(s[0].start, ',')} --> {_clock(s[-1].end, ',')}\n{segment_text(s)}\n"
            for i, s in enumerate(segments, 1)
        ]
        return "\n".join(cues)
    if fmt is ResponseFormat.VTT:
        cues = [f"{_clock(s[0].start, '.')} --> {_clock(s[-1].end, '.')}\n{segment_text(s)}\n" for s in segments]
        return "WEBVTT\n\n" + "\n".join(cues)
    body: dict[str, Any] = {"task": "transcribe", "language": language, "duration": round(duration, 3), "text": text}
    if "segment" in timestamp_granularities:
        body["segments"] = [
            {
                "id": i,
                "seek": 0,
                "start": round(s[0].start, 3),
                "end": round(s[-1].end, 3),
                "text": " " + segment_text(s),
                "tokens": [],
                "temperature": 0.0,
                # From the words' probabilities and the text: the decoder's own figures are not kept.
                "avg_logprob": round(sum(math.log(max(w.probability, 1e-6)) for w in s) / len(s), 4),
                "compression_ratio": round(_compression_ratio(segment_text(s)), 4),
                "no_speech_prob": 0.0,
            }
            for i, s in enumerate(segments)
        ]
    if "word" in timestamp_granularities:
        body["words"] = [
            {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)} for s in segments for w in s
        ]
    return body
