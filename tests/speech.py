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
from typing import Any

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


def noise(seconds: float, dbfs: float, kind: str = "white", rate: int = 16_000, seed: int = 0) -> Int16:
    """Background noise at ``dbfs`` RMS: ``white``, ``pink`` (1/f), or ``wandering`` (white whose level
    drifts +-6 dB every 200 ms, like a room: a fan, traffic, a far voice)."""
    n = int(seconds * rate)
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    if kind == "pink":
        spectrum = np.fft.rfft(x)
        k = np.arange(len(spectrum), dtype=np.float64)
        k[0] = 1.0
        x = np.fft.irfft(spectrum / np.sqrt(k), n)
    elif kind == "wandering":
        step = rate // 5
        knots = np.arange(0, n + step, step)
        x = x * 10 ** (np.interp(np.arange(n), knots, rng.uniform(-6.0, 6.0, len(knots))) / 20)
    elif kind != "white":
        raise ValueError(f"unknown noise {kind!r}")
    x = x / np.sqrt(np.mean(x**2)) * 32768.0 * 10 ** (dbfs / 20)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def mix(*parts: Int16) -> Int16:
    """Sum int16 signals of equal length, clipped."""
    total = np.sum([p.astype(np.int32) for p in parts], axis=0)
    return np.clip(total, -32768, 32767).astype(np.int16)


def speech_end(samples: Int16, rate: int = 16_000, dbfs: float = -50.0) -> float:
    """Seconds at the end of the last 10 ms with RMS above ``dbfs`` (the end of clean speech)."""
    n = rate // 100
    frames = samples[: len(samples) - len(samples) % n].astype(np.float64).reshape(-1, n)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 32768.0 * 10 ** (dbfs / 20))
    return float((loud[-1] + 1) * n / rate) if loud.size else 0.0


def trimmed(text: str, rate: int = 16_000) -> Int16:
    """``espeak(text)`` without the silence espeak puts around it."""
    said = espeak(text, rate)
    loud = np.flatnonzero(np.abs(said) > 100)
    return said[loud[0] : loud[-1] + 1]


def with_blip(sentence: str, gap_s: float, under_db: float, tail_s: float = 2.0) -> tuple[Int16, float]:
    """1 s of silence, ``sentence``, then ``gap_s`` after its end a 90 ms voiced blip (a click, a breath, a
    lip smack) ``under_db`` under the sentence's level, then silence, over a faint bed (-60 dBFS).
    Returns the audio and where the sentence ends (s)."""
    said = espeak(sentence)
    clean = np.concatenate([silence(1.0), said, silence(tail_s)])
    said_until = speech_end(clean)
    vowel = trimmed("ah").astype(np.float32)[: int(0.09 * 16_000)]
    level = np.sqrt(np.mean(said.astype(np.float32) ** 2)) * 10 ** (under_db / 20)
    blip = np.zeros(len(clean), np.float32)
    at = int((said_until + gap_s) * 16_000)
    blip[at : at + len(vowel)] = vowel / np.sqrt(np.mean(vowel**2)) * level
    bed = noise(len(clean) / 16_000, -60.0, seed=5)
    return mix(clean, np.round(blip).astype(np.int16), bed), said_until


def write_wav(path: Path, samples: Int16, rate: int = 16_000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink: muxers write it the way they write a live stream."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)


def encode(samples: Int16, container: str, codec: str, rate: int = 16_000, layout: str = "mono") -> bytes:
    """``samples`` (16-bit mono at ``rate``) encoded by PyAV, e.g. ("ogg", "libopus"), ("webm", "libopus"),
    ("flac", "flac"), muxed as a live stream (no seeking back: WebM's Segment has an unknown size)."""
    import av

    out_rate = 48_000 if codec == "libopus" else rate
    sink = _Pipe()
    with av.open(sink, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=out_rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format="s16", layout=layout, rate=out_rate, frame_size=960)
        for piece in [*resampler.resample(frame), *resampler.resample(None), None]:
            for packet in stream.encode(piece):
                muxer.mux(packet)
    return bytes(sink.data)
