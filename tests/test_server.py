"""The gateway end to end: a real server on loopback, the real tiny.en model.

deepgram-sdk (sync and async, unmodified) is the client where it can be;
plain websockets where a test needs to misbehave.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway.server.app import Gateway
from gateway.server.config import ServerConfig
from tests import speech
from tests.client import Received, collect, pcm16, stream, url, wer

pytestmark = pytest.mark.model

REFERENCE = " ".join(speech.SENTENCES)
SDK_PARAMS: dict[str, Any] = dict(
    model="nova-3",
    encoding="linear16",
    sample_rate="16000",
    interim_results="true",
    endpointing="300",
    utterance_end_ms="1000",
    vad_events="true",
    punctuate="true",
)


def sdk_environment(port: int) -> Any:
    from deepgram import DeepgramClientEnvironment

    return DeepgramClientEnvironment(
        base=f"http://127.0.0.1:{port}",
        production=f"ws://127.0.0.1:{port}",
        agent=f"ws://127.0.0.1:{port}",
        agent_rest=f"http://127.0.0.1:{port}",
    )


def as_dict(message: Any) -> dict[str, Any]:
    return message.model_dump() if hasattr(message, "model_dump") else dict(message)


def run_sync_sdk(port: int, pcm: bytes) -> tuple[list[dict[str, Any]], list[float]]:
    """Stream in real time with the synchronous SDK client; returns messages and arrival times."""
    from deepgram import DeepgramClient

    client = DeepgramClient(api_key="test-key", environment=sdk_environment(port))
    got: list[dict[str, Any]] = []
    arrivals: list[float] = []
    with client.listen.v1.connect(**SDK_PARAMS) as conn:

        def send() -> None:
            for i in range(0, len(pcm), 640):
                conn.send_media(pcm[i : i + 640])
                time.sleep(0.02)
            conn.send_close_stream()

        sender = threading.Thread(target=send)
        sender.start()
        for message in conn:
            if message is not None:
                got.append(as_dict(message))
                arrivals.append(time.monotonic())
        sender.join()
    return got, arrivals


async def test_sync_sdk_gets_live_captions(gateway: Gateway, speech_pcm: Any) -> None:
    messages, _ = await asyncio.to_thread(run_sync_sdk, gateway.port, pcm16(speech_pcm))
    kinds = [m["type"] for m in messages]
    results = [m for m in messages if m["type"] == "Results"]
    finals = [m for m in results if m["is_final"]]
    assert kinds[0] == "SpeechStarted"
    assert not results[0]["is_final"], "an interim comes before the first final"
    assert any(m["speech_final"] for m in finals), "an endpoint closed an utterance"
    assert "UtteranceEnd" in kinds
    assert kinds[-1] == "Metadata"
    metadata = messages[-1]
    assert metadata["duration"] == pytest.approx(len(speech_pcm) / 16000, abs=0.01)
    assert metadata["channels"] == 1
    assert {m["metadata"]["request_id"] for m in results} == {metadata["request_id"]}
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals)
    assert wer(REFERENCE, text) < 0.5, text
    words = [w for m in finals for w in m["channel"]["alternatives"][0]["words"]]
    assert all(a["end"] <= b["start"] + 0.05 for a, b in itertools.pairwise(words)), "no overlaps"
    assert 0.3 < words[0]["start"] < 1.5, "word times are absolute stream seconds"


async def test_async_sdk_finalize_then_close(gateway: Gateway) -> None:
    from deepgram import AsyncDeepgramClient

    pcm = pcm16(speech.espeak("Please call me back tomorrow morning about the invoice."))
    client = AsyncDeepgramClient(api_key="test-key", environment=sdk_environment(gateway.port))
    got: list[dict[str, Any]] = []
    async with client.listen.v1.connect(**{**SDK_PARAMS, "endpointing": "false"}) as conn:

        async def read() -> None:
            async for message in conn:
                if message is not None:
                    got.append(as_dict(message))

        reader = asyncio.create_task(read())
        for i in range(0, len(pcm), 640):
            await conn.send_media(pcm[i : i + 640])
            await asyncio.sleep(0.02)
        await conn.send_finalize()
        for _ in range(200):  # the stream stays open after Finalize
            if any(m.get("from_finalize") for m in got):
                break
            await asyncio.sleep(0.05)
        await conn.send_close_stream()
        await asyncio.wait_for(reader, 60)
    flushed = [m for m in got if m.get("from_finalize")]
    assert len(flushed) == 1
    assert flushed[0]["is_final"]
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in got if m.get("is_final"))
    assert wer("Please call me back tomorrow morning about the invoice.", text) < 0.5, text
    assert got[-1]["type"] == "Metadata"
    assert not any(m.get("speech_final") for m in got), "endpointing=false: no speech_final"


async def test_two_streams_get_their_own_transcripts(gateway: Gateway) -> None:
    a = pcm16(speech.utterances(("The quick brown fox jumps over the lazy dog.",)))
    b = pcm16(speech.utterances(("We will meet at the station at seven o'clock.",)))
    query = "encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300"
    got_a, got_b = await asyncio.gather(
        stream(url(gateway.port, query), a, speed=1.5), stream(url(gateway.port, query), b, speed=1.5)
    )
    text_a, text_b = got_a.final_text().lower(), got_b.final_text().lower()
    assert "dog" in text_a and "station" not in text_a, text_a
    assert "station" in text_b and "dog" not in text_b, text_b
    assert got_a.close_code == got_b.close_code == 1000


async def test_disconnect_still_flushes_finals_to_sinks(gateway: Gateway) -> None:
    seen: list[dict[str, Any]] = []

    async def sink(request_id: str, message: dict[str, Any]) -> None:
        seen.append(message)

    gateway.sinks.append(sink)
    pcm = pcm16(speech.espeak("The quick brown fox jumps over the lazy dog."))
    async with connect(url(gateway.port, "encoding=linear16&sample_rate=16000&endpointing=false")) as ws:
        for i in range(0, len(pcm), 3200):
            await ws.send(pcm[i : i + 3200])
            await asyncio.sleep(0.05)
    # The client vanished mid-utterance without CloseStream: its words still become a final.
    for _ in range(300):
        if not gateway.active:
            break
        await asyncio.sleep(0.05)
    finals = [m for m in seen if m.get("type") == "Results" and m["is_final"]]
    assert "lazy" in " ".join(m["channel"]["alternatives"][0]["transcript"] for m in finals).lower()


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "encoding=wav&sample_rate=16000",
        "encoding=linear16&sample_rate=1000",
        "encoding=linear16&sample_rate=sixteen",
        "encoding=linear16&sample_rate=16000&channels=99",
        "encoding=linear16&sample_rate=16000&model=gpt-9",
        "encoding=linear16&sample_rate=16000&engine=magic",
    ],
)
async def test_bad_parameters_are_http_400_before_upgrade(gateway: Gateway, query: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url(gateway.port, query)):
            pass
    response = info.value.response
    assert response.status_code == 400
    body = json.loads(response.body)
    assert body["err_msg"] and body["request_id"]
    assert response.headers["dg-error"] == body["err_msg"]


@pytest.fixture
async def keyed(backend: Any) -> AsyncIterator[Gateway]:
    """A gateway that wants API keys and gives up on idle streams quickly."""
    config = ServerConfig(host="127.0.0.1", port=0, api_keys={"good-key": "acme"}, idle_timeout_s=1.5)
    async with Gateway(config, backends={"tiny.en": backend}) as gw:
        yield gw


async def test_api_keys_header_forms_and_browser_subprotocol(keyed: Gateway) -> None:
    gateway = keyed
    for headers in ({}, {"Authorization": "Token wrong"}, {"Authorization": "Basic good-key"}):
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(gateway.port), additional_headers=headers):
                pass
        assert info.value.response.status_code == 401
    for scheme in ("Token", "token", "Bearer", "bearer"):
        async with connect(url(gateway.port), additional_headers={"Authorization": f"{scheme} good-key"}) as ws:
            assert ws.response.headers["dg-request-id"]
    async with connect(url(gateway.port), subprotocols=["token", "good-key"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "token"


async def test_idle_stream_is_closed_1011(keyed: Gateway) -> None:
    gateway = keyed
    received = Received()
    async with connect(url(gateway.port), additional_headers={"Authorization": "Token good-key"}) as ws:
        await collect(ws, received)
    assert received.close_code == 1011
    assert "NET-0001" in received.close_reason


async def test_malformed_frames_close_only_their_stream(backend: Any) -> None:
    config = ServerConfig(host="127.0.0.1", port=0, max_frame_bytes=64_000)
    async with Gateway(config, backends={"tiny.en": backend}) as gw:
        healthy_pcm = pcm16(speech.utterances(("The quick brown fox jumps over the lazy dog.",)))
        healthy = asyncio.create_task(stream(url(gw.port, "encoding=linear16&sample_rate=16000"), healthy_pcm, speed=2))
        outcomes: dict[str, Received] = {}
        cases: dict[str, Any] = {
            "odd": b"\x00\x01\x02",
            "not-json": "hello?",
            "too-big": b"\x00" * 70_000,
        }
        for name, frame in cases.items():
            received = Received()
            async with connect(url(gw.port)) as ws:
                reader = asyncio.create_task(collect(ws, received))
                await ws.send(frame)
                await asyncio.wait_for(reader, 10)
            outcomes[name] = received
        assert outcomes["odd"].close_code == 1007 and "DATA-0000" in outcomes["odd"].close_reason
        assert outcomes["odd"].of("Error"), "an Error message precedes the close"
        assert outcomes["not-json"].close_code == 1007
        assert outcomes["too-big"].close_code == 1009
        # An unknown message type is answered, and the stream goes on.
        received = Received()
        async with connect(url(gw.port)) as ws:
            reader = asyncio.create_task(collect(ws, received))
            await ws.send(json.dumps({"type": "Dance"}))
            await ws.send(b"\x00\x00" * 1600)
            await ws.send(json.dumps({"type": "CloseStream"}))
            await asyncio.wait_for(reader, 10)
        assert received.of("Error")[0]["description"].startswith("unknown message type")
        assert received.of("Metadata") and received.close_code == 1000
        done = await healthy
        assert "lazy" in done.final_text().lower()
        assert done.close_code == 1000


async def test_stream_limit_closes_1013(backend: Any) -> None:
    config = replace(ServerConfig(host="127.0.0.1", port=0), max_streams=1)
    async with Gateway(config, backends={"tiny.en": backend}) as gw, connect(url(gw.port)) as first:
        await first.send(b"\x00\x00" * 160)
        async with connect(url(gw.port)) as second:
            with pytest.raises(ConnectionClosed):
                await second.recv()
            assert second.close_code == 1013
        await first.send(json.dumps({"type": "CloseStream"}))
        assert json.loads(await first.recv())["type"] in ("Results", "Metadata")


async def test_http_routes(keyed: Gateway) -> None:
    import urllib.request

    gateway = keyed

    def get(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{gateway.port}{path}") as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    status, body = await asyncio.to_thread(get, "/v1/config")
    assert status == 200 and json.loads(body)["auth_required"] is True
    status, _ = await asyncio.to_thread(get, "/static/../server.py")
    assert status == 404
    status, body = await asyncio.to_thread(get, "/healthz")
    assert status == 200


async def test_silence_and_noise_produce_no_text(gateway: Gateway) -> None:
    rng = np.random.default_rng(7)
    hiss = rng.normal(0, 1000, 16000 * 4).astype(np.int16)  # steady noise around -30 dBFS
    pcm = pcm16(np.concatenate([speech.silence(2.0), hiss, speech.silence(1.0)]))
    got = await stream(url(gateway.port, "encoding=linear16&sample_rate=16000&interim_results=true"), pcm, speed=4)
    texts = [m["channel"]["alternatives"][0]["transcript"] for m in got.of("Results")]
    assert all(t == "" for t in texts), texts
    assert got.close_code == 1000
