"""Batched Whisper decoding: many streams' windows in one model call.

:class:`BatchedWhisperBackend` runs each step of Whisper once for the whole
batch, using faster-whisper's building blocks rather than its per-file
``transcribe`` loop: log-Mel features for every window, one batched
``encode``, one batched ``generate`` (each window keeps its own prompt), and
one batched cross-attention ``align`` for word times. That is what makes a
GPU serve dozens of streams: the encoder's cost is per batch, not per stream.

Differences from :class:`~gateway.engines.whisper.WhisperBackend` (the
sequential path): no temperature fallback (a window that fails the guard is
simply dropped and re-decoded with more audio next time) and no timestamp
tokens (a window of at most 30 s is one segment; word times come from the
alignment). It is also the CPU default (one window a call) because it can
encode a shortened input (``encoder_pad_s``/``encoder_min_s``), which
faster-whisper's ``transcribe`` always pads to 30 s.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import numpy as np

from gateway.core.guard import cut_phrase_loop, cut_repetitions, cut_token_loop, keep_segment
from gateway.core.types import SAMPLE_RATE, DecodeRequest, DecodeResult, Word
from gateway.core.wordpieces import join_pieces
from gateway.engines.whisper import WhisperBackend, WhisperOptions, token_budget

# faster-whisper's defaults (ASCII and CJK/full-width forms), written as escapes.
PREPEND_PUNCTUATIONS = "\"'\u201c\u00bf([{-"
APPEND_PUNCTUATIONS = "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001"
MAX_WINDOW_S = 30.0
MAX_PROMPT_TOKENS = 96
PROMPT_STEP = 16


def compression_ratio(text: str) -> float:
    raw = text.encode()
    return len(raw) / max(1, len(zlib.compress(raw)))


def aligned_prompt(hotwords: list[int], previous: list[int]) -> list[int]:
    """Hotwords first (kept whole, as faster-whisper places them), then the end of the previous
    text, cut from its start to a multiple of PROMPT_STEP tokens where it is long enough (rows
    are grouped by prompt length; a row whose hotwords leave it unaligned is a group of its own)."""
    extra = (len(hotwords) + len(previous)) % PROMPT_STEP
    return hotwords + previous[extra:] if extra <= len(previous) else hotwords + previous


class BatchedWhisperBackend(WhisperBackend):
    """One model; ``decode_batch`` decodes up to ``max_batch`` windows at once."""

    def __init__(self, options: WhisperOptions) -> None:
        super().__init__(options)
        from faster_whisper.tokenizer import Tokenizer

        self.tokenizer = Tokenizer(
            self.model.hf_tokenizer,
            self.model.model.is_multilingual,
            task="transcribe",
            language="en" if self.english_only else (options.language or "en"),
        )
        self._suppress = list(self._suppress_tokens())

    def _suppress_tokens(self) -> list[int]:
        from faster_whisper.transcribe import get_suppressed_tokens

        return list(get_suppressed_tokens(self.tokenizer, [-1]))

    def decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        started = time.perf_counter()
        results = [DecodeResult((), 0.0) for _ in requests]
        # CTranslate2 wants <|startoftranscript|> at the same position in every
        # row: prompts are cut to a multiple of PROMPT_STEP tokens and rows with
        # equal prompt lengths are decoded together (one group in steady state).
        groups: dict[int, list[tuple[int, list[int]]]] = {}
        for i, request in enumerate(requests):
            if request.duration >= 0.1:
                previous = self._previous_tokens(request)
                groups.setdefault(len(previous), []).append((i, previous))
        live = sum(len(g) for g in groups.values())
        for group in groups.values():
            words = self._decode_group([requests[i] for i, _ in group], [p for _, p in group])
            for (i, _), found in zip(group, words, strict=True):
                results[i] = DecodeResult(tuple(found), 0.0)
        share = (time.perf_counter() - started) / max(1, live)
        return [DecodeResult(r.words, share) for r in results]

    def _previous_tokens(self, request: DecodeRequest) -> list[int]:
        hot = request.hotwords.strip()
        text = request.prompt.strip()
        hot_tokens: list[int] = self.tokenizer.encode(" " + hot)[: MAX_PROMPT_TOKENS // 2] if hot else []
        tokens: list[int] = self.tokenizer.encode(" " + text)[-(MAX_PROMPT_TOKENS - len(hot_tokens)) :] if text else []
        return aligned_prompt(hot_tokens, tokens)

    def _decode_group(self, requests: list[DecodeRequest], previous: list[list[int]]) -> list[list[Word]]:
        model = self.model
        extractor = model.feature_extractor
        frames_per_second = SAMPLE_RATE / extractor.hop_length
        features = []
        num_frames = []
        pad_s = self.options.encoder_pad_s
        pad = np.zeros(int(SAMPLE_RATE * (pad_s or 0.0)), np.float32)
        for request in requests:
            audio = request.audio[-int(MAX_WINDOW_S * SAMPLE_RATE) :]
            # Silence after the speech is padded as audio, as Whisper was trained (not as zero features).
            mel = extractor(np.concatenate([audio, pad]), chunk_length=int(MAX_WINDOW_S))
            num_frames.append(max(1, min(mel.shape[-1], round(len(audio) / extractor.hop_length))))
            features.append(mel)
        frames = encoder_frames(
            num_frames, pad_s, self.options.encoder_min_s, extractor.nb_max_frames, frames_per_second
        )
        encoder_output = model.encode(np.stack([_pad_or_trim(mel, frames) for mel in features]))
        prompts = [model.get_prompt(self.tokenizer, p, without_timestamps=True) for p in previous]
        final = any(r.final for r in requests)
        longest = max(len(r.audio) for r in requests) / SAMPLE_RATE
        generated = model.model.generate(
            encoder_output,
            prompts,
            beam_size=self.options.final_beam_size if final else self.options.beam_size,
            # A window that loops (short noisy ones do) would otherwise run to Whisper's 224
            # tokens, ten times a normal decode's cost, before the loop is cut below.
            max_length=generation_limit(longest, len(prompts[0]), model.max_length),
            suppress_blank=True,
            suppress_tokens=self._suppress,
            return_scores=True,
            return_no_speech_prob=True,
        )
        tokenizer = self.tokenizer
        text_tokens: list[list[int]] = []
        for result in generated:
            # No temperature fallback here: a decoding loop is cut instead.
            tokens = cut_token_loop([t for t in result.sequences_ids[0] if t < tokenizer.eot])
            length = len(result.sequences_ids[0])
            avg_logprob = result.scores[0] * length / (length + 1)
            text = tokenizer.decode(tokens)
            ratio = compression_ratio(text)
            if ratio > self.options.guard.compression_ratio_threshold:
                tokens = cut_phrase_loop(tokens)
                ratio = compression_ratio(tokenizer.decode(tokens))
            kept = bool(tokens) and keep_segment(result.no_speech_prob, avg_logprob, ratio, self.options.guard)
            text_tokens.append(tokens if kept else [])
        alignments = self._align(text_tokens, encoder_output, num_frames)
        out: list[list[Word]] = []
        for request, frames, alignment in zip(requests, num_frames, alignments, strict=True):
            offset = request.offset
            limit = offset + frames / frames_per_second + 0.5
            pieces = [
                (
                    w["word"],
                    round(offset + float(w["start"]), 3),
                    round(offset + float(w["end"]), 3),
                    float(w["probability"]),
                )
                for w in alignment
            ]
            words = [
                w
                for w in join_pieces(pieces)
                # A lone punctuation mark (what silence decodes to, shortened) is no word.
                if any(c.isalnum() for c in w.text) and w.start <= limit
            ]
            out.append(cut_repetitions(words, self.options.guard.max_repeats))
        return out

    def _align(
        self, text_tokens: list[list[int]], encoder_output: Any, num_frames: list[int]
    ) -> list[list[dict[str, Any]]]:
        from faster_whisper.transcribe import merge_punctuations

        if not any(text_tokens):
            return [[] for _ in text_tokens]
        # Every row must carry text: rows with none get a placeholder whose
        # alignment is thrown away (cheaper than splitting the encoder output).
        placeholder = self.tokenizer.encode(" .")
        rows = [tokens or placeholder for tokens in text_tokens]
        aligned = self.model.find_alignment(self.tokenizer, rows, encoder_output, num_frames)
        out: list[list[dict[str, Any]]] = []
        for tokens, alignment in zip(text_tokens, aligned, strict=True):
            if not tokens or not alignment:
                out.append([])
                continue
            merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
            out.append([w for w in alignment if w["word"]])
        return out


def encoder_frames(
    num_frames: list[int], pad_s: float | None, min_s: float, full: int, frames_per_second: float
) -> int:
    """Mel frames the encoder reads for a batch: the longest window plus ``pad_s``, at least
    ``min_s`` seconds, at most ``full`` (30 s), even; ``full`` when ``pad_s`` is None."""
    if pad_s is None:
        return full
    frames = max(max(num_frames) + round(pad_s * frames_per_second), round(min_s * frames_per_second))
    return min(full, frames + frames % 2)  # the encoder's stride-2 convolution wants an even length


def generation_limit(window_s: float, prompt_tokens: int, model_limit: int) -> int:
    """CTranslate2's ``max_length`` for a window of ``window_s`` seconds: room for its
    :func:`~gateway.engines.whisper.token_budget` after the prompt.

    CTranslate2's Whisper counts the prompt in ``max_length`` and generates at most half of it
    (measured with CTranslate2 4.8: 20 gives 10 tokens, 448 gives 224), hence both terms.
    """
    budget = token_budget(min(window_s, MAX_WINDOW_S))
    return min(model_limit, max(2 * budget, prompt_tokens + budget))


def _pad_or_trim(mel: np.ndarray, frames: int) -> np.ndarray:
    if mel.shape[-1] >= frames:
        return np.ascontiguousarray(mel[:, :frames])
    return np.pad(mel, ((0, 0), (0, frames - mel.shape[-1])))


def make_backend(options: WhisperOptions) -> WhisperBackend:
    """The backend these options want (blocking: loads the model).

    A GPU wants many windows per call; on a CPU the batched path (one window a
    call) is what encodes a shortened input. A full 30 s encode one window a call
    keeps faster-whisper's own ``transcribe`` (temperature fallback).
    """
    if options.max_batch > 1 or options.encoder_pad_s is not None:
        return BatchedWhisperBackend(options)
    return WhisperBackend(options)
