"""Simulated Twilio Media Streams calls: the JSON frames Twilio would send.

A call is two 8 kHz tracks (inbound = customer, outbound = agent) cut into
20 ms mu-law chunks, with Twilio's chunk numbers and millisecond timestamps.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from websockets.asyncio.client import connect

from gateway.core.audio import encode_mulaw
from gateway.protocols.twilio import compute_signature
from tests import speech
from tests.client import Received, collect

CHUNK_MS = 20
CHUNK = 8 * CHUNK_MS  # samples (= mu-law bytes) per chunk


def two_party(customer: str, agent: str, gap_s: float = 0.6) -> tuple[speech.Int16, speech.Int16]:
    """Customer speaks first, the agent answers; equal-length 8 kHz tracks."""
    said = speech.espeak(customer, rate=8000)
    answer = speech.espeak(agent, rate=8000)
    lead = speech.silence(0.5, 8000)
    pause = speech.silence(gap_s, 8000)
    inbound = np.concatenate([lead, said, pause, speech.silence(len(answer) / 8000, 8000), pause])
    outbound = np.concatenate([lead, speech.silence(len(said) / 8000, 8000), pause, answer, pause])
    n = max(len(inbound), len(outbound))
    return np.pad(inbound, (0, n - len(inbound))), np.pad(outbound, (0, n - len(outbound)))


def media(track: str, chunk: int, payload: bytes, stream_sid: str, sequence: int) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": str(sequence),
        "streamSid": stream_sid,
        "media": {
            "track": track,
            "chunk": str(chunk),
            "timestamp": str((chunk - 1) * CHUNK_MS),
            "payload": base64.b64encode(payload).decode(),
        },
    }


def call_events(
    tracks: dict[str, speech.Int16], call_sid: str, stream_sid: str, custom: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """connected, start, interleaved media of every track, stop."""
    yield {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    yield {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": stream_sid,
        "start": {
            "streamSid": stream_sid,
            "accountSid": "AC0000",
            "callSid": call_sid,
            "tracks": list(tracks),
            "customParameters": custom or {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
    encoded = {name: encode_mulaw(samples.astype(np.float32) / 32768.0) for name, samples in tracks.items()}
    sequence = 2
    length = max(len(b) for b in encoded.values())
    for chunk, offset in enumerate(range(0, length, CHUNK), start=1):
        for name, payload in encoded.items():
            yield media(name, chunk, payload[offset : offset + CHUNK], stream_sid, sequence)
            sequence += 1
    yield {
        "event": "stop",
        "sequenceNumber": str(sequence),
        "streamSid": stream_sid,
        "stop": {"accountSid": "AC0000", "callSid": call_sid},
    }


def twilio_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/v1/twilio"


def signature_headers(port: int, token: str | None) -> dict[str, str]:
    """What Twilio sends: the signature of the wss:// URL it connected to."""
    if token is None:
        return {}
    return {"X-Twilio-Signature": compute_signature(token, f"wss://127.0.0.1:{port}/v1/twilio")}


async def play_call(
    port: int,
    events: list[dict[str, Any]] | Iterator[dict[str, Any]],
    *,
    speed: float = 4.0,
    token: str | None = None,
) -> Received:
    """Send a call's frames, paced at ``speed`` x real time; returns the close Twilio got."""
    received = Received()
    async with connect(twilio_url(port), additional_headers=signature_headers(port, token)) as ws:
        reader = asyncio.create_task(collect(ws, received))
        tracks_per_chunk = 2
        for event in events:
            await ws.send(json.dumps(event))
            if event["event"] == "start":
                tracks_per_chunk = len(event["start"]["tracks"])
            if event["event"] == "media":
                await asyncio.sleep(CHUNK_MS / 1000 / speed / tracks_per_chunk)
        await asyncio.wait_for(reader, 120)
    return received
