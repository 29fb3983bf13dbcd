"""Drive livekit-plugins-deepgram's streaming STT, unmodified, against a gateway; runs in its own virtualenv.

Usage: python lk_stt.py CONFIG_JSON. Builds ``deepgram.STT(base_url=config["url"], **config["options"])``,
opens ``STT.stream()`` (no LiveKit room: the stream is fed directly), pushes the 16 kHz mono WAV as
``rtc.AudioFrame`` values of 100 ms at real time, then calls ``flush()`` (the plugin sends Finalize),
waits for a final reaching ``config["until_s"]`` of audio (at most 30 s), and ``end_input()``
(CloseStream) and reads the stream to its end. Writes every
``SpeechEvent`` and every warning or error the plugin logs, one JSON object a line, to ``config["out"]``.
"""

import asyncio
import contextlib
import json
import logging
import sys
import time
import wave

import aiohttp
from livekit import rtc
from livekit.plugins import deepgram


class Out:
    def __init__(self, path: str) -> None:
        self.file = open(path, "w")  # noqa: SIM115 - closed in main

    def __call__(self, kind: str, body: object = None) -> None:
        self.file.write(json.dumps({"event": kind, "t": time.monotonic(), "body": body}) + "\n")
        self.file.flush()


class LogCapture(logging.Handler):
    """Every WARNING or worse from any logger (the plugin's and livekit-agents')."""

    def __init__(self, record) -> None:
        super().__init__(logging.WARNING)
        self.record = record

    def emit(self, entry: logging.LogRecord) -> None:
        self.record("log", {"logger": entry.name, "level": entry.levelname, "message": entry.getMessage()})


def event_body(ev) -> dict:
    alt = ev.alternatives[0] if ev.alternatives else None
    body = {"request_id": ev.request_id}
    if alt is not None:
        body.update(text=alt.text, start=alt.start_time, end=alt.end_time, confidence=alt.confidence)
        body["words"] = [str(w) for w in (alt.words or [])]
    return body


async def run(config: dict, record: Out) -> None:
    with wave.open(config["wav"]) as w:
        rate = w.getframerate()
        pcm = w.readframes(w.getnframes())
    async with aiohttp.ClientSession() as session:
        stt = deepgram.STT(api_key="test-key", base_url=config["url"], http_session=session, **config["options"])
        stream = stt.stream()

        heard_until = asyncio.Event()

        async def read() -> None:
            async for ev in stream:
                record(ev.type.name, event_body(ev))
                final = ev.type.name == "FINAL_TRANSCRIPT" and ev.alternatives
                if final and ev.alternatives[0].end_time >= config["until_s"]:
                    heard_until.set()

        reader = asyncio.create_task(read())
        step = rate // 10 * 2  # 100 ms of int16
        began = time.monotonic()
        for i in range(0, len(pcm), step):
            chunk = pcm[i : i + step]
            stream.push_frame(rtc.AudioFrame(chunk, rate, 1, len(chunk) // 2))
            await asyncio.sleep(max(0.0, began + (i + step) / (2 * rate) - time.monotonic()))
        record("flush_called")
        stream.flush()
        # The application's turn goes on until its words are in (a busy gateway may lag), then a little longer.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(heard_until.wait(), timeout=30)
        await asyncio.sleep(0.5)
        record("end_input_called")
        stream.end_input()
        await asyncio.wait_for(reader, timeout=30)
        await stream.aclose()
        record("closed")


def main() -> None:
    config = json.loads(sys.argv[1])
    record = Out(config["out"])
    logging.getLogger().addHandler(LogCapture(record))
    try:
        asyncio.run(run(config, record))
    finally:
        record.file.close()


if __name__ == "__main__":
    main()
