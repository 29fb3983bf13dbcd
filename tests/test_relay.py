"""The Deepgram relay: its pure pieces, and relaying end to end.

Upstreams: a second in-process gateway in Whisper mode (it speaks Deepgram's
protocol) for the happy path, and :class:`~tests.relay_fixtures.FakeUpstream`
for what the relay sends and how a refusal is reported. Failover is in
``test_failover.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import numpy as np
import pytest
from deepgram.core.api_error import ApiError
from websockets.asyncio.client import connect
from websockets.datastructures import Headers

from gateway.core.audio import DecodedFrame
from gateway.core.errors import UpstreamError, UpstreamRejected, UpstreamUnavailable
from gateway.core.params import parse_params
from gateway.core.transcriber import ChannelTranscriber, SpeechStarted, TranscriberConfig, Transcript
from gateway.core.types import Backend, DecodeResult, Word
from gateway.engines.pending import PendingAudio
from gateway.engines.relay import DeepgramRelayEngine
from gateway.engines.relay_config import RelayConfig
from gateway.engines.relay_upstream import environment, rejection
from gateway.server.app import Gateway
from tests import speech
from tests.client import Received, collect, pcm16, wer
from tests.conftest import make_config
from tests.relay_fixtures import QUERY, RELAY_KEY, D, FakeUpstream, Spoken, get_json, relaying, talk

# -- pure pieces ----------------------------------------------------------------


def _frame(samples: np.ndarray) -> DecodedFrame:
    audio = samples.astype(np.float32)
    return DecodedFrame((audio,), ((audio * 32767).astype(np.int16),), len(audio) / 16000)


def test_pending_audio_replays_from_the_last_final() -> None:
    pending = PendingAudio(channels=1)
    for i in range(10):  # ten 100 ms frames, each filled with its index
        pending.append(_frame(np.full(1600, i / 10)))
    pending.finalized(0, 0.25)  # an upstream final ends mid-frame 2
    replay = pending.replay()
    assert replay.start_s == (0.25,)
    audio = np.concatenate([f.channels[0] for f in replay.frames])
    assert len(audio) == 16000 - 4000, "everything after the final, nothing before"
    assert audio[0] == pytest.approx(0.2)
    assert replay.seconds == pytest.approx(0.75)
    assert len(replay.frames[0].vad_channels[0]) == 800, "the VAD's copy is cut at the same time"


def test_pending_audio_cuts_each_channel_at_its_own_final() -> None:
    pending = PendingAudio(channels=2, vad_rate=8_000)
    for _ in range(10):
        audio = np.zeros(1600, np.float32)
        pending.append(DecodedFrame((audio, audio), (np.zeros(800, np.int16),) * 2, 0.1))
    pending.finalized(0, 0.25)
    pending.finalized(1, 0.55)
    replay = pending.replay()
    assert replay.start_s == (0.25, 0.55)
    assert sum(len(f.channels[0]) for f in replay.frames) == 12000
    assert sum(len(f.channels[1]) for f in replay.frames) == 7200
    assert sum(len(f.vad_channels[1]) for f in replay.frames) == 3600, "8 kHz VAD audio cut at the same time"
    pending.finalized(7, 1.0)  # a channel the stream does not have changes nothing
    assert pending.replay().start_s == (0.25, 0.55)


def test_upstream_refusals_map_to_clear_errors() -> None:
    class Refused(Exception):
        headers = Headers({"dg-error": "slow down"})

    def refusal(status: int) -> UpstreamError:
        exc = ApiError(status_code=status, body="Unexpected error")
        exc.__context__ = Refused()  # as when the SDK raises it while handling websockets' refusal
        return rejection(exc)

    assert isinstance(refusal(403), UpstreamRejected)
    assert refusal(403).permanent
    assert "credentials (HTTP 403): slow down" in refusal(403).message
    assert isinstance(refusal(429), UpstreamUnavailable), "rate limits pass: not permanent"
    assert isinstance(refusal(503), UpstreamUnavailable)
    assert not refusal(503).permanent


def test_pending_audio_is_bounded() -> None:
    pending = PendingAudio(channels=1, max_s=0.5)
    for _ in range(10):
        pending.append(_frame(np.zeros(1600)))
    assert pending.seconds <= 0.6
    assert pending.dropped_s == pytest.approx(0.5)
    assert pending.replay().start_s[0] == pytest.approx(0.5), "dropped audio counts as given up, not replayed"


def test_transcriber_taking_over_mid_stream_keeps_stream_time() -> None:
    channel = ChannelTranscriber(TranscriberConfig(endpointing_ms=300, vad_events=True), start_s=7.5)
    events = channel.push((speech.espeak("Call me back.") / 32768).astype(np.float32))
    events += channel.push(np.zeros(16000, np.float32))
    onsets = [e.time for e in events if isinstance(e, SpeechStarted)]
    assert len(onsets) == 1
    assert 7.5 <= onsets[0] < 8.5, "the VAD's clock starts at the takeover point too"
    request = channel.next_request()
    assert request is not None
    assert request.offset >= 7.5 - 0.01, "the window sits at stream time, after the takeover point"
    word = Word("call", request.offset + 0.1, request.offset + 0.4, 0.9)
    finals = [e for e in channel.complete(DecodeResult((word,))) if isinstance(e, Transcript) and e.is_final]
    assert finals[0].start == pytest.approx(7.5)


@pytest.mark.parametrize(("encoding", "sent"), [("webm", None), ("ogg", None), ("opus", ["opus"]), ("flac", ["flac"])])
def test_container_encodings_go_upstream_as_deepgram_names_them(encoding: str, sent: list[str] | None) -> None:
    engine = DeepgramRelayEngine(RelayConfig(api_key="k"))
    _, query = engine.upstream_query(parse_params(f"encoding={encoding}&model=nova-3&engine=deepgram"))
    assert query.get("encoding") == sent
    assert "engine" not in query


def test_relay_url_becomes_an_sdk_environment() -> None:
    assert environment("http://127.0.0.1:8000/").production == "ws://127.0.0.1:8000"
    assert environment("wss://api.deepgram.com/v1/listen").production == "wss://api.deepgram.com"
    assert environment("https://proxy.example/dg").base == "https://proxy.example/dg"
    with pytest.raises(ValueError, match="relay URL"):
        environment("ftp://x")


# -- end to end -----------------------------------------------------------------------------


@pytest.mark.model
async def test_relay_happy_path_with_deepgram_sdk(backend: Backend, spoken: Spoken) -> None:
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment

    upstream_seen: list[tuple[str, dict[str, Any]]] = []
    async with Gateway(make_config(), backends={"tiny.en": backend}) as upstream:

        async def capture(request_id: str, message: dict[str, Any]) -> None:
            upstream_seen.append((request_id, message))

        upstream.sinks.append(capture)
        async with relaying(backend, f"ws://127.0.0.1:{upstream.port}", engines=(D,)) as gateway:
            base = f"127.0.0.1:{gateway.port}"
            env = DeepgramClientEnvironment(
                base=f"http://{base}", production=f"ws://{base}", agent=f"ws://{base}", agent_rest=f"http://{base}"
            )
            client = AsyncDeepgramClient(api_key="any", environment=env)
            got: list[dict[str, Any]] = []
            async with client.listen.v1.connect(
                model="nova-3",
                encoding="linear16",
                sample_rate=16000,
                interim_results=True,
                endpointing=300,
                vad_events=True,
            ) as conn:

                async def read() -> None:
                    async for message in conn:
                        if message is not None:
                            got.append(message.dict())

                reader = asyncio.create_task(read())
                pcm = spoken.pcm
                for i in range(0, len(pcm), 3200):
                    await conn.send_media(pcm[i : i + 3200])
                    await asyncio.sleep(0.05)
                await conn.send_close_stream()
                await asyncio.wait_for(reader, 120)
            totals = await get_json(gateway.port, "/v1/usage")
    metadata = got[-1]
    assert metadata["type"] == "Metadata"
    results = [m for m in got if m["type"] == "Results"]
    assert {m["metadata"]["request_id"] for m in results} == {metadata["request_id"]}, "the gateway's own id"
    upstream_ids = {rid for rid, _ in upstream_seen}
    assert metadata["request_id"] not in upstream_ids
    assert any(m["type"] == "SpeechStarted" for m in got), "vad_events passed through"
    text = " ".join(m["channel"]["alternatives"][0]["transcript"] for m in results if m["is_final"])
    assert wer(" ".join(speech.SENTENCES), text) < 0.5, text
    usage = metadata["usage"]
    assert usage["engine"] == "deepgram"
    assert usage["billed_seconds"] == pytest.approx(len(spoken.pcm) / 32000, abs=0.2)
    assert usage["cost_usd"] == pytest.approx(usage["billed_seconds"] / 60 * RelayConfig().price_per_minute, rel=1e-3)
    assert [m["type"] for m in got].count("Metadata") == 1, "the upstream's Metadata is not passed on"
    relayed = totals["tenants"]["anonymous"]["engines"]["deepgram"]
    assert relayed["billed_seconds"] == pytest.approx(usage["billed_seconds"], abs=0.01)


@pytest.mark.model
async def test_relay_forwards_parameters_controls_and_keepalive(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pcm = pcm16(speech.silence(0.6))
    async with FakeUpstream("record") as fake, relaying(backend, fake.url, keepalive_s=0.2) as gateway:
        query = f"{QUERY}&engine=deepgram&keywords=invoice:2&keywords=station&tag=t1&extra=a:1"
        received = Received()
        async with connect(f"ws://127.0.0.1:{gateway.port}/v1/listen?{query}") as ws:
            reader = asyncio.create_task(collect(ws, received))
            await ws.send(pcm)
            await ws.send(json.dumps({"type": "Finalize"}))
            await asyncio.sleep(0.8)  # a silent client: the relay keeps the upstream alive
            await ws.send(json.dumps({"type": "CloseStream"}))
            await asyncio.wait_for(reader, 30)
    request = fake.requests[0]
    assert request.headers["Authorization"] == f"Token {RELAY_KEY}"
    query_sent = request.path.split("?", 1)[1]
    for part in ("keywords=invoice%3A2", "keywords=station", "tag=t1", "model=nova-3", "interim_results=true"):
        assert part in query_sent, query_sent
    assert "engine=" not in query_sent, "the gateway's own routing parameter stays here"
    kinds = [t["type"] for t in fake.texts]
    assert kinds[0] == "Finalize"
    assert "KeepAlive" in kinds
    assert kinds[-1] == "CloseStream"
    assert fake.audio_bytes == len(pcm)
    flushed = [m for m in received.of("Results") if m["from_finalize"]]
    assert len(flushed) == 1
    assert flushed[0]["metadata"]["request_id"] == received.of("Metadata")[0]["request_id"]
    assert received.close_code == 1000
    assert not any(RELAY_KEY in record.getMessage() for record in caplog.records), "the key is never logged"


@pytest.mark.model
@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (401, "Invalid credentials.", "credentials (HTTP 401): Invalid credentials."),
        (400, "sample_rate must be an integer", "parameters (HTTP 400): sample_rate must be an integer"),
    ],
)
async def test_upstream_refusal_closes_the_stream_with_a_clear_error(
    backend: Backend, status: int, error: str, expected: str
) -> None:
    async with (
        FakeUpstream(status=status, error=error) as fake,
        relaying(backend, fake.url) as gateway,
    ):
        received = await talk(gateway.port, pcm16(speech.silence(2.0)), f"{QUERY}&engine=deepgram")
    assert received.close_code == 1011
    assert "UPSTREAM-REJECTED" in received.close_reason
    errors = received.of("Error")
    assert len(errors) == 1
    assert expected in errors[0]["description"]
    assert errors[0]["variant"] == "UPSTREAM-REJECTED"
    assert not received.of("Metadata")
