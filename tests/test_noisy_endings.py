"""Issue 14 end to end through a real gateway: endpoints in faint noise, a client that vanishes
mid-utterance, and clients that send an empty model. Times are stream times, never wall-clock latency."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from gateway.core.types import Backend
from tests import speech
from tests.client import stream, url
from tests.conftest import make_config

pytestmark = pytest.mark.model


def read_text(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


async def test_speech_final_in_faint_wandering_noise_is_due_at_the_endpoint(gateway: Any) -> None:
    """The speech_final's span ends endpointing (+ a few frames) after the speech, in stream time,
    with noise under it all (it used to stay open for seconds, then come empty)."""
    said = np.concatenate([speech.silence(1.0), speech.espeak("Please call me back tomorrow"), speech.silence(3.0)])
    said_until = speech.speech_end(said)
    noisy = speech.mix(said, speech.noise(len(said) / 16000, -45.0, "wandering", seed=7))
    query = "encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300"
    received = await stream(url(gateway.port, query), noisy.tobytes(), speed=2.0)
    results = received.of("Results")
    first_sf = next(r for r in results if r["speech_final"])
    span_end = first_sf["start"] + first_sf["duration"]
    assert span_end <= said_until + 0.3 + 0.3, f"endpoint {span_end - said_until:.2f} s after the speech"
    upto = results[: results.index(first_sf) + 1]
    heard = [w for r in upto if r["is_final"] for w in r["channel"]["alternatives"][0]["words"]]
    assert heard, "the utterance's words are final by its speech_final"
    assert max(w["end"] for w in heard) <= span_end + 0.05
    assert "tomorrow" in received.final_text().lower()


async def test_disconnect_mid_utterance_keeps_the_pending_words_in_the_store(backend: Backend, tmp_path: Path) -> None:
    """No CloseStream: the socket just goes, mid-sentence; what was said is still in the stored transcript."""
    from gateway.server.app import Gateway

    pcm = speech.espeak("The quick brown fox jumps over the lazy dog.").tobytes()
    async with Gateway(make_config(store_path=str(tmp_path / "t.sqlite3")), backends={"tiny.en": backend}) as gw:
        query = "encoding=linear16&sample_rate=16000&interim_results=true&endpointing=false"
        async with connect(url(gw.port, query)) as ws:
            assert ws.response is not None
            request_id = ws.response.headers["dg-request-id"]
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
                await asyncio.sleep(0.05)
        for _ in range(600):  # the session ends (and flushes) on its own time
            if not gw.active:
                break
            await asyncio.sleep(0.05)
        assert not gw.active
        stored = await asyncio.to_thread(read_text, gw.port, f"/v1/transcripts/{request_id}?format=text")
        meta = json.loads(await asyncio.to_thread(read_text, gw.port, f"/v1/transcripts/{request_id}"))
    assert "lazy" in stored.lower(), stored
    assert meta, "the stream's record is stored"


@pytest.mark.parametrize("model", ["None", "null", ""])
async def test_an_empty_model_connects_and_transcribes(gateway: Any, model: str) -> None:
    """deepgram-sdk 3.x sends model=None for LiveOptions(); model=null and model= mean the same."""
    pcm = np.concatenate([speech.espeak("Hello there, good morning"), speech.silence(0.5)]).tobytes()
    received = await stream(url(gateway.port, f"encoding=linear16&sample_rate=16000&model={model}"), pcm, speed=3.0)
    assert received.close_code in (None, 1000)
    assert "morning" in received.final_text().lower()
    assert received.of("Metadata")
