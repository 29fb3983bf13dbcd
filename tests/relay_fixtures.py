"""A scripted Deepgram-protocol upstream and the helpers the relay and failover tests share.

:class:`FakeUpstream` refuses (401, 400), records what the relay sends, stays
silent (a stall) or proxies to a real Whisper gateway with an injected drop;
:func:`relaying` runs a gateway that relays to it; :func:`talk` streams audio
as a tolerant client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from gateway.core.types import Backend
from gateway.engines.relay_config import RelayConfig
from gateway.server.app import Gateway
from gateway.server.routing import EngineKind, RoutingPolicy, TenantPolicy
from tests import speech
from tests.client import Received, collect, pcm16, wer
from tests.conftest import make_config

RELAY_KEY = "relay-secret-key-0123456789"
W, D = EngineKind.WHISPER, EngineKind.DEEPGRAM
QUERY = "model=nova-3&encoding=linear16&sample_rate=16000&interim_results=true&endpointing=300"
DISTINCT = ("quick", "brown", "fox", "lazy", "dog", "call", "tomorrow", "invoice", "meet", "station", "seven")


# -- scripted upstream --------------------------------------------------------------


@dataclass
class Spoken:
    pcm: bytes
    spans: list[tuple[float, float]]

    def in_speech(self, t: float, margin: float = 0.3) -> bool:
        return any(a + margin <= t <= b - margin for a, b in self.spans)


def make_spoken() -> Spoken:
    """The three test sentences with silence around them, and where the speech is."""
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
                await ws.send(json.dumps(results_message("flushed", self.audio_bytes / 32000)))
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
                    if message["type"] == "Results" and message["is_final"] and words_of(message):
                        armed = True
            finally:
                sender.cancel()
            await ws.close()


def results_message(word: str, end: float) -> dict[str, Any]:
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


def words_of(message: dict[str, Any]) -> list[dict[str, Any]]:
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
    return [w for m in messages if m.get("type") == "Results" and m["is_final"] for w in words_of(m)]


def assert_no_loss_no_duplicates(received: Received) -> None:
    words = final_words(received.messages)
    for a, b in itertools.pairwise(words):
        assert a["end"] <= b["start"] + 0.05, f"final words overlap: {a} then {b}"
    said = [w["word"] for w in words]
    for word in DISTINCT:
        assert said.count(word) <= 1, f"{word!r} finalized twice: {said}"
    assert wer(" ".join(speech.SENTENCES), received.final_text()) < 0.5, received.final_text()


async def get_json(port: int, path: str, headers: dict[str, str] | None = None) -> Any:
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
