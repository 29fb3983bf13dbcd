"""Batched decoding: many streams' windows in one model call, real tiny.en."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from gateway.core.types import DecodeRequest
from gateway.engines import models
from gateway.engines.batched import BatchedWhisperBackend, generation_limit
from gateway.engines.whisper import WhisperOptions, token_budget
from tests import speech
from tests.client import wer

pytestmark = pytest.mark.model

SAYINGS = ("The quick brown fox jumps over the lazy dog.", "We will meet at the station at seven o'clock.")


@pytest.fixture(scope="module")
def batched() -> Iterator[BatchedWhisperBackend]:
    return BatchedWhisperBackend(WhisperOptions(model_path=str(models.tiny_en()), max_batch=8))


def window(text: str) -> np.ndarray:
    pcm = np.concatenate([speech.silence(0.3), speech.espeak(text), speech.silence(0.3)])
    return pcm.astype(np.float32) / 32768.0


def test_one_call_decodes_every_stream_on_its_own(batched: BatchedWhisperBackend) -> None:
    requests = [
        DecodeRequest(window(SAYINGS[0]), offset=12.0, prompt=""),
        DecodeRequest(window(SAYINGS[1]), offset=3.0, prompt="Good morning, this is the front desk speaking."),
        DecodeRequest(np.zeros(16000 * 2, np.float32), offset=0.0),
        DecodeRequest(np.zeros(100, np.float32), offset=0.0),
    ]
    results = batched.decode_batch(requests)
    assert len(results) == 4
    first, second, silent, tiny = (" ".join(w.text for w in r.words) for r in results)
    assert wer(SAYINGS[0], first) < 0.5, first
    assert wer(SAYINGS[1], second) < 0.5, second
    assert silent == "" and tiny == ""
    assert 12.0 <= results[0].words[0].start < 13.5, "word times are shifted to stream time"
    assert all(isinstance(w.start, float) for w in results[1].words)


def test_batched_agrees_with_decoding_alone(batched: BatchedWhisperBackend) -> None:
    requests = [DecodeRequest(window(s), offset=0.0) for s in SAYINGS]
    together = [[w.text for w in r.words] for r in batched.decode_batch(requests)]
    alone = [[w.text for w in batched.decode_batch([r])[0].words] for r in requests]
    assert together == alone


def test_hotwords_bias_each_row_of_a_batch(batched: BatchedWhisperBackend) -> None:
    """Keyterms travel as hotwords in a batch too: the row that has them spells the names right."""
    rare = "Ask Siobhan to send the contract to Tomasz."
    audio = window(rare)
    plain, biased = batched.decode_batch(
        [
            DecodeRequest(audio, offset=0.0, prompt="Good morning."),
            DecodeRequest(audio, offset=0.0, prompt="Good morning.", hotwords="Siobhan, Tomasz"),
        ]
    )
    heard = " ".join(w.text for w in biased.words)
    assert "Siobhan" in heard or "Tomasz" in heard, heard
    assert wer(rare, heard) <= wer(rare, " ".join(w.text for w in plain.words)), heard


def test_the_token_budget_holds_fast_speech_whole(batched: BatchedWhisperBackend) -> None:
    """The generation limit that stops a looping window early leaves fast speech its every word."""
    text = (
        "Please check the seventh invoice against the purchase order, then send both copies to "
        "accounting before the end of the week, and call me if the totals do not match."
    )
    audio = np.concatenate([speech.espeak(text, speed=260), speech.silence(0.3)]).astype(np.float32) / 32768.0
    heard = " ".join(w.text for w in batched.decode_batch([DecodeRequest(audio, offset=0.0)])[0].words)
    assert wer(text, heard) < 0.4, heard
    assert heard.rstrip(" .").lower().endswith("match"), heard


def test_generation_limit_leaves_room_after_the_prompt() -> None:
    # CTranslate2 generates at most half of max_length, and counts the prompt in it.
    for window_s, prompt in ((0.3, 3), (5.0, 3), (5.0, 99), (30.0, 99)):
        limit = generation_limit(window_s, prompt, 448)
        room = min(limit // 2, limit - prompt)
        assert room >= min(token_budget(window_s), 448 // 2 - prompt), (window_s, prompt, limit)
    assert generation_limit(0.3, 3, 448) < 60, "a short window cannot run long"
    assert generation_limit(60.0, 3, 448) == 448
