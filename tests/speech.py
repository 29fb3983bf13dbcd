"""Speech audio for tests, made on the spot with espeak-ng (no data files).

Synthetic speech is harder for Whisper than real speech, so tests bound WER
loosely and look for a few expected words.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

Int16 = npt.NDArray[np.int16]

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call me back tomorrow morning about the invoice.",
    "We will meet at the station at seven o'clock.",
)


def espeak(text: str, rate: int = 16_000, voice: str = "en-us", speed: int = 150) -> Int16:
    """Synthesize ``text`` to int16 mono at ``rate``."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed; run `make setup` (scripts/setup-system.sh)")
    raw = subprocess.run([exe, "-v", voice, "-s", str(speed), "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(raw)) as w:
        native = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    out = soxr.resample(samples, native, rate, quality="HQ")
    return np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)


def silence(seconds: float, rate: int = 16_000) -> Int16:
    return np.zeros(int(seconds * rate), dtype=np.int16)


def utterances(sentences: tuple[str, ...] = SENTENCES, rate: int = 16_000, gap_s: float = 1.2) -> Int16:
    """Sentences separated by silence, with lead-in and tail silence."""
    parts: list[Int16] = [silence(0.5, rate)]
    for sentence in sentences:
        parts += [espeak(sentence, rate), silence(gap_s, rate)]
    return np.concatenate(parts)


def write_wav(path: Path, samples: Int16, rate: int = 16_000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path
