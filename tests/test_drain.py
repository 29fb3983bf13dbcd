"""SIGTERM drain of a real ``python -m gateway`` process with real streams.

The client sends its audio, the process gets SIGTERM: while it drains, /readyz
says 503 and a new stream is refused with 503; when the drain timeout is up
the open stream gets every final for the audio it had sent, then Metadata,
then close 1012, and the process exits 0. A second SIGTERM exits at once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests import speech
from tests.browser_helpers import Gateway
from tests.client import Received, collect, pcm16, url, wer

pytestmark = pytest.mark.model

DRAIN_S = 8.0
"""Long enough for this test's few HTTP checks during the drain; nothing is timed against it."""


def get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def wait_exit(proc: subprocess.Popen[bytes]) -> int:
    return await asyncio.to_thread(proc.wait, 120.0)


async def test_sigterm_drains_open_streams_then_exits_0(tmp_path: Path, speech_pcm: speech.Int16) -> None:
    gw = Gateway(tmp_path / "gateway.log", extra=("--drain-timeout", str(DRAIN_S), "--log-format", "json"))
    try:
        await asyncio.to_thread(gw.wait_ready)
        assert await asyncio.to_thread(get, gw.port, "/readyz") == 200
        pcm = pcm16(speech_pcm)
        ws = await connect(url(gw.port))
        received = Received()
        reader = asyncio.create_task(collect(ws, received))
        # All the audio, faster than real time, and no Finalize or CloseStream: the drain must flush it.
        for i in range(0, len(pcm), 3200):
            await ws.send(pcm[i : i + 3200])
        # A ping round trip: every frame before it has reached the server.
        await (await ws.ping())
        gw.proc.send_signal(signal.SIGTERM)

        # Draining: not ready, and a new stream is refused before the upgrade.
        while await asyncio.to_thread(get, gw.port, "/readyz") == 200:  # noqa: ASYNC110 (until the signal is handled)
            await asyncio.sleep(0.05)
        assert await asyncio.to_thread(get, gw.port, "/readyz") == 503
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url(gw.port)):
                pass
        assert refused.value.response.status_code == 503
        assert json.loads(refused.value.response.body)["err_code"] == "SERVICE_UNAVAILABLE"

        await asyncio.wait_for(reader, 120)
        assert await wait_exit(gw.proc) == 0, gw.log_tail()
    finally:
        gw.stop()

    assert received.close_code == 1012, (received.close_code, received.close_reason)
    kinds = [m["type"] for m in received.messages]
    assert kinds[-1] == "Metadata", kinds
    metadata = received.messages[-1]
    assert metadata["duration"] == pytest.approx(len(pcm) / 32000, abs=0.01)  # every byte was taken in
    # Every sentence sent before the signal came back as finals.
    assert wer(" ".join(speech.SENTENCES), received.final_text()) < 0.5, received.final_text()
    assert received.finals[-1]["start"] + received.finals[-1]["duration"] > metadata["duration"] - 1.5
    # The JSON log: one object per line, and it tells the drain's story.
    lines = [json.loads(line) for line in (tmp_path / "gateway.log").read_text().splitlines() if line.strip()]
    said = " | ".join(str(entry["message"]) for entry in lines)
    assert "SIGTERM: draining" in said
    assert "flushing 1 streams and closing them with 1012" in said
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in lines)


async def test_second_sigterm_exits_at_once(tmp_path: Path, speech_pcm: speech.Int16) -> None:
    gw = Gateway(tmp_path / "gateway.log", extra=("--drain-timeout", "3600"))
    try:
        await asyncio.to_thread(gw.wait_ready)
        async with connect(url(gw.port)) as ws:
            await ws.send(pcm16(speech_pcm[:16000]))
            await (await ws.ping())
            gw.proc.send_signal(signal.SIGTERM)
            while await asyncio.to_thread(get, gw.port, "/readyz") == 200:  # noqa: ASYNC110 (until handled)
                await asyncio.sleep(0.05)
            gw.proc.send_signal(signal.SIGTERM)
            # An hour-long drain did not run: the process is gone and the stream cut.
            assert await wait_exit(gw.proc) == 128 + signal.SIGTERM
    finally:
        gw.stop()
    assert "second SIGTERM: exiting now" in (tmp_path / "gateway.log").read_text()
