"""Query parameters of /v1/listen, parsed without a socket."""

from __future__ import annotations

import pytest

from gateway.core.errors import BadRequest
from gateway.core.params import Encoding, parse_params


def test_defaults_are_deepgrams() -> None:
    p = parse_params("")
    assert p.encoding is Encoding.LINEAR16
    assert p.sample_rate == 16_000
    assert p.channels == 1
    assert not p.interim_results
    assert p.endpointing_ms == 10
    assert p.utterance_end_ms is None


def test_sdk_style_query() -> None:
    p = parse_params(
        "encoding=mulaw&sample_rate=8000&channels=2&multichannel=true&interim_results=true"
        "&endpointing=300&utterance_end_ms=1000&vad_events=true&model=nova-3&punctuate=true"
        "&extra%5Ba%5D=1&extra=b:2&tag=x&tag=y&no_delay=true"
    )
    assert p.encoding is Encoding.MULAW
    assert (p.sample_rate, p.channels, p.output_channels) == (8000, 2, 2)
    assert p.interim_results and p.vad_events and p.formatted
    assert (p.endpointing_ms, p.utterance_end_ms) == (300, 1000)
    assert p.model == "nova-3"
    assert p.tags == ("x", "y")
    assert p.raw["extra[a]"] == ("1",)


@pytest.mark.parametrize("name", ["opus", "ogg-opus", "flac", "ogg", "webm"])
def test_container_encodings_need_no_sample_rate(name: str) -> None:
    p = parse_params(f"encoding={name}")
    assert p.encoding.is_container
    assert p.encoding.value == name
    assert parse_params(f"encoding={name}&sample_rate=48000").sample_rate == 48_000


def test_endpointing_false_disables_endpoints() -> None:
    assert parse_params("endpointing=false").endpointing_ms is None


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("encoding=wav&sample_rate=16000", "unknown encoding"),
        ("encoding=speex&sample_rate=16000", "not supported"),
        ("encoding=linear16", "sample_rate"),
        ("encoding=linear16&sample_rate=4000", "between 8000 and 48000"),
        ("encoding=linear16&sample_rate=96000", "between 8000 and 48000"),
        ("encoding=linear16&sample_rate=abc", "integer"),
        ("channels=0", "channels"),
        ("interim_results=maybe", "true or false"),
        ("endpointing=-5", "endpointing"),
        ("utterance_end_ms=soon", "utterance_end_ms"),
        ("language=en_US!", "BCP-47"),
        ("sample_rate=8000&sample_rate=16000", "more than once"),
    ],
)
def test_bad_parameters_name_the_problem(query: str, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        parse_params(query)


@pytest.mark.parametrize("query", ["model=None", "model=none", "model=null", "model=", "model=%20"])
def test_an_empty_model_is_no_model(query: str) -> None:
    """deepgram-sdk 3.x sends ``model=None`` for ``LiveOptions()``; others send null or nothing: no model asked for."""
    assert parse_params(query).model is None


def test_a_named_model_is_kept() -> None:
    assert parse_params("model=nova-3").model == "nova-3"
    assert parse_params("model=%20tiny.en%20").model == "tiny.en"
