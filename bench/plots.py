"""PNG plots of a results dict (matplotlib, Agg backend): latency CDFs, latency against streams, WER."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.report import LATENCY_COLUMNS
from bench.stats import cdf

STYLES = ("-", "--", ":", "-.")


def _colors(results: Mapping[str, Any]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {t["name"]: cycle[i % len(cycle)] for i, t in enumerate(results.get("targets", []))}


def latency_cdfs(results: Mapping[str, Any], path: Path) -> Path:
    """One panel per latency metric; a CDF line per target (colour) and level (line style)."""
    colors = _colors(results)
    fig, axes = plt.subplots(2, 4, figsize=(19, 8.5), constrained_layout=True)
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
                    xs,
                    ys,
                    where="post",
                    color=colors[target["name"]],
                    linestyle=STYLES[i % len(STYLES)],
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
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in list(axes.flat)[len(LATENCY_COLUMNS) :]:
        ax.axis("off")
    fig.suptitle("Latency CDFs (curves further left are better)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_vs_streams(results: Mapping[str, Any], path: Path) -> Path:
    """p50/p95 word-final and first-seen latency, and server CPU, against concurrent streams."""
    colors = _colors(results)
    threshold = results.get("config", {}).get("threshold_s")
    fig, (left, mid, right) = plt.subplots(1, 3, figsize=(16, 5), constrained_layout=True)
    for target in results.get("targets", []):
        levels = [lv for lv in target.get("levels", []) if lv["latency"].get("word_final")]
        if not levels:
            continue
        xs = [lv["streams"] for lv in levels]
        color = colors[target["name"]]
        for ax, metric in ((left, "word_final"), (mid, "word_first_seen")):
            pts = [(x, lv["latency"][metric]) for x, lv in zip(xs, levels, strict=True) if lv["latency"][metric]]
            ax.plot([x for x, _ in pts], [s["p50"] for _, s in pts], "o-", color=color, label=f"{target['name']} p50")
            ax.plot([x for x, _ in pts], [s["p95"] for _, s in pts], "s--", color=color, label=f"{target['name']} p95")
        cpu = [(x, lv["load"]["cpu_pct_mean"]) for x, lv in zip(xs, levels, strict=True) if lv.get("load")]
        if cpu:
            right.plot([x for x, _ in cpu], [c for _, c in cpu], "o-", color=color, label=target["name"])
    for ax, title in ((left, "word final latency"), (mid, "word first-seen latency")):
        if threshold is not None and ax is left:
            ax.axhline(threshold, color="red", alpha=0.5, linestyle=":", label=f"threshold {threshold} s")
        ax.set_title(title)
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
    labels: list[str] = []
    values: list[float] = []
    for run in results.get("offline") or []:
        if run["wer"]:
            labels.append(f"offline beam {run['beam_size']}")
            values.append(100 * run["wer"]["wer"])
    for target in results.get("targets", []):
        for level in target.get("levels", []):
            if level.get("wer"):
                labels.append(f"{target['name']} x{level['streams']}")
                values.append(100 * level["wer"]["wer"])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(labels) + 2), 4.5), constrained_layout=True)
    bars = ax.bar(
        range(len(values)), values, color=["grey" if lab.startswith("offline") else "tab:blue" for lab in labels]
    )
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
