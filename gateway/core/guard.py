"""Filters that keep Whisper from writing text where nobody spoke.

Pure functions over decoded segments. Whisper on silence or noise tends to
produce a confident-looking phrase ("Thank you.") with a high no-speech
probability, or loops on one word. These rules follow Whisper's own
thresholds (no_speech_prob with avg_logprob, compression ratio) and add a
repetition guard.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.commit import normalize
from gateway.core.types import Word


@dataclass(frozen=True, slots=True)
class GuardConfig:
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    max_repeats: int = 4
    min_word_probability: float = 0.0


def keep_segment(no_speech_prob: float, avg_logprob: float, compression_ratio: float, config: GuardConfig) -> bool:
    """Whisper's rule: silent if likely no speech *and* not confidently decoded."""
    if no_speech_prob > config.no_speech_threshold and avg_logprob < config.log_prob_threshold:
        return False
    if compression_ratio > config.compression_ratio_threshold:
        return False
    return avg_logprob >= config.log_prob_threshold - 0.5


LONG_PHRASE = 5
"""Phrases of this many words or more never repeat back to back in real speech, but
Whisper loops on a sentence it has just heard (most often when the window re-reads
audio already finalised), with word times squeezed into the same span."""


def cut_repetitions(words: list[Word], max_repeats: int, longest: int = 16) -> list[Word]:
    """Cut a hypothesis where a 1- to 4-word phrase repeats more than ``max_repeats`` times,
    or a phrase of ``LONG_PHRASE`` to ``longest`` words comes twice in a row (the repeat is cut)."""
    keys = [normalize(w.text) for w in words]
    for size in range(LONG_PHRASE, longest + 1):
        for i in range(len(keys) - 2 * size + 1):
            phrase = keys[i : i + size]
            if phrase == keys[i + size : i + 2 * size] and not _periodic(phrase):
                return words[: i + size]
    for size in range(1, 5):
        for i in range(len(keys) - size + 1):
            phrase = keys[i : i + size]
            run, j = 1, i + size
            while keys[j : j + size] == phrase:
                run, j = run + 1, j + size
            if run > max_repeats:
                return words[: i + size * max_repeats]
    return words


def _periodic(phrase: list[str]) -> bool:
    """Whether the phrase is a short phrase repeated (left to the ``max_repeats`` rule)."""
    return any(all(phrase[j] == phrase[j + d] for j in range(len(phrase) - d)) for d in range(1, 5))


def cut_token_loop(tokens: list[int], max_repeats: int = 3, longest: int = 8) -> list[int]:
    """Cut a token sequence where an n-gram (n <= ``longest``) repeats more than ``max_repeats`` times.

    Greedy decoding sometimes loops inside one word ("Renocleocleocleo..."),
    which a word-level guard cannot see.
    """
    for i in range(len(tokens)):
        for size in range(1, longest + 1):
            phrase = tokens[i : i + size]
            if len(phrase) < size:
                break
            run, j = 1, i + size
            while tokens[j : j + size] == phrase:
                run, j = run + 1, j + size
            if run > max_repeats:
                return tokens[: i + size]
    return tokens


def cut_phrase_loop(tokens: list[int], shortest: int = 4) -> list[int]:
    """Cut a token sequence after the first phrase of ``shortest`` or more tokens that comes
    twice back to back: the repeat and everything after it go.

    For a window that fails the compression-ratio test: greedy decoding that
    loops on a sentence ("so we went home so we went home so we ...") has
    usually heard that sentence once, so the first copy is kept instead of
    dropping the whole window.
    """
    n = len(tokens)
    for i in range(n):
        for size in range(shortest, (n - i) // 2 + 1):
            if tokens[i : i + size] == tokens[i + size : i + 2 * size]:
                return tokens[: i + size]
    return tokens
