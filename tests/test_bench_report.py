"""Session records, level summaries, capacity, the Markdown report and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.aggregate import capacity, level_summary, session_record
from bench.report import latency_cell, markdown, write_all
from bench.targets import TargetError, parse_target, unique_labels
from bench.timeline import Timeline, Update, Word


def timeline(delay: float, error: str | None = None) -> Timeline:
    tl = Timeline(audio_s=2.0, sent_s=3.0, billed_s=3.0, error=error)
    w = (Word("hello", 0.5, 0.9), Word("world", 0.9, 1.4))
    tl.updates = [
        Update(arrival=1.0, is_final=False, transcript="hello", words=w[:1]),
        Update(arrival=1.4 + delay, is_final=True, transcript="hello world", words=w, speech_final=True),
    ]
    tl.end_sent = 3.0
    return tl


def level(streams: int, delay: float, threshold: float = 1.0, error: str | None = None) -> dict[str, Any]:
    sessions = [session_record(f"f{i}", "Hello world!", i, timeline(delay, error), 0.5) for i in range(streams)]
    load = {"cpu_s": 6.0, "cpu_pct_mean": 50.0, "cpu_pct_peak": 90.0, "rss_mb_peak": 300.0, "wall_s": 12.0}
    return level_summary(streams, sessions, threshold, load, {"cpu_pct_mean": 3.0}, 12.0)


def test_session_record() -> None:
    rec = session_record("f", "Hello world!", 0, timeline(0.5), 0.5)
    assert rec["transcript"] == "hello world"
    assert rec["wer"]["wer"] == 0.0
    assert rec["final_words"] == 2
    assert rec["words_seen_in_interims"] == 1
    assert rec["latency"]["first_interim"] == pytest.approx([0.5])
    assert rec["latency"]["final"] == pytest.approx([0.5])


def test_level_summary_pools_sessions_and_decides_if_it_held() -> None:
    ok = level(2, 0.5)
    assert ok["held"]
    assert ok["latency"]["final"]["n"] == 2
    assert ok["latency"]["word_final"]["max"] == pytest.approx(1.0)
    assert ok["cpu_rtf"] == pytest.approx(6.0 / 6.0)
    assert ok["billed_minutes"] == pytest.approx(6.0 / 60)
    slow = level(2, 1.5)
    assert not slow["held"]
    assert "p95 final 1.50 s > 1.00 s" in slow["verdict"]
    failed = level(1, 0.1, error="boom")
    assert not failed["held"]
    assert "boom" in failed["verdict"]
    assert failed["wer"] is None  # failed sessions are not scored


def test_capacity_is_the_last_level_before_the_first_failure() -> None:
    levels = [level(1, 0.2), level(2, 0.5), level(4, 1.5), level(8, 0.2)]
    cap = capacity(levels, 1.0)
    assert cap["max_streams_held"] == 2
    assert cap["stopped_because"].startswith("4 streams")
    assert capacity([level(1, 1.5)], 1.0)["max_streams_held"] is None
    assert capacity([], 1.0)["max_streams_held"] is None


def results() -> dict[str, Any]:
    return {
        "created": "now",
        "machine": {"usable_cpus": 2, "cpu": "test cpu", "memory_gib": 1.0, "gpus": []},
        "config": {"model": "m", "levels": [1, 2], "threshold_s": 1.0, "capacity_metric": "final"},
        "dataset": {"source": "test", "files": [{"id": "f0", "duration_s": 2.0}]},
        "offline": [
            {"beam_size": 1, "rtf": 0.1, "device": "cpu", "compute_type": "int8", "wer": {"wer": 0.05}},
            {"beam_size": 5, "rtf": 0.2, "device": "cpu", "compute_type": "int8", "wer": {"wer": 0.04}},
        ],
        "targets": [
            {"name": "gateway", "kind": "gateway", "not_applicable": [], "levels": [level(1, 0.2), level(2, 1.5)]},
            {
                "name": "whisperlive",
                "kind": "whisperlive",
                "not_applicable": ["speech_final", "flush"],
                "levels": [level(1, 0.2)],
            },
        ],
    }


def test_markdown_has_every_table_and_marks_metrics_that_do_not_apply() -> None:
    res = results()
    for target in res["targets"]:
        target["capacity"] = capacity(target["levels"], 1.0)
    text = markdown(res)
    for heading in ("## Accuracy", "## Latency", "## Cost and load", "## Capacity"):
        assert heading in text
    gateway_row = next(line for line in text.splitlines() if line.startswith("| gateway | 1 | 1 |"))
    assert "0.0%" in gateway_row
    assert "5.0%" in gateway_row
    assert "-5.0 pts" in gateway_row
    wl_latency = [line for line in text.splitlines() if line.startswith("| whisperlive | 1 | 0.")]
    assert wl_latency
    assert "n/a" in wl_latency[0]
    assert "| gateway | [1, 2] | 1 |" in text


def test_latency_cell() -> None:
    assert latency_cell({"p50": 0.1, "p95": 0.25, "p99": 0.3}) == "0.10 / 0.25 / 0.30"
    assert latency_cell(None) == "-"
    assert latency_cell(None, applicable=False) == "n/a"


def test_write_all_writes_json_markdown_and_pngs(tmp_path: Path) -> None:
    res = results()
    for target in res["targets"]:
        target["capacity"] = capacity(target["levels"], 1.0)
    paths = write_all(tmp_path, res)
    assert {p.name for p in paths} == {
        "results.json",
        "report.md",
        "latency_cdf.png",
        "latency_vs_streams.png",
        "wer.png",
    }
    for path in paths:
        assert path.stat().st_size > 0
    assert (tmp_path / "latency_cdf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_target() -> None:
    assert parse_target("gateway").kind == "gateway"
    spec = parse_target("gateway:--final-beam-size 5")
    assert spec.args == ("--final-beam-size", "5")
    assert spec.label == "gateway(--final-beam-size 5)"
    labelled = parse_target("beam5@gateway:--final-beam-size 5")
    assert (labelled.label, labelled.args) == ("beam5", ("--final-beam-size", "5"))
    url = parse_target("dg@url=wss://api.example/v1/listen")
    assert (url.label, url.kind, url.url, url.launched, url.protocol) == (
        "dg",
        "url",
        "wss://api.example/v1/listen",
        False,
        "deepgram",
    )
    assert parse_target("url=ws://user@h:1").label == "ws://user@h:1"
    assert parse_target("whisperlive").protocol == "whisperlive"
    with pytest.raises(TargetError):
        parse_target("nonsense")
    with pytest.raises(TargetError):
        parse_target("url=http://x")
    labels = [s.label for s in unique_labels([parse_target("gateway"), parse_target("gateway")])]
    assert labels == ["gateway", "gateway#2"]
