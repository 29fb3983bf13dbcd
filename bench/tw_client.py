"""Thin asyncio shell: replay one recording as a Twilio Media Streams call and record its timeline.

The recording becomes the call's inbound track (the customer): resampled to
8 kHz, G.711 mu-law, 20 ms ``media`` events paced on a clock, then ``stop``.
Twilio's socket carries nothing back, so results are read where a
call-center application reads them: the gateway's live subscriber socket
``/v1/calls/<callSid>/events``, opened before the call starts. Its
``Results`` are Deepgram-shaped, so the same bookkeeping applies; there is no
``Finalize`` (Twilio has none) and nothing is billed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass

import numpy as np
import soxr
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.data import SAMPLE_RATE, Audio
from bench.dg_client import receive
from bench.ending import await_end, stop_receiving
from bench.noise import streamed
from bench.pacing import schedule
from bench.timeline import Timeline
from gateway.core.audio import encode_mulaw

TWILIO_RATE = 8_000


@dataclass(frozen=True, slots=True)
class TwOptions:
    """Where the gateway listens (``ws://HOST:PORT``) and how to pace the call."""

    base_url: str
    frame_ms: float = 20.0
    tail_s: float = 1.0
    noise_dbfs: float | None = None
    """White noise (dBFS) mixed under the audio and tail."""
    close_wait: float = 30.0
    open_timeout: float = 30.0
    api_key: str | None = None
    keep_raw: bool = False


def media_events(audio: Audio, stream_sid: str, frame_ms: float) -> list[tuple[float, str]]:
    """(due time, JSON text) of every ``media`` event for ``audio`` (16 kHz float), as Twilio sends them."""
    narrow = soxr.resample(audio, SAMPLE_RATE, TWILIO_RATE, quality="HQ").astype(np.float32)
    payload = encode_mulaw(narrow)
    events = []
    for frame in schedule(len(narrow), TWILIO_RATE, frame_ms):
        chunk = base64.b64encode(payload[frame.start : frame.end]).decode()
        body = {
            "event": "media",
            "sequenceNumber": str(frame.index + 3),
            "streamSid": stream_sid,
            "media": {
                "track": "inbound",
                "chunk": str(frame.index + 1),
                "timestamp": str(round(frame.start * 1000 / TWILIO_RATE)),
                "payload": chunk,
            },
        }
        events.append((frame.due, json.dumps(body)))
    return events


async def stream(audio: Audio, options: TwOptions) -> Timeline:
    """Replay ``audio`` as a one-party call at real-time pace; return what the subscriber saw."""
    full = streamed(audio, options.tail_s, options.noise_dbfs)
    timeline = Timeline(audio_s=len(audio) / SAMPLE_RATE, sent_s=len(full) / SAMPLE_RATE)
    call_sid, stream_sid = f"CA{uuid.uuid4().hex}", f"MZ{uuid.uuid4().hex}"
    headers = {"Authorization": f"Token {options.api_key}"} if options.api_key else {}
    events = media_events(full, stream_sid, options.frame_ms)
    start = {
        "event": "start",
        "sequenceNumber": "2",
        "streamSid": stream_sid,
        "start": {
            "streamSid": stream_sid,
            "accountSid": "ACbench",
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": {"source": "bench"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": TWILIO_RATE, "channels": 1},
        },
    }
    t0 = [time.perf_counter()]
    try:
        async with (
            connect(
                f"{options.base_url}/v1/calls/{call_sid}/events",
                additional_headers=headers,
                open_timeout=options.open_timeout,
                max_size=2**24,
            ) as subscriber,
            connect(
                f"{options.base_url}/v1/twilio", additional_headers=headers, open_timeout=options.open_timeout
            ) as call,
        ):
            receiver = asyncio.create_task(
                receive(subscriber, timeline, lambda: t0[0], options.keep_raw, lambda kind: kind == "CallEnded")
            )
            await call.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await call.send(json.dumps(start))
            t0[0] = time.perf_counter()
            try:
                for due, text in events:
                    wait = t0[0] + due - time.perf_counter()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    else:
                        timeline.pacing_lag_max = max(timeline.pacing_lag_max, -wait)
                    await call.send(text)
                timeline.end_sent = timeline.close_sent = time.perf_counter() - t0[0]
                stop = {
                    "event": "stop",
                    "streamSid": stream_sid,
                    "stop": {"accountSid": "ACbench", "callSid": call_sid},
                }
                await call.send(json.dumps(stop))
                await await_end(receiver, options.close_wait, timeline, "the call did not end on the subscriber socket")
            except ConnectionClosed as exc:
                timeline.error = timeline.error or f"call socket closed while streaming: {exc}"
            finally:
                await stop_receiving(receiver)
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        timeline.error = f"{type(exc).__name__}: {exc}"
    return timeline
