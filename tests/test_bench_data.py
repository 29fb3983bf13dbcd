"""Data set layouts, WAV reading, speech bounds and the synthetic data (espeak-ng)."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from bench.data import DatasetError, load_audio, load_dataset, read_wav, write_wav
from bench.speech import noise_level, speech_bounds, speech_level_db, speech_regions


def tone(seconds: float, rate: int = 16_000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_manifest(tmp_path: Path) -> None:
    (tmp_path / "wav").mkdir()
    write_wav(tmp_path / "wav" / "a.wav", tone(0.1))
    lines = [json.dumps({"id": "a", "path": "wav/a.wav", "reference": "Hello.", "kind": "x"}), ""]
    (tmp_path / "m.jsonl").write_text("\n".join(lines))
    [rec] = load_dataset(tmp_path / "m.jsonl")
    assert (rec.id, rec.reference, rec.path) == ("a", "Hello.", (tmp_path / "wav" / "a.wav").resolve())


def test_manifest_errors_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text('{"id": "a", "path": "a.wav", "reference": "x"}\n{"id": "b"}\n')
    with pytest.raises(DatasetError, match=r"m.jsonl:2"):
        load_dataset(tmp_path / "m.jsonl")


def test_wav_text_pairs(tmp_path: Path) -> None:
    write_wav(tmp_path / "one.wav", tone(0.1))
    (tmp_path / "one.txt").write_text("first\n")
    write_wav(tmp_path / "no_text.wav", tone(0.1))
    (tmp_path / "sub").mkdir()
    write_wav(tmp_path / "sub" / "two.wav", tone(0.1))
    (tmp_path / "sub" / "two.txt").write_text("second")
    recs = load_dataset(tmp_path)
    assert [(r.id, r.reference) for r in recs] == [("one", "first"), ("sub/two", "second")]


def test_librispeech_layout(tmp_path: Path) -> None:
    chapter = tmp_path / "19" / "198"
    chapter.mkdir(parents=True)
    (chapter / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 CHAPTER ONE\n")
    write_wav(chapter / "19-198-0000.wav", tone(0.1))
    write_wav(chapter / "19-198-0001.wav", tone(0.1))
    recs = load_dataset(tmp_path)
    assert [(r.id, r.reference) for r in recs] == [("19-198-0000", "NORTHANGER ABBEY"), ("19-198-0001", "CHAPTER ONE")]


def test_librispeech_missing_audio_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "1" / "2").mkdir(parents=True)
    (tmp_path / "1" / "2" / "1-2.trans.txt").write_text("1-2-0000 TEXT\n")
    with pytest.raises(DatasetError, match="no audio"):
        load_dataset(tmp_path)


def test_empty_or_missing_data_set(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no recordings"):
        load_dataset(tmp_path)


def test_audio_is_mono_16k_float(tmp_path: Path) -> None:
    stereo = np.stack([tone(0.5, 8000), np.zeros(4000, dtype=np.float32)], axis=1)
    pcm = (stereo * 32767).astype("<i2")
    with wave.open(str(tmp_path / "s.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    raw, rate = read_wav(tmp_path / "s.wav")
    assert rate == 8000
    assert np.abs(raw).max() == pytest.approx(0.15, abs=0.01)  # the two channels averaged
    audio = load_audio(tmp_path / "s.wav")
    assert audio.dtype == np.float32
    assert len(audio) == 8000


def test_speech_bounds_find_the_loud_part() -> None:
    audio = np.concatenate([np.zeros(8000), tone(1.0), np.zeros(16000)]).astype(np.float32)
    bounds = speech_bounds(audio, 16_000)
    assert bounds is not None
    assert bounds.onset == pytest.approx(0.5, abs=0.02)
    assert bounds.offset == pytest.approx(1.5, abs=0.02)
    assert speech_bounds(np.zeros(16000, dtype=np.float32), 16_000) is None
    assert speech_bounds(np.zeros(10, dtype=np.float32), 16_000) is None


def test_speech_regions_join_short_gaps_and_split_at_pauses() -> None:
    gap = np.zeros(1600)  # 0.1 s: inside one stretch of speech
    pause = np.zeros(8000)  # 0.5 s: longer than an endpoint
    audio = np.concatenate([pause, tone(0.5), gap, tone(0.5), pause, tone(0.4), pause]).astype(np.float32)
    regions = speech_regions(audio, 16_000)
    assert len(regions) == 2
    assert regions[0] == pytest.approx((0.5, 1.6), abs=0.02)
    assert regions[1] == pytest.approx((2.1, 2.5), abs=0.02)
    assert speech_regions(np.zeros(16000, dtype=np.float32), 16_000) == ()


def test_speech_level_is_measured_inside_speech_only() -> None:
    loud = tone(1.0)
    level = 20 * np.log10(np.sqrt(np.mean(loud.astype(np.float64) ** 2)))
    padded = np.concatenate([np.zeros(48000), loud, np.zeros(48000)]).astype(np.float32)
    assert speech_level_db(padded, 16_000) == pytest.approx(level, abs=0.2)
    assert speech_level_db(np.zeros(16000, dtype=np.float32), 16_000) is None
    assert noise_level(padded, 20.0) == pytest.approx(level - 20.0, abs=0.2)
    assert noise_level(np.zeros(16000, dtype=np.float32), 20.0) is None


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_synthetic_data_set(tmp_path: Path) -> None:
    from bench.synth import make_dataset

    recs = make_dataset(tmp_path, count=1, per_file=2)
    assert len(recs) == 1
    audio = load_audio(recs[0].path)
    bounds = speech_bounds(audio, 16_000)
    assert bounds is not None
    assert bounds.onset == pytest.approx(0.5, abs=0.1)
    assert recs[0].reference.count(".") == 2
    assert make_dataset(tmp_path, count=1, per_file=2)[0].path == recs[0].path  # cached
