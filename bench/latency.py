"""Latency bookkeeping: from a stream's timeline to latency samples (seconds).

Metrics (each a list of samples; see bench/README.md for the method):

- ``first_interim``: first non-empty result minus speech onset (from the audio).
- ``word_first_seen``: for each final word, the earliest result that showed it
  (interim or its own final) minus the word's end.
- ``word_final``: for each final word, its final's arrival minus the word's end.
- ``final``: for each final that has words, its arrival minus the end of its last
  word (how long after the speech it covers a final comes, whatever its length).
- ``speech_final``: a ``speech_final`` result minus the end of the last final word
  it closed (the target's own word time).
- ``speech_final_voice``: the same ``speech_final`` minus the end of the speech in the
  recording (:func:`bench.speech.speech_regions`, from the clean audio's energy) nearest
  to that last word: independent of the target's word times, which can end a word early.
- ``utterance_end``: an ``UtteranceEnd`` arrival minus the ``last_word_end`` it names.
- ``flush``: the last final after the end-of-stream signal (``Finalize``, or
  ``CloseStream`` with ``--ending close``) minus the moment that signal was sent.
- ``close_final``: the last final after ``CloseStream`` minus the moment it was
  sent (none when every final came before it, as after a ``Finalize``).
- ``close_metadata``: ``Metadata`` minus the moment ``CloseStream`` was sent
  (what an SDK's ``finish()`` waits for before it closes the socket).
- ``settle``: the last final minus the end of all sent audio, floored at 0
  (0 when nothing was pending): how long a caller waits for the whole transcript.

Word times are the *final* words' own ``start``/``end``. A final word is matched
to earlier interim words by position: an interim received after ``k`` final
words hypothesises the words that follow them, and is aligned to the next final
words with :class:`difflib.SequenceMatcher` over lightly normalized text. A
matched pair counts only if the two words lie within ``MATCH_GAP_S`` of each
other in the audio, so a word of the same text elsewhere in the utterance (a
second "the") is never taken for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from bench.timeline import Timeline, Update, Word

LATENCY_COLUMNS = (
    ("first_interim", "first interim"),
    ("word_first_seen", "word first seen"),
    ("word_final", "word final"),
    ("final", "final after its last word"),
    ("speech_final", "speech_final"),
    ("speech_final_voice", "speech_final after voice end"),
    ("flush", "Finalize → last final"),
    ("close_final", "CloseStream → last final"),
    ("close_metadata", "CloseStream → Metadata"),
    ("settle", "end of audio → last final"),
)
"""The latency metrics (keys of a level's ``latency``) and their column titles."""

METRICS = (
    "first_interim",
    "word_first_seen",
    "word_final",
    "final",
    "speech_final",
    "speech_final_voice",
    "utterance_end",
    "flush",
    "close_final",
    "close_metadata",
    "settle",
)

ALIGN_SLACK = 8
"""Extra final words beyond an interim's length that the interim may be aligned against."""

MATCH_GAP_S = 1.0
"""Largest gap in audio time between an interim word and the final word it is matched to."""

_NON_WORD = re.compile(r"[^\w']+")


def word_key(text: str) -> str:
    """Lower-cased word without punctuation, for matching interim and final words."""
    return _NON_WORD.sub("", text.lower())


@dataclass(frozen=True, slots=True)
class FinalWord:
    """A word of the final transcript, when its final arrived and when it was first shown."""

    word: Word
    final_arrival: float
    first_seen: float


@dataclass(slots=True)
class StreamLatency:
    """Latency samples of one stream plus the counts needed to read them."""

    samples: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})
    final_words: list[FinalWord] = field(default_factory=list)
    words_without_times: int = 0
    interim_matches: int = 0


def _final_word_positions(updates: list[Update]) -> list[tuple[Word, float]]:
    """Every final word in order with the arrival of the final that carried it."""
    out: list[tuple[Word, float]] = []
    for update in updates:
        if update.is_final:
            out.extend((w, update.arrival) for w in update.words)
    return out


def _gap(a: Word, b: Word) -> float:
    """Seconds between two words' time spans (0 when they overlap)."""
    return max(0.0, a.start - b.end, b.start - a.end)


def first_seen_times(updates: list[Update]) -> list[FinalWord]:
    """For each final word, the earliest arrival of a result that already showed it."""
    positions = _final_word_positions(updates)
    first = [arrival for _, arrival in positions]
    keys = [word_key(w.text) for w, _ in positions]
    committed = 0
    for update in updates:
        if update.is_final:
            committed += len(update.words)
            continue
        if not update.words:
            continue
        window_end = min(len(keys), committed + len(update.words) + ALIGN_SLACK)
        candidates = keys[committed:window_end]
        interim = [word_key(w.text) for w in update.words]
        matcher = SequenceMatcher(a=interim, b=candidates, autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                pos = committed + block.b + k
                if _gap(update.words[block.a + k], positions[pos][0]) <= MATCH_GAP_S:
                    first[pos] = min(first[pos], update.arrival)
    return [
        FinalWord(word=w, final_arrival=arrival, first_seen=seen)
        for (w, arrival), seen in zip(positions, first, strict=True)
    ]


def _speech_final_ends(updates: list[Update]) -> list[tuple[float, float]]:
    """``(arrival, last final word's end)`` of each ``speech_final`` that closed new words."""
    out: list[tuple[float, float]] = []
    last_end: float | None = None
    closed_end: float | None = None
    for update in updates:
        if update.is_final and update.words:
            last_end = max(w.end for w in update.words)
        if update.speech_final and last_end is not None and last_end != closed_end:
            out.append((update.arrival, last_end))
            closed_end = last_end
    return out


def voice_end(regions: Sequence[tuple[float, float]], word_end: float) -> float | None:
    """End of the speech region nearest to ``word_end`` (0 apart when it holds it); None without regions."""
    if not regions:
        return None
    return min(regions, key=lambda r: max(0.0, r[0] - word_end, word_end - r[1]))[1]


def close_final_samples(finals: list[Update], close_sent: float | None) -> list[float]:
    """The last final after ``CloseStream`` minus when it was sent: [] when none came after it."""
    if close_sent is None:
        return []
    after = [u.arrival for u in finals if u.arrival >= close_sent]
    return [max(after) - close_sent] if after else []


def stream_latency(
    timeline: Timeline, speech_onset: float | None, voice: Sequence[tuple[float, float]] = ()
) -> StreamLatency:
    """Compute every latency sample of one stream (see the module docstring); ``voice``: the
    recording's speech regions (stream seconds), for ``speech_final_voice``."""
    result = StreamLatency()
    updates = sorted(timeline.updates, key=lambda u: u.arrival)
    samples = result.samples

    shown = [u for u in updates if u.transcript.strip()]
    if shown and speech_onset is not None:
        samples["first_interim"].append(shown[0].arrival - speech_onset)

    result.final_words = first_seen_times(updates)
    for fw in result.final_words:
        samples["word_first_seen"].append(fw.first_seen - fw.word.end)
        samples["word_final"].append(fw.final_arrival - fw.word.end)
        if fw.first_seen < fw.final_arrival:
            result.interim_matches += 1
    result.words_without_times = sum(len(u.transcript.split()) for u in updates if u.is_final and not u.words)

    samples["final"].extend(u.arrival - max(w.end for w in u.words) for u in updates if u.is_final and u.words)
    for arrival, last_end in _speech_final_ends(updates):
        samples["speech_final"].append(arrival - last_end)
        end = voice_end(voice, last_end)
        if end is not None:
            samples["speech_final_voice"].append(arrival - end)
    samples["utterance_end"].extend(arrival - last_end for arrival, last_end in timeline.utterance_ends)

    finals = [u for u in updates if u.is_final]
    if timeline.end_sent is not None:
        after = [u.arrival for u in finals if u.arrival >= timeline.end_sent]
        if after:
            samples["flush"].append(max(after) - timeline.end_sent)
    samples["close_final"].extend(close_final_samples(finals, timeline.close_sent))
    if timeline.close_sent is not None and timeline.metadata_at is not None:
        samples["close_metadata"].append(max(0.0, timeline.metadata_at - timeline.close_sent))
    if finals and timeline.sent_s > 0:
        samples["settle"].append(max(0.0, finals[-1].arrival - timeline.sent_s))
    return result
