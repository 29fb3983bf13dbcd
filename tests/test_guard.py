"""Hallucination guards, pure."""

from __future__ import annotations

from gateway.core.guard import GuardConfig, cut_phrase_loop, cut_repetitions, cut_token_loop, keep_segment
from gateway.core.types import Word


def ws(text: str) -> list[Word]:
    return [Word(t, i * 0.3, i * 0.3 + 0.2, 0.9) for i, t in enumerate(text.split())]


def test_word_loops_are_cut_after_max_repeats() -> None:
    looped = ws("thank you thank you thank you thank you thank you thank you for calling")
    assert [w.text for w in cut_repetitions(looped, 2)] == ["thank", "you", "thank", "you"]
    normal = ws("that that is is that that is not is not")
    assert cut_repetitions(normal, 4) == normal


def test_token_loops_inside_a_word_are_cut() -> None:
    assert cut_token_loop([5, 6, 7, 8, 7, 8, 7, 8, 7, 8, 7, 8, 9]) == [5, 6, 7, 8]
    assert cut_token_loop([1, 2, 3, 1, 2, 3]) == [1, 2, 3, 1, 2, 3]


def test_whispers_silence_rule() -> None:
    config = GuardConfig()
    assert not keep_segment(0.9, -1.5, 1.2, config), "likely silence and unsure"
    assert keep_segment(0.9, -0.3, 1.2, config), "confident text survives a high no-speech score"
    assert not keep_segment(0.1, -0.2, 3.0, config), "too repetitive"
    assert keep_segment(0.1, -0.4, 1.5, config)


def test_a_sentence_said_twice_in_a_row_is_cut_to_once() -> None:
    looped = ws("the box was still on the side of the truck the box was still on the side of the truck")
    assert " ".join(w.text for w in cut_repetitions(looped, 4)) == "the box was still on the side of the truck"
    speech = ws("we will meet at the station and then we will go home")  # repeats words, not a phrase twice
    assert cut_repetitions(speech, 4) == speech


def test_a_token_phrase_loop_keeps_its_first_copy() -> None:
    loop = [1, 2, 3, 4, 5, 6] + [7, 8, 9, 10] * 3 + [7, 8]
    assert cut_phrase_loop(loop) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert cut_phrase_loop([1, 2, 1, 2, 3]) == [1, 2, 1, 2, 3], "short repeats are left to the other rules"
