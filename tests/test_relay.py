"""The Deepgram relay end to end, and failover to the local engine.

Upstreams: a second in-process gateway in Whisper mode (it speaks Deepgram's
protocol) for the happy path, and :class:`FakeUpstream`, a scripted
websockets server, for faults: refusals (401, 400), a connection dropped
mid-utterance (a proxy in front of the Whisper gateway that kills the
connection), silence (a stall), and a recorder for what the relay sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from deepgram.core.api_error import ApiError
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from gateway.core.audio import DecodedFrame
from gateway.core.errors import UpstreamError, UpstreamRejected, UpstreamUnavailable
from gateway.core.transcriber import ChannelTranscriber, SpeechStarted, TranscriberConfig, Transcript
from gateway.core.types import Backend, DecodeResult, Word
from gateway.engines.pending import PendingAudio
from gateway.engines.relay_config import RelayConfig
from gateway.engines.relay_upstream import environment, rejection
from gateway.server.app import Gateway
from gateway.server.routing import EngineKind, RoutingPolicy, TenantPolicy
from tests import speech
from tests.client import Received, collect, pcm16, wer
from tests.conftest import make_config

RELAY_KEY = "relay-secret-key-0123456789"
W, D = EngineKind.WHISPER, EngineKind.DEEPGRAM
QUERY = "model=nova-3&encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300"
DISTINCT = ("quick", "brown", "fox", "lazy", "dog", "call", "tomorrow", "invoice", "meet", "station", "seven")


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


def test_relay_url_becomes_an_sdk_environment() -> None:
    assert environment("http://127.0.0.1:8000/").production == "ws://127.0.0.1:8000"
    assert environment("wss://api.deepgram.com/v1/listen").production == "wss://api.deepgram.com"
    assert environment("https://proxy.example/dg").base == "https://proxy.example/dg"
    with pytest.raises(ValueError, match="relay URL"):
        environment("ftp://x")


# -- scripted upstream --------------------------------------------------------------


@dataclass
class Spoken:
    pcm: bytes
    spans: list[tuple[float, float]]

    def in_speech(self, t: float, margin: float = 0.3) -> bool:
        return any(a + margin <= t <= b - margin for a, b in self.spans)


@pytest.fixture(scope="module")
def spoken() -> Spoken:
    parts, spans, t = [speech.silence(0.5)], [], 0.5
    for sentence in speech.SENTENCES:
        audio = speech.espeak(sentence)
        spans.append((t, t + len(audio) / 16000))
        parts += [audio, speech.silence(1.2)]
        t += len(audio) / 16000 + 1.2
    return Spoken(pcm16(np.concatenate(parts)), spans)


class FakeUpstream:
    """A scripted Deepgram-protocol server: refuse, record, stay silent, or proxy with an injected drop."""

    def __init__(
        self,
        mode: str = "record",
        *,
        status: int = 0,
        error: str = "",
        inner: str = "",
        drop_when: Callable[[float], bool] | None = None,
    ) -> None:
        self.mode = mode
        self.status = status
        self.error = error
        self.inner = inner
        self.drop_when = drop_when
        self.requests: list[Request] = []
        self.texts: list[dict[str, Any]] = []
        self.audio_bytes = 0
        self.connections = 0
        self.dropped_at: float | None = None
        self._server: Server | None = None

    async def __aenter__(self) -> FakeUpstream:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{next(iter(self._server.sockets)).getsockname()[1]}"

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        if not self.status:
            return None
        body = json.dumps({"err_code": "REFUSED", "err_msg": self.error, "request_id": "fake"}).encode()
        headers = Headers(
            {"dg-error": self.error, "Content-Type": "application/json", "Content-Length": str(len(body))}
        )
        return Response(self.status, "Refused", headers, body)

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        if self.mode == "proxy":
            await self._proxy(ws)
            return
        async for data in ws:
            if isinstance(data, bytes):
                self.audio_bytes += len(data)
                continue
            message = json.loads(data)
            self.texts.append(message)
            if self.mode == "silent":
                continue
            if message["type"] == "Finalize":
                await ws.send(json.dumps(_results("flushed", self.audio_bytes / 32000)))
            elif message["type"] == "CloseStream":
                await ws.send(json.dumps({"type": "Metadata", "request_id": "upstream-id", "duration": 1.0}))
                await ws.close()

    async def _proxy(self, ws: ServerConnection) -> None:
        armed = False
        async with connect(self.inner + ws.request.path if ws.request else self.inner) as inner:

            async def up() -> None:
                async for data in ws:
                    if isinstance(data, bytes):
                        self.audio_bytes += len(data)
                        position = self.audio_bytes / 32000
                        if armed and self.drop_when and self.dropped_at is None and self.drop_when(position):
                            self.dropped_at = position
                            ws.transport.abort()  # the relay sees the connection die, without a close frame
                            await inner.close()
                            return
                    await inner.send(data)

            sender = asyncio.create_task(up())
            try:
                async for raw in inner:
                    message = json.loads(raw)
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send(raw)
                    if message["type"] == "Results" and message["is_final"] and _words(message):
                        armed = True
            finally:
                sender.cancel()
            await ws.close()


def _results(word: str, end: float) -> dict[str, Any]:
    w = {"word": word, "start": max(0.0, end - 0.5), "end": end, "confidence": 0.9, "punctuated_word": word}
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "start": 0.0,
        "duration": end,
        "is_final": True,
        "speech_final": False,
        "from_finalize": True,
        "channel": {"alternatives": [{"transcript": word, "confidence": 0.9, "words": [w]}]},
        "metadata": {"request_id": "upstream-id", "model_uuid": "u", "model_info": {"name": "n"}},
    }


def _words(message: dict[str, Any]) -> list[dict[str, Any]]:
    words: list[dict[str, Any]] = message["channel"]["alternatives"][0]["words"]
    return words


# -- the relaying gateway and a tolerant client ------------------------------------------


@contextlib.asynccontextmanager
async def relaying(
    backend: Backend,
    upstream_url: str,
    *,
    engines: tuple[EngineKind, ...] = (D, W),
    tenants: dict[str, TenantPolicy] | None = None,
    api_keys: dict[str, str] | None = None,
    **relay: Any,
) -> AsyncIterator[Gateway]:
    config = make_config(
        relay=RelayConfig(url=upstream_url, api_key=RELAY_KEY, **relay),
        routing=RoutingPolicy(engines=engines, tenants=tenants or {}),
        api_keys=api_keys or {},
    )
    async with Gateway(config, backends={"tiny.en": backend}) as gateway:
        yield gateway


async def talk(
    port: int,
    pcm: bytes,
    query: str = QUERY,
    *,
    speed: float = 2.0,
    headers: dict[str, str] | None = None,
) -> Received:
    """Stream ``pcm`` in 100 ms frames at ``speed`` x real time, then CloseStream; stops early if closed."""
    received = Received()
    async with connect(f"ws://127.0.0.1:{port}/v1/listen?{query}", additional_headers=headers or {}) as ws:
        reader = asyncio.create_task(collect(ws, received))
        with contextlib.suppress(ConnectionClosed):
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
                await asyncio.sleep(0.1 / speed)
            await ws.send(json.dumps({"type": "CloseStream"}))
        await asyncio.wait_for(reader, 120)
    return received


def final_words(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for m in messages if m.get("type") == "Results" and m["is_final"] for w in _words(m)]


def assert_no_loss_no_duplicates(received: Received) -> None:
    words = final_words(received.messages)
    for a, b in itertools.pairwise(words):
        assert a["end"] <= b["start"] + 0.05, f"final words overlap: {a} then {b}"
    said = [w["word"] for w in words]
    for word in DISTINCT:
        assert said.count(word) <= 1, f"{word!r} finalized twice: {said}"
    assert wer(" ".join(speech.SENTENCES), received.final_text()) < 0.5, received.final_text()


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
            totals = await _get(gateway.port, "/v1/usage")
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


@pytest.mark.model
async def test_upstream_refusal_fails_over_when_the_route_allows(backend: Backend) -> None:
    sentence = "Please call me back tomorrow morning about the invoice."
    async with FakeUpstream(status=401, error="Invalid credentials.") as fake, relaying(backend, fake.url) as gateway:
        received = await talk(gateway.port, pcm16(speech.utterances((sentence,))), f"{QUERY}&engine=deepgram,whisper")
    switch = received.of("EngineInfo")
    assert len(switch) == 1
    assert switch[0]["engine"] == "whisper"
    assert switch[0]["previous_engine"] == "deepgram"
    assert switch[0]["variant"] == "UPSTREAM-REJECTED"
    assert switch[0]["start"] == 0.0
    assert wer(sentence, received.final_text()) < 0.5, received.final_text()
    assert received.close_code == 1000
    usage = received.of("Metadata")[0]["usage"]
    assert usage["failovers"] == 1
    assert usage["billed_seconds"] == 0.0, "a refused stream bills nothing"


@pytest.mark.model
async def test_upstream_drop_mid_utterance_fails_over_without_loss_or_duplicates(
    backend: Backend, spoken: Spoken
) -> None:
    async with Gateway(make_config(), backends={"tiny.en": backend}) as upstream:
        inner = f"ws://127.0.0.1:{upstream.port}"
        async with (
            FakeUpstream("proxy", inner=inner, drop_when=spoken.in_speech) as proxy,
            relaying(backend, proxy.url) as gateway,
        ):
            received = await talk(gateway.port, spoken.pcm, f"{QUERY}&engine=deepgram,whisper", speed=1.5)
            stats = gateway.router.stats()
    assert proxy.dropped_at is not None, "the proxy dropped the connection"
    assert spoken.in_speech(proxy.dropped_at), "mid-utterance"
    switch = received.of("EngineInfo")
    assert len(switch) == 1
    assert switch[0]["variant"] == "UPSTREAM-DROPPED"
    at = received.messages.index(switch[0])
    upstream_words = final_words(received.messages[:at])
    local_words = final_words(received.messages[at:])
    assert upstream_words, "the upstream finalized something before the drop"
    assert local_words, "the local engine carried on"
    assert switch[0]["start"] <= proxy.dropped_at
    assert min(w["start"] for w in local_words) >= switch[0]["start"] - 0.05, "local words start where finals stopped"
    assert_no_loss_no_duplicates(received)
    assert received.close_code == 1000
    usage = received.of("Metadata")[0]["usage"]
    assert [e["engine"] for e in usage["engines"]] == ["deepgram", "whisper"]
    assert usage["failovers"] == 1
    assert stats["failovers"] == 1
    assert stats["failures"] == {"UPSTREAM-DROPPED": 1}


@pytest.mark.model
async def test_upstream_stall_fails_over(backend: Backend) -> None:
    sentence = "We will meet at the station at seven o'clock."
    async with (
        FakeUpstream("silent") as fake,
        relaying(backend, fake.url, stall_s=1.0) as gateway,
    ):
        received = await talk(gateway.port, pcm16(speech.utterances((sentence,))), f"{QUERY}&engine=deepgram,whisper")
    switch = received.of("EngineInfo")
    assert [s["variant"] for s in switch] == ["UPSTREAM-STALLED"]
    assert "station" in received.final_text().lower()
    assert received.close_code == 1000


@pytest.mark.model
async def test_private_tenant_is_never_relayed(backend: Backend) -> None:
    keys = {"key-acme": "acme", "key-globex": "globex"}
    tenants = {"acme": TenantPolicy(private=True)}
    async with (
        FakeUpstream("record") as fake,
        relaying(backend, fake.url, tenants=tenants, api_keys=keys) as gateway,
    ):
        acme = {"Authorization": "Token key-acme"}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"ws://127.0.0.1:{gateway.port}/v1/listen?{QUERY}&engine=deepgram", additional_headers=acme
            ):
                pass
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["err_code"] == "INSUFFICIENT_PERMISSIONS"
        silence = pcm16(speech.silence(1.0))
        local = await talk(gateway.port, silence, f"{QUERY}&engine=deepgram,whisper", headers=acme)
        default = await talk(gateway.port, silence, QUERY, headers=acme)
        assert fake.connections == 0, "nothing of acme's reached the upstream"
        globex = await talk(gateway.port, silence, QUERY, headers={"Authorization": "Token key-globex"})
        assert fake.connections == 1, "another tenant's stream is relayed by the same policy"
        config_acme = await _get(gateway.port, "/v1/config", acme)
    assert local.of("Metadata")[0]["usage"]["engine"] == "whisper"
    assert default.of("Metadata")[0]["usage"]["engine"] == "whisper"
    assert globex.of("Metadata")[0]["usage"]["engine"] == "deepgram"
    assert config_acme["engines"] == ["whisper"]
    assert config_acme["default_engine"] == "whisper"


@pytest.mark.model
async def test_budget_exhaustion_moves_streams_to_the_local_engine(backend: Backend) -> None:
    sentence = "The quick brown fox jumps over the lazy dog."
    pcm = pcm16(speech.utterances((sentence,)))
    tenants = {"anonymous": TenantPolicy(relay_budget_min=1.5 / 60)}
    async with (
        FakeUpstream("record") as fake,
        relaying(backend, fake.url, tenants=tenants, budget_check_s=0.5) as gateway,
    ):
        first = await talk(gateway.port, pcm, f"{QUERY}&engine=deepgram,whisper", speed=4.0)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{gateway.port}/v1/listen?{QUERY}&engine=deepgram"):
                pass
        second = await talk(gateway.port, pcm16(speech.silence(1.0)), QUERY)
        usage = await _get(gateway.port, "/v1/usage")
    switch = first.of("EngineInfo")
    assert [s["variant"] for s in switch] == ["BUDGET-0001"]
    billed = first.of("Metadata")[0]["usage"]["billed_seconds"]
    assert 1.5 <= billed <= 2.0, "relay audio stops within one budget check of the cap"
    assert fake.audio_bytes / 32000 == pytest.approx(billed)
    assert wer(sentence, first.final_text()) < 0.5, first.final_text()
    assert refused.value.response.status_code == 402
    assert second.of("Metadata")[0]["usage"]["engine"] == "whisper", "the default route falls back locally"
    assert not second.of("EngineInfo")
    tenant = usage["tenants"]["anonymous"]
    assert tenant["relay_minutes_left"] == 0
    assert tenant["streams"] == 2
    assert tenant["engines"]["deepgram"]["billed_seconds"] == pytest.approx(billed)


@pytest.mark.model
async def test_budget_exhaustion_without_failover_ends_the_stream(backend: Backend) -> None:
    tenants = {"anonymous": TenantPolicy(relay_budget_min=0.5 / 60)}
    async with (
        FakeUpstream("record") as fake,
        relaying(backend, fake.url, tenants=tenants, budget_check_s=0.25) as gateway,
    ):
        received = await talk(gateway.port, pcm16(speech.silence(2.0)), f"{QUERY}&engine=deepgram", speed=4.0)
    assert received.close_code == 1008
    assert "BUDGET-0001" in received.close_reason
    assert fake.audio_bytes / 32000 <= 0.75


async def _get(port: int, path: str, headers: dict[str, str] | None = None) -> Any:
    """GET a JSON route with a raw HTTP/1.1 request (no HTTP client in the test deps)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(body)
