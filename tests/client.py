"""A small Deepgram-protocol test client on plain websockets."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import jiwer
import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from whisper_normalizer.english import EnglishTextNormalizer

_normalize = EnglishTextNormalizer()


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(_normalize(reference), _normalize(hypothesis) or "<empty>"))


@dataclass
class Received:
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [m for m in self.of("Results") if m["is_final"]]

    def final_text(self, channel: int | None = None) -> str:
        return " ".join(
            m["channel"]["alternatives"][0]["transcript"]
            for m in self.finals
            if m["channel"]["alternatives"][0]["transcript"] and (channel is None or m["channel_index"][0] == channel)
        )


def url(port: int, query: str = "encoding=linear16&sample_rate=16000") -> str:
    return f"ws://127.0.0.1:{port}/v1/listen?{query}"


async def collect(ws: ClientConnection, into: Received) -> None:
    try:
        async for raw in ws:
            into.messages.append(json.loads(raw))
    except ConnectionClosed:
        pass  # an error close: its code and reason are what the caller checks
    finally:
        if ws.close_code is not None:
            into.close_code = ws.close_code
            into.close_reason = ws.close_reason or ""


async def stream(
    ws_url: str,
    pcm: bytes,
    *,
    speed: float = 1.0,
    frame_bytes: int = 640,
    finish: str | None = "CloseStream",
    headers: dict[str, str] | None = None,
) -> Received:
    """Send ``pcm`` in frames paced at ``speed`` x real time (16 kHz int16), then ``finish``."""
    received = Received()
    async with connect(ws_url, additional_headers=headers or {}) as ws:
        reader = asyncio.create_task(collect(ws, received))
        per_frame = frame_bytes / 32000 / speed
        for i in range(0, len(pcm), frame_bytes):
            await ws.send(pcm[i : i + frame_bytes])
            await asyncio.sleep(per_frame)
        if finish:
            await ws.send(json.dumps({"type": finish}))
        await asyncio.wait_for(reader, 120)
    return received


def pcm16(samples: np.ndarray) -> bytes:
    return samples.astype("<i2").tobytes()
