"""Audio a relay has sent but its upstream has not finalized yet.

Pure and per-stream. Every frame the relay forwards is kept here, decoded
(16 kHz per channel, plus the VAD's copy) and raw, until an upstream final
covers it. Should the upstream fail, :meth:`PendingAudio.replay` gives the
audio from each channel's last final on, so a local engine takes over exactly
where the upstream's finals stopped: nothing is lost and nothing finalized
twice.

Positions are counted in 16 kHz samples of the decoded audio, the clock
stream times are measured on. A bound (``max_s``) keeps a stream whose
upstream never finalizes (a silent one) from growing without end; the
oldest audio goes first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from gateway.core.audio import DecodedFrame
from gateway.core.types import SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class _Entry:
    start: int
    """16 kHz sample index of the frame's first sample."""
    frame: DecodedFrame

    @property
    def end(self) -> int:
        return self.start + len(self.frame.channels[0])


@dataclass(frozen=True, slots=True)
class Replay:
    """What a taking-over engine needs: where each channel starts, and the audio from there."""

    start_s: tuple[float, ...]
    frames: tuple[DecodedFrame, ...]

    @property
    def seconds(self) -> float:
        return sum(f.input_seconds for f in self.frames)


class PendingAudio:
    """Frames since the oldest channel's last upstream final."""

    def __init__(self, channels: int, vad_rate: int = SAMPLE_RATE, max_s: float = 120.0) -> None:
        self._entries: deque[_Entry] = deque()
        self._final = [0] * channels  # per channel: sample index up to which upstream finals cover
        self._vad_ratio = vad_rate / SAMPLE_RATE
        self._max = round(max_s * SAMPLE_RATE)
        self.samples = 0
        """16 kHz samples appended so far (the stream clock)."""
        self.dropped_s = 0.0
        """Audio dropped unfinalized because of the bound."""

    @property
    def final_s(self) -> tuple[float, ...]:
        """Per channel, the stream time up to which upstream finals cover."""
        return tuple(f / SAMPLE_RATE for f in self._final)

    @property
    def seconds(self) -> float:
        """Audio held, in seconds."""
        return (self.samples - self._entries[0].start) / SAMPLE_RATE if self._entries else 0.0

    def append(self, frame: DecodedFrame) -> None:
        entry = _Entry(self.samples, frame)
        self.samples = entry.end
        self._entries.append(entry)
        while self._entries and self.samples - self._entries[0].end >= self._max:
            old = self._entries.popleft()
            self.dropped_s += old.frame.input_seconds
            self._final = [max(f, old.end) for f in self._final]

    def finalized(self, channel: int, end_s: float) -> None:
        """An upstream final for ``channel`` covers the stream up to ``end_s``."""
        if not 0 <= channel < len(self._final):
            return  # an upstream inventing channels: nothing of ours to release
        position = min(round(end_s * SAMPLE_RATE), self.samples)
        self._final[channel] = max(self._final[channel], position)
        oldest = min(self._final)
        while self._entries and self._entries[0].end <= oldest:
            self._entries.popleft()

    def replay(self) -> Replay:
        """The unfinalized audio, cut per channel at that channel's last final."""
        frames: list[DecodedFrame] = []
        for entry in self._entries:
            cuts = [min(max(0, final - entry.start), entry.end - entry.start) for final in self._final]
            if all(cut == entry.end - entry.start for cut in cuts):
                continue
            if not any(cuts):
                frames.append(entry.frame)
                continue
            frame = entry.frame
            kept = max(len(frame.channels[0]) - min(cuts), 0)
            frames.append(
                DecodedFrame(
                    tuple(audio[cut:] for audio, cut in zip(frame.channels, cuts, strict=True)),
                    tuple(
                        vad[round(cut * self._vad_ratio) :] for vad, cut in zip(frame.vad_channels, cuts, strict=True)
                    ),
                    frame.input_seconds * kept / max(len(frame.channels[0]), 1),
                )
            )
        return Replay(self.final_s, tuple(frames))
