"""bench tune: grid parsing, grid points, the frontier and its table; the encoder length rule."""

from __future__ import annotations

import numpy as np
import pytest

from bench.simulate import replay
from bench.tune import GridError, Row, combinations, frontier, parse_grid, table, transcriber_config
from gateway.core.transcriber import TranscriberConfig
from gateway.core.types import DecodeRequest, DecodeResult, Word
from gateway.engines.batched import encoder_frames
from tests import speech


def test_grid_points_are_every_combination() -> None:
    grid = parse_grid(["interim-step-ms=300,500", "--commit-edge-ms=600"])
    assert combinations(grid) == [
        {"interim-step-ms": "300", "commit-edge-ms": "600"},
        {"interim-step-ms": "500", "commit-edge-ms": "600"},
    ]
    assert combinations({}) == [{}]


@pytest.mark.parametrize(
    "item",
    [
        "nope=1",
        "interim-step-ms",
        "interim-step-ms=",
        "interim-step-ms=300,soon",
        "vad-resume-ms=soon",
        "vad-strong-db=nan",
    ],
)
def test_bad_grid_items_are_refused(item: str) -> None:
    with pytest.raises(GridError):
        parse_grid([item])


def test_a_point_sets_the_transcriber_knobs() -> None:
    config = transcriber_config({"interim-step-ms": "800", "commit-edge-ms": "450", "final-after-ms": "-1"})
    assert (config.interim_step_s, config.commit_edge_s, config.final_after_s) == (0.8, 0.45, None)
    assert config.policy.step_s == 0.8 and config.policy.edge_s == 0.45


def test_a_point_sets_the_first_step_interim_edge_and_doubt() -> None:
    point = {
        "first-step-ms": "150",
        "interim-edge-ms": "100",
        "doubt-probability": "0.5",
        "doubt-edge-ms": "1200",
        "doubt-window-ms": "4000",
    }
    config = transcriber_config(point)
    assert config.interim_edge_s == 0.1
    policy = config.policy
    assert (policy.first_step_s, policy.doubt_probability, policy.doubt_edge_s, policy.doubt_window_s) == (
        0.15,
        0.5,
        1.2,
        4.0,
    )


def _row(name: str, wer: float, p50: float, cpu: float) -> Row:
    return Row({"k": name}, wer, p50, p50 * 2, 0.5, cpu, 1.0)


def test_frontier_drops_dominated_rows() -> None:
    rows = [_row("a", 0.05, 1.0, 0.3), _row("b", 0.06, 1.1, 0.4), _row("c", 0.07, 0.8, 0.2)]
    assert frontier(rows) == [True, False, True]
    text = table(rows, offline_wer=0.04)
    assert "+1.0 pts" in text and text.index("| a |") < text.index("| c |")


def test_encoder_reads_the_window_plus_pad_at_least_the_minimum() -> None:
    fps = 100.0
    assert encoder_frames([300], None, 10.0, 3000, fps) == 3000
    assert encoder_frames([300], 1.0, 10.0, 3000, fps) == 1000
    assert encoder_frames([1401, 200], 1.0, 10.0, 3000, fps) == 1502  # longest window, made even
    assert encoder_frames([2950], 1.0, 10.0, 3000, fps) == 3000


class _Backend:
    """Hears one word in any window that reaches past 1.0 s."""

    name = "fake"
    max_batch = 1

    def decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        return [DecodeResult((Word("hello", 1.0, 1.3, 0.9),) if r.offset + r.duration > 1.4 else ()) for r in requests]


def test_replay_finalises_what_was_said_on_a_stream_clock() -> None:
    pcm = np.concatenate([speech.silence(0.8), speech.espeak("hello"), speech.silence(0.5)])
    out = replay(pcm.astype(np.float32) / 32768.0, TranscriberConfig(), _Backend())
    assert out.text == "hello"
    assert out.decodes >= 2 and out.first_result is not None
    assert all(latency > 0 for latency in out.word_final_latencies())  # a final never precedes its word


def test_replay_reports_the_speech_final_delay_on_a_fixed_decode_clock() -> None:
    """decode_s: results land that long after a decode starts, so runs on a loaded machine compare."""
    pcm = np.concatenate([speech.silence(0.8), speech.espeak("hello"), speech.silence(1.5)])
    audio = pcm.astype(np.float32) / 32768.0
    a = replay(audio, TranscriberConfig(), _Backend(), decode_s=0.1)
    b = replay(audio, TranscriberConfig(), _Backend(), decode_s=0.1)
    assert a.speech_finals and a.speech_finals == b.speech_finals
    (delay,) = a.speech_final_delays()
    arrival, span_end = a.speech_finals[0]
    assert arrival >= span_end - 1e-9  # the endpoint's final never comes before the endpoint
    assert delay == pytest.approx(arrival - 1.3)  # after the fake model's last word end
