"""Pre-recorded transcription end to end: a real server, the real tiny.en model.

deepgram-sdk 7's ``listen.v1.media.transcribe_file`` and the openai SDK's
``audio.transcriptions.create``, both unmodified, pointed at the loopback
gateway; plain httpx where a test sends what no SDK would.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from gateway.server.app import Gateway
from gateway.server.config import ServerConfig
from tests import speech
from tests.client import wer
from tests.conftest import make_config

pytestmark = pytest.mark.model

SENTENCES = ("The quick brown fox jumps over the lazy dog.", "Please call me back tomorrow morning about the invoice.")
REFERENCE = " ".join(SENTENCES)


def wav_bytes(samples: Any, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def speech_wav() -> bytes:
    return wav_bytes(speech.utterances(SENTENCES, gap_s=2.0))


def base(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.port}"


def deepgram_file(port: int, audio: bytes, **options: Any) -> Any:
    from deepgram import DeepgramClient

    from tests.test_server import sdk_environment

    # Our own HTTP client, closed here: the SDK's default one would leave its socket to the GC.
    with httpx.Client(timeout=120) as http:
        client = DeepgramClient(api_key="test-key", environment=sdk_environment(port), httpx_client=http)
        return client.listen.v1.media.transcribe_file(request=audio, **options)


async def test_deepgram_sdk_transcribes_a_file(gateway: Gateway, speech_wav: bytes) -> None:
    response = await asyncio.to_thread(
        deepgram_file, gateway.port, speech_wav, model="nova-3", punctuate=True, utterances=True, paragraphs=True
    )
    alternative = response.results.channels[0].alternatives[0]
    assert wer(REFERENCE, alternative.transcript) < 0.5, alternative.transcript
    assert alternative.transcript[0].isupper(), "punctuate=true keeps Whisper's casing"
    words = alternative.words
    assert words and all(a.end <= b.start + 0.05 for a, b in itertools.pairwise(words))
    assert words[0].start < 1.5
    assert words[-1].end > 6.0, "word times are file seconds (the second sentence starts after 4 s)"
    assert response.metadata.duration == pytest.approx(len(speech.utterances(SENTENCES, gap_s=2.0)) / 16000, 0.01)
    assert response.metadata.channels == 1
    assert len(response.metadata.sha256) == 64
    utterances = response.results.utterances
    assert utterances is not None and len(utterances) == 2, "two sentences two seconds apart"
    assert wer(SENTENCES[1], utterances[1].transcript) < 0.5
    paragraphs = alternative.paragraphs
    assert paragraphs is not None and paragraphs.paragraphs and paragraphs.transcript


async def test_deepgram_sdk_async_file_from_a_stream_of_chunks(gateway: Gateway, speech_wav: bytes) -> None:
    """An iterator body goes out chunked (Transfer-Encoding: chunked)."""
    from deepgram import AsyncDeepgramClient

    from tests.test_server import sdk_environment

    async def chunks() -> Any:
        for i in range(0, len(speech_wav), 16_384):
            yield speech_wav[i : i + 16_384]

    async with httpx.AsyncClient(timeout=120) as http:
        client = AsyncDeepgramClient(api_key="test-key", environment=sdk_environment(gateway.port), httpx_client=http)
        response = await client.listen.v1.media.transcribe_file(request=chunks(), model="nova-3")
    transcript = response.results.channels[0].alternatives[0].transcript
    assert wer(REFERENCE, transcript) < 0.5, transcript
    assert transcript == transcript.lower(), "unformatted: lower case, no punctuation"


async def test_containers_decode(gateway: Gateway) -> None:
    import av

    samples = speech.espeak(SENTENCES[0])
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = 16_000
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=48_000)
        for out in resampler.resample(frame):
            for packet in stream.encode(out):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    async with httpx.AsyncClient(timeout=120) as http:
        got = await http.post(f"{base(gateway)}/v1/listen", content=buffer.getvalue())
    assert got.status_code == 200, got.text
    assert wer(SENTENCES[0], got.json()["results"]["channels"][0]["alternatives"][0]["transcript"]) < 0.5


async def test_raw_linear16_body_with_encoding(gateway: Gateway) -> None:
    pcm = speech.espeak(SENTENCES[1], rate=24_000).tobytes()
    async with httpx.AsyncClient(timeout=120) as http:
        got = await http.post(f"{base(gateway)}/v1/listen?encoding=linear16&sample_rate=24000", content=pcm)
    assert got.status_code == 200, got.text
    assert got.json()["metadata"]["duration"] == pytest.approx(len(pcm) / 2 / 24_000, abs=0.01)
    assert wer(SENTENCES[1], got.json()["results"]["channels"][0]["alternatives"][0]["transcript"]) < 0.5


async def test_file_keyterm_numerals_and_redact(gateway: Gateway) -> None:
    """The live options apply to files too: keyterms as hotwords, numerals and redaction on the words."""
    pcm = speech.utterances(
        ("Ask Siobhan to send the contract to Tomasz.", "My account number is seven three nine two.")
    )
    query = "encoding=linear16&sample_rate=16000&punctuate=true&numerals=true&redact=numbers"
    query += "&keyterm=Siobhan&keyterm=Tomasz"
    async with httpx.AsyncClient(timeout=120) as http:
        got = await http.post(f"{base(gateway)}/v1/listen?{query}", content=pcm.tobytes())
    assert got.status_code == 200, got.text
    alternative = got.json()["results"]["channels"][0]["alternatives"][0]
    transcript = alternative["transcript"]
    assert "Siobhan" in transcript or "Tomasz" in transcript, transcript
    assert "*" in transcript and not any(c.isdigit() for c in transcript), transcript
    assert any("*" in w["punctuated_word"] for w in alternative["words"])


@pytest.mark.parametrize(
    ("query", "body", "headers", "needle"),
    [
        ("", b'{"url": "https://example.com/a.wav"}', {"Content-Type": "application/json"}, "url"),
        ("", b"this is not audio at all" * 10, {}, "decode"),
        ("", b"", {}, "empty"),
        ("?diarize=true", b"RIFF", {}, "diarize"),
        ("?callback=https://example.com/hook", b"RIFF", {}, "callback"),
        ("?model=no-such-model", b"RIFF", {}, "model"),
        ("?encoding=linear16&sample_rate=16000", b"\x00\x01\x02", {}, "whole number"),
    ],
)
async def test_refusals_are_400_with_deepgram_error_body(
    gateway: Gateway, query: str, body: bytes, headers: dict[str, str], needle: str
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        got = await http.post(f"{base(gateway)}/v1/listen{query}", content=body, headers=headers)
    assert got.status_code == 400, got.text
    assert needle in got.json()["err_msg"]
    assert got.headers["dg-request-id"] == got.json()["request_id"]


@pytest.mark.parametrize("server_config", [make_config(max_upload_bytes=1000)])
async def test_too_large_upload_is_413(gateway: Gateway, server_config: ServerConfig) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        got = await http.post(f"{base(gateway)}/v1/listen", content=b"\x00" * 5000)
        assert got.status_code == 413
        still = await http.get(f"{base(gateway)}/healthz")
        assert still.status_code == 200


@pytest.mark.parametrize("server_config", [make_config(api_keys={"k1": "acme"})])
async def test_file_requires_the_key(gateway: Gateway, server_config: ServerConfig, speech_wav: bytes) -> None:
    async with httpx.AsyncClient(timeout=120) as http:
        refused = await http.post(f"{base(gateway)}/v1/listen", content=speech_wav)
        assert refused.status_code == 401
        served = await http.post(
            f"{base(gateway)}/v1/listen", content=speech_wav, headers={"Authorization": "Token k1"}
        )
        assert served.status_code == 200


async def test_file_and_live_stream_share_the_model(gateway: Gateway, speech_wav: bytes) -> None:
    """A file decodes while a live stream runs; both get their whole transcript."""
    from tests.client import pcm16, stream, url

    live_pcm = pcm16(speech.utterances((SENTENCES[1],)))
    query = "encoding=linear16&sample_rate=16000&endpointing=300"
    live = asyncio.create_task(stream(url(gateway.port, query), live_pcm))
    file = asyncio.create_task(asyncio.to_thread(deepgram_file, gateway.port, speech_wav, model="nova-3"))
    received, response = await asyncio.gather(live, file)
    finals = [m for m in received.of("Results") if m["is_final"]]
    assert wer(SENTENCES[1], " ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals)) < 0.5
    assert wer(REFERENCE, response.results.channels[0].alternatives[0].transcript) < 0.5


# -- OpenAI --------------------------------------------------------------------------


@pytest.fixture
def openai_sdk(gateway: Gateway) -> Iterator[Any]:
    """The sync openai client, closed after the test (no socket left open)."""
    from openai import OpenAI

    with OpenAI(api_key="test-key", base_url=f"{base(gateway)}/v1", max_retries=0, timeout=120) as client:
        yield client


async def test_openai_sdk_json_and_text(openai_sdk: Any, speech_wav: bytes) -> None:
    client = openai_sdk

    def run() -> tuple[Any, Any]:
        as_json = client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", speech_wav))
        as_text = client.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", speech_wav), response_format="text"
        )
        return as_json, as_text

    as_json, as_text = await asyncio.to_thread(run)
    assert wer(REFERENCE, as_json.text) < 0.5, as_json.text
    assert isinstance(as_text, str) and wer(REFERENCE, as_text) < 0.5


async def test_openai_sdk_verbose_json_with_words(openai_sdk: Any, speech_wav: bytes) -> None:
    client = openai_sdk
    result = await asyncio.to_thread(
        client.audio.transcriptions.create,
        model="whisper-1",
        file=("speech.wav", speech_wav),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.duration == pytest.approx(len(speech.utterances(SENTENCES, gap_s=2.0)) / 16000, 0.01)
    assert result.language == "english"
    assert result.segments and result.segments[0].start < result.segments[-1].end
    assert result.words and result.words[0].start < 1.5 < result.words[-1].end
    assert wer(REFERENCE, result.text) < 0.5


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
async def test_openai_sdk_subtitles(openai_sdk: Any, speech_wav: bytes, fmt: str) -> None:
    client = openai_sdk
    result = await asyncio.to_thread(
        client.audio.transcriptions.create, model="whisper-1", file=("speech.wav", speech_wav), response_format=fmt
    )
    assert isinstance(result, str)
    if fmt == "vtt":
        assert result.startswith("WEBVTT\n\n")
        assert " --> " in result and "00:00:0" in result
    else:
        assert result.startswith("1\n00:00:0") and "," in result.split("\n")[1]
    # The cues' text: neither header, cue number nor timing line. Bounded by WER, not exact words:
    # tiny.en's reading of synthetic speech moves with the CPU's int8 kernels ("the lazy nog").
    text = " ".join(
        line for line in result.splitlines()[1:] if line.strip() and " --> " not in line and not line.isdigit()
    )
    assert wer(REFERENCE, text) < 0.5, result


async def test_openai_sdk_errors(openai_sdk: Any) -> None:
    import openai

    client = openai_sdk
    with pytest.raises(openai.BadRequestError) as caught:
        await asyncio.to_thread(
            client.audio.transcriptions.create, model="whisper-1", file=("x.wav", b"not audio" * 30)
        )
    assert "decode" in str(caught.value)
    with pytest.raises(openai.BadRequestError):
        await asyncio.to_thread(
            client.audio.transcriptions.create, model="whisper-1", file=("x.wav", b"RIFF"), language="de"
        )
