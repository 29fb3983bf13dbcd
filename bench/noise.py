"""What the bench streams: a recording, its trailing silence, and optionally background noise under both.

Pure. ``--noise-dbfs X`` mixes white noise at X dBFS (RMS) into everything
streamed, the tail included, so the last utterance's endpoint is heard in
noise too (issue 14: faint noise used to hold endpoints open).
"""

from __future__ import annotations

import numpy as np

from bench.data import SAMPLE_RATE, Audio


def white_noise(samples: int, dbfs: float, seed: int = 0) -> Audio:
    """Gaussian white noise with RMS ``dbfs`` (re full scale 1.0), float32."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 1.0, samples)
    rms = float(np.sqrt(np.mean(noise**2))) if samples else 1.0
    return (noise / rms * 10 ** (dbfs / 20)).astype(np.float32)


def streamed(audio: Audio, tail_s: float, noise_dbfs: float | None = None, seed: int = 0) -> Audio:
    """``audio`` followed by ``tail_s`` of silence, with white noise at ``noise_dbfs`` under both, clipped to +-1."""
    tail = np.zeros(round(tail_s * SAMPLE_RATE), dtype=np.float32)
    full = np.concatenate([audio, tail]).astype(np.float32)
    if noise_dbfs is None:
        return full
    mixed: Audio = np.clip(full + white_noise(len(full), noise_dbfs, seed), -1.0, 1.0).astype(np.float32)
    return mixed
