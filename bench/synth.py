"""The bench's own audio: sentences spoken by espeak-ng, with silence around them.

Used when no data set is given, and by the tests. espeak-ng writes 22050 Hz
WAV; it is resampled to 16 kHz with soxr. Files are cached by content.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bench.data import SAMPLE_RATE, Audio, Recording, read_wav, resample, write_wav

SENTENCES = (
    "Please call me back tomorrow morning about the invoice.",
    "The meeting has been moved to Thursday afternoon.",
    "We will meet at the station at seven o'clock.",
    "The new library opens next month in the center of town.",
    "I would like to order two coffees and a glass of water.",
    "Please turn off the lights when you leave the office.",
    "The children played in the garden until it got dark.",
    "He forgot his umbrella and got wet on the way home.",
)
"""Sentences espeak-ng speaks clearly enough for Whisper tiny.en (offline WER ~0 on each)."""

LEAD_S = 0.5
GAP_S = 1.2
TAIL_S = 0.5


class SynthError(RuntimeError):
    """espeak-ng is missing or failed."""


def espeak(text: str, voice: str = "en-us", words_per_minute: int = 160) -> Audio:
    """``text`` spoken by espeak-ng, as 16 kHz float32."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SynthError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        proc = subprocess.run(
            [exe, "-v", voice, "-s", str(words_per_minute), "-w", str(out), text],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            raise SynthError(f"espeak-ng failed: {proc.stderr.strip()}")
        samples, rate = read_wav(out)
    return resample(samples, rate)


def compose(parts: list[Audio], lead_s: float = LEAD_S, gap_s: float = GAP_S, tail_s: float = TAIL_S) -> Audio:
    """Utterances joined with silence: ``lead``, utterance, ``gap``, utterance, ..., ``tail``."""

    def silence(seconds: float) -> Audio:
        return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.float32)

    pieces = [silence(lead_s)]
    for i, part in enumerate(parts):
        if i:
            pieces.append(silence(gap_s))
        pieces.append(part)
    pieces.append(silence(tail_s))
    return np.concatenate(pieces).astype(np.float32)


def make_dataset(folder: Path, count: int = 3, per_file: int = 2) -> list[Recording]:
    """``count`` recordings of ``per_file`` sentences each (so each has an endpoint inside), cached."""
    folder.mkdir(parents=True, exist_ok=True)
    recordings = []
    for i in range(count):
        texts = [SENTENCES[(i * per_file + k) % len(SENTENCES)] for k in range(per_file)]
        reference = " ".join(texts)
        digest = hashlib.sha256(reference.encode()).hexdigest()[:10]
        wav = folder / f"synth_{i:02d}_{digest}.wav"
        if not wav.exists():
            write_wav(wav, compose([espeak(t) for t in texts]))
            wav.with_suffix(".txt").write_text(reference + "\n", encoding="utf-8")
        recordings.append(Recording(id=f"synth_{i:02d}", path=wav, reference=reference))
    return recordings
