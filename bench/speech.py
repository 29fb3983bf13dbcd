"""Where speech starts and ends in a recording, from its energy alone.

Used for "speech onset to first interim": the onset must come from the audio,
not from the target under test, so every target is measured against the same
instant. The detector is deliberately simple and documented in bench/README.md:
10 ms frames, RMS in dBFS, threshold ``max(peak - 35 dB, noise floor + 12 dB)``
where the noise floor is the 10th percentile frame level, and an onset needs 3
consecutive frames above it (30 ms).

:func:`speech_regions` gives every stretch of speech by the same rule (runs
joined across gaps shorter than ``BRIDGE_S``): the reference for "speech_final
after the voice ends", which must not lean on the target's own word times
(Whisper tiny's last word of an utterance can end a second before the voice does).
:func:`speech_level_db` is the level that ``--snr-db`` sets noise against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME_S = 0.010
RUN = 3
BRIDGE_S = 0.25
"""Quiet gaps shorter than this inside speech (a stop's closure, a breath between words) end no region:
shorter than the gateway's 300 ms endpointing floor, which they must not count as an end either."""


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


def _loud_runs(levels: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Indices of frames that start a run of ``RUN`` frames above the threshold."""
    if len(levels) < RUN:
        return np.zeros(0, dtype=np.intp)
    peak = float(levels.max())
    floor = float(np.percentile(levels, 10))
    threshold = max(peak - 35.0, floor + 12.0)
    loud = levels >= threshold
    runs = np.convolve(loud.astype(np.int32), np.ones(RUN, dtype=np.int32), mode="valid") == RUN
    return np.flatnonzero(runs)


def speech_bounds(audio: npt.NDArray[np.float32], sample_rate: int) -> SpeechBounds | None:
    """Onset and offset of speech, or ``None`` when nothing rises above the threshold."""
    hits = _loud_runs(frame_levels_db(audio, sample_rate))
    if len(hits) == 0:
        return None
    first = int(hits[0])
    last = int(hits[-1]) + RUN
    return SpeechBounds(onset=first * FRAME_S, offset=last * FRAME_S)


def speech_regions(
    audio: npt.NDArray[np.float32], sample_rate: int, bridge_s: float = BRIDGE_S
) -> tuple[tuple[float, float], ...]:
    """Every stretch of speech as ``(start, end)`` seconds, in order (see the module docstring)."""
    regions: list[tuple[float, float]] = []
    for hit in _loud_runs(frame_levels_db(audio, sample_rate)):
        start, end = int(hit) * FRAME_S, (int(hit) + RUN) * FRAME_S
        if regions and start - regions[-1][1] < bridge_s:
            regions[-1] = (regions[-1][0], end)
        else:
            regions.append((start, end))
    return tuple((round(a, 3), round(b, 3)) for a, b in regions)


def speech_level_db(audio: npt.NDArray[np.float32], sample_rate: int) -> float | None:
    """RMS level (dBFS) of the audio inside its speech regions; None when there is no speech."""
    regions = speech_regions(audio, sample_rate)
    if not regions:
        return None
    parts = [audio[round(a * sample_rate) : round(b * sample_rate)] for a, b in regions]
    samples = np.concatenate(parts).astype(np.float64)
    return float(20.0 * np.log10(max(float(np.sqrt(np.mean(samples**2))), 1e-6)))


def noise_level(audio: npt.NDArray[np.float32], snr_db: float) -> float | None:
    """The dBFS level of noise ``snr_db`` under the recording's speech level (16 kHz); None without speech."""
    level = speech_level_db(audio, 16_000)
    return None if level is None else round(level - snr_db, 1)
