"""Percentiles and summaries of latency samples."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

PERCENTILES = (50, 95, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within [0, 100], got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Summary:
    """Count, p50/p95/p99, mean, min and max of a sample."""

    n: int
    p50: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float

    def to_dict(self) -> dict[str, float]:
        """Plain dict for JSON."""
        return asdict(self)


def summarize(values: Iterable[float]) -> Summary | None:
    """Summarize ``values``; ``None`` when there are none."""
    data = [float(v) for v in values]
    if not data:
        return None
    return Summary(
        n=len(data),
        p50=percentile(data, 50),
        p95=percentile(data, 95),
        p99=percentile(data, 99),
        mean=sum(data) / len(data),
        min=min(data),
        max=max(data),
    )


def cdf(values: Iterable[float]) -> tuple[list[float], list[float]]:
    """Points of the empirical CDF: sorted values and their cumulative fractions."""
    data = sorted(float(v) for v in values)
    n = len(data)
    return data, [(i + 1) / n for i in range(n)]
