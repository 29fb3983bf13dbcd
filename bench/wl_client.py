"""Thin asyncio shell: stream one recording to a WhisperLive server and record its timeline.

WhisperLive has no flush: ``END_OF_AUDIO`` makes the server drop the stream at
once, without transcribing what is pending. Its own client therefore waits
until the server has gone quiet before sending it, and so does this one: after
the audio, it waits until no message has come for ``settle_s`` counted from the
later of the last message and the end of the audio (at most ``settle_max_s``),
then sends ``END_OF_AUDIO``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.data import SAMPLE_RATE, Audio
from bench.ending import await_end, stop_receiving
from bench.noise import streamed
from bench.pacing import Pacer, encode_float32, schedule
from bench.timeline import Timeline
from bench.wl_protocol import END_OF_AUDIO, SegmentTracker, handshake


@dataclass(frozen=True, slots=True)
class WlOptions:
    """How to talk to a WhisperLive server (``url`` is ``ws://host:port``)."""

    url: str
    model: str = "tiny.en"
    frame_ms: float = 20.0
    tail_s: float = 1.0
    noise_dbfs: float | None = None
    """White noise (dBFS) mixed under the audio and tail."""
    word_timestamps: bool = True
    use_vad: bool = True
    ready_timeout: float = 180.0
    settle_s: float = 5.0
    settle_max_s: float = 20.0
    close_wait: float = 10.0
    open_timeout: float = 30.0
    keep_raw: bool = False


class _Receiver:
    """Stamps and feeds server messages; remembers when the last one came."""

    def __init__(self, tracker: SegmentTracker, timeline: Timeline, keep_raw: bool) -> None:
        self.tracker = tracker
        self.timeline = timeline
        self.keep_raw = keep_raw
        self.t0 = time.perf_counter()
        self.last_message = time.perf_counter()
        self.ready = asyncio.Event()

    async def run(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                now = time.perf_counter()
                self.last_message = now
                if isinstance(message, bytes):
                    continue
                arrival = now - self.t0
                if self.keep_raw:
                    self.timeline.raw.append((arrival, message))
                try:
                    self.tracker.feed(message, arrival)
                except (ValueError, KeyError, TypeError) as exc:
                    self.timeline.error = f"bad message: {exc}"
                if self.tracker.ready:
                    self.ready.set()
                if self.tracker.status and self.tracker.status.split(":")[0] in ("WAIT", "ERROR"):
                    self.timeline.error = self.tracker.status
                    self.ready.set()
        except ConnectionClosed:
            pass
        self.timeline.closed_at = time.perf_counter() - self.t0
        self.ready.set()


async def stream(audio: Audio, options: WlOptions) -> Timeline:
    """Stream ``audio`` at real-time pace, wait for the server to settle, end; return the timeline."""
    full = streamed(audio, options.tail_s, options.noise_dbfs)
    timeline = Timeline(audio_s=len(audio) / SAMPLE_RATE, sent_s=len(full) / SAMPLE_RATE)
    tracker = SegmentTracker()
    receiver = _Receiver(tracker, timeline, options.keep_raw)
    try:
        async with connect(
            options.url, max_size=2**24, open_timeout=options.open_timeout, ping_interval=None, compression=None
        ) as ws:
            task = asyncio.create_task(receiver.run(ws))
            try:
                await ws.send(
                    handshake(
                        uuid.uuid4().hex,
                        options.model,
                        word_timestamps=options.word_timestamps,
                        use_vad=options.use_vad,
                    )
                )
                try:
                    await asyncio.wait_for(receiver.ready.wait(), options.ready_timeout)
                except TimeoutError:
                    timeline.error = "no SERVER_READY"
                if not tracker.ready or timeline.error:
                    return timeline
                t0 = time.perf_counter()
                receiver.t0 = t0
                pacer = Pacer(clock=time.perf_counter, sleep=asyncio.sleep, t0=t0)
                await pacer.send_all(full, schedule(len(full), SAMPLE_RATE, options.frame_ms), ws.send, encode_float32)
                timeline.pacing_lag_max = pacer.lag_max
                audio_end = time.perf_counter()
                deadline = audio_end + options.settle_max_s
                while time.perf_counter() < deadline and not task.done():
                    quiet = time.perf_counter() - max(receiver.last_message, audio_end)
                    if quiet >= options.settle_s:
                        break
                    await asyncio.sleep(min(0.1, options.settle_s - quiet))
                timeline.close_sent = time.perf_counter() - t0
                await ws.send(END_OF_AUDIO)
                await await_end(task, options.close_wait, timeline, "server did not close after END_OF_AUDIO")
            except ConnectionClosed as exc:
                timeline.error = timeline.error or f"connection closed while streaming: {exc}"
            finally:
                await stop_receiving(task)
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        timeline.error = f"{type(exc).__name__}: {exc}"
    tracker.finish()
    timeline.updates = list(tracker.updates)
    return timeline
