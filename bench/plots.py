"""PNG plots of a results dict (matplotlib, Agg backend): latency CDFs, latency against streams, WER."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.latency import LATENCY_COLUMNS
from bench.stats import cdf

STYLES = ("-", "--", ":", "-.")


def _colors(results: Mapping[str, Any]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {t["name"]: cycle[i % len(cycle)] for i, t in enumerate(results.get("targets", []))}


def latency_cdfs(results: Mapping[str, Any], path: Path) -> Path:
    """One panel per latency metric; a CDF line per target (colour) and level (line style)."""
    colors = _colors(results)
    fig, axes = plt.subplots(2, 5, figsize=(23, 8.5), constrained_layout=True)
    for ax, (metric, title) in zip(axes.flat, LATENCY_COLUMNS, strict=False):
        drawn = False
        for target in results.get("targets", []):
            if metric in target.get("not_applicable", []):
                continue
            for i, level in enumerate(target.get("levels", [])):
                values = [v for s in level["sessions"] for v in s["latency"].get(metric, [])]
                if not values:
                    continue
                xs, ys = cdf(values)
                ax.step(
                    [xs[0], *xs],  # start the curve at 0 so that even one sample shows as a step
                    [0.0, *ys],
                    where="post",
                    color=colors[target["name"]],
                    linestyle=STYLES[i % len(STYLES)],
                    marker="o" if len(xs) <= 5 else None,
                    label=f"{target['name']} x{level['streams']} (n={len(values)})",
                )
                drawn = True
        ax.set_title(title)
        ax.set_xlabel("seconds")
        ax.set_ylabel("fraction ≤ x")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7, loc="lower right")
        else:
            ax.text(0.5, 0.5, "no samples (or n/a)", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in list(axes.flat)[len(LATENCY_COLUMNS) :]:
        ax.axis("off")
    fig.suptitle("Latency CDFs (curves further left are better)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_vs_streams(results: Mapping[str, Any], path: Path) -> Path:
    """p50/p95 of the capacity metric (with its threshold) and of word first-seen latency, and server
    CPU, against concurrent streams."""
    colors = _colors(results)
    config = results.get("config", {})
    threshold = config.get("threshold_s")
    capacity_metric = config.get("capacity_metric", "final")
    titles = dict(LATENCY_COLUMNS)
    panels = (capacity_metric, "word_first_seen")
    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(16, 5), constrained_layout=True)
    for target in results.get("targets", []):
        levels = target.get("levels", [])
        color = colors[target["name"]]
        for ax, metric in zip((left, mid), panels, strict=True):
            pts = [(lv["streams"], lv["latency"][metric]) for lv in levels if lv["latency"].get(metric)]
            if pts:
                xs = [x for x, _ in pts]
                ax.plot(xs, [s["p50"] for _, s in pts], "o-", color=color, label=f"{target['name']} p50")
                ax.plot(xs, [s["p95"] for _, s in pts], "s--", color=color, label=f"{target['name']} p95")
        cpu = [(lv["streams"], lv["load"]["cpu_pct_mean"]) for lv in levels if lv.get("load")]
        if cpu:
            right.plot([x for x, _ in cpu], [c for _, c in cpu], "o-", color=color, label=target["name"])
    if threshold is not None:
        left.axhline(threshold, color="red", alpha=0.5, linestyle=":", label=f"threshold {threshold} s")
    for ax, metric in zip((left, mid), panels, strict=True):
        ax.set_title(f"{titles.get(metric, metric)} latency")
        ax.set_ylabel("seconds")
    right.set_title("server CPU (100 % = one core)")
    right.set_ylabel("percent")
    for ax in (left, mid, right):
        ax.set_xlabel("concurrent streams")
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def wer_bars(results: Mapping[str, Any], path: Path) -> Path:
    """Streaming WER per target and level beside the offline baselines."""
    colors = _colors(results)
    labels: list[str] = []
    values: list[float] = []
    fills: list[str] = []
    for run in results.get("offline") or []:
        if run["wer"]:
            labels.append(f"offline beam {run['beam_size']}")
            values.append(100 * run["wer"]["wer"])
            fills.append("grey")
    for target in results.get("targets", []):
        for level in target.get("levels", []):
            if level.get("wer"):
                labels.append(f"{target['name']} x{level['streams']}")
                values.append(100 * level["wer"]["wer"])
                fills.append(colors[target["name"]])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(labels) + 2), 4.5), constrained_layout=True)
    bars = ax.bar(range(len(values)), values, color=fills)
    ax.bar_label(bars, fmt="%.1f%%", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel("WER %")
    ax.set_title("WER of finals vs offline transcription of the same audio")
    ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_all(results: Mapping[str, Any], out: Path) -> list[Path]:
    """Every plot, written into ``out``."""
    return [
        latency_cdfs(results, out / "latency_cdf.png"),
        latency_vs_streams(results, out / "latency_vs_streams.png"),
        wer_bars(results, out / "wer.png"),
    ]
