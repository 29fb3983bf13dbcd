"""The local Whisper engine: transcribers per channel, one shared scheduler.

:class:`WhisperEngine` is created once per served model; it owns nothing per
stream. :class:`WhisperStream` holds one stream's transcribers and drives
their decodes as asyncio tasks (at most one per channel in flight).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace

from gateway.core import formatting, messages
from gateway.core.audio import DecodedFrame
from gateway.core.configure import ConfigureChange
from gateway.core.params import StreamParams
from gateway.core.transcriber import (
    ChannelTranscriber,
    Event,
    FlushReason,
    SpeechStarted,
    TranscriberConfig,
    Transcript,
    UtteranceEnd,
)
from gateway.core.types import SAMPLE_RATE, Audio, DecodeRequest, Word
from gateway.engines.base import Emit, Fail, Usage
from gateway.engines.scheduler import Scheduler

log = logging.getLogger(__name__)


class WhisperEngine:
    """Serves streams from one scheduler (one model)."""

    def __init__(self, scheduler: Scheduler, model_name: str, base_config: TranscriberConfig) -> None:
        self.name = "whisper"
        self.scheduler = scheduler
        self.base_config = base_config
        self.model = messages.ModelInfo(
            name=f"whisper-{model_name}",
            version="faster-whisper",
            arch="whisper",
            uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"gateway:whisper:{model_name}")),
        )

    def model_info(self) -> dict[str, str]:
        return {**self.model.as_dict(), "uuid": self.model.uuid}

    def transcriber_config(self, params: StreamParams) -> TranscriberConfig:
        return replace(
            self.base_config,
            interim_results=params.interim_results,
            endpointing_ms=params.endpointing_ms,
            utterance_end_ms=params.utterance_end_ms,
            vad_events=params.vad_events,
        )

    async def transcribe_file(self, audio: Audio, prompt: str = "", hotwords: str = "") -> list[tuple[Word, ...]]:
        """A whole file's segments (file times), decoded on this engine's one model.

        A backend with ``file_segments`` (faster-whisper's own long-form loop)
        is stepped one window per worker call; any other backend gets the file
        as consecutive 30-s windows through the scheduler.
        """
        scheduler = self.scheduler
        file_segments = getattr(scheduler.backend, "file_segments", None)
        segments: list[tuple[Word, ...]] = []
        if file_segments is None:
            step = 30 * SAMPLE_RATE
            for start in range(0, len(audio), step):
                request = DecodeRequest(
                    audio[start : start + step], start / SAMPLE_RATE, prompt, final=True, hotwords=hotwords
                )
                result = await scheduler.decode(request)
                if result.words:
                    segments.append(result.words)
            return segments
        iterator = await scheduler.run_blocking(lambda: iter(file_segments(audio, prompt, hotwords)))
        while (segment := await scheduler.run_blocking(next, iterator, None)) is not None:
            segments.append(segment)
        scheduler.stats.audio_s += len(audio) / SAMPLE_RATE
        return segments

    def open_stream(
        self,
        params: StreamParams,
        request_id: str,
        emit: Emit,
        fail: Fail,
        *,
        start_s: Sequence[float] = (),
        seed: Sequence[Sequence[Word]] = (),
    ) -> WhisperStream:
        """Serve a stream; ``start_s`` (per channel) takes one over from that stream time (failover)."""
        return WhisperStream(self, params, request_id, emit, fail, start_s, seed)


class WhisperStream:
    """One client stream on the local engine."""

    def __init__(
        self,
        engine: WhisperEngine,
        params: StreamParams,
        request_id: str,
        emit: Emit,
        fail: Fail,
        start_s: Sequence[float] = (),
        seed: Sequence[Sequence[Word]] = (),
    ) -> None:
        self.engine = engine
        self.params = params
        self.request_id = request_id
        self._emit = emit
        self._fail = fail
        config = engine.transcriber_config(params)
        vad_rate = 8_000 if params.sample_rate == 8_000 else 16_000
        starts = list(start_s) or [0.0] * params.output_channels
        seeds = list(seed) or [()] * params.output_channels
        self.channels = [
            ChannelTranscriber(config, vad_rate, starts[i], seeds[i]) for i in range(params.output_channels)
        ]
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self.usage = Usage("whisper")
        self._failure: BaseException | None = None
        self.formatting = formatting.Formatting(params.numerals, params.profanity_filter, params.redact)
        self.keyterms = params.keyterms

    @property
    def hotwords(self) -> str:
        """The keyterms as faster-whisper ``hotwords``: kept whole ahead of the prompt of finalised text
        (a prompt prefix would be the first thing cut as that text grows; bench/keyterms.py)."""
        return ", ".join(self.keyterms)

    async def configure(self, change: ConfigureChange) -> None:
        """Apply a Configure: keyterms from the next decode on, features from the next Results on."""
        if change.keyterms is not None:
            self.keyterms = change.keyterms
        if change.features:
            current = self.formatting
            self.formatting = replace(
                current,
                numerals=change.features.get("numerals", current.numerals),
                profanity_filter=change.features.get("profanity_filter", current.profanity_filter),
            )

    async def push(self, frame: DecodedFrame, raw: bytes) -> None:
        self.usage.audio_s += frame.input_seconds
        for index, channel in enumerate(self.channels):
            await self._send(index, channel.push(frame.channels[index], frame.vad_channels[index]))
            self._kick(index)

    async def keep_alive(self) -> None:
        return None

    async def finalize(self) -> None:
        await self._flush(FlushReason.FINALIZE)

    async def close(self) -> None:
        await self._flush(FlushReason.CLOSE)
        # Wait until every channel has emitted its last final.
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self._failure is not None:
            raise self._failure
        for channel in self.channels:
            channel.close()

    async def abort(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for channel in self.channels:
            channel.close()

    async def _flush(self, reason: FlushReason) -> None:
        for index, channel in enumerate(self.channels):
            channel.request_flush(reason)
            await self._send(index, channel.immediate_flush())
            self._kick(index)

    def _kick(self, index: int) -> None:
        if index in self._tasks or not self.channels[index].wants_decode:
            return
        self._tasks[index] = asyncio.create_task(self._decode_loop(index), name=f"{self.request_id}:ch{index}")

    async def _decode_loop(self, index: int) -> None:
        channel = self.channels[index]
        try:
            while (request := channel.next_request()) is not None:
                if self.keyterms:
                    request = replace(request, hotwords=self.hotwords)
                result = await self.engine.scheduler.decode(request)
                self.usage.inference_s += result.inference_s
                await self._send(index, channel.complete(result))
                await self._send(index, channel.immediate_flush())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("stream %s channel %d: decode failed", self.request_id, index)
            self._failure = exc
            self._fail(exc)
        finally:
            del self._tasks[index]

    async def _send(self, index: int, events: list[Event]) -> None:
        total = len(self.channels)
        for event in events:
            if isinstance(event, Transcript):
                if self.formatting.active:
                    event = replace(event, words=formatting.apply(event.words, self.formatting))
                await self._emit(
                    messages.results(
                        event,
                        channel=index,
                        channels=total,
                        request_id=self.request_id,
                        model=self.engine.model,
                        formatted=self.params.formatted,
                    )
                )
            elif isinstance(event, SpeechStarted):
                await self._emit(messages.speech_started(index, total, event.time))
            elif isinstance(event, UtteranceEnd):
                await self._emit(messages.utterance_end(index, total, event.last_word_end))
