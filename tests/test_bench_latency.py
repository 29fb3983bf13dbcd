"""Latency bookkeeping on hand-made timelines (no network, no model, no clock)."""

from __future__ import annotations

import pytest

from bench.latency import first_seen_times, stream_latency, word_key
from bench.timeline import Timeline, Update, Word


def words(*items: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(t, s, e) for t, s, e in items)


def interim(arrival: float, *items: tuple[str, float, float]) -> Update:
    ws = words(*items)
    return Update(arrival=arrival, is_final=False, transcript=" ".join(w.text for w in ws), words=ws)


def final(
    arrival: float, *items: tuple[str, float, float], speech_final: bool = False, from_finalize: bool = False
) -> Update:
    ws = words(*items)
    return Update(
        arrival=arrival,
        is_final=True,
        transcript=" ".join(w.text for w in ws),
        words=ws,
        speech_final=speech_final,
        from_finalize=from_finalize,
    )


THE, QUICK, BROWN = ("The", 0.5, 0.7), ("quick", 0.7, 1.0), ("brown", 1.0, 1.3)
FOX = ("fox.", 1.3, 1.6)


def two_utterances() -> Timeline:
    tl = Timeline(audio_s=4.0, sent_s=5.0)
    tl.updates = [
        interim(1.2, ("the", 0.5, 0.7), ("quick", 0.7, 1.0)),
        interim(1.7, ("the", 0.5, 0.7), ("quick", 0.7, 1.0), ("round", 1.0, 1.3)),  # "brown" misheard
        final(2.4, THE, QUICK, BROWN, FOX, speech_final=True),
        interim(3.5, ("jumps", 2.5, 2.9)),  # after the final: aligned to the next final's words
        final(4.2, ("jumps", 2.5, 2.9), ("over", 2.9, 3.2), speech_final=True),
        final(5.3, from_finalize=True),  # empty Finalize reply
    ]
    tl.end_sent = 5.0
    tl.utterance_ends = [(2.9, 1.6)]
    return tl


def test_word_key_ignores_case_and_punctuation() -> None:
    assert word_key("Fox.") == word_key("fox") == "fox"
    assert word_key("don't,") == "don't"


def test_first_seen_is_the_earliest_interim_that_showed_the_final_word() -> None:
    seen = first_seen_times(two_utterances().updates)
    assert [fw.word.text for fw in seen] == ["The", "quick", "brown", "fox.", "jumps", "over"]
    assert [fw.first_seen for fw in seen] == [1.2, 1.2, 2.4, 2.4, 3.5, 4.2]
    assert [fw.final_arrival for fw in seen] == [2.4, 2.4, 2.4, 2.4, 4.2, 4.2]


def test_interim_positions_start_after_the_words_already_final() -> None:
    # "the" in the second utterance's interim must not match "The" of the first final
    updates = [
        final(1.0, ("the", 0.1, 0.3), ("end", 0.3, 0.6)),
        interim(2.0, ("the", 1.1, 1.3)),
        final(3.0, ("the", 1.1, 1.3), ("start", 1.3, 1.6)),
    ]
    assert [fw.first_seen for fw in first_seen_times(updates)] == [1.0, 1.0, 2.0, 3.0]


def test_a_same_text_word_far_away_in_the_audio_is_not_a_match() -> None:
    # the interim's "the" (0.8 s) stands where the final has "her"; the final's "the" is at 3.0 s
    updates = [
        interim(1.0, ("ask", 0.5, 0.7), ("the", 0.7, 0.9)),
        final(4.0, ("ask", 0.5, 0.7), ("her", 0.7, 0.9), ("to", 0.9, 1.1), ("the", 3.0, 3.2)),
    ]
    assert [fw.first_seen for fw in first_seen_times(updates)] == [1.0, 4.0, 4.0, 4.0]


def test_interims_with_an_inserted_word_still_align() -> None:
    updates = [
        interim(1.0, ("uh", 0.0, 0.2), ("hello", 0.2, 0.5)),
        final(2.0, ("hello", 0.2, 0.5), ("there", 0.5, 0.9)),
    ]
    assert [fw.first_seen for fw in first_seen_times(updates)] == [1.0, 2.0]


def test_stream_latency_samples() -> None:
    result = stream_latency(two_utterances(), speech_onset=0.45)
    s = result.samples
    assert s["first_interim"] == pytest.approx([1.2 - 0.45])
    assert s["word_first_seen"] == pytest.approx([0.5, 0.2, 1.1, 0.8, 0.6, 1.0])
    assert s["word_final"] == pytest.approx([1.7, 1.4, 1.1, 0.8, 1.3, 1.0])
    assert s["final"] == pytest.approx([0.8, 1.0])
    assert s["speech_final"] == pytest.approx([0.8, 1.0])
    assert s["utterance_end"] == pytest.approx([1.3])
    assert s["flush"] == pytest.approx([0.3])
    assert s["settle"] == pytest.approx([0.3])
    assert result.interim_matches == 3
    assert result.words_without_times == 0


def test_speech_final_without_new_words_is_not_counted_twice() -> None:
    tl = Timeline(audio_s=2.0, sent_s=2.0)
    tl.updates = [final(1.0, ("hi", 0.2, 0.5), speech_final=True), final(1.5, speech_final=True)]
    assert stream_latency(tl, None).samples["speech_final"] == pytest.approx([0.5])


def test_no_onset_no_first_interim_and_finals_without_words_are_counted() -> None:
    tl = Timeline(audio_s=2.0, sent_s=3.0)
    tl.updates = [Update(arrival=2.0, is_final=True, transcript="two words")]
    result = stream_latency(tl, None)
    assert result.samples["first_interim"] == []
    assert result.samples["word_final"] == []
    assert result.words_without_times == 2
    assert result.samples["settle"] == [0.0]  # the final came before the audio ended
    assert result.samples["flush"] == []  # no Finalize was sent


def test_updates_are_taken_in_arrival_order() -> None:
    tl = Timeline(audio_s=2.0, sent_s=2.0)
    tl.updates = [final(2.0, ("a", 0.1, 0.4)), interim(1.0, ("a", 0.1, 0.4))]
    assert stream_latency(tl, 0.0).samples["word_first_seen"] == pytest.approx([0.6])


def test_final_text_joins_finals_only() -> None:
    assert two_utterances().final_text() == "The quick brown fox. jumps over"
