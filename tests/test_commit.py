"""LocalAgreement-2 commit policy, pure."""

from __future__ import annotations

import itertools

from gateway.core.commit import LocalAgreement, normalize
from gateway.core.types import Word


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    return [Word(t, start + i * step, start + i * step + 0.4, 0.9) for i, t in enumerate(text.split())]


def test_normalize_ignores_case_and_punctuation() -> None:
    assert normalize("Hello,") == normalize("hello") == "hello"


def test_words_commit_when_two_hypotheses_agree() -> None:
    policy = LocalAgreement()
    assert policy.update(words("the quick")) == []
    assert [w.text for w in policy.update(words("the quick brown"))] == ["the", "quick"]
    assert [w.text for w in policy.tail] == ["brown"]
    assert [w.text for w in policy.update(words("the quick brown fox"))] == ["brown"]


def test_disagreement_stops_the_commit() -> None:
    policy = LocalAgreement()
    policy.update(words("I scream for"))
    assert [w.text for w in policy.update(words("ice cream for you"))] == []
    assert [w.text for w in policy.update(words("ice cream for you all"))] == ["ice", "cream", "for", "you"]


def test_committed_words_are_not_committed_twice_after_retiming() -> None:
    policy = LocalAgreement()
    policy.update(words("one two three"))
    policy.update(words("one two three four"))
    assert [w.text for w in policy.take_committed()] == ["one", "two", "three"]
    # A re-decode repeats "three" with a slightly later time, then moves on.
    shifted = [Word("three", 1.05, 1.4, 0.9), Word("four", 1.5, 1.9, 0.9), Word("five", 2.0, 2.4, 0.9)]
    policy.update(shifted)
    policy.update([*shifted, Word("six", 2.5, 2.9, 0.9)])
    assert [w.text for w in policy.take_committed()] == ["four", "five"]


def test_commit_all_flushes_the_tail_once() -> None:
    policy = LocalAgreement()
    policy.update(words("hello world"))
    policy.commit_all(words("hello world again"))
    assert [w.text for w in policy.take_committed()] == ["hello", "world", "again"]
    assert policy.pending == []


def test_a_retimed_seam_word_is_not_repeated_and_new_words_are_kept() -> None:
    policy = LocalAgreement()
    first = [Word("what", 5.0, 5.3, 0.9), Word("your", 5.3, 5.6, 0.9), Word("country", 5.6, 6.2, 0.9)]
    policy.update(first)
    policy.update([*first, Word("can", 6.4, 6.6, 0.9)])
    assert [w.text for w in policy.take_committed()] == ["what", "your", "country"]
    # The next decode moves "country" to start before the seam minus the time tolerance
    # would allow... and after it: time alone would keep it twice.
    retimed = [Word("your", 5.5, 5.9, 0.9), Word("country", 6.15, 6.5, 0.9), Word("can", 6.5, 6.7, 0.9)]
    policy.update([*retimed, Word("do", 6.7, 6.9, 0.9)])
    policy.update([*retimed, Word("do", 6.7, 6.9, 0.9), Word("for", 6.9, 7.1, 0.9)])
    assert [w.text for w in policy.take_committed()] == ["can", "do"]


def test_words_at_the_window_edge_wait() -> None:
    policy = LocalAgreement()
    policy.update(words("for you"), horizon=0.85)
    assert [w.text for w in policy.update(words("for you"), horizon=0.85)] == ["for"], "'you' ends at 0.9: too close"
    assert [w.text for w in policy.update(words("for you"), horizon=2.0)] == ["you"]


def test_committed_times_never_go_back() -> None:
    policy = LocalAgreement()
    policy.commit_all([Word("one", 0.0, 1.0, 0.9)])
    # The next decode puts "two" slightly before "one" ended (inside the time tolerance).
    policy.commit_all([Word("two", 0.95, 1.3, 0.9), Word("three", 1.3, 1.6, 0.9)])
    words = policy.take_committed()
    assert [w.text for w in words] == ["one", "two", "three"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))


def test_a_seeded_policy_does_not_repeat_what_the_previous_engine_finalised() -> None:
    policy = LocalAgreement()
    policy.seed(
        [
            Word("meet", 9.0, 9.2, 1.0),
            Word("at", 9.2, 9.3, 1.0),
            Word("the", 9.3, 9.4, 1.0),
            Word("station", 9.4, 9.9, 1.0),
        ]
    )
    # The taking-over engine re-hears the end of "station" and writes the phrase again.
    heard = [Word("at", 9.9, 10.0, 0.5), Word("the", 10.0, 10.1, 0.5), Word("station", 10.1, 10.4, 0.6)]
    policy.commit_all([*heard, Word("at", 10.5, 10.6, 0.9), Word("seven", 10.6, 11.0, 0.9)])
    assert [w.text for w in policy.take_committed()] == ["at", "seven"]


def test_without_a_text_seam_a_word_is_new_when_most_of_it_follows_the_seam() -> None:
    def committed_one_two() -> LocalAgreement:
        policy = LocalAgreement()
        policy.update(words("one two"))
        policy.update(words("one two three"))
        assert [w.text for w in policy.take_committed()] == ["one", "two"]  # seam at 0.9
        return policy

    # No text match. "too" (a re-spelt repeat, mostly before the seam although it starts
    # within 0.1 s of it) goes; "later" (aligned early, mostly after the seam) stays.
    policy = committed_one_two()
    policy.update([Word("too", 0.82, 0.95, 0.9), Word("later", 0.96, 1.4, 0.9)])
    assert [w.text for w in policy.tail] == ["later"]
    policy = committed_one_two()
    policy.update([Word("later", 0.75, 1.4, 0.9)])
    assert [w.text for w in policy.tail] == ["later"]


def test_a_doubtful_word_waits_for_more_right_context() -> None:
    policy = LocalAgreement()
    sure = [Word("had", 0.0, 0.3, 0.9), Word("he", 0.3, 0.5, 0.3), Word("married", 0.5, 1.0, 0.9)]
    policy.update(sure)
    # "he" (probability 0.3) ends at 0.5, after the doubt horizon (0.4): only "had" commits.
    assert [w.text for w in policy.update(sure, horizon=2.0, doubt=(0.6, 0.4))] == ["had"]
    assert [w.text for w in policy.update(sure, horizon=2.0, doubt=(0.6, 1.0))] == ["he", "married"]


def test_a_sure_word_with_right_context_commits_from_one_decode() -> None:
    policy = LocalAgreement()
    hypothesis = [Word("ask", 0.0, 0.4, 0.95), Word("not", 0.5, 0.9, 0.95), Word("what", 1.0, 1.4, 0.95)]
    # "what" ends after the sure horizon; the first two commit with no earlier hypothesis at all.
    newly = policy.update(hypothesis, horizon=1.0, sure=(0.9, 1.0))
    assert [w.text for w in newly] == ["ask", "not"]
    assert [w.text for w in policy.tail] == ["what"]


def test_a_doubtful_word_still_needs_agreement_and_stops_the_sure_words_after_it() -> None:
    policy = LocalAgreement()
    hypothesis = [Word("had", 0.0, 0.3, 0.95), Word("he", 0.4, 0.6, 0.5), Word("married", 0.7, 1.0, 0.99)]
    newly = policy.update(hypothesis, horizon=2.0, sure=(0.9, 2.0))
    # Committed words are a prefix: "married" is sure, but "he" before it is not.
    assert [w.text for w in newly] == ["had"]
    assert [w.text for w in policy.update(hypothesis, horizon=2.0, sure=(0.9, 2.0))] == ["he", "married"]


def test_without_sure_a_single_decode_commits_nothing() -> None:
    policy = LocalAgreement()
    hypothesis = [Word("ask", 0.0, 0.4, 0.99), Word("not", 0.5, 0.9, 0.99)]
    assert policy.update(hypothesis, horizon=5.0) == []
    # A sure word must also end by the sure horizon, even inside the commit horizon.
    assert policy.update([Word("now", 1.0, 1.3, 0.99)], horizon=5.0, sure=(0.9, 1.0)) == []


def test_a_word_the_decodes_keep_changing_commits_at_its_deadline() -> None:
    policy = LocalAgreement()
    policy.update(words("as I push in"))
    # "light" disagrees with "I": LocalAgreement alone commits only "as"...
    assert [w.text for w in policy.update(words("as light pollution in their"), horizon=5.0)] == ["as"]
    assert policy.update(words("as my pollution in there"), horizon=5.0) == [], "still no agreement on it"
    # ...until a decode holds enough audio after it: words ending by the deadline commit unagreed;
    # those after it still need a second decode to agree ("there" / "their").
    newly = policy.update(words("as light pollution in their heyday"), horizon=5.0, deadline=1.0)
    assert [w.text for w in newly] == ["light", "pollution", "in"]
    assert [w.text for w in policy.tail] == ["their", "heyday"]
