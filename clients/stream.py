#!/usr/bin/env python3
"""Stream a WAV file or the microphone to a Deepgram-protocol endpoint and print live captions.

    python clients/stream.py speech.wav                      # real time, to ws://127.0.0.1:8000
    python clients/stream.py call.wav --url wss://host/v1/listen --key KEY --speed 2
    python clients/stream.py --mic                           # needs `pip install sounddevice`

Interims are shown in place (dim), finals are appended; the Metadata at the
end is printed as JSON with --verbose. Uses only websockets and numpy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect

FRAME_MS = 20


def read_wav(path: Path) -> tuple[bytes, int, int]:
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"{path}: only 16-bit PCM WAV is supported (got {8 * w.getsampwidth()}-bit)")
        return w.readframes(w.getnframes()), w.getframerate(), w.getnchannels()


async def file_frames(pcm: bytes, rate: int, channels: int, speed: float) -> AsyncIterator[bytes]:
    step = rate * channels * 2 * FRAME_MS // 1000
    start = time.monotonic()
    for n, i in enumerate(range(0, len(pcm), step)):
        yield pcm[i : i + step]
        # Sleep until this frame's due time: a clock, not a fixed delay, so drift does not add up.
        due = start + (n + 1) * FRAME_MS / 1000 / speed
        await asyncio.sleep(max(0.0, due - time.monotonic()))


async def mic_frames(rate: int) -> AsyncIterator[bytes]:
    try:
        import sounddevice  # type: ignore[import-not-found]
    except ImportError:
        raise SystemExit("--mic needs the sounddevice package: pip install sounddevice") from None
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def callback(data: Any, frames: int, when: Any, status: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, bytes(data))

    with sounddevice.RawInputStream(
        samplerate=rate, channels=1, dtype="int16", blocksize=rate * FRAME_MS // 1000, callback=callback
    ):
        while True:
            yield await queue.get()


def show(message: dict[str, Any], verbose: bool) -> None:
    kind = message.get("type")
    if kind == "Results":
        text = message["channel"]["alternatives"][0]["transcript"]
        channel = message["channel_index"][0]
        label = f"[ch{channel}] " if message["channel_index"][1] > 1 else ""
        if message["is_final"]:
            if text:
                end = "\n" if message.get("speech_final") else " "
                sys.stdout.write(f"\r\033[K{label}{text}{end}")
        else:
            sys.stdout.write(f"\r\033[K\033[2m{label}{text}\033[0m")
        sys.stdout.flush()
    elif kind == "Error":
        print(f"\nerror: {message.get('description')}", file=sys.stderr)
    elif verbose:
        print("\n" + json.dumps(message), file=sys.stderr)


async def receive(ws: ClientConnection, verbose: bool) -> None:
    async for raw in ws:
        show(json.loads(raw), verbose)


async def main_async(args: argparse.Namespace) -> int:
    if args.mic:
        rate, channels = args.rate, 1
        frames = mic_frames(rate)
    else:
        pcm, rate, channels = read_wav(args.file)
        frames = file_frames(pcm, rate, channels, args.speed)
    query = {
        "encoding": "linear16",
        "sample_rate": rate,
        "channels": channels,
        "multichannel": str(channels > 1).lower(),
        "interim_results": "true",
        "punctuate": "true",
        "endpointing": args.endpointing,
        "utterance_end_ms": 1000,
        "vad_events": "true",
        "model": args.model,
    }
    headers = {"Authorization": f"Token {args.key}"} if args.key else {}
    async with connect(f"{args.url}?{urlencode(query)}", additional_headers=headers, max_size=None) as ws:
        reader = asyncio.create_task(receive(ws, args.verbose))
        try:
            async for frame in frames:
                await ws.send(frame)
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
        await ws.send(json.dumps({"type": "CloseStream"}))
        await reader
        print()
        if ws.close_code not in (1000, None):
            print(f"closed {ws.close_code}: {ws.close_reason}", file=sys.stderr)
            return 1
    return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", type=Path, help="16-bit PCM WAV (any rate, mono or multichannel)")
    p.add_argument("--mic", action="store_true", help="stream the default microphone instead")
    p.add_argument("--url", default="ws://127.0.0.1:8000/v1/listen")
    p.add_argument("--key", help="API key (Authorization: Token KEY)")
    p.add_argument("--model", default="nova-3", help="model name sent to the server")
    p.add_argument("--speed", type=float, default=1.0, help="pace as a multiple of real time (files)")
    p.add_argument("--rate", type=int, default=16000, help="microphone sample rate")
    p.add_argument("--endpointing", default="300")
    p.add_argument("--verbose", action="store_true", help="print every non-Results message as JSON")
    args = p.parse_args()
    if not args.mic and args.file is None:
        p.error("give a WAV file or --mic")
    try:
        raise SystemExit(asyncio.run(main_async(args)))
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
