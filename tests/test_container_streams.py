"""Containerised live audio end to end: a real server on port 0, tiny.en, deepgram-sdk 7 unmodified.

A browser's MediaRecorder sends WebM/Opus chunks with no ``encoding`` (Deepgram
sniffs the container); file streamers send Ogg/Opus with ``encoding=opus``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.server.app import Gateway
from tests import speech
from tests.client import Received, collect, stream, url, wer
from tests.test_livecontainers import unknown_cluster_sizes
from tests.test_server import as_dict, sdk_environment

pytestmark = pytest.mark.model

REFERENCE = " ".join(speech.SENTENCES)
CHUNK_S = 0.25  # MediaRecorder's usual timeslice


def chunks(data: bytes, seconds: float) -> list[bytes]:
    """``data`` cut into as many pieces as ``seconds`` has 250 ms timeslices (container bytes, not samples)."""
    count = max(1, round(seconds / CHUNK_S))
    size = -(-len(data) // count)
    return [data[i : i + size] for i in range(0, len(data), size)]


def run_sdk(port: int, pieces: list[bytes], params: dict[str, str]) -> list[dict[str, Any]]:
    """Stream the pieces at real-time pace with the synchronous SDK client."""
    import threading

    from deepgram import DeepgramClient

    client = DeepgramClient(api_key="test-key", environment=sdk_environment(port))
    got: list[dict[str, Any]] = []
    with client.listen.v1.connect(**params) as conn:

        def send() -> None:
            for piece in pieces:
                conn.send_media(piece)
                time.sleep(CHUNK_S)
            conn.send_close_stream()

        sender = threading.Thread(target=send)
        sender.start()
        for message in conn:
            if message is not None:
                got.append(as_dict(message))
        sender.join()
    return got


def check_transcript(messages: list[dict[str, Any]], seconds: float) -> None:
    results = [m for m in messages if m["type"] == "Results"]
    finals = [m for m in results if m["is_final"]]
    assert messages[-1]["type"] == "Metadata"
    assert messages[-1]["duration"] == pytest.approx(seconds, abs=0.05)
    assert any(not m["is_final"] for m in results), "interims came while the container streamed"
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals)
    assert wer(REFERENCE, text) < 0.5, text
    words = [w for m in finals for w in m["channel"]["alternatives"][0]["words"]]
    assert all(a["end"] <= b["start"] + 0.05 for a, b in itertools.pairwise(words)), "no overlaps"
    # Not 0.3 <: with 250 ms frames the first word is stamped at the window's start (linear16 too).
    assert words[0]["start"] < 1.5, "word times are absolute stream seconds"


async def test_mediarecorder_webm_opus_without_encoding(gateway: Gateway, speech_pcm: Any) -> None:
    webm = unknown_cluster_sizes(speech.encode(speech_pcm, "webm", "libopus"))
    seconds = len(speech_pcm) / 16_000
    params = {"model": "nova-3", "interim_results": "true", "endpointing": "300", "punctuate": "true"}
    messages = await asyncio.to_thread(run_sdk, gateway.port, chunks(webm, seconds), params)
    check_transcript(messages, seconds)


async def test_ogg_opus_with_encoding_opus(gateway: Gateway, speech_pcm: Any) -> None:
    ogg = speech.encode(speech_pcm, "ogg", "libopus")
    seconds = len(speech_pcm) / 16_000
    params = {"model": "nova-3", "encoding": "opus", "interim_results": "true", "endpointing": "300"}
    messages = await asyncio.to_thread(run_sdk, gateway.port, chunks(ogg, seconds), params)
    check_transcript(messages, seconds)


async def test_corrupt_container_closes_its_stream_only(gateway: Gateway) -> None:
    sentence = speech.espeak("We will meet at the station at seven o'clock.")
    flac = speech.encode(sentence, "flac", "flac")
    ogg = bytearray(speech.encode(sentence, "ogg", "libopus"))
    ogg[len(ogg) // 2] ^= 0x20
    bad, good = Received(), Received()
    async with (
        connect(url(gateway.port, "encoding=ogg-opus")) as bad_ws,
        connect(url(gateway.port, "encoding=flac&sample_rate=16000")) as good_ws,
    ):
        readers = [asyncio.create_task(collect(bad_ws, bad)), asyncio.create_task(collect(good_ws, good))]
        bad_open = True
        for bad_piece, good_piece in itertools.zip_longest(chunks(bytes(ogg), 3.0), chunks(flac, 3.0)):
            if bad_piece is not None and bad_open:
                try:
                    await bad_ws.send(bad_piece)
                except ConnectionClosed:
                    bad_open = False  # the server closed it at the corrupt page: what this test is after
            if good_piece is not None:
                await good_ws.send(good_piece)
        await good_ws.send('{"type": "CloseStream"}')
        await asyncio.gather(*readers)
    assert bad.close_code == 1007
    assert "checksum" in bad.close_reason and "DATA-0000" in bad.close_reason
    assert bad.of("Error"), "the Error message came before the close"
    assert good.close_code == 1000
    assert good.of("Metadata")[0]["duration"] == pytest.approx(len(sentence) / 16_000, abs=0.05)
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in good.of("Results") if m["is_final"])
    assert wer(speech.SENTENCES[2], text) < 0.5, text


async def test_wav_header_without_parameters_sets_rate(gateway: Gateway) -> None:
    import io
    import wave

    rate = 8_000
    pcm = np.concatenate(
        [speech.silence(0.5, rate), speech.espeak(speech.SENTENCES[1], rate), speech.silence(0.8, rate)]
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    # 1001-byte frames: samples cut across frames, as a file sliced anywhere is. (Paced as if 16 kHz: 2x real time.)
    got = await stream(url(gateway.port, "interim_results=true"), buffer.getvalue(), frame_bytes=1001)
    assert got.close_code == 1000
    assert got.of("Metadata")[0]["duration"] == pytest.approx(len(pcm) / rate, abs=0.01)
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in got.of("Results") if m["is_final"])
    assert wer(speech.SENTENCES[1], text) < 0.8, text  # 8 kHz espeak is hard for tiny.en
    assert "tomorrow" in text.lower(), text
