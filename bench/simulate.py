"""The streaming policy replayed without sockets: one channel, the real model, a simulated clock.

``python -m bench tune`` uses it to sweep the policy's knobs in minutes instead
of real-time runs. Audio arrives in 20 ms frames on a stream clock (frame *k*
at ``(k+1)·20 ms``); a decode starts when the transcriber wants one and the
model is free, and its result lands after the decode's *measured* wall time,
while audio keeps arriving, as in the gateway's shell with one stream and
one model. After the recording come ``tail_s`` of silence and a Finalize,
as in ``bench run``. The figures are those of one stream on this machine:
latency includes the real decode times (so a busy machine shows), never the
network; CPU is the process CPU time spent in decodes. With ``decode_s`` every
decode lands after that fixed time instead: the policy's choices then do not
depend on how busy the machine is, which is what comparing knobs on a shared
machine needs (its latencies are then those of a model that fast).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.data import SAMPLE_RATE, Audio
from bench.latency import voice_end
from gateway.core.transcriber import ChannelTranscriber, Event, FlushReason, TranscriberConfig, Transcript
from gateway.core.types import Backend, Word

FRAME_S = 0.02


@dataclass(slots=True)
class Replay:
    """What one recording's replay produced."""

    finals: list[tuple[float, tuple[Word, ...]]] = field(default_factory=list)
    """(arrival, words) of every final with words."""
    speech_finals: list[tuple[float, float]] = field(default_factory=list)
    """(arrival, end of its span) of every ``speech_final`` result, with words or empty."""
    first_result: float | None = None
    """Stream time of the first non-empty result (interim or final)."""
    decodes: int = 0
    cpu_s: float = 0.0
    decode_wall_s: float = 0.0
    audio_s: float = 0.0
    voice: tuple[tuple[float, float], ...] = ()
    """The clean recording's speech regions (:func:`bench.speech.speech_regions`), when known."""

    @property
    def text(self) -> str:
        return " ".join(w.text for _, words in self.finals for w in words)

    def _speech_final_ends(self) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        closed: float | None = None
        for at, _ in self.speech_finals:
            ends = [w.end for arrival, words in self.finals if arrival <= at for w in words]
            if ends and max(ends) != closed:
                closed = max(ends)
                out.append((at, closed))
        return out

    def speech_final_voice_delays(self) -> list[float]:
        """As :meth:`speech_final_delays`, after the end of the speech region nearest the last word
        (``bench.latency``'s ``speech_final_voice``); [] without regions."""
        ends = [(at, voice_end(self.voice, last)) for at, last in self._speech_final_ends()]
        return [at - end for at, end in ends if end is not None]

    def speech_final_delays(self) -> list[float]:
        """For each ``speech_final`` that closed new words: its arrival minus the end of the last of them.

        The words are those of every final up to it (a non-``speech_final`` final may carry
        them first and the ``speech_final`` come empty); as ``bench.latency``'s ``speech_final``.
        """
        return [at - last for at, last in self._speech_final_ends()]

    def word_final_latencies(self) -> list[float]:
        """Arrival of each final word's final minus the word's end."""
        return [at - w.end for at, words in self.finals for w in words]


def replay(
    audio: Audio,
    config: TranscriberConfig,
    backend: Backend,
    tail_s: float = 1.0,
    frame_s: float = FRAME_S,
    decode_s: float | None = None,
) -> Replay:
    """Stream ``audio`` (16 kHz mono) through a :class:`ChannelTranscriber` decoding with ``backend``.

    ``decode_s``: every decode's result lands this long after it starts, whatever it really took, so
    that runs on a loaded (shared) machine compare (None: the measured wall time, as the gateway sees it).
    """
    audio = np.concatenate([audio, np.zeros(int(tail_s * SAMPLE_RATE), np.float32)]).astype(np.float32)
    frame = int(frame_s * SAMPLE_RATE)
    channel = ChannelTranscriber(config)
    out = Replay(audio_s=len(audio) / SAMPLE_RATE)
    busy_until: float | None = None
    in_flight_result = None

    def note(events: Sequence[Event], at: float) -> None:
        for event in events:
            if isinstance(event, Transcript) and event.speech_final:
                out.speech_finals.append((at, event.start + event.duration))
            if not isinstance(event, Transcript) or not event.words:
                continue
            if out.first_result is None:
                out.first_result = at
            if event.is_final:
                out.finals.append((at, event.words))

    def start(now: float) -> float | None:
        nonlocal in_flight_result
        request = channel.next_request()
        if request is None:
            return None
        wall, cpu = time.perf_counter(), time.process_time()
        in_flight_result = backend.decode_batch([request])[0]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out.decodes += 1
        out.cpu_s += cpu
        out.decode_wall_s += wall
        return now + (wall if decode_s is None else decode_s)

    def settle(now: float) -> None:
        """Complete every decode that has finished by ``now``; start the next ones."""
        nonlocal busy_until
        while True:
            if busy_until is not None:
                if busy_until > now:
                    return
                done_at = busy_until
                assert in_flight_result is not None
                note(channel.complete(in_flight_result), done_at)
                note(channel.immediate_flush(), done_at)
                busy_until = start(done_at)
                continue
            busy_until = start(now)
            if busy_until is None:
                return

    now = 0.0
    for i in range(0, len(audio), frame):
        now = (i + frame) / SAMPLE_RATE
        settle(now)
        note(channel.push(audio[i : i + frame]), now)
        settle(now)
    channel.request_flush(FlushReason.FINALIZE)
    note(channel.immediate_flush(), now)
    settle(now)
    while busy_until is not None:  # the flush decode and any queued after it
        now = busy_until
        settle(now)
    return out
