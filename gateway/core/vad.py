"""Speech detection with hysteresis over webrtcvad frame decisions.

Pure and per-channel: int16 samples in, :class:`SpeechStart` and
:class:`SpeechEnd` events out, timestamped in stream seconds. webrtcvad judges
30 ms frames; on top of it:

* an automatic gain brings quiet streams (a far microphone, a -45 dBFS
  recording) to a level webrtcvad judges well: the frame is scaled by
  ``target / recent peak``, at most ``max_gain``;
* a frame must stand above ``min_dbfs`` (digital silence) and clear an
  adaptive noise gate to count as voiced: webrtcvad alone fires on noise,
  all the more behind the gain. The gate is the higher of
  ``floor + min_snr_db`` (the floor follows the quietest frames: it drops to
  any quieter frame and creeps up ``floor_rise_db_s``, so a room that gets
  louder is learnt at that pace) and, with ``noise_gate`` (opt-in,
  ``--vad-noise-gate``), ``noise peak + peak_margin_db``, where the noise peak is the loudest recent
  frame judged unvoiced in a pause (not in speech, or ``pause_frames`` into
  a silence), decaying ``peak_decay_db_s`` and at most ``max_spread_db`` over
  the floor. Steady hiss keeps the peak near the floor (gate = floor + 6 dB);
  noise whose level wanders lifts it, so the wandering never reads as speech
  and holds an utterance open;
* speech starts once ``start_voiced`` of the last ``start_window`` frames are
  voiced, one of them strong (see below), stamped at the first voiced frame of that run (so onsets are not
  late by the hysteresis);
* a voiced frame under ``floor + strong_snr_db`` is weak, and holds speech
  only within ``weak_hold_ms`` of the last strong one: a word's weak ending
  (a fricative, a stop's release) is kept, while line noise or a room's tail
  6-10 dB over the floor, which webrtcvad also hears as voiced, no longer
  holds an utterance open after the voice (telephony recordings held the
  endpoint 0.4-0.6 s past the 300 ms);
* once a pause has lasted ``resume_after_ms``, a voiced frame more than
  ``resume_db`` under the recent peak resumes speech only on the evidence
  that starts it (``start_voiced`` of ``start_window`` frames voiced since
  it, one strong): a click, a breath or a lip smack in the pause no longer
  restarts the endpoint's silence (a click 0.45 s after a sentence held its
  endpoint 0.5 s longer), while speech at its own level resumes at once
  (telephony speech can come in 90 ms bursts). While such evidence is
  building (a voiced frame among the run's last two) the end waits for it, so
  a word that resumes speech is never cut at its first frames; a run that
  dies counts as silence;
* speech ends after ``end_ms`` of unvoiced frames, stamped at the end of the
  last voiced frame.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import webrtcvad

FRAME_MS = 30


@dataclass(frozen=True, slots=True)
class SpeechStart:
    time: float


@dataclass(frozen=True, slots=True)
class SpeechEnd:
    time: float
    """The end of the last voiced frame."""
    at: float
    """When the silence after it ran out: the endpoint's moment, in stream time (whole frames)."""


VadEvent = SpeechStart | SpeechEnd


@dataclass(frozen=True, slots=True)
class VadConfig:
    """Tuning of the detector; the defaults suit 8 and 16 kHz speech."""

    aggressiveness: int = 2
    start_window: int = 8
    start_voiced: int = 5
    end_ms: int = 500
    min_dbfs: float = -80.0
    min_snr_db: float = 6.0
    max_gain: float = 64.0
    target_dbfs: float = -20.0
    floor_rise_db_s: float = 3.0
    peak_margin_db: float = 3.0
    peak_decay_db_s: float = 4.0
    max_spread_db: float = 10.0
    pause_frames: int = 10
    strong_snr_db: float = 11.0
    """A voiced frame this far over the floor is strong; a weaker one holds speech only briefly."""
    weak_hold_ms: int = 300
    """How long after the last strong frame weak voiced frames still hold speech (a large value: always)."""
    resume_after_ms: int | None = 120
    """In a pause this long, a voiced frame more than ``resume_db`` under the recent peak needs onset
    evidence to resume speech (None: any voiced frame resumes it)."""
    resume_db: float = 10.0
    """A voiced frame within this much of the recent peak resumes speech after such a pause at once."""
    noise_gate: bool = False
    """The adaptive noise gate (noise peak + ``peak_margin_db``), opt-in: it keeps wandering
    noise from holding an utterance open, but misses quiet speech in such noise (see README)."""


class VoiceActivityDetector:
    """Hysteresis state machine over webrtcvad decisions for one channel."""

    def __init__(self, sample_rate: int, config: VadConfig | None = None, start_s: float = 0.0) -> None:
        if sample_rate not in (8_000, 16_000, 32_000, 48_000):
            raise ValueError(f"webrtcvad cannot run at {sample_rate} Hz")
        self.config = config or VadConfig()
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        self._vad = webrtcvad.Vad(self.config.aggressiveness)
        self._pending = np.zeros(0, dtype=np.int16)
        self._origin = start_s  # stream time of the first sample fed (a stream taken over mid-way)
        self._frames = 0
        self._recent: deque[bool] = deque(maxlen=self.config.start_window)
        self._silent_frames = 0
        self._end_frames = max(1, math.ceil(self.config.end_ms / FRAME_MS))
        # Minimum RMS in int16 units below which a frame is silence.
        self._min_rms = 32768.0 * 10 ** (self.config.min_dbfs / 20)
        self._target = 32768.0 * 10 ** (self.config.target_dbfs / 20)
        self._peak = 0.0
        # Levels in dB (of int16 RMS) so that rises and decays are linear.
        self._floor_db: float | None = None
        self._noise_peak_db = 0.0
        # Peak follower halves over ~3 s.
        self._peak_decay = 0.5 ** (FRAME_MS / 3000)
        self._floor_rise_db = self.config.floor_rise_db_s * FRAME_MS / 1000
        self._noise_decay_db = self.config.peak_decay_db_s * FRAME_MS / 1000
        self.in_speech = False
        self.last_voiced_end = start_s
        self._strong_frame = 0  # the last frame judged voiced and strong
        resume_ms = self.config.resume_after_ms
        self._open_frames = None if resume_ms is None else max(1, math.ceil(resume_ms / FRAME_MS))
        self._resume: deque[bool] = deque(maxlen=self.config.start_window)  # frames since a voiced one in a pause
        self._run_quiet = 0  # unvoiced frames since the run's last voiced one
        # Unvoiced frames in a row after which a run can no longer show an onset's evidence: it was a blip.
        self._run_dead = self.config.start_window - self.config.start_voiced + 1

    @property
    def time(self) -> float:
        """Stream time at the end of the frames judged so far."""
        return self._origin + self._frames * FRAME_MS / 1000

    @property
    def end_s(self) -> float:
        """The unvoiced time that ends speech, in seconds (whole frames)."""
        return self._end_frames * FRAME_MS / 1000

    def set_end_ms(self, end_ms: int) -> None:
        """Change the silence needed to end speech (e.g. from ``endpointing``)."""
        self._end_frames = max(1, math.ceil(end_ms / FRAME_MS))

    def feed(self, samples: npt.NDArray[np.int16]) -> list[VadEvent]:
        """Judge every whole frame in ``samples`` (plus leftovers); return events."""
        if self._pending.size:
            samples = np.concatenate([self._pending, samples])
        events: list[VadEvent] = []
        n = self.frame_samples
        whole = len(samples) - len(samples) % n
        for i in range(0, whole, n):
            event = self._judge(samples[i : i + n])
            if event is not None:
                events.append(event)
        self._pending = samples[whole:].copy()
        return events

    def _judge(self, frame: npt.NDArray[np.int16]) -> VadEvent | None:
        rms = float(np.sqrt(np.mean(frame.astype(np.float32) ** 2)))
        self._peak = max(rms, self._peak * self._peak_decay)
        level = 20 * math.log10(max(rms, 1e-3))
        if self._floor_db is None or level < self._floor_db:
            self._floor_db = level
        else:
            self._floor_db += self._floor_rise_db
        cfg = self.config
        gate = self._floor_db + cfg.min_snr_db
        if cfg.noise_gate:
            gate = max(gate, self._noise_peak_db + cfg.peak_margin_db)
        voiced = rms >= self._min_rms and level >= gate
        if voiced or cfg.noise_gate:
            # With the noise gate, webrtcvad hears every frame, gated or not: it adapts its own
            # noise model to what it is fed (without, brown noise at -40 dBFS read as speech).
            gain = min(self.config.max_gain, max(1.0, self._target / max(self._peak, 1.0)))
            if gain > 1.0:
                frame = np.clip(frame.astype(np.float32) * gain, -32768, 32767).astype(np.int16)
            voiced = self._vad.is_speech(frame.tobytes(), self.sample_rate) and voiced
        self._frames += 1
        if voiced and level >= self._floor_db + cfg.strong_snr_db:
            self._strong_frame = self._frames
        elif voiced and self.in_speech and (self._frames - self._strong_frame) * FRAME_MS > cfg.weak_hold_ms:
            voiced = False  # a weak frame long after the voice: a tail, line noise
        self._recent.append(voiced)
        if voiced and self._pause_open and level >= 20 * math.log10(max(self._peak, 1e-3)) - cfg.resume_db:
            self._resume.clear()  # as loud as the speech before the pause: speech again
        elif self._resume or (voiced and self._pause_open):
            voiced = self._resumes(voiced)
        if voiced:
            self.last_voiced_end = self.time
            self._silent_frames = 0
        else:
            self._silent_frames += 1
        if cfg.noise_gate:
            self._track_noise(level, voiced)
        if not self.in_speech:
            strong = self._frames - self._strong_frame < len(self._recent)
            if sum(self._recent) >= self.config.start_voiced and strong:
                self.in_speech = True
                first = next(i for i, v in enumerate(self._recent) if v)
                onset_frame = self._frames - len(self._recent) + first
                return SpeechStart(self._origin + onset_frame * FRAME_MS / 1000)
            return None
        if self._silent_frames >= self._end_frames and not (self._resume and self._run_quiet < 2):
            self.in_speech = False
            # Frames of a run that may still become speech stay to start the next utterance.
            self._recent = deque(self._resume, maxlen=self.config.start_window)
            self._resume.clear()
            return SpeechEnd(self.last_voiced_end, self.time)
        return None

    @property
    def _pause_open(self) -> bool:
        """In speech, unvoiced for ``resume_after_ms``: a voiced frame now has to prove itself."""
        return self.in_speech and self._open_frames is not None and self._silent_frames >= self._open_frames

    def _resumes(self, voiced: bool) -> bool:
        """Judge a frame of a run that began with a voiced frame in an open pause: whether speech
        resumes with it (onset evidence since the run began); until then the run counts as silence."""
        self._resume.append(voiced)
        self._run_quiet = 0 if voiced else self._run_quiet + 1
        strong = self._frames - self._strong_frame < len(self._resume)
        if sum(self._resume) >= self.config.start_voiced and strong:
            self._resume.clear()
            return True
        if self._run_quiet >= self._run_dead:
            self._resume.clear()  # the run died: it was a blip
        return False

    def _track_noise(self, level: float, voiced: bool) -> None:
        """Follow the loudest unvoiced frame of pauses: what the background reaches."""
        assert self._floor_db is not None
        peak = self._noise_peak_db - self._noise_decay_db
        # Only pauses teach the gate: an unvoiced frame inside a word (a consonant) is speech.
        in_pause = not self.in_speech or self._silent_frames >= self.config.pause_frames
        if not voiced and in_pause:
            peak = max(peak, level)
        self._noise_peak_db = min(max(peak, self._floor_db), self._floor_db + self.config.max_spread_db)
