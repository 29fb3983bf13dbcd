"""Percentiles, summaries and WER scoring."""

from __future__ import annotations

import numpy as np
import pytest

from bench.stats import cdf, percentile, summarize
from bench.wer import normalize, score


@pytest.mark.parametrize("values", [[1.0], [3.0, 1.0, 2.0], [0.5, 0.1, 9.0, 2.2, 7.7, 1.0, 3.3]])
@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match="q must"):
        percentile([1.0], 101)


def test_summarize() -> None:
    assert summarize([]) is None
    s = summarize(range(1, 101))
    assert s is not None
    assert (s.n, s.min, s.max, s.mean) == (100, 1, 100, 50.5)
    assert s.p50 == pytest.approx(50.5)
    assert s.p99 == pytest.approx(99.01)


def test_cdf() -> None:
    xs, ys = cdf([3.0, 1.0, 2.0, 2.0])
    assert xs == [1.0, 2.0, 2.0, 3.0]
    assert ys == [0.25, 0.5, 0.75, 1.0]


def test_normalize_is_whisper_english() -> None:
    assert normalize("Hello, World!  It's Mr. Smith, colour.") == "hello world it is mister smith color"
    assert normalize("twenty five") == "25"


def test_score_ignores_case_and_punctuation() -> None:
    result = score([("Hello, world.", "hello world")])
    assert result is not None
    assert result.wer == 0.0
    assert result.hits == 2


def test_score_is_corpus_level_not_a_mean_of_files() -> None:
    # 1 error in 1 word + 0 errors in 9 words: corpus WER is 1/10, a mean of files would be 0.5
    result = score([("yes", "no"), ("the cat sat on the mat in the sun", "The cat sat on the mat, in the sun.")])
    assert result is not None
    assert result.reference_words == 10
    assert result.substitutions == 1
    assert result.wer == pytest.approx(0.1)


def test_score_counts_insertions_and_deletions_and_empty_hypotheses() -> None:
    result = score([("cat dog", "cat dog emu fox"), ("owl yak bee", "")])
    assert result is not None
    assert (result.substitutions, result.deletions, result.insertions) == (0, 3, 2)
    assert result.wer == pytest.approx(5 / 5)


def test_score_skips_empty_references() -> None:
    assert score([("", "anything")]) is None
    result = score([("!?", "x"), ("word", "word")])
    assert result is not None
    assert (result.pairs, result.skipped, result.wer) == (1, 1, 0.0)
