"""Where speech starts and ends in a recording, from its energy alone.

Used for "speech onset to first interim": the onset must come from the audio,
not from the target under test, so every target is measured against the same
instant. The detector is deliberately simple and documented in bench/README.md:
10 ms frames, RMS in dBFS, threshold ``max(peak - 35 dB, noise floor + 12 dB)``
where the noise floor is the 10th percentile frame level, and an onset needs 3
consecutive frames above it (30 ms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME_S = 0.010
RUN = 3


@dataclass(frozen=True, slots=True)
class SpeechBounds:
    """First and last instant of speech, in seconds from the start of the recording."""

    onset: float
    offset: float


def frame_levels_db(audio: npt.NDArray[np.float32], sample_rate: int) -> npt.NDArray[np.float64]:
    """RMS level of each 10 ms frame in dBFS (silence floors at -120 dB)."""
    size = max(1, int(sample_rate * FRAME_S))
    n = len(audio) // size
    if n == 0:
        return np.zeros(0)
    frames = np.asarray(audio[: n * size], dtype=np.float64).reshape(n, size)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    levels: npt.NDArray[np.float64] = 20.0 * np.log10(np.maximum(rms, 1e-6))
    return levels


def speech_bounds(audio: npt.NDArray[np.float32], sample_rate: int) -> SpeechBounds | None:
    """Onset and offset of speech, or ``None`` when nothing rises above the threshold."""
    levels = frame_levels_db(audio, sample_rate)
    if len(levels) < RUN:
        return None
    peak = float(levels.max())
    floor = float(np.percentile(levels, 10))
    threshold = max(peak - 35.0, floor + 12.0)
    loud = levels >= threshold
    runs = np.convolve(loud.astype(np.int32), np.ones(RUN, dtype=np.int32), mode="valid") == RUN
    hits = np.flatnonzero(runs)
    if len(hits) == 0:
        return None
    first = int(hits[0])
    last = int(hits[-1]) + RUN
    return SpeechBounds(onset=first * FRAME_S, offset=last * FRAME_S)
