"""faster-whisper backend: one model, shared by every stream, decoded in batches.

The model is loaded once per :class:`WhisperBackend` (no global singleton)
and only ever called from the scheduler's worker thread. ``transcribe``
returns a lazy generator: it is consumed here, inside the worker.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.guard import GuardConfig, cut_repetitions, keep_segment
from gateway.core.types import Audio, DecodeRequest, DecodeResult, Word
from gateway.core.wordpieces import join_pieces

log = logging.getLogger(__name__)

TOKENS_PER_S = 12.0
"""Text tokens a second of speech may need, with room: read English runs at 3-4 (eval-public's
fastest reference is 3.7 a second, before capitals and punctuation)."""
MIN_TOKENS = 12
"""Tokens any window may generate, however short."""


@dataclass(frozen=True, slots=True)
class WhisperOptions:
    """How the model is loaded and decoded."""

    model_path: str
    name: str = "tiny.en"
    device: str = "cpu"
    compute_type: str = "int8"
    beam_size: int = 1
    final_beam_size: int = 1
    cpu_threads: int = 0
    """CTranslate2 threads per decode; 0: the cores shared out among ``workers``."""
    workers: int = 1
    """Decode calls the model serves at once (CTranslate2's inter-op workers, one model in memory).
    On a CPU, one worker per core on one thread each decodes two streams' windows side by side at
    the least CPU a decode; measured against the alternatives in the README, Decode workers."""
    language: str | None = "en"
    max_batch: int = 1
    guard: GuardConfig = GuardConfig()
    encoder_pad_s: float | None = 1.0
    """Encode the window plus this much silence instead of Whisper's 30 s (CTranslate2
    takes a shorter input, and the encoder's cost follows its length). None: always
    30 s, as trained (and faster-whisper's own ``transcribe`` path on one window a call)."""
    encoder_min_s: float = 10.0
    """...but never less than this: tiny.en loses words at the end of inputs much shorter
    than it was trained on (eval-public, whole files: WER 9.6% at 30 s and at max(window + 1 s,
    10 s), 14.6% at window + 1 s), while the encoder costs about a third of 30 s."""


def limit_blas_threads() -> None:
    """Run numpy's BLAS on one thread, process-wide.

    The log-Mel features are one small matrix product per window; with a BLAS
    thread per core, OpenBLAS's idle threads then busy-wait through the
    encoder that follows and doubled the CPU a decode costs on a 2-vCPU
    machine (measured: jfk.wav's first 2 s, encoder CPU 0.19 s against 0.10 s
    of wall time, 0.11 s CPU with one BLAS thread). CTranslate2's own threads
    (``cpu_threads``) are not BLAS and keep their setting.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def resolve_device(device: str) -> str:
    """Map ``auto`` to cuda when CTranslate2 sees a GPU, else cpu."""
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


class WhisperBackend:
    """Blocking decoder around one ``faster_whisper.WhisperModel``.

    Up to ``workers`` threads may call :meth:`decode_batch` at once (the
    scheduler's workers); CTranslate2 runs each call on a worker of its own.
    """

    def __init__(self, options: WhisperOptions) -> None:
        from faster_whisper import WhisperModel

        self.options = options
        self.name = options.name
        self.max_batch = options.max_batch
        self.workers = max(1, options.workers)
        self.device = resolve_device(options.device)
        compute_type = options.compute_type
        if compute_type == "auto":
            compute_type = "float16" if self.device == "cuda" else "int8"
        if not Path(options.model_path, "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 model.bin under {options.model_path}")
        limit_blas_threads()
        self.model = WhisperModel(
            options.model_path,
            device=self.device,
            compute_type=compute_type,
            cpu_threads=options.cpu_threads or max(1, (os.cpu_count() or 1) // self.workers),
            num_workers=self.workers,
            local_files_only=True,
        )
        self.compute_type = compute_type
        self.english_only = not self.model.model.is_multilingual

    def decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        return [self.decode(r) for r in requests]

    def decode(self, request: DecodeRequest) -> DecodeResult:
        """Decode one window; words come back in stream time."""
        started = time.perf_counter()
        if request.duration < 0.1:
            return DecodeResult((), 0.0)
        options = self.options
        segments, _info = self.model.transcribe(
            request.audio,
            language="en" if self.english_only else options.language,
            beam_size=options.final_beam_size if request.final else options.beam_size,
            initial_prompt=request.prompt or None,
            hotwords=request.hotwords or None,
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=False,
            temperature=(0.0, 0.2, 0.4),
            compression_ratio_threshold=options.guard.compression_ratio_threshold,
            log_prob_threshold=options.guard.log_prob_threshold,
            no_speech_threshold=options.guard.no_speech_threshold,
            hallucination_silence_threshold=None,
            # faster-whisper adds the prompt (at most 224 tokens) and refuses more than 448.
            max_new_tokens=min(220, token_budget(request.duration)),
        )
        words = _segments_to_words(segments, request.offset, options.guard)
        return DecodeResult(tuple(words), time.perf_counter() - started)

    def file_segments(self, audio: Audio, prompt: str = "", hotwords: str = "") -> Iterator[tuple[Word, ...]]:
        """A whole file, lazily: each ``next`` decodes at most one 30-s window (call from the worker).

        Unlike a live window, a file is decoded as faster-whisper does it
        natively: previous text conditions the next window, and its Silero
        VAD skips the silences (where Whisper would invent words).
        """
        options = self.options
        segments, _info = self.model.transcribe(
            audio,
            language="en" if self.english_only else options.language,
            beam_size=options.final_beam_size,
            initial_prompt=prompt or None,
            hotwords=hotwords or None,
            word_timestamps=True,
            condition_on_previous_text=True,
            vad_filter=True,
            temperature=(0.0, 0.2, 0.4, 0.6),
            compression_ratio_threshold=options.guard.compression_ratio_threshold,
            log_prob_threshold=options.guard.log_prob_threshold,
            no_speech_threshold=options.guard.no_speech_threshold,
        )
        for segment in segments:
            words = _segments_to_words([segment], 0.0, options.guard)
            if words:
                yield tuple(words)


def token_budget(window_s: float) -> int:
    """Text tokens a live window of ``window_s`` seconds may generate.

    Room for ``TOKENS_PER_S`` a second, at least ``MIN_TOKENS``: enough for any speech, while a
    window that loops (short noisy ones do) stops early instead of running to Whisper's limit,
    which costs ten times a normal decode.
    """
    return MIN_TOKENS + math.ceil(TOKENS_PER_S * window_s)


def _segments_to_words(segments: Any, offset: float, guard: GuardConfig) -> list[Word]:
    words: list[Word] = []
    for segment in segments:  # consumes the lazy generator, in the worker thread
        if not keep_segment(segment.no_speech_prob, segment.avg_logprob, segment.compression_ratio, guard):
            continue
        pieces = [
            (w.word, round(offset + float(w.start), 3), round(offset + float(w.end), 3), float(w.probability))
            for w in segment.words or ()
        ]
        words.extend(w for w in join_pieces(pieces) if w.probability >= guard.min_word_probability)
    return cut_repetitions(words, guard.max_repeats)
