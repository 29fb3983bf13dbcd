"""The command-line client streams a WAV file to a real gateway and prints captions."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from gateway.server.app import Gateway
from tests import speech

pytestmark = pytest.mark.model
CLIENT = Path(__file__).parent.parent / "clients" / "stream.py"


async def test_streams_a_file_and_prints_finals(gateway: Gateway, tmp_path: Path) -> None:
    wav = speech.write_wav(tmp_path / "s.wav", speech.utterances(("The quick brown fox jumps over the lazy dog.",)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        str(wav),
        "--url",
        f"ws://127.0.0.1:{gateway.port}/v1/listen",
        "--speed",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    finals = out.decode().split("\r")[-1].lower()  # the last carriage return precedes the final line
    assert "lazy" in finals


async def test_refuses_non_16_bit_wav(tmp_path: Path) -> None:
    import wave

    path = tmp_path / "8bit.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 800)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CLIENT), str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode != 0
    assert b"only 16-bit PCM" in err
