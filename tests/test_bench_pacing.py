"""Pacing: the frame schedule and the clock-driven sender (fake clock, no real time)."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest

from bench.pacing import Pacer, encode_float32, encode_linear16, schedule
from bench.plan import worker_plan


def test_schedule_covers_every_sample_once_in_order() -> None:
    frames = schedule(16_000 + 100, 16_000, 20.0)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[0].start == 0
    assert all(a.end == b.start for a, b in itertools.pairwise(frames))
    assert frames[-1].end == 16_100
    assert all(f.end - f.start == 320 for f in frames[:-1])
    assert frames[-1].end - frames[-1].start == 100


def test_frame_is_due_when_its_span_has_been_spoken() -> None:
    frames = schedule(1600, 16_000, 20.0)
    assert [f.due for f in frames] == pytest.approx([0.02 * (i + 1) for i in range(5)])


def test_schedule_rejects_nonpositive_frames_and_handles_empty_audio() -> None:
    with pytest.raises(ValueError, match="frame_ms"):
        schedule(100, 16_000, 0)
    assert schedule(0) == []


class FakeClock:
    """A clock that only moves when the pacer sleeps (plus a fixed cost per send)."""

    def __init__(self, send_cost: float = 0.0) -> None:
        self.now = 100.0
        self.send_cost = send_cost
        self.sleeps: list[float] = []
        self.sent: list[tuple[float, bytes]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def send(self, data: bytes) -> None:
        self.sent.append((self.now, data))
        self.now += self.send_cost


def test_pacer_sends_each_frame_at_its_due_time_on_the_clock() -> None:
    fake = FakeClock()
    audio = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    frames = schedule(len(audio), 16_000, 20.0)
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, t0=fake.now)
    asyncio.run(pacer.send_all(audio, frames, fake.send, encode_linear16))
    assert [t - 100.0 for t, _ in fake.sent] == pytest.approx([f.due for f in frames])
    assert b"".join(d for _, d in fake.sent) == encode_linear16(audio)
    assert pacer.sent == len(frames)
    assert pacer.lag_max == pytest.approx(0.0)


def test_pacer_reports_lateness_and_never_sends_early_after_falling_behind() -> None:
    fake = FakeClock(send_cost=0.05)  # each send takes longer than a frame: the pacer falls behind
    audio = np.zeros(320 * 4, dtype=np.float32)
    frames = schedule(len(audio), 16_000, 20.0)
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, t0=fake.now)
    asyncio.run(pacer.send_all(audio, frames, fake.send, encode_float32, offset=1.0))
    for (sent_at, _), frame in zip(fake.sent, frames, strict=True):
        assert sent_at - 100.0 >= 1.0 + frame.due - 1e-9
    assert pacer.lag_max > 0.05


def test_encodings() -> None:
    audio = np.array([0.0, 1.0, -1.0, 2.0], dtype=np.float32)
    assert np.frombuffer(encode_linear16(audio), dtype="<i2").tolist() == [0, 32767, -32767, 32767]
    assert np.frombuffer(encode_float32(audio), dtype="<f4").tolist() == [0.0, 1.0, -1.0, 2.0]


def test_worker_plan_one_worker_streams_every_recording_once() -> None:
    assert worker_plan([3.0, 5.0, 2.0], 1, 10.0) == [[0, 1, 2]]


def test_worker_plan_keeps_every_worker_busy_for_the_same_audio_time() -> None:
    plans = worker_plan([3.0, 5.0, 2.0], 4, 10.0)
    assert [p[0] for p in plans] == [0, 0, 1, 2]  # staggered starting points
    durations = [3.0, 5.0, 2.0]
    for plan in plans:
        total = sum(durations[i] for i in plan)
        assert total >= 10.0
        assert total - durations[plan[-1]] < 10.0  # stops as soon as it has enough


def test_worker_plan_always_streams_something_and_rejects_bad_input() -> None:
    assert worker_plan([4.0], 2, 0.0) == [[0], [0]]
    with pytest.raises(ValueError, match="no recordings"):
        worker_plan([], 1, 1.0)
    with pytest.raises(ValueError, match="streams"):
        worker_plan([1.0], 0, 1.0)


def test_workers_sharing_the_total_stream_every_recording_once() -> None:
    assert worker_plan([1.0] * 8, 4, 2.0) == [[0, 1], [2, 3], [4, 5], [6, 7]]
