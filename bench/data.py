"""Recordings with reference transcripts: loading a data set and reading its audio.

Accepted layouts (:func:`load_dataset` tells them apart):

- a JSONL manifest (``*.jsonl``), one ``{"id", "path", "reference"}`` object a line,
  ``path`` relative to the manifest's folder;
- LibriSpeech: ``SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt`` files whose lines are
  ``UTTERANCE-ID TEXT``, audio ``UTTERANCE-ID.flac`` (or ``.wav``) beside them;
- a folder of ``NAME.wav`` files each with a ``NAME.txt`` reference beside it.
"""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
Audio = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Recording:
    """One audio file and what is said in it."""

    id: str
    path: Path
    reference: str
    kind: str = ""
    """The manifest's ``kind`` (e.g. ``read_clean``, ``telephony_8k``), for WER per kind."""


class DatasetError(ValueError):
    """The data set path is missing, empty or malformed."""


def load_manifest(path: Path) -> list[Recording]:
    """Recordings of a JSONL manifest (``id``, ``path``, ``reference`` on each line)."""
    recordings = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            recordings.append(
                Recording(
                    id=str(item["id"]),
                    path=(path.parent / item["path"]).resolve(),
                    reference=str(item["reference"]),
                    kind=str(item.get("kind") or ""),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{number}: expected a JSON object with id, path, reference ({exc})") from exc
    return recordings


def load_librispeech(root: Path) -> list[Recording]:
    """Recordings of a LibriSpeech-style tree (``*.trans.txt`` transcripts)."""
    recordings = []
    for trans in sorted(root.rglob("*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            audio = next((p for p in (trans.parent / f"{utt}.flac", trans.parent / f"{utt}.wav") if p.exists()), None)
            if audio is None:
                raise DatasetError(f"{trans}: no audio for {utt} (.flac or .wav)")
            recordings.append(Recording(id=utt, path=audio, reference=text))
    return recordings


def load_pairs(root: Path) -> list[Recording]:
    """Recordings of a folder of ``NAME.wav`` + ``NAME.txt`` pairs (WAVs without text are skipped)."""
    recordings = []
    for audio in sorted(root.rglob("*.wav")):
        text = audio.with_suffix(".txt")
        if text.exists():
            rel = audio.relative_to(root).with_suffix("")
            recordings.append(
                Recording(id=rel.as_posix(), path=audio, reference=text.read_text(encoding="utf-8").strip())
            )
    return recordings


def load_dataset(path: Path) -> list[Recording]:
    """Recordings found at ``path`` (manifest, LibriSpeech tree or WAV+text folder)."""
    if not path.exists():
        raise DatasetError(f"no such data set: {path}")
    if path.is_file():
        recordings = load_manifest(path)
    elif any(path.rglob("*.trans.txt")):
        recordings = load_librispeech(path)
    else:
        recordings = load_pairs(path)
    if not recordings:
        raise DatasetError(
            f"{path}: no recordings found (expected a .jsonl manifest, a LibriSpeech tree or NAME.wav + NAME.txt pairs)"
        )
    return recordings


def _pcm_to_float(raw: bytes, width: int) -> Audio:
    if width == 1:
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if width == 2:
        return (np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        return (ints.astype(np.float32) / 8388608.0).astype(np.float32)
    if width == 4:
        return (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    raise DatasetError(f"unsupported sample width {width}")


def resample(audio: Audio, rate: int, target: int = SAMPLE_RATE) -> Audio:
    """``audio`` at ``target`` Hz (soxr, high quality); unchanged when the rates agree."""
    if rate == target:
        return audio
    import soxr

    out: Audio = np.asarray(soxr.resample(audio, rate, target), dtype=np.float32)
    return out


def read_wav(path: Path) -> tuple[Audio, int]:
    """Mono float32 samples and the sample rate of a PCM WAV file (channels are averaged)."""
    with wave.open(str(path), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    samples = _pcm_to_float(raw, width)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.float32)
    return samples, rate


def write_wav(path: Path, audio: Audio, rate: int = SAMPLE_RATE) -> None:
    """Write mono 16-bit PCM."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())


def load_audio(path: Path) -> Audio:
    """Mono float32 audio at 16 kHz from a PCM WAV, or from any format via faster-whisper's decoder."""
    try:
        samples, rate = read_wav(path)
    except (wave.Error, EOFError, DatasetError):
        from faster_whisper.audio import decode_audio

        decoded: Audio = np.asarray(decode_audio(str(path), sampling_rate=SAMPLE_RATE), dtype=np.float32)
        return decoded
    return resample(samples, rate)
