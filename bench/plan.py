"""Which recordings each concurrent worker streams at one concurrency level (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def worker_plan(durations: Sequence[float], streams: int, audio_per_worker_s: float) -> list[list[int]]:
    """For each of ``streams`` workers, the indices of the recordings it streams, in order.

    Worker ``i`` starts at recording ``i·n // streams`` and goes on cyclically until it
    has streamed at least ``audio_per_worker_s`` seconds (always at least one recording),
    so the load stays at ``streams`` concurrent streams for about that long whatever
    the count; a single worker with the data set's total duration streams every
    recording once, and so do ``streams`` workers with a ``streams``-th of it each
    (accuracy at a load level is then measured on the whole set).
    """
    if not durations:
        raise ValueError("no recordings")
    if streams < 1:
        raise ValueError(f"streams must be positive, got {streams}")
    n = len(durations)
    plans = []
    for worker in range(streams):
        plan: list[int] = []
        total = 0.0
        index = (worker * n) // streams % n
        while not plan or total < audio_per_worker_s - 1e-9:
            plan.append(index)
            total += durations[index]
            index = (index + 1) % n
        plans.append(plan)
    return plans
