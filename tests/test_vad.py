"""VAD hysteresis over webrtcvad, pure, on espeak speech."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gateway.__main__ import build_parser, config_from_args
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


def _endpoint_lag(audio: np.ndarray, end_ms: int, rate: int = 16000) -> tuple[float, float]:
    """(stream time at which the last SpeechEnd was emitted, that event's time), fed 20 ms at a time."""
    vad = VoiceActivityDetector(rate, VadConfig(end_ms=end_ms, noise_gate=True))
    step = rate // 50
    emitted = stamped = -1.0
    for i in range(0, len(audio), step):
        for event in vad.feed(audio[i : i + step]):
            if isinstance(event, SpeechEnd):
                emitted, stamped = (i + step) / rate, event.time
    assert not vad.in_speech, "the utterance never ended"
    return emitted, stamped


@pytest.mark.parametrize("kind", ["white", "pink", "wandering"])
@pytest.mark.parametrize("dbfs", [-50.0, -45.0, -40.0])
def test_faint_noise_does_not_hold_the_endpoint(kind: str, dbfs: float) -> None:
    """Issue 14: with faint noise under the speech the endpoint comes ``end_ms`` after the last word,
    not seconds later (wandering noise used to read as speech behind the gain)."""
    clean = np.concatenate([speech.silence(1.0), speech.espeak("Please call me back tomorrow"), speech.silence(4.0)])
    said_until = speech.speech_end(clean)
    noisy = speech.mix(clean, speech.noise(len(clean) / 16000, dbfs, kind, seed=int(-dbfs)))
    emitted, stamped = _endpoint_lag(noisy, end_ms=300)
    assert emitted <= said_until + 0.3 + 0.3, f"endpoint {emitted - said_until:.2f} s after the speech"
    assert stamped <= said_until + 0.1


@pytest.mark.parametrize("kind", ["white", "pink", "wandering"])
def test_faint_noise_alone_is_not_speech(kind: str) -> None:
    events = VoiceActivityDetector(16000, VadConfig(noise_gate=True)).feed(speech.noise(6.0, -45.0, kind, seed=3))
    assert not any(isinstance(e, SpeechStart) for e in events)


@pytest.mark.parametrize("gate", [False, True])
def test_speech_peaking_at_minus_45_dbfs_in_faint_hiss_is_found(gate: bool) -> None:
    """FLEURS-like quiet recordings (peak -45 dBFS) over a near-silent line must still be heard."""
    loud = speech.espeak("Testing a very quiet recording", 16000).astype(np.float64)
    quiet = (loud / np.abs(loud).max() * 32768 * 10 ** (-45 / 20)).astype(np.int16)
    clip = np.concatenate([speech.silence(0.5), quiet, speech.silence(1.0)])
    vad = VoiceActivityDetector(16000, VadConfig(noise_gate=gate))
    events = vad.feed(speech.mix(clip, speech.noise(len(clip) / 16000, -85.0)))
    assert [type(e) for e in events][:2] == [SpeechStart, SpeechEnd]


def test_a_room_that_gets_louder_is_learnt() -> None:
    """The floor follows a background that gets 10 dB louder (at 3 dB/s): speech after it starts and ends."""
    quiet, loud = speech.noise(2.0, -60.0, seed=1), speech.noise(10.0, -50.0, "wandering", seed=2)
    said = np.concatenate([speech.silence(1.0), speech.espeak("one two three four five"), speech.silence(2.0)])
    tail = speech.mix(loud[: len(said)], said)
    vad = VoiceActivityDetector(16000, VadConfig(noise_gate=True))
    events = vad.feed(np.concatenate([quiet, loud[len(said) :], tail]))
    starts = [e.time for e in events if isinstance(e, SpeechStart)]
    ends = [e.time for e in events if isinstance(e, SpeechEnd)]
    onset = 2.0 + 10.0 - len(said) / 16000 + 1.0
    assert any(abs(t - onset) < 0.3 for t in starts), (starts, onset)
    assert len(ends) == len(starts)


WEAK = VadConfig(end_ms=300, strong_snr_db=20.0)
"""Speech clears the floor by 25-35 dB here; the far voice is weak under this config."""


def _speech_then_weak_voice(weak_s: float) -> tuple[np.ndarray, float]:
    """Speech over a bed at -55 dBFS, then ``weak_s`` of a far voice about 9 dB over the bed
    (crosstalk on a line: voiced to webrtcvad), then the bed. Its frames clear the floor by 6-15 dB:
    weak with ``WEAK``'s ``strong_snr_db``."""
    said = np.concatenate([speech.silence(1.0), speech.espeak("Please call me back tomorrow"), speech.silence(3.0)])
    said_until = speech.speech_end(said)
    far = speech.espeak("seven eight nine ten eleven twelve", speed=220).astype(np.float32)
    far = far[np.flatnonzero(np.abs(far) > 300)[0] :][: int(weak_s * 16000)]
    far = np.round(far / np.sqrt(np.mean(far**2)) * 32768 * 10 ** (-46 / 20)).astype(np.int16)
    under = np.zeros_like(said)
    start = int(said_until * 16000)
    under[start : start + len(far)] = far
    return speech.mix(said, under, speech.noise(len(said) / 16000, -55.0, seed=5)), said_until


def test_weak_voiced_frames_long_after_the_voice_do_not_hold_the_endpoint() -> None:
    """Issue 14: line noise a few dB over the floor, which webrtcvad hears as voiced, held telephony
    endpoints 0.4-0.6 s past the endpointing silence. Weak frames now hold speech only ``weak_hold_ms``."""
    audio, said_until = _speech_then_weak_voice(1.5)
    held = VoiceActivityDetector(16000, replace(WEAK, weak_hold_ms=10**6, resume_after_ms=None))
    held_ends = [e.time for e in held.feed(audio) if isinstance(e, SpeechEnd)]
    assert held_ends and held_ends[-1] > said_until + 0.8, "precondition: the far voice is voiced, and held the end"
    ends = [e.time for e in VoiceActivityDetector(16000, WEAK).feed(audio) if isinstance(e, SpeechEnd)]
    assert len(ends) == 1
    assert ends[0] <= said_until + WEAK.weak_hold_ms / 1000 + 0.06, f"ended {ends[0] - said_until:.2f} s late"


def test_a_weak_ending_right_after_the_voice_still_belongs_to_it() -> None:
    """A weak sound within ``weak_hold_ms`` of the voice (a fricative, a stop's release) is kept."""
    audio, said_until = _speech_then_weak_voice(0.15)
    ends = [e.time for e in VoiceActivityDetector(16000, WEAK).feed(audio) if isinstance(e, SpeechEnd)]
    assert len(ends) == 1 and ends[0] >= said_until + 0.09, f"the weak ending was cut at {ends[0] - said_until:.2f} s"


def test_the_weak_hold_flag_reaches_the_vad_and_refuses_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["--vad-weak-hold-ms", "150", "--vad-strong-db", "9"])
    vad = config_from_args(args).transcriber.vad
    assert (vad.weak_hold_ms, vad.strong_snr_db) == (150, 9.0)
    for bad in ("-5", "soon"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--vad-weak-hold-ms", bad])
        assert "--vad-weak-hold-ms" in capsys.readouterr().err


def _ends(audio: np.ndarray, config: VadConfig) -> list[tuple[float, float]]:
    """(stream time at which each SpeechEnd was emitted, its stamp), fed 20 ms at a time."""
    vad = VoiceActivityDetector(16000, config)
    ends = []
    for i in range(0, len(audio), 320):
        ends += [((i + 320) / 16000, e.time) for e in vad.feed(audio[i : i + 320]) if isinstance(e, SpeechEnd)]
    return ends


@pytest.mark.parametrize(("gap_s", "under_db"), [(0.2, -15.0), (0.25, -20.0)])
def test_a_blip_in_the_pause_does_not_restart_the_endpoint_silence(gap_s: float, under_db: float) -> None:
    """Issue 14: a click or a breath 0.2-0.3 s after the last word restarted the endpointing silence, so the
    endpoint came a whole ``end_ms`` after the blip (a telephony recording's click held it 0.5 s longer)."""
    audio, said_until = speech.with_blip("Please call me back tomorrow", gap_s, under_db)
    held = _ends(audio, VadConfig(end_ms=300, resume_after_ms=None))
    assert held and held[-1][0] >= said_until + gap_s + 0.3, "precondition: without the rule the blip holds the end"
    ends = _ends(audio, VadConfig(end_ms=300))
    assert len(ends) == 1
    emitted, stamped = ends[0]
    # The end waits only while the blip might still become speech (its frames and two after them).
    blip_end = said_until + gap_s + 0.09
    assert emitted <= max(said_until + 0.3, blip_end + 0.06) + 0.04, f"endpoint {emitted - said_until:.2f} s late"
    assert stamped <= said_until + 0.03, "the utterance ends where the voice did, not at the blip"


@pytest.mark.parametrize("under_db", [0.0, -14.0, -20.0])
@pytest.mark.parametrize("gap_s", [0.18, 0.26])
def test_speech_resuming_after_a_pause_stays_one_utterance(gap_s: float, under_db: float) -> None:
    """A phrase after a pause shorter than the endpointing silence continues the utterance, however quiet:
    as loud as the speech it resumes at once, quieter once it shows an onset's evidence (never cut as a blip)."""
    second = np.round(speech.trimmed("back tomorrow").astype(np.float32) * 10 ** (under_db / 20)).astype(np.int16)
    clean = np.concatenate([speech.silence(1.0), speech.trimmed("Please call me"), speech.silence(gap_s), second])
    clean = np.concatenate([clean, speech.silence(1.5)])
    audio = speech.mix(clean, speech.noise(len(clean) / 16000, -60.0, seed=5))
    ends = _ends(audio, VadConfig(end_ms=300))
    assert len(ends) == 1, f"split at {ends}"
    assert ends[0][1] >= speech.speech_end(clean) - 0.05, "it ends with the second phrase"


def test_the_resume_flags_reach_the_vad_and_refuse_nonsense(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["--vad-resume-ms", "150", "--vad-resume-db", "8"])
    vad = config_from_args(args).transcriber.vad
    assert (vad.resume_after_ms, vad.resume_db) == (150, 8.0)
    off = config_from_args(build_parser().parse_args(["--vad-resume-ms", "-1"])).transcriber.vad
    assert off.resume_after_ms is None
    for flag, bad in (("--vad-resume-ms", "-5"), ("--vad-resume-ms", "soon"), ("--vad-resume-db", "nan")):
        with pytest.raises(SystemExit):
            build_parser().parse_args([flag, bad])
        assert flag in capsys.readouterr().err
