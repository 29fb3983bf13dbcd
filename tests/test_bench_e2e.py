"""End to end: ``bench.runner.run`` launches a real gateway (and WhisperLive when installed) on
loopback and streams one short espeak recording. Slow: loads the real model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import launcher
from bench.data import write_wav
from bench.report import write_all
from bench.runner import Config, run
from bench.synth import compose, espeak
from bench.targets import parse_target

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed"),
]

SENTENCE = "Please call me back tomorrow morning about the invoice."


def one_recording(folder: Path) -> Path:
    folder.mkdir()
    write_wav(folder / "call.wav", compose([espeak(SENTENCE)]))
    (folder / "call.txt").write_text(SENTENCE)
    return folder


def check_target(result: dict[str, Any], not_applicable: set[str]) -> None:
    [level] = result["levels"]
    [session] = level["sessions"]
    assert session["error"] is None
    assert {"call", "tomorrow", "invoice"} <= set(session["transcript"].lower().replace(".", "").split())
    assert session["wer"]["wer"] < 0.5
    assert session["final_words"] >= 5
    for metric in {"first_interim", "word_first_seen", "word_final", "final", "settle"} - not_applicable:
        assert session["latency"][metric], metric
    assert level["load"]["cpu_s"] > 0
    assert level["load"]["rss_mb_peak"] > 50


async def test_bench_against_a_launched_gateway(tmp_path: Path) -> None:
    cfg = Config(
        targets=[parse_target("gateway")],
        out=tmp_path / "out",
        data=one_recording(tmp_path / "data"),
        device="cpu",
        offline_beams=[1],
        tail_s=1.0,
    )
    results = await run(cfg)
    [target] = results["targets"]
    check_target(target, set())
    [level] = target["levels"]
    assert level["latency"]["flush"] is not None  # the gateway answers Finalize
    assert level["billed_minutes"] > 0
    assert results["offline"][0]["wer"]["wer"] < 0.5
    paths = write_all(cfg.out, results)
    assert all(p.stat().st_size > 0 for p in paths)
    assert "| gateway | 1 |" in (cfg.out / "report.md").read_text()


async def test_bench_replays_calls_through_the_twilio_endpoint(tmp_path: Path) -> None:
    """The same recording as a Twilio call: 8 kHz mu-law in, results from the subscriber socket."""
    cfg = Config(
        targets=[parse_target("twilio")],
        out=tmp_path / "out",
        data=one_recording(tmp_path / "data"),
        device="cpu",
        offline_beams=[],
        tail_s=1.0,
    )
    results = await run(cfg)
    [target] = results["targets"]
    [level] = target["levels"]
    [session] = level["sessions"]
    assert session["error"] is None
    words = set(session["transcript"].lower().replace(".", "").split())
    assert {"call", "tomorrow"} <= words, session["transcript"]  # words that survive the narrow band
    assert session["final_words"] >= 4
    assert level["latency"]["word_final"], "final words were timed"
    assert sorted(target["not_applicable"]) == ["close_final", "close_metadata", "flush"]  # no Finalize/CloseStream


@pytest.mark.skipif(
    os.environ.get("BENCH_PEER_TESTS") != "1" or not (launcher.WL_VENV / "bin" / "python").exists(),
    reason="peer test is opt-in: python -m bench setup-peers, then BENCH_PEER_TESTS=1 "
    "(WhisperLive stalls on a busy 2-core machine, which would make CI flaky)",
)
async def test_bench_against_whisperlive(tmp_path: Path) -> None:
    cfg = Config(
        targets=[parse_target("whisperlive")],
        out=tmp_path / "out",
        data=one_recording(tmp_path / "data"),
        device="cpu",
        offline_beams=[],
        tail_s=1.0,
        wl_settle_s=10.0,  # WhisperLive has no flush; give a loaded machine time to finish
    )
    results = await run(cfg)
    [target] = results["targets"]
    assert "error" not in target
    check_target(target, {"speech_final", "utterance_end", "flush"})
