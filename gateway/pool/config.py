"""How the pool is deployed: one frozen value from ``python -m gateway.pool`` flags or ``serve run`` args."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """How the pool is deployed (``python -m gateway.pool`` flags, or ``serve run`` args)."""

    model: str = "tiny.en"
    """A model name (tiny.en, base.en) or a CTranslate2 folder."""
    device: str = "cpu"
    compute_type: str = "auto"
    cpu_threads: int = 1
    max_batch: int = 0
    """Windows per model call; 0 picks 1 on CPU and 32 on CUDA."""
    batch_wait_ms: float = 5.0
    replicas: int = 1
    """Fixed replica count (ignored when ``max_replicas`` > 0)."""
    min_replicas: int = 1
    max_replicas: int = 0
    """Above 0: autoscale between min and max on requests in flight per replica."""
    target_ongoing: float = 8.0
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> PoolConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = set(args) - set(known)
        if unknown:
            raise ValueError(f"unknown pool options: {sorted(unknown)}")
        return cls(**{name: type(getattr(cls(), name))(value) for name, value in args.items()})
