"""The inference scheduler with a recording fake backend (no model, no sockets)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from gateway.core.types import DecodeRequest, DecodeResult, Word
from gateway.engines.scheduler import Scheduler


class FakeBackend:
    name = "fake"

    def __init__(self, max_batch: int = 2, fail: bool = False) -> None:
        self.max_batch = max_batch
        self.fail = fail
        self.batches: list[list[float]] = []
        self.threads: set[int] = set()
        self.gate = threading.Event()
        self.gate.set()

    def decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        self.gate.wait(5)
        self.threads.add(threading.get_ident())
        self.batches.append([r.offset for r in requests])
        if self.fail:
            raise RuntimeError("model exploded")
        return [DecodeResult((Word(str(r.offset), r.offset, r.offset + 0.1, 1.0),)) for r in requests]


def request(offset: float, final: bool = False) -> DecodeRequest:
    return DecodeRequest(np.zeros(1600, np.float32), offset=offset, final=final)


async def test_batches_flushes_first_then_fifo_off_the_loop() -> None:
    backend = FakeBackend(max_batch=2)
    backend.gate.clear()  # hold the worker so the queue fills up
    scheduler = Scheduler(backend)
    runner = asyncio.create_task(scheduler.run())
    first = asyncio.create_task(scheduler.decode(request(0.0)))
    await asyncio.sleep(0.05)  # the first batch is taken and waits on the gate
    rest = [asyncio.create_task(scheduler.decode(request(t, final=t == 4.0))) for t in (1.0, 2.0, 3.0, 4.0)]
    await asyncio.sleep(0.05)
    backend.gate.set()
    results = await asyncio.gather(first, *rest)
    runner.cancel()
    assert [r.words[0].text for r in results] == ["0.0", "1.0", "2.0", "3.0", "4.0"], "each gets its own answer"
    assert backend.batches == [[0.0], [4.0, 1.0], [2.0, 3.0]], "flush first, then first come first served"
    assert threading.get_ident() not in backend.threads, "inference never runs on the event loop"
    assert scheduler.stats.decodes == 5 and scheduler.stats.max_batch_seen == 2


async def test_a_stream_that_left_is_skipped() -> None:
    backend = FakeBackend(max_batch=1)
    backend.gate.clear()
    scheduler = Scheduler(backend)
    runner = asyncio.create_task(scheduler.run())
    busy = asyncio.create_task(scheduler.decode(request(0.0)))
    await asyncio.sleep(0.05)
    gone = asyncio.create_task(scheduler.decode(request(1.0)))
    await asyncio.sleep(0.01)
    gone.cancel()
    backend.gate.set()
    await busy
    assert (await scheduler.decode(request(2.0))).words[0].text == "2.0"
    runner.cancel()
    assert backend.batches == [[0.0], [2.0]]


async def test_backend_errors_reach_the_waiting_streams() -> None:
    scheduler = Scheduler(FakeBackend(fail=True))
    runner = asyncio.create_task(scheduler.run())
    with pytest.raises(RuntimeError, match="model exploded"):
        await scheduler.decode(request(0.0))
    runner.cancel()


class TwoWorkerBackend:
    """Answers only when two calls are inside it at once: one worker at a time breaks the barrier."""

    name = "two"
    max_batch = 1
    workers = 2

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)

    def decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        self.barrier.wait()
        return [DecodeResult((Word("ok", r.offset, r.offset + 0.1, 1.0),)) for r in requests]


async def test_a_backend_with_two_workers_decodes_two_windows_at_once() -> None:
    scheduler = Scheduler(TwoWorkerBackend())
    runner = asyncio.create_task(scheduler.run())
    results = await asyncio.gather(scheduler.decode(request(0.0)), scheduler.decode(request(1.0)))
    runner.cancel()
    assert [r.words[0].text for r in results] == ["ok", "ok"]
    assert scheduler.stats.decodes == 2 and scheduler.stats.batches == 2


def test_decode_workers_default_to_one_per_core_on_cpu_and_one_on_a_gpu() -> None:
    import os

    from gateway.server.backends import decode_workers

    assert decode_workers(0, "cpu") == max(1, os.cpu_count() or 1)
    assert decode_workers(0, "cuda") == 1
    assert decode_workers(3, "cpu") == 3 and decode_workers(2, "cuda") == 2


def test_a_backend_without_workers_is_served_one_call_at_a_time() -> None:
    from gateway.core.types import concurrency

    assert concurrency(FakeBackend()) == 1
    assert concurrency(TwoWorkerBackend()) == 2
