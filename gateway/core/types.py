"""Values passed between the pure streaming core and an inference backend.

A backend receives :class:`DecodeRequest` values (one per stream window) in
batches and answers each with a :class:`DecodeResult`. Nothing here knows
about sockets, threads or a particular model library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]
"""Mono float32 samples at 16 kHz in [-1, 1]."""

SAMPLE_RATE = 16_000


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with absolute stream times in seconds.

    ``text`` is the word as the model wrote it, punctuation included and
    surrounding whitespace stripped ("Hello," or "world.").
    """

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class DecodeRequest:
    """Decode ``audio`` whose first sample sits at ``offset`` stream seconds.

    ``prompt`` is previously finalised text used as decoder context.
    ``hotwords`` is vocabulary to bias towards (Deepgram's ``keyterm``), kept
    whole however long the prompt grows (faster-whisper's ``hotwords``).
    ``final`` marks a flush (endpoint, Finalize, close): backends may spend
    more effort (e.g. a wider beam) on it.
    """

    audio: Audio = field(repr=False)
    offset: float
    prompt: str = ""
    final: bool = False
    hotwords: str = ""

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """Words found in one request's audio, already shifted to stream time."""

    words: tuple[Word, ...]
    inference_s: float = 0.0


class Backend(Protocol):
    """Blocking batch decoder, called from worker threads, never the event loop.

    At most one call at a time, unless the backend has an int attribute ``workers``
    saying how many calls it serves at once (:func:`concurrency`).
    """

    name: str
    max_batch: int

    def decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        """Decode every request; answer in the same order."""
        ...


def concurrency(backend: Backend) -> int:
    """How many ``decode_batch`` calls ``backend`` serves at once (its ``workers``, else 1)."""
    workers = getattr(backend, "workers", 1)
    return workers if isinstance(workers, int) and workers > 0 else 1
