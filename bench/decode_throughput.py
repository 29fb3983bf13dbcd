"""Batched decode throughput of the Whisper backend, without the network.

    python -m bench.decode_throughput --device cuda --batches 1,8,32,64 --window 10

Decodes ``--rounds`` batches of real or synthetic speech windows at each batch
size through :class:`gateway.engines.batched.BatchedWhisperBackend` (and, for
batch 1, the sequential backend) after a warm-up, and prints windows per
second and seconds per batch as JSON lines. This isolates what batching buys
on a device from everything else the gateway does.

With ``--pool ADDRESS`` the same requests also go through a Ray Serve pool
(:mod:`gateway.pool`, deployed beforehand) via
:class:`gateway.engines.ray_pool.RayPoolBackend`: the difference to the
in-process rows is what the pool's round trip and its cross-replica fan-out
cost or buy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import wave
from pathlib import Path

import numpy as np

from gateway.core.types import Backend, DecodeRequest
from gateway.engines import models
from gateway.engines.batched import BatchedWhisperBackend
from gateway.engines.whisper import WhisperBackend, WhisperOptions


def load_windows(manifest: Path | None, seconds: float, count: int) -> list[np.ndarray]:
    """``count`` windows of ``seconds`` from the manifest's WAVs (tiled), or espeak speech."""
    clips: list[np.ndarray] = []
    if manifest is not None:
        for line in manifest.read_text().splitlines():
            row = json.loads(line)
            with wave.open(str(manifest.parent / row["path"])) as w:
                if w.getframerate() != 16000:
                    continue
                clips.append(np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0)
    else:
        from bench.synth import espeak

        clips.append(espeak("The quick brown fox jumps over the lazy dog. Call me back tomorrow morning."))
    n = int(seconds * 16000)
    windows = []
    for i in range(count):
        clip = clips[i % len(clips)]
        reps = -(-n // len(clip))
        windows.append(np.tile(clip, reps)[:n].copy())
    return windows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="CTranslate2 model folder (default: tiny.en)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--compute-type", default="auto")
    p.add_argument("--batches", default="1,4,16")
    p.add_argument("--window", type=float, default=10.0, help="seconds of audio per window")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--data", type=Path, default=None, help="JSONL manifest of 16 kHz WAVs")
    p.add_argument("--prompt", default="Thank you for calling, how can I help you today?")
    p.add_argument("--pool", default=None, help="also decode through the Ray Serve pool at this cluster address")
    p.add_argument("--pool-app", default="whisper")
    args = p.parse_args()
    path = args.model or str(models.tiny_en())
    sizes = [int(b) for b in args.batches.split(",")]
    options = WhisperOptions(model_path=path, device=args.device, compute_type=args.compute_type, max_batch=max(sizes))
    batched = BatchedWhisperBackend(options)
    sequential = WhisperBackend(options)
    windows = load_windows(args.data, args.window, max(sizes))
    requests = [DecodeRequest(w, offset=0.0, prompt=args.prompt) for w in windows]
    batched.decode_batch(requests[:2])  # warm-up: CUDA start, allocator, kernels
    sequential.decode(requests[0])
    runs: list[tuple[str, Backend, int]] = [("sequential", sequential, 1)]
    runs += [("batched", batched, s) for s in sizes]
    if args.pool:
        from gateway.engines.ray_pool import RayPoolBackend

        pool = RayPoolBackend(args.pool, args.pool_app, max_batch=max(sizes))
        pool.decode_batch(requests[:1])
        runs += [("ray_pool", pool, s) for s in sizes]
    for label, backend, size in runs:
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            if isinstance(backend, WhisperBackend) and label == "sequential":
                backend.decode(requests[0])
            else:
                backend.decode_batch(requests[:size])
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        print(
            json.dumps(
                {
                    "backend": label,
                    "device": args.device,
                    "batch": size,
                    "window_s": args.window,
                    "median_batch_s": round(median, 4),
                    "windows_per_s": round(size / median, 1),
                    "audio_s_per_s": round(size * args.window / median, 1),
                }
            ),
            flush=True,
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
