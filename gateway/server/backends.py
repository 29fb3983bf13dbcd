"""Loading the configured models once per process, or connecting to the Ray pool.

Blocking (a model load takes seconds, a CUDA start-up more): the gateway calls
:func:`load_backends` from a worker thread before it starts serving.
"""

from __future__ import annotations

import os

import numpy as np

from gateway.core.types import SAMPLE_RATE, Backend, DecodeRequest
from gateway.engines import models
from gateway.engines.batched import make_backend
from gateway.engines.whisper import WhisperOptions, resolve_device
from gateway.server.config import ModelSpec, ServerConfig


def load_backends(config: ServerConfig) -> dict[str, Backend]:
    """Load every configured model once, or connect to the pool (blocking: call from a thread)."""
    if config.inference == "ray":
        from gateway.engines.ray_pool import RayPoolBackend

        # The pool owns the model; it is served under the name the pool reports.
        pool = RayPoolBackend(config.ray_address, config.pool_app, max_batch=config.max_batch or 32)
        return {pool.name: pool}
    specs = config.models or (ModelSpec("tiny.en", "tiny.en"),)
    backends: dict[str, Backend] = {}
    device = resolve_device(config.device)
    max_batch = config.max_batch or (16 if device == "cuda" else 1)
    workers = decode_workers(config.decode_workers, device)
    for spec in specs:
        path = models.resolve(spec.path)
        backends[spec.name] = make_backend(
            WhisperOptions(
                model_path=str(path),
                name=spec.name,
                device=device,
                compute_type=config.compute_type,
                beam_size=config.beam_size,
                final_beam_size=config.final_beam_size,
                cpu_threads=config.cpu_threads,
                max_batch=max_batch,
                workers=workers,
                encoder_pad_s=config.encoder_pad_s,
                encoder_min_s=config.encoder_min_s,
            )
        )
        # Pay the first-call cost (CUDA start-up: seconds) before any stream waits on it.
        backends[spec.name].decode_batch([DecodeRequest(np.zeros(SAMPLE_RATE, np.float32), offset=0.0)])
    return backends


def decode_workers(configured: int, device: str) -> int:
    """Concurrent model calls: as configured, else one per core on a CPU and one on a GPU
    (whose batches, not parallel calls, fill it)."""
    if configured > 0:
        return configured
    return 1 if device == "cuda" else max(1, os.cpu_count() or 1)
