"""``multichannel=true`` on /v1/listen: each interleaved channel transcribed on its own."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.server.app import Gateway
from tests import speech
from tests.client import stream, url, wer
from tests.conftest import make_config

pytestmark = pytest.mark.model

LEFT = "The quick brown fox jumps over the lazy dog."
RIGHT = "Please call me back tomorrow morning about the invoice."


def interleave(*channels: speech.Int16) -> bytes:
    n = max(len(c) for c in channels)
    padded = [np.pad(c, (0, n - len(c))) for c in channels]
    return np.stack(padded, axis=1).astype("<i2").tobytes()


@pytest.fixture
async def stored(backend: Any, tmp_path: Path) -> AsyncIterator[Gateway]:
    config = make_config(store_path=str(tmp_path / "transcripts.sqlite3"))
    async with Gateway(config, backends={"tiny.en": backend}) as gw:
        yield gw


def http_get(port: int, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


async def test_each_channel_gets_its_own_words(stored: Gateway) -> None:
    # Both people talk at the same time: only channel separation keeps the words apart.
    pcm = interleave(speech.utterances((LEFT,)), speech.utterances((RIGHT,)))
    query = "encoding=linear16&sample_rate=16000&channels=2&multichannel=true&interim_results=true&punctuate=true"
    # frame_bytes: 20 ms of two channels; speed counts mono bytes, hence 2x.
    got = await stream(url(stored.port, query), pcm, speed=4.0, frame_bytes=1280)
    assert got.close_code == 1000
    results = got.of("Results")
    assert results
    assert {tuple(m["channel_index"]) for m in results} == {(0, 2), (1, 2)}
    left, right = got.final_text(0).lower(), got.final_text(1).lower()
    assert wer(LEFT, left) < 0.5, left
    assert not {"invoice", "tomorrow"} & set(left.split()), left
    assert wer(RIGHT, right) < 0.5, right
    assert not {"fox", "lazy"} & set(right.split()), right
    assert got.of("Metadata")[0]["channels"] == 2

    # The same stream, stored, with a label per channel.
    request_id = got.of("Metadata")[0]["request_id"]
    status, ctype, body = await asyncio.to_thread(http_get, stored.port, f"/v1/transcripts/{request_id}")
    assert status == 200
    assert ctype == "application/json"
    transcript = json.loads(body)
    assert transcript["kind"] == "listen"
    assert transcript["status"] == "completed"
    assert [c["speaker"] for c in transcript["channels"]] == ["channel 0", "channel 1"]
    assert "lazy" in transcript["channels"][0]["transcript"].lower()
    assert "invoice" in transcript["channels"][1]["transcript"].lower()
    status, ctype, body = await asyncio.to_thread(http_get, stored.port, f"/v1/transcripts/{request_id}?format=text")
    assert status == 200
    assert ctype.startswith("text/plain")
    lines = body.decode().splitlines()
    assert any(line.split("] ")[1].startswith("channel 1: ") for line in lines), lines


async def test_without_multichannel_the_channels_are_mixed(stored: Gateway) -> None:
    pcm = interleave(speech.utterances((LEFT,)), np.zeros(16_000, np.int16))
    query = "encoding=linear16&sample_rate=16000&channels=2&interim_results=true"
    got = await stream(url(stored.port, query), pcm, speed=4.0, frame_bytes=1280)
    assert {tuple(m["channel_index"]) for m in got.of("Results")} == {(0, 1)}
    assert "lazy" in got.final_text(0).lower()
