"""Drive pipecat-ai's DeepgramSTTService, unmodified, against a gateway; runs in its own virtualenv.

Usage: python pc_stt.py CONFIG_JSON. Runs the pipeline ``[DeepgramSTTService(base_url=config["url"]), Collector]``
with no transport: the 16 kHz mono WAV is queued as ``InputAudioRawFrame`` values of 20 ms at real time,
framed by the VAD frames a VAD processor would push (``VADUserStartedSpeakingFrame`` first,
``VADUserStoppedSpeakingFrame`` after the audio, on which the service sends Finalize); once a transcription
reaching ``config["until_s"]`` of audio came (at most 30 s), an ``EndFrame``
stops the pipeline (the service sends CloseStream and closes). Writes every transcription frame the
service pushed and every warning or error pipecat logged (loguru), one JSON object a line, to ``config["out"]``.
"""

import asyncio
import contextlib
import json
import sys
import time
import wave

from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.deepgram.stt import DeepgramSTTService


class Out:
    def __init__(self, path: str) -> None:
        self.file = open(path, "w")  # noqa: SIM115 - closed in main

    def __call__(self, kind: str, body: object = None) -> None:
        self.file.write(json.dumps({"event": kind, "t": time.monotonic(), "body": body}) + "\n")
        self.file.flush()


class Collector(FrameProcessor):
    """The application end of the pipeline: records what the STT service pushed."""

    def __init__(self, record: Out, until_s: float) -> None:
        super().__init__()
        self.record = record
        self.until_s = until_s
        self.heard_until = asyncio.Event()

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
            result = frame.result
            body = {"text": frame.text, "finalized": getattr(frame, "finalized", False), "end": 0.0}
            if result is not None:
                body.update(
                    is_final=result.is_final, speech_final=result.speech_final, from_finalize=result.from_finalize
                )
                words = result.channel.alternatives[0].words or []
                body["end"] = words[-1].end if words else result.start + result.duration
            self.record(type(frame).__name__, body)
            if isinstance(frame, TranscriptionFrame) and body["end"] >= self.until_s:
                self.heard_until.set()
        elif isinstance(frame, ErrorFrame):
            self.record("ErrorFrame", {"error": frame.error})
        await self.push_frame(frame, direction)


async def run(config: dict, record: Out) -> None:
    with wave.open(config["wav"]) as w:
        rate = w.getframerate()
        pcm = w.readframes(w.getnframes())
    stt = DeepgramSTTService(
        api_key="test-key",
        base_url=config["url"],
        sample_rate=rate,
        settings=DeepgramSTTService.Settings(**config["settings"]),
    )
    collector = Collector(record, config["until_s"])
    worker = PipelineWorker(
        Pipeline([stt, collector]),
        params=PipelineParams(audio_in_sample_rate=rate),
        enable_rtvi=False,
        idle_timeout_secs=None,
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def on_started(_worker, _frame) -> None:
        started.set()

    @worker.event_handler("on_pipeline_error")
    async def on_error(_worker, frame) -> None:
        record("pipeline_error", {"error": str(getattr(frame, "error", frame))})

    async def feed() -> None:
        await asyncio.wait_for(started.wait(), timeout=30)
        record("started")
        await worker.queue_frame(VADUserStartedSpeakingFrame(start_secs=0.2))
        step = rate // 50 * 2  # 20 ms of int16, a transport's usual frame
        began = time.monotonic()
        for i in range(0, len(pcm), step):
            await worker.queue_frame(InputAudioRawFrame(audio=pcm[i : i + step], sample_rate=rate, num_channels=1))
            await asyncio.sleep(max(0.0, began + (i + step) / (2 * rate) - time.monotonic()))
        record("vad_stopped_sent")
        await worker.queue_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
        # The turn goes on until its words are in (a busy gateway may lag), then a little longer.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector.heard_until.wait(), timeout=30)
        await asyncio.sleep(0.5)
        record("end_frame_sent")
        await worker.queue_frame(EndFrame())

    runner = PipelineRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), feed()), timeout=90)
    record("closed")


def main() -> None:
    config = json.loads(sys.argv[1])
    record = Out(config["out"])
    logger.remove()
    logger.add(
        lambda m: record("log", {"level": m.record["level"].name, "message": m.record["message"]}), level="WARNING"
    )
    try:
        asyncio.run(run(config, record))
    finally:
        record.file.close()


if __name__ == "__main__":
    main()
