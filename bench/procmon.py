"""Process CPU and memory sampling with psutil (a process and all its children)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import asdict, dataclass, field

import psutil  # type: ignore[import-untyped]


@dataclass(frozen=True, slots=True)
class Load:
    """What a process tree used over a window.

    ``cpu_s`` is user+system CPU seconds; ``cpu_pct_mean`` is ``cpu_s / wall_s``
    in percent of one core (200 = two cores busy); ``cpu_pct_peak`` the highest
    value between two samples; ``rss_mb_peak`` the largest resident set seen.
    """

    wall_s: float
    cpu_s: float
    cpu_pct_mean: float
    cpu_pct_peak: float
    rss_mb_peak: float
    rss_mb_mean: float
    samples: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict for JSON."""
        return asdict(self)


def _tree(pid: int, children: bool) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)] if children else [root]


def tree_usage(pid: int, children: bool = True) -> tuple[float, float]:
    """CPU seconds (user+system) and resident MiB of ``pid`` (and its children); (0, 0) if it is gone."""
    cpu = rss = 0.0
    try:
        procs = _tree(pid, children)
    except psutil.Error:
        return 0.0, 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            cpu += times.user + times.system
            rss += proc.memory_info().rss
    return cpu, rss / 2**20


def system_busy_s() -> float:
    """CPU seconds all processes on the machine have used since boot (all cores, idle and iowait excluded)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass(slots=True)
class Sampler:
    """Samples a process (with its children unless ``children`` is false) every ``interval`` seconds
    between :meth:`start` and :meth:`stop`."""

    pid: int
    interval: float = 0.5
    children: bool = True
    _points: list[tuple[float, float, float]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        cpu, rss = tree_usage(self.pid, self.children)
        self._points.append((time.perf_counter(), cpu, rss))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._sample()

    def start(self) -> None:
        """Take the first sample and keep sampling in the background."""
        self._points.clear()
        self._sample()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> Load:
        """Take the last sample and summarize."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample()
        return summarize_points(self._points)


def summarize_points(points: list[tuple[float, float, float]]) -> Load:
    """A :class:`Load` from ``(time, cpu seconds, rss MiB)`` samples in time order."""
    if len(points) < 2:
        raise ValueError("need at least two samples")
    wall = points[-1][0] - points[0][0]
    cpu = max(0.0, points[-1][1] - points[0][1])
    peaks = [100.0 * max(0.0, b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(points) if b[0] > a[0]]
    rss = [p[2] for p in points]
    return Load(
        wall_s=wall,
        cpu_s=cpu,
        cpu_pct_mean=100.0 * cpu / wall if wall > 0 else 0.0,
        cpu_pct_peak=max(peaks, default=0.0),
        rss_mb_peak=max(rss),
        rss_mb_mean=sum(rss) / len(rss),
        samples=len(points),
    )
