"""Per-kind accuracy and $ per audio hour from a results dict."""

from __future__ import annotations

from bench.costs import cost_row, per_kind
from bench.report import markdown


def _results() -> dict:
    files = [
        {"id": "a", "reference": "one two three four", "kind": "read_clean", "duration_s": 2.0},
        {"id": "b", "reference": "red green blue black", "kind": "telephony_8k", "duration_s": 2.0},
    ]
    sessions = [
        {"file": "a", "reference": "one two three four", "transcript": "one two three four", "error": None},
        {"file": "b", "reference": "red green blue black", "transcript": "red green", "error": None},
    ]
    level = {
        "streams": 1,
        "sessions": sessions,
        "sent_minutes": 1.0,
        "cpu_rtf": 0.25,
        "model_s": 6.0,
        "gpu": True,
        "billed_minutes": 1.0,
        "latency": {},
        "wer": None,
        "audio_minutes": 1.0,
        "pacing_lag_max_s": 0.0,
    }
    offline = [
        {
            "beam_size": 1,
            "wer": None,
            "rtf": 0.0,
            "device": "cpu",
            "compute_type": "int8",
            "per_file": {"a": {"text": "one two three four"}, "b": {"text": "red green blue"}},
        },
        {
            "beam_size": 5,
            "wer": None,
            "rtf": 0.0,
            "device": "cpu",
            "compute_type": "int8",
            "per_file": {"a": {"text": "one two three four"}, "b": {"text": "red green blue black"}},
        },
    ]
    return {
        "dataset": {"files": files},
        "offline": offline,
        "targets": [{"name": "gateway", "levels": [level]}],
        "config": {"prices": {"cpu_hour": 0.04, "gpu_hour": 2.0, "relay_minute": 0.005}},
    }


def test_wer_is_scored_per_kind_beside_the_offline_wer_of_the_same_files() -> None:
    rows = {r["kind"]: r for r in per_kind(_results())}
    assert rows["read_clean"]["wer"] == 0.0
    assert rows["telephony_8k"]["wer"] == 0.5
    assert rows["telephony_8k"]["offline"] == {1: 0.25, 5: 0.0}


def test_cost_per_audio_hour_from_cpu_gpu_and_billed_minutes() -> None:
    results = _results()
    cost = cost_row(results["targets"][0]["levels"][0], results["config"]["prices"])
    assert cost["cpu_usd_per_audio_hour"] == 0.25 * 0.04
    assert cost["model_rtf"] == 0.1 and cost["gpu_usd_per_audio_hour"] == 0.1 * 2.0
    assert abs(cost["relay_usd_per_audio_hour"] - 0.3) < 1e-9  # 60 billed minutes an hour at $0.005
    text = markdown(results)
    assert "| gateway | 1 | telephony_8k | 1 | 4 | 50.0% | 25.0% | 0.0% | +25.0 pts |" in text
    assert "## Cost per audio hour" in text
