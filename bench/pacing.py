"""Real-time pacing: which samples go out in which frame, and when.

A live source produces the frame covering ``[k*f, (k+1)*f)`` only once that
span has been spoken, so frame ``k`` is due at ``(k+1)*f`` seconds on the
stream clock. :func:`schedule` is pure; :class:`Pacer` sends a schedule on an
injected clock so it can be tested without real time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Frame:
    """Samples ``[start, end)`` of the stream, due at ``due`` stream seconds."""

    index: int
    start: int
    end: int
    due: float


def schedule(n_samples: int, sample_rate: int = SAMPLE_RATE, frame_ms: float = 20.0) -> list[Frame]:
    """Cut ``n_samples`` into frames of ``frame_ms`` and give each its due time (end of its span).

    The last frame may be shorter. ``frame_ms`` must be positive.
    """
    if frame_ms <= 0:
        raise ValueError(f"frame_ms must be positive, got {frame_ms}")
    size = max(1, round(sample_rate * frame_ms / 1000.0))
    frames = []
    for index, start in enumerate(range(0, n_samples, size)):
        end = min(start + size, n_samples)
        frames.append(Frame(index=index, start=start, end=end, due=end / sample_rate))
    return frames


def encode_linear16(audio: Audio) -> bytes:
    """Float samples in [-1, 1] to little-endian signed 16-bit PCM (clipped)."""
    clipped = np.clip(audio, -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()


def encode_float32(audio: Audio) -> bytes:
    """Float samples to little-endian float32 bytes (WhisperLive's default audio format)."""
    return np.asarray(audio, dtype="<f4").tobytes()


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Send = Callable[[bytes], Awaitable[None]]


@dataclass(slots=True)
class Pacer:
    """Sends frames no earlier than their due time on ``clock``, measured from ``t0``.

    ``lag_max`` is the worst lateness seen (send time minus due time); a large
    value means the bench itself could not keep real-time pace.
    """

    clock: Clock
    sleep: Sleep
    t0: float
    lag_max: float = 0.0
    sent: int = 0

    async def send_all(
        self, audio: Audio, frames: Sequence[Frame], send: Send, encode: Callable[[Audio], bytes], offset: float = 0.0
    ) -> None:
        """Send every frame of ``audio``; due times are shifted by ``offset`` stream seconds.

        The audio is encoded once up front, so the per-frame work is a slice.
        """
        payload = encode(audio)
        width = len(payload) // len(audio) if len(audio) else 0
        for frame in frames:
            due = self.t0 + offset + frame.due
            wait = due - self.clock()
            if wait > 0:
                await self.sleep(wait)
            await send(payload[frame.start * width : frame.end * width])
            self.lag_max = max(self.lag_max, self.clock() - due)
            self.sent += 1
