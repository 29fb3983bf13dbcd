"""Pure pieces of pre-recorded transcription: response shapes, multipart parsing."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import httpx
import pytest

from gateway.core.errors import BadRequest
from gateway.core.messages import ModelInfo
from gateway.core.multipart import parse_multipart
from gateway.core.prerecorded import FileOptions, ResponseFormat, deepgram_response, openai_body, split_utterances
from gateway.core.types import Word

SEGMENTS = (
    (Word("Hello,", 0.5, 0.9, 0.9), Word("world.", 1.0, 1.4, 0.8)),
    (Word("Again", 3.0, 3.4, 0.7), Word("here.", 3.5, 3.9, 0.6)),
)
MODEL = ModelInfo("whisper-tiny.en", "faster-whisper", "whisper", "u-1")


def test_deepgram_shape_with_utterances_and_paragraphs() -> None:
    body = deepgram_response(
        SEGMENTS,
        FileOptions(formatted=False, utterances=True, paragraphs=True),
        request_id="r1",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        duration=4.0,
        sha256="0" * 64,
        model=MODEL,
    )
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert alternative["transcript"] == "hello world again here"
    assert [w["punctuated_word"] for w in alternative["words"]] == ["hello", "world", "again", "here"]
    assert [u["transcript"] for u in body["results"]["utterances"]] == ["hello world", "again here"]
    assert len(alternative["paragraphs"]["paragraphs"]) == 2
    assert alternative["paragraphs"]["paragraphs"][0]["sentences"][0]["text"] == "Hello, world."
    assert body["metadata"]["model_info"] == {"u-1": MODEL.as_dict()}
    assert "type" not in body["metadata"]


def test_utterance_split_by_gap() -> None:
    words = [w for s in SEGMENTS for w in s]
    assert len(split_utterances(words, 0.8)) == 2
    assert len(split_utterances(words, 5.0)) == 1


def test_openai_formats() -> None:
    assert openai_body(SEGMENTS, ResponseFormat.JSON, duration=4.0) == {"text": "Hello, world. Again here."}
    assert openai_body(SEGMENTS, ResponseFormat.TEXT, duration=4.0) == "Hello, world. Again here.\n"
    srt = openai_body(SEGMENTS, ResponseFormat.SRT, duration=4.0)
    assert srt == "1\n00:00:00,500 --> 00:00:01,400\nHello, world.\n\n2\n00:00:03,000 --> 00:00:03,900\nAgain here.\n"
    vtt = openai_body(SEGMENTS, ResponseFormat.VTT, duration=4.0)
    assert isinstance(vtt, str) and vtt.startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.400\nHello, world.\n")
    verbose = openai_body(SEGMENTS, ResponseFormat.VERBOSE_JSON, duration=4.0, timestamp_granularities=["word"])
    assert isinstance(verbose, dict) and "segments" not in verbose
    assert verbose["words"][0] == {"word": "Hello,", "start": 0.5, "end": 0.9}


def test_multipart_keeps_binary_and_repeated_fields() -> None:
    data = os.urandom(50_000) + b"\r\n--\r\n"
    request = httpx.Request(
        "POST",
        "http://x/",
        files={"file": ("a.wav", data, "audio/wav")},
        data={"model": "whisper-1", "timestamp_granularities[]": ["word", "segment"]},
    )
    form = parse_multipart(request.read(), request.headers["Content-Type"])
    assert form["file"][0].value == data and form["file"][0].filename == "a.wav"
    assert [f.text for f in form["timestamp_granularities[]"]] == ["word", "segment"]
    with pytest.raises(BadRequest):
        parse_multipart(b"x", "application/json")
