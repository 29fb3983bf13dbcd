#!/usr/bin/env bash
# The GPU figures in the README: run on the lent H100/H200 machine after
# ../shared/gpu/on-device.sh has installed the staged wheels and model
# (see ../shared/gpu/README.md). Usage: bash bench/gpu.sh MANIFEST [OUTDIR]
set -euo pipefail
manifest=${1:?usage: bench/gpu.sh MANIFEST [OUTDIR]}
out=${2:-${OUT:-bench/results/gpu}}
mkdir -p "$out"
. /tmp/gpu-env.sh
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
nproc >> "$out/gpu.txt"
# 1. What batching buys: windows/s of one model call at several batch sizes.
python3 -m bench.decode_throughput --device cuda --model "$GPU_MODEL_DIR" --data "$manifest" \
    --batches 1,8,32,64,128 --window 10 --rounds 5 2>/dev/null | tee "$out/decode.jsonl"
# 2. End to end: the gateway on CUDA, real-time streams ramped up until p95 final latency passes 3 s.
python3 -m bench run --target "gateway:--max-batch 64 --max-streams 1024" --device cuda --model "$GPU_MODEL_DIR" \
    --data "$manifest" --limit 20 --ramp 16,64,128,256 --level-audio 40 --threshold 3.0 \
    --offline-beams 1 --no-raw --out "$out/e2e" 2>&1 | grep -v " INFO " | tail -40
