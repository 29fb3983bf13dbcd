"""VAD hysteresis over webrtcvad, pure, on espeak speech."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.core.vad import SpeechEnd, SpeechStart, VadConfig, VoiceActivityDetector
from tests import speech


def test_silence_and_noise_are_not_speech() -> None:
    vad = VoiceActivityDetector(16000)
    assert vad.feed(speech.silence(3.0)) == []
    rng = np.random.default_rng(0)
    hum = (rng.normal(0, 300, 48000)).astype(np.int16)  # steady hiss, -40 dBFS
    assert not any(isinstance(e, SpeechStart) for e in VoiceActivityDetector(16000).feed(hum))


@pytest.mark.parametrize("rate", [8000, 16000])
def test_one_utterance_gives_one_start_and_end(rate: int) -> None:
    audio = np.concatenate(
        [speech.silence(1.0, rate), speech.espeak("Hello there, how are you today", rate), speech.silence(1.5, rate)]
    )
    events = VoiceActivityDetector(rate, VadConfig(end_ms=600)).feed(audio)
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    start, end = events[0].time, events[1].time
    assert 0.8 <= start <= 1.3
    assert end > start + 1.0


def test_quiet_speech_is_still_found() -> None:
    loud = speech.espeak("Testing a quiet microphone", 16000)
    quiet = (loud.astype(np.float32) * 0.01).astype(np.int16)  # about -40 dB
    events = VoiceActivityDetector(16000).feed(np.concatenate([speech.silence(0.5), quiet, speech.silence(1.0)]))
    assert any(isinstance(e, SpeechStart) for e in events)


def test_frames_of_any_size_give_the_same_events() -> None:
    audio = np.concatenate([speech.silence(0.5), speech.espeak("one two three"), speech.silence(1.0)])
    whole = VoiceActivityDetector(16000).feed(audio)
    vad = VoiceActivityDetector(16000)
    pieces = [e for i in range(0, len(audio), 333) for e in vad.feed(audio[i : i + 333])]
    assert pieces == whole
