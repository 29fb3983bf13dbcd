"""Audio decoding and resampling, pure."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.core.audio import ALAW_TABLE, MULAW_TABLE, AudioDecoder, encode_mulaw
from gateway.core.errors import InvalidAudio
from gateway.core.params import Encoding


def tone(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def band_energy(x: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())


def test_g711_tables_match_reference_points() -> None:
    # ITU-T G.711: mu-law 0xFF and A-law 0xD5 are the smallest positive codes.
    assert MULAW_TABLE[0xFF] == 0.0
    assert MULAW_TABLE[0x00] == pytest.approx(-32124 / 32768)
    assert ALAW_TABLE[0xD5] == pytest.approx(8 / 32768)
    assert ALAW_TABLE[0xAA] == pytest.approx(32256 / 32768)


def test_mulaw_round_trip_is_close() -> None:
    x = tone(440, 8000)
    decoded = MULAW_TABLE[np.frombuffer(encode_mulaw(x), np.uint8)]
    assert np.max(np.abs(decoded - x)) < 0.02


def test_linear16_16k_passes_through() -> None:
    pcm = (tone(300, 16000) * 32767).astype("<i2")
    frame = AudioDecoder(Encoding.LINEAR16, 16000).decode(pcm.tobytes())
    assert len(frame.channels) == 1
    np.testing.assert_allclose(frame.channels[0], pcm / 32768.0, atol=1e-6)
    assert frame.input_seconds == pytest.approx(1.0)


def test_odd_length_frame_is_refused() -> None:
    decoder = AudioDecoder(Encoding.LINEAR16, 16000, channels=2)
    with pytest.raises(InvalidAudio, match="not a whole number"):
        decoder.decode(b"\x00" * 6)


def test_48k_resampling_removes_content_above_8k() -> None:
    # A 12 kHz tone cannot exist at 16 kHz: it must be filtered, not folded to 4 kHz.
    decoder = AudioDecoder(Encoding.LINEAR16, 48000)
    pcm = (tone(12000, 48000, 2.0) * 32767).astype("<i2").tobytes()
    out = np.concatenate([decoder.decode(pcm).channels[0], decoder.flush()[0]])
    reference = band_energy(tone(1000, 16000, 2.0), 16000, 0, 8000)
    assert band_energy(out, 16000, 3000, 5000) < reference * 1e-4


def test_8k_mulaw_upsamples_without_images() -> None:
    decoder = AudioDecoder(Encoding.MULAW, 8000)
    out = decoder.decode(encode_mulaw(tone(1000, 8000, 2.0))).channels[0]
    out = np.concatenate([out, decoder.flush()[0]])
    assert len(out) == pytest.approx(32000, abs=50)
    in_band = band_energy(out, 16000, 900, 1100)
    image = band_energy(out, 16000, 6900, 7100)  # where 8k - 1k would mirror
    assert image < in_band * 1e-3
    assert frame_vad_rate(decoder) == 8000


def frame_vad_rate(decoder: AudioDecoder) -> int:
    return decoder.vad_rate


def test_multichannel_keeps_channels_apart_and_downmix_averages() -> None:
    left, right = tone(300, 16000), tone(700, 16000)
    interleaved = (np.stack([left, right], axis=1) * 32767).astype("<i2").tobytes()
    split = AudioDecoder(Encoding.LINEAR16, 16000, channels=2, multichannel=True).decode(interleaved)
    assert len(split.channels) == 2
    np.testing.assert_allclose(split.channels[0], left, atol=1e-3)
    np.testing.assert_allclose(split.channels[1], right, atol=1e-3)
    mixed = AudioDecoder(Encoding.LINEAR16, 16000, channels=2).decode(interleaved)
    assert len(mixed.channels) == 1
    np.testing.assert_allclose(mixed.channels[0], (left + right) / 2, atol=1e-3)


def test_flush_frame_returns_the_resampler_tail_once() -> None:
    decoder = AudioDecoder(Encoding.LINEAR16, 8000)
    body = decoder.decode((tone(500, 8000) * 32767).astype("<i2").tobytes())
    tail = decoder.flush_frame()
    assert tail is not None
    assert len(body.channels[0]) + len(tail.channels[0]) == pytest.approx(16000, abs=2)
    assert AudioDecoder(Encoding.LINEAR16, 16000).flush_frame() is None
