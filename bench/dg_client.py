"""Thin asyncio shell: stream one recording to a Deepgram-protocol URL and record its timeline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench.data import SAMPLE_RATE, Audio
from bench.dg_protocol import CLOSE_STREAM, FINALIZE, ProtocolError, apply_message, auth_headers, listen_url
from bench.ending import await_end, stop_receiving
from bench.noise import streamed
from bench.pacing import Pacer, encode_linear16, schedule
from bench.timeline import Timeline


@dataclass(frozen=True, slots=True)
class DgOptions:
    """How to talk to a Deepgram-protocol target.

    ``ending`` is how the stream ends after the audio: ``finalize`` (``Finalize``,
    wait for its ``from_finalize`` result, then ``CloseStream``) or ``close``
    (``CloseStream`` at once, as the SDKs' ``finish()`` does: what is pending must
    come before ``Metadata``). ``finalize_wait`` bounds the wait for the
    ``from_finalize`` result; ``close_wait`` the wait for the server to close after
    ``CloseStream``. ``noise_dbfs``: white noise mixed under the audio and tail.
    """

    url: str
    model: str = "nova-3"
    api_key: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    frame_ms: float = 20.0
    tail_s: float = 1.0
    finalize_wait: float = 15.0
    close_wait: float = 15.0
    open_timeout: float = 30.0
    keep_raw: bool = False
    ending: str = "finalize"
    noise_dbfs: float | None = None


async def receive(
    ws: ClientConnection,
    timeline: Timeline,
    origin: Callable[[], float],
    keep_raw: bool,
    on_message: Callable[[str], bool],
) -> None:
    """Record every Deepgram-shaped text message into ``timeline`` until the socket closes.

    Arrivals are timed from ``origin()`` (read per message: a caller may move
    its clock's zero once audio starts); ``on_message(type)`` returning True stops early.
    """
    try:
        async for message in ws:
            arrival = time.perf_counter() - origin()
            if isinstance(message, bytes):
                continue
            if keep_raw:
                timeline.raw.append((arrival, message))
            try:
                kind = apply_message(timeline, message, arrival)
            except ProtocolError as exc:
                timeline.error = str(exc)
                continue
            if on_message(kind):
                break
    except ConnectionClosed as exc:
        if exc.rcvd is not None and exc.rcvd.code not in (1000, 1001) and timeline.error is None:
            timeline.error = f"closed {exc.rcvd.code} {exc.rcvd.reason}"
    timeline.closed_at = time.perf_counter() - origin()


async def stream(audio: Audio, options: DgOptions) -> Timeline:
    """Stream ``audio`` at real-time pace, ``Finalize``, ``CloseStream``; return what happened."""
    full = streamed(audio, options.tail_s, options.noise_dbfs)
    timeline = Timeline(audio_s=len(audio) / SAMPLE_RATE, sent_s=len(full) / SAMPLE_RATE)
    url = listen_url(options.url, options.model, options.params)
    try:
        async with connect(
            url,
            additional_headers=auth_headers(options.api_key),
            max_size=2**24,
            open_timeout=options.open_timeout,
            ping_interval=None,
            compression=None,
        ) as ws:
            t0 = time.perf_counter()
            flushed = asyncio.Event()

            def on_message(kind: str) -> bool:
                if kind == "Results" and timeline.updates[-1].from_finalize and timeline.updates[-1].is_final:
                    flushed.set()
                return False

            receiver = asyncio.create_task(receive(ws, timeline, lambda: t0, options.keep_raw, on_message))
            pacer = Pacer(clock=time.perf_counter, sleep=asyncio.sleep, t0=t0)
            try:
                await pacer.send_all(full, schedule(len(full), SAMPLE_RATE, options.frame_ms), ws.send, encode_linear16)
                timeline.pacing_lag_max = pacer.lag_max
                timeline.end_sent = time.perf_counter() - t0
                if options.ending == "finalize":
                    await ws.send(FINALIZE)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(flushed.wait(), options.finalize_wait)
                timeline.close_sent = time.perf_counter() - t0
                await ws.send(CLOSE_STREAM)
                await await_end(receiver, options.close_wait, timeline, "server did not close after CloseStream")
            except ConnectionClosed as exc:
                await receiver
                timeline.error = timeline.error or f"connection closed while streaming: {exc}"
            finally:
                await stop_receiving(receiver)
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        timeline.error = f"{type(exc).__name__}: {exc}"
    return timeline
