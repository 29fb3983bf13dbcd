"""Latency bookkeeping on hand-made timelines (no network, no model, no clock)."""

from __future__ import annotations

import pytest

from bench.latency import first_seen_times, stream_latency, voice_end, word_key
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


def test_speech_final_after_voice_end_uses_the_region_nearest_the_last_word() -> None:
    # The target ends "fox" at 1.6 s but the voice goes on to 1.9 s (a word timed early);
    # "over" ends at 3.2 s in a gap, 0.1 s before the region that follows it.
    voice = ((0.1, 1.9), (3.3, 3.6), (5.0, 5.5))
    s = stream_latency(two_utterances(), None, voice).samples
    assert s["speech_final"] == pytest.approx([0.8, 1.0])
    assert s["speech_final_voice"] == pytest.approx([2.4 - 1.9, 4.2 - 3.6])
    assert stream_latency(two_utterances(), None).samples["speech_final_voice"] == []


def test_voice_end() -> None:
    assert voice_end((), 1.0) is None
    assert voice_end(((0.0, 0.9), (1.3, 2.0)), 1.0) == 0.9
    assert voice_end(((0.0, 0.9), (1.05, 2.0)), 1.0) == 2.0
    assert voice_end(((0.0, 0.9), (0.95, 2.0)), 1.0) == 2.0


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


def test_close_ending_gives_close_to_last_final_and_to_metadata() -> None:
    """--ending close: CloseStream right after the audio; the pending words' final and Metadata after it."""
    tl = Timeline(audio_s=2.0, sent_s=3.0)
    tl.updates = [final(2.0, ("hi", 0.2, 0.5), speech_final=True), final(3.4, ("there", 2.6, 2.9))]
    tl.end_sent = tl.close_sent = 3.0
    tl.metadata_at = 3.5
    s = stream_latency(tl, None).samples
    assert s["close_final"] == pytest.approx([0.4])
    assert s["close_metadata"] == pytest.approx([0.5])
    assert s["flush"] == pytest.approx([0.4])  # CloseStream is the end-of-stream signal here
    assert s["speech_final"] == pytest.approx([1.5])


def test_nothing_pending_at_close_gives_no_close_final_sample() -> None:
    tl = two_utterances()
    tl.close_sent, tl.metadata_at = 5.4, 5.45
    s = stream_latency(tl, None).samples
    assert s["close_final"] == []
    assert s["close_metadata"] == pytest.approx([0.05])
    assert s["flush"] == pytest.approx([0.3])


def test_no_close_no_metadata_samples() -> None:
    s = stream_latency(two_utterances(), None).samples
    assert s["close_final"] == [] and s["close_metadata"] == []


def test_metadata_arrival_is_recorded() -> None:
    from bench.dg_protocol import apply_message

    tl = Timeline(audio_s=1.0)
    assert apply_message(tl, '{"type": "Metadata", "duration": 1.5}', 2.25) == "Metadata"
    assert tl.metadata_at == 2.25 and tl.billed_s == 1.5


def test_streamed_audio_has_its_tail_and_the_noise_level_asked_for() -> None:
    import numpy as np

    from bench.noise import streamed

    audio = np.zeros(16000, np.float32)
    plain = streamed(audio, tail_s=0.5)
    assert len(plain) == 24000 and not plain.any()
    noisy = streamed(audio, tail_s=0.5, noise_dbfs=-45.0)
    assert len(noisy) == 24000
    tail_rms = float(np.sqrt(np.mean(noisy[16000:] ** 2)))
    assert 20 * np.log10(tail_rms) == pytest.approx(-45.0, abs=0.5)  # the tail is noisy too
    assert np.array_equal(noisy, streamed(audio, tail_s=0.5, noise_dbfs=-45.0))  # reproducible
