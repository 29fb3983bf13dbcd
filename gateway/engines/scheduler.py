"""Inference scheduler: one backend, every stream, decodes batched off the loop.

Streams submit :class:`DecodeRequest` values and await the result. A single
runner task per backend worker (``workers``: one on a GPU, one per core on a
CPU) collects what is queued (flushes first, then first come first served, at
most ``backend.max_batch``) and runs one ``decode_batch`` call in a worker
thread; the runners share the queues, so two streams' windows decode at once
on two cores. Each stream has at most one request in flight (the
transcriber enforces it), so a stream that falls behind simply decodes a
longer, newer window next time: interims are skipped, audio never is, and
FIFO order keeps any stream from being starved by the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from gateway.core.types import Backend, DecodeRequest, DecodeResult, concurrency

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(slots=True)
class _Job:
    request: DecodeRequest
    future: asyncio.Future[DecodeResult]
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass(slots=True)
class SchedulerStats:
    decodes: int = 0
    batches: int = 0
    inference_s: float = 0.0
    audio_s: float = 0.0
    queue_wait_s: float = 0.0
    max_batch_seen: int = 0

    def as_dict(self) -> dict[str, float]:
        return {
            "decodes": self.decodes,
            "batches": self.batches,
            "inference_s": round(self.inference_s, 3),
            "decoded_audio_s": round(self.audio_s, 3),
            "mean_queue_wait_s": round(self.queue_wait_s / self.decodes, 4) if self.decodes else 0.0,
            "max_batch": self.max_batch_seen,
        }


class Scheduler:
    """Owns a backend; run :meth:`run` as a task for the server's lifetime."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._urgent: deque[_Job] = deque()
        self._normal: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self.workers = concurrency(backend)
        self._limiter = anyio.CapacityLimiter(self.workers)
        self.stats = SchedulerStats()

    @property
    def queued(self) -> int:
        return len(self._urgent) + len(self._normal)

    async def decode(self, request: DecodeRequest) -> DecodeResult:
        """Queue one request and wait for its result."""
        future: asyncio.Future[DecodeResult] = asyncio.get_running_loop().create_future()
        (self._urgent if request.final else self._normal).append(_Job(request, future))
        self._wake.set()
        return await future

    async def run_blocking(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` in one of the model's workers, between batches.

        Whole-file decodes use it one window at a time, so live streams'
        batches interleave with a long file instead of waiting for all of it.
        """
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _take_batch(self) -> list[_Job]:
        batch: list[_Job] = []
        for queue in (self._urgent, self._normal):
            while queue and len(batch) < self.backend.max_batch:
                job = queue.popleft()
                if not job.future.done():  # a stream that left cancels its wait
                    batch.append(job)
        return batch

    async def run(self) -> None:
        """Serve requests until cancelled: one runner per backend worker."""
        async with anyio.create_task_group() as group:
            for _ in range(self.workers):
                group.start_soon(self._runner)

    async def _runner(self) -> None:
        while True:
            await self._wake.wait()
            batch = self._take_batch()
            if not batch:
                # Cleared only with the queues seen empty (no await in between): decode() sets it again.
                self._wake.clear()
                continue
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        requests = [job.request for job in batch]
        try:
            results = await anyio.to_thread.run_sync(self.backend.decode_batch, requests, limiter=self._limiter)
        except Exception as exc:
            log.exception("decode batch of %d failed", len(batch))
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        elapsed = time.perf_counter() - started
        share = elapsed / len(batch)
        stats = self.stats
        stats.batches += 1
        stats.max_batch_seen = max(stats.max_batch_seen, len(batch))
        stats.inference_s += elapsed
        for job, result in zip(batch, results, strict=True):
            stats.decodes += 1
            stats.audio_s += job.request.duration
            stats.queue_wait_s += started - job.queued_at
            if not job.future.done():
                job.future.set_result(DecodeResult(result.words, share))
