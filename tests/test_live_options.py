"""Deepgram's text options on the live endpoint, end to end: keyterm, Configure, numerals/redact/
profanity_filter, diarize refused, callback. Real gateway on loopback, real tiny.en, espeak speech."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.core.types import Backend, DecodeRequest, DecodeResult
from gateway.server.app import Gateway
from tests import speech
from tests.client import Received, collect, pcm16, stream, url
from tests.conftest import make_config
from tests.http_receiver import receiving

pytestmark = pytest.mark.model

RARE = ("Deploy the service to Kubernetes before Friday.", "Ask Siobhan to send the contract to Tomasz.")
TERMS = ("Kubernetes", "Siobhan", "Tomasz")
BASE = "encoding=linear16&sample_rate=16000&interim_results=true&punctuate=true"


def transcripts(received: Received, finals_only: bool = False) -> list[str]:
    return [
        m["channel"]["alternatives"][0]["transcript"]
        for m in received.of("Results")
        if m["is_final"] or not finals_only
    ]


def sdk_finals(port: int, pcm: bytes, **options: Any) -> list[str]:
    """Stream with deepgram-sdk 7's sync client at real time; the final transcripts."""
    from deepgram import DeepgramClient

    from tests.test_server import sdk_environment

    client = DeepgramClient(api_key="test-key", environment=sdk_environment(port))
    finals: list[str] = []
    with client.listen.v1.connect(**options) as conn:

        def send() -> None:
            for i in range(0, len(pcm), 3200):
                conn.send_media(pcm[i : i + 3200])
                time.sleep(0.1)
            conn.send_close_stream()

        sender = threading.Thread(target=send)
        sender.start()
        for message in conn:
            if getattr(message, "type", None) == "Results" and message.is_final:
                finals.append(message.channel.alternatives[0].transcript)
        sender.join()
    return finals


async def test_keyterm_is_heard_with_deepgram_sdk(gateway: Any) -> None:
    """deepgram-sdk 7 (sync, unmodified) passes ``keyterm``; the rare names it names come out spelled right
    (without them tiny.en writes "Qber", "Shivon", "Thomas": bench/keyterms.py)."""
    pcm = pcm16(speech.utterances(RARE))
    options = dict(model="nova-3", encoding="linear16", sample_rate="16000", punctuate="true", keyterm=list(TERMS))
    heard = " ".join(await asyncio.to_thread(sdk_finals, gateway.port, pcm, **options))
    assert sum(term in heard for term in TERMS) >= 2, heard


class Recording:
    """The real model, remembering the hotwords of every decode it was asked for."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.max_batch = backend.max_batch
        self.hotwords: list[str] = []

    def decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        self.hotwords.extend(r.hotwords for r in requests)
        return self.backend.decode_batch(requests)


async def test_configure_replaces_keyterms_from_the_next_decode(backend: Backend) -> None:
    recording = Recording(backend)
    pcm = pcm16(speech.utterances(("Please call me back tomorrow morning.",)))
    async with Gateway(make_config(), backends={"tiny.en": recording}) as gw:  # type: ignore[dict-item]
        received = Received()
        async with connect(url(gw.port, BASE + "&keyterm=Kubernetes")) as ws:
            reader = asyncio.create_task(collect(ws, received))
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
                await asyncio.sleep(0.1)
            await ws.send(json.dumps({"type": "Configure", "keyterms": ["Siobhan", "Tomasz"]}))
            await ws.send(json.dumps({"type": "Configure", "keyterms": "Siobhan"}))
            await ws.send(json.dumps({"type": "Configure", "features": {"diarize": True}}))
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
                await asyncio.sleep(0.1)
            await ws.send(json.dumps({"type": "CloseStream"}))
            await asyncio.wait_for(reader, 120)
    success = received.of("ConfigureSuccess")
    assert success == [
        {"type": "ConfigureSuccess", "request_id": success[0]["request_id"], "keyterms": ["Siobhan", "Tomasz"]}
    ]
    failures = received.of("ConfigureFailure")
    assert [f["code"] for f in failures] == ["CONFIGURE_INTERNAL_ERROR"] * 2
    assert received.finals and received.of("Metadata")
    hot = recording.hotwords
    assert hot[0] == "Kubernetes" and hot[-1] == "Siobhan, Tomasz", hot
    assert "Kubernetes" not in hot[hot.index("Siobhan, Tomasz") :], "old keyterms after the change"


async def test_numerals_redact_and_profanity_on_interims_finals_and_store(backend: Backend, tmp_path: Any) -> None:
    """Every Results (interim and final) and the stored transcript carry the masked text. (Card numbers are
    covered in test_formatting: tiny.en does not hear espeak's sixteen digits as one number.)"""
    pcm = pcm16(speech.utterances(("My account number is seven three nine two.", "Oh shit, I dropped it.")))
    query = BASE + "&numerals=true&redact=numbers&profanity_filter=true"
    async with Gateway(make_config(store_path=str(tmp_path / "t.sqlite3")), backends={"tiny.en": backend}) as gw:
        received = await stream(url(gw.port, query), pcm, speed=1.0, frame_bytes=3200)
        request_id = received.of("Metadata")[0]["request_id"]
        link = f"http://127.0.0.1:{gw.port}/v1/transcripts/{request_id}?format=text"
        stored = await asyncio.to_thread(lambda: urllib.request.urlopen(link, timeout=10).read().decode())
    every = transcripts(received)
    assert any("***" in t for t in transcripts(received, finals_only=True)), every
    for t in [*every, re.sub(r"\[[\d:.]+\] channel \d+:", "", stored)]:
        assert not re.search(r"\d{3,}", t), f"digits leaked: {t!r}"
        assert "shit" not in t.lower(), t
    assert "***" in stored


async def test_diarize_is_refused_by_name(gateway: Any) -> None:
    for query in ("diarize=true", "diarize_model=latest", "callback=ftp://example.com/x"):
        with pytest.raises(InvalidStatus) as info:
            async with connect(url(gateway.port, "encoding=linear16&sample_rate=16000&" + query)):
                pass
        assert info.value.response.status_code == 400
        assert query.split("=")[0].split("_model")[0] in json.loads(info.value.response.body)["err_msg"]


async def test_callback_receives_every_result(gateway: Any) -> None:
    pcm = pcm16(speech.utterances(speech.SENTENCES[:1]))
    with receiving() as receiver:
        received = await stream(url(gateway.port, BASE + f"&callback={receiver.url}"), pcm, frame_bytes=3200)
        deadline = time.monotonic() + 30
        while not any(b.get("type") == "Metadata" for b in list(receiver.bodies)) and time.monotonic() < deadline:  # noqa: ASYNC110 (another thread fills it)
            await asyncio.sleep(0.05)
        posted = list(receiver.bodies)
    assert [b for b in posted if b["type"] == "Results"] == received.of("Results")
    assert [b["type"] for b in posted][-1] == "Metadata"
