"""The Serve deployment: one Whisper model per replica, requests from every gateway batched.

Each replica loads its model once (CPU or GPU, as the replica's resources
say) and serves :meth:`WhisperReplica.decode`, which ``serve.batch`` merges
across callers: requests submitted by different gateways within
``batch_wait_timeout_s`` share one ``decode_batch`` call, run in a worker
thread so the replica's event loop keeps accepting requests.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import numpy as np
from ray import serve
from ray.serve import Application

from gateway.core.types import SAMPLE_RATE, Backend, DecodeRequest, DecodeResult
from gateway.engines import models
from gateway.engines.batched import make_backend
from gateway.engines.whisper import WhisperOptions, resolve_device
from gateway.pool.config import PoolConfig


def load_backend(config: PoolConfig) -> Backend:
    """Load the model as the replica's resources allow (blocking)."""
    device = resolve_device(config.device)
    max_batch = config.max_batch or (32 if device == "cuda" else 1)
    options = WhisperOptions(
        model_path=str(models.resolve(config.model)),
        name=config.model if "/" not in config.model else os.path.basename(config.model.rstrip("/")),
        device=device,
        compute_type=config.compute_type,
        cpu_threads=config.cpu_threads,
        max_batch=max_batch,
    )
    backend = make_backend(options)
    backend.decode_batch([DecodeRequest(np.zeros(SAMPLE_RATE, np.float32), offset=0.0)])  # warm up
    return backend


@serve.deployment
class WhisperReplica:
    """Owns one model; answers decode requests from any gateway."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.backend = load_backend(config)
        batched: Any = self.decode  # serve.batch's wrapper; its typing hides the setters
        batched.set_max_batch_size(max(1, self.backend.max_batch))
        batched.set_batch_wait_timeout_s(config.batch_wait_ms / 1000.0)
        self.decodes = 0

    async def info(self) -> dict[str, Any]:
        return {
            "name": self.backend.name,
            "max_batch": self.backend.max_batch,
            "pid": os.getpid(),
            "decodes": self.decodes,
        }

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def decode(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        results = await asyncio.to_thread(self.backend.decode_batch, list(requests))
        self.decodes += len(requests)
        return results


def build(args: dict[str, Any]) -> Application:
    """The Serve application (``serve run gateway.pool.replica:build key=value ...``)."""
    config = PoolConfig.from_args(args)
    options: dict[str, Any] = {"ray_actor_options": {"num_cpus": config.num_cpus, "num_gpus": config.num_gpus}}
    if config.max_replicas > 0:
        options["autoscaling_config"] = {
            "min_replicas": config.min_replicas,
            "max_replicas": config.max_replicas,
            "target_ongoing_requests": config.target_ongoing,
        }
    else:
        options["num_replicas"] = config.replicas
    options["max_ongoing_requests"] = max(64, 4 * config.max_batch)
    deployment: Any = WhisperReplica  # a serve.Deployment once decorated
    app: Application = deployment.options(**options).bind(config)
    return app
