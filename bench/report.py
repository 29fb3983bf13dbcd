"""Rendering a results dict: the JSON file and the Markdown tables (pure functions of the dict)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.costs import cost_row, per_kind
from bench.latency import LATENCY_COLUMNS
from bench.machine import one_line


def _noise_line(dbfs: object, snr: object = None) -> str:
    """The background noise part of the pacing line ('' without noise)."""
    if isinstance(snr, int | float):
        return f"white noise {snr} dB under each recording's speech level, under audio and tail; "
    return f"white noise at {dbfs} dBFS under audio and tail; " if isinstance(dbfs, int | float) else ""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _points(value: float | None, base: float | None) -> str:
    return f"{100 * (value - base):+.1f} pts" if value is not None and base is not None else "-"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def latency_cell(summary: Mapping[str, float] | None, applicable: bool = True) -> str:
    """``p50 / p95 / p99`` in seconds, ``n/a`` for a metric the target cannot produce, ``-`` for no samples."""
    if not applicable:
        return "n/a"
    if not summary:
        return "-"
    return f"{summary['p50']:.2f} / {summary['p95']:.2f} / {summary['p99']:.2f}"


def _git_line(git: Mapping[str, Any] | None) -> str:
    if not git or not git.get("commit"):
        return "unknown commit"
    return f"commit {git['commit']}" + (" with local changes" if git.get("dirty") else "")


def _other_cpu(level: Mapping[str, Any]) -> float | None:
    """CPU percent used on the machine by neither the server nor the bench during a level."""
    system = level.get("system_cpu_pct")
    if system is None:
        return None
    own = sum(float((level.get(key) or {}).get("cpu_pct_mean", 0.0)) for key in ("load", "client_load"))
    return max(0.0, float(system) - own)


def _offline_wer(results: Mapping[str, Any], beam: int) -> float | None:
    for run in results.get("offline") or []:
        if run["beam_size"] == beam and run["wer"]:
            return float(run["wer"]["wer"])
    return None


def _rows(results: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    return [(t, level) for t in results.get("targets", []) for level in t.get("levels", [])]


def markdown(results: Mapping[str, Any]) -> str:
    """The report as Markdown: setup, accuracy, latency, load, capacity, errors."""
    cfg = results.get("config", {})
    data = results.get("dataset", {})
    files = data.get("files", [])
    audio = sum(float(f["duration_s"]) for f in files)
    lines = [
        f"# Streaming bench, {results.get('created', '')}",
        "",
        f"- machine: {one_line(results.get('machine', {}))}",
        f"- code: {_git_line(results.get('git'))}",
        f"- model: `{cfg.get('model')}` (device {cfg.get('device')}, compute type {cfg.get('compute_type')})",
        f"- data: {data.get('source')}: {len(files)} recording(s), {audio:.1f} s",
        f"- pacing: {cfg.get('frame_ms')} ms frames on a clock, {cfg.get('tail_s')} s of silence after each "
        f"recording; {_noise_line(cfg.get('noise_dbfs'), cfg.get('snr_db'))}ending: {cfg.get('ending') or 'finalize'}; "
        f"concurrency levels {cfg.get('levels')}, capacity: p95 of {cfg.get('capacity_metric')} "
        f"<= {cfg.get('threshold_s')} s",
        "",
        "## Accuracy (WER after Whisper English normalization)",
        "",
        "| target | streams | sessions | streaming WER | offline beam 1 | offline beam 5 | "
        "penalty vs beam 1 | penalty vs beam 5 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    off1, off5 = _offline_wer(results, 1), _offline_wer(results, 5)
    for target, level in _rows(results):
        wer = level["wer"]["wer"] if level.get("wer") else None
        lines.append(
            f"| {target['name']} | {level['streams']} | {len(level['sessions'])} | {_pct(wer)} | "
            f"{_pct(off1)} | {_pct(off5)} | {_points(wer, off1)} | {_points(wer, off5)} |"
        )
    kinds = per_kind(results)
    if kinds:
        lines += [
            "",
            "Per kind of recording (the manifest's `kind`):",
            "",
            "| target | streams | kind | files | ref words | streaming WER | offline beam 1 | offline beam 5 | "
            "penalty vs beam 1 |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for row in kinds:
            b1, b5 = row["offline"].get(1), row["offline"].get(5)
            lines.append(
                f"| {row['target']} | {row['streams']} | {row['kind']} | {row['files']} | {row['reference_words']} | "
                f"{_pct(row['wer'])} | {_pct(b1)} | {_pct(b5)} | {_points(row['wer'], b1)} |"
            )
    lines += ["", "Offline baseline (same model file, faster-whisper, whole file at once):", ""]
    for run in results.get("offline") or []:
        lines.append(
            f"- beam {run['beam_size']}: WER {_pct(run['wer']['wer'] if run['wer'] else None)}, "
            f"RTF {run['rtf']:.3f} ({run['device']}, {run['compute_type']})"
        )

    lines += [
        "",
        "## Latency (seconds, p50 / p95 / p99)",
        "",
        "| target | streams | " + " | ".join(title for _, title in LATENCY_COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(LATENCY_COLUMNS),
    ]
    for target, level in _rows(results):
        na = set(target.get("not_applicable", []))
        cells = [latency_cell(level["latency"].get(m), m not in na) for m, _ in LATENCY_COLUMNS]
        lines.append(f"| {target['name']} | {level['streams']} | " + " | ".join(cells) + " |")

    lines += [
        "",
        "## Cost and load",
        "",
        "| target | streams | audio min | server CPU s | CPU RTF | CPU mean % | CPU peak % | "
        "RSS peak MiB | bench CPU % | other CPU % | billed min | max pacing lag s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target, level in _rows(results):
        load = level.get("load") or {}
        client = level.get("client_load") or {}
        lines.append(
            f"| {target['name']} | {level['streams']} | {level['audio_minutes']:.2f} | {_num(load.get('cpu_s'), 1)} | "
            f"{_num(level.get('cpu_rtf'), 3)} | {_num(load.get('cpu_pct_mean'), 0)} | "
            f"{_num(load.get('cpu_pct_peak'), 0)} | {_num(load.get('rss_mb_peak'), 0)} | "
            f"{_num(client.get('cpu_pct_mean'), 0)} | {_num(_other_cpu(level), 0)} | "
            f"{_num(level.get('billed_minutes'), 2)} | "
            f"{level['pacing_lag_max_s']:.3f} |"
        )

    prices = cfg.get("prices") or {}
    lines += [
        "",
        "## Cost per audio hour",
        "",
        f"Prices (inputs, not measured): ${_num(prices.get('cpu_hour'), 3)} per vCPU hour, "
        f"${_num(prices.get('gpu_hour'), 3)} per GPU hour, ${_num(prices.get('relay_minute'), 4)} per relayed "
        "(billed) minute. *relay $* is what the same streams cost relayed to Deepgram (billed minutes).",
        "",
        "| target | streams | CPU s / audio s | model s / audio s | local CPU $ / audio h | local GPU $ / audio h | "
        "relay $ / audio h |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for target, level in _rows(results):
        cost = cost_row(level, prices)
        lines.append(
            f"| {target['name']} | {level['streams']} | {_num(cost['cpu_rtf'], 3)} | {_num(cost['model_rtf'], 3)} | "
            f"{_num(cost['cpu_usd_per_audio_hour'], 4)} | {_num(cost['gpu_usd_per_audio_hour'], 4)} | "
            f"{_num(cost['relay_usd_per_audio_hour'], 4)} |"
        )

    lines += [
        "",
        "## Capacity",
        "",
        "| target | levels tried | largest count that held | stopped because |",
        "|---|---|---:|---|",
    ]
    for target in results.get("targets", []):
        cap = target.get("capacity", {})
        held = cap.get("max_streams_held")
        lines.append(
            f"| {target['name']} | {cap.get('levels_tried')} | {'none' if held is None else held} | "
            f"{target.get('error') or cap.get('stopped_because')} |"
        )

    problems = [
        (t["name"], level["streams"], s["file"], s["error"])
        for t, level in _rows(results)
        for s in level["sessions"]
        if s["error"]
    ]
    if problems:
        lines += ["", "## Errors", ""]
        lines += [f"- {name} x{streams} {file}: {error}" for name, streams, file, error in problems]
    lines += [
        "",
        "CPU percentages: 100 = one core busy. *other CPU*: what the rest of the machine used meanwhile "
        "(a shared machine disturbs latency).",
        "",
        "Definitions and method: bench/README.md. `n/a`: the target cannot produce the metric; `-`: no sample.",
        "",
    ]
    return "\n".join(lines)


def write_json(path: Path, results: Mapping[str, Any]) -> None:
    """The results dict as indented JSON."""
    path.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")


def write_all(out: Path, results: Mapping[str, Any]) -> list[Path]:
    """``results.json``, ``report.md`` and the PNG plots in ``out``; returns the paths written."""
    from bench.plots import plot_all

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "report.md"]
    write_json(written[0], results)
    written[1].write_text(markdown(results), encoding="utf-8")
    return written + plot_all(results, out)
