"""Deepgram's text options on recognised words: ``numerals``, ``redact``, ``profanity_filter``.

Pure: a tuple of :class:`~gateway.core.types.Word` in, a tuple out, times kept.
Applied to every Results message (interim and final) before it is built, so
what a client sees, what the store keeps and what a callback receives are the
same text. The order is numerals, then redaction, then the profanity filter.

* ``numerals``: runs of number words become digits (text2num's ``alpha2digit``,
  English): "twenty five" -> "25". A run that becomes one number is one word
  spanning the run's time; one that stays several numbers keeps one word each.
* ``redact``: digit sequences are found on the words as numerals would write
  them (so "four one one one ..." is caught with ``numerals`` off too); each
  redacted word becomes one asterisk per digit ("*" for a spoken digit), as
  Deepgram's live redaction writes them. ``numbers``: 3+ digits in a row;
  ``pci``: 13-19 digits (a card number), or 3-4 digits after "cvv", "cvc",
  "security code" or "expires"/"expiration"; ``ssn``: 9 digits.
* ``profanity_filter``: a word of a small English list keeps its first
  letter and its punctuation, the rest become asterisks ("s***,").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from gateway.core.types import Word

_EDGE = re.compile(r"^([^\w']*)(.*?)([^\w']*)$", re.DOTALL)

_NUMBER_TEXT = """zero oh one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million
billion and"""
_NUMBER_WORDS = frozenset(_NUMBER_TEXT.split())
"""Words a spoken number is made of ("and" only inside one: "one hundred and five")."""

_PROFANE_TEXT = """fuck fucks fucked fucker fuckers fucking motherfucker motherfuckers motherfucking shit shits shitty
shitting bullshit cunt cunts bitch bitches bastard bastards asshole assholes dick dicks dickhead cock cocks pussy
pussies twat wanker wankers slut sluts whore whores"""
PROFANE = frozenset(_PROFANE_TEXT.split())
"""English words the filter masks. Mild words ("damn", "hell") are kept, as Deepgram keeps them."""

_PCI_CUES = ("cvv", "cvc", "security code", "expires", "expiration", "expiry")


@dataclass(frozen=True, slots=True)
class Formatting:
    """Which transforms a stream asked for."""

    numerals: bool = False
    profanity_filter: bool = False
    redact: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.numerals or self.profanity_filter or bool(self.redact)


def _split(text: str) -> tuple[str, str, str]:
    match = _EDGE.match(text)
    assert match is not None  # the pattern matches any string
    return match.group(1), match.group(2), match.group(3)


def _is_number_word(core: str) -> bool:
    lowered = core.lower()
    return lowered in _NUMBER_WORDS or all(part in _NUMBER_WORDS for part in lowered.split("-") if part)


@lru_cache(maxsize=1024)
def _alpha2digit(text: str) -> str:
    from text_to_num import alpha2digit  # type: ignore[import-untyped]

    result: str = alpha2digit(text, "en")
    return result


def _runs(words: Sequence[Word]) -> list[tuple[int, int]]:
    """[start, end) index ranges of number-word runs ("and" never starts or ends one)."""
    runs = []
    i = 0
    while i < len(words):
        core = _split(words[i].text)[1]
        if core.lower() != "and" and _is_number_word(core):
            j = i + 1
            while j < len(words) and _is_number_word(_split(words[j].text)[1]):
                # A run ends at punctuation after a word ("two, three" are two numbers).
                if _split(words[j - 1].text)[2]:
                    break
                j += 1
            while j - 1 > i and _split(words[j - 1].text)[1].lower() == "and":
                j -= 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    return runs


def numerals(words: Sequence[Word]) -> tuple[Word, ...]:
    """Number words as digits; times and the run's outer punctuation kept."""
    out: list[Word] = []
    last = 0
    for start, end in _runs(words):
        out.extend(words[last:start])
        run = words[start:end]
        lead, trail = _split(run[0].text)[0], _split(run[-1].text)[2]
        spoken = " ".join(_split(w.text)[1] for w in run)
        tokens = _alpha2digit(spoken).split()
        if tokens == spoken.split():
            out.extend(run)  # nothing converted ("one", "oh")
        elif len(tokens) == len(run):
            out.extend(_with_core(w, t) for w, t in zip(run, tokens, strict=True))
        else:
            # Spread the tokens over the run: token k covers words [k*n/m, (k+1)*n/m).
            n, m = len(run), len(tokens)
            made = []
            for k, token in enumerate(tokens):
                first, stop = k * n // m, max(k * n // m + 1, (k + 1) * n // m)
                covered = run[first:stop]
                probability = min(w.probability for w in covered)
                made.append(Word(token, covered[0].start, covered[-1].end, probability))
            made[0] = replace(made[0], text=lead + made[0].text)
            made[-1] = replace(made[-1], text=made[-1].text + trail)
            out.extend(made)
        last = end
    out.extend(words[last:])
    return tuple(out)


def _with_core(word: Word, core: str) -> Word:
    lead, _old, trail = _split(word.text)
    return replace(word, text=lead + core + trail)


def _digits(word: Word) -> str:
    return re.sub(r"\D", "", _split(word.text)[1])


def _numeric(word: Word) -> bool:
    core = _split(word.text)[1]
    return bool(core) and bool(re.fullmatch(r"[\d,./-]+", core)) and any(c.isdigit() for c in core)


def _redacted_spans(words: Sequence[Word], kinds: Sequence[str]) -> list[tuple[int, int]]:
    """Index ranges of ``words`` (digit form) to redact."""
    spans = []
    i = 0
    while i < len(words):
        if not _numeric(words[i]):
            i += 1
            continue
        j = i + 1
        while j < len(words) and _numeric(words[j]):
            j += 1
        count = sum(len(_digits(w)) for w in words[i:j])
        before = " ".join(_split(w.text)[1].lower() for w in words[max(0, i - 3) : i])
        if (
            ("numbers" in kinds and count >= 3)
            or ("pci" in kinds and (13 <= count <= 19 or (3 <= count <= 4 and any(c in before for c in _PCI_CUES))))
            or ("ssn" in kinds and count == 9)
        ):
            spans.append((i, j))
        i = j
    return spans


def redact(words: Sequence[Word], kinds: Sequence[str], keep_words: bool = False) -> tuple[Word, ...]:
    """Sensitive digit sequences as asterisks.

    Detection runs on the numeral form; with ``keep_words`` (numerals off) the
    words that are not redacted come back as spoken.
    """
    converted = numerals(words)
    # Map each converted word back to the original words it covers (by time).
    spans = _redacted_spans(converted, kinds)
    if not spans:
        return tuple(words)
    if not keep_words:
        out = list(converted)
        for start, end in spans:
            for k in range(start, end):
                out[k] = _masked(out[k], max(1, len(_digits(out[k]))))
        return tuple(out)
    hidden = [(converted[s].start, converted[e - 1].end) for s, e in spans]
    result = []
    for word in words:
        inside = any(lo <= word.start and word.end <= hi for lo, hi in hidden)
        result.append(_masked(word, max(1, len(_digits(word)))) if inside else word)
    return tuple(result)


def _masked(word: Word, stars: int) -> Word:
    lead, _core, trail = _split(word.text)
    return replace(word, text=lead + "*" * stars + trail)


def filter_profanity(words: Sequence[Word]) -> tuple[Word, ...]:
    """Profane words as their first letter and asterisks, punctuation kept."""
    out = []
    for word in words:
        lead, core, trail = _split(word.text)
        if core.lower() in PROFANE:
            word = replace(word, text=lead + core[0] + "*" * (len(core) - 1) + trail)
        out.append(word)
    return tuple(out)


def apply(words: tuple[Word, ...], formatting: Formatting) -> tuple[Word, ...]:
    """Every transform ``formatting`` asks for, in order; ``words`` unchanged when none."""
    if not formatting.active or not words:
        return words
    if formatting.numerals:
        words = numerals(words)
    if formatting.redact:
        words = redact(words, formatting.redact, keep_words=not formatting.numerals)
    if formatting.profanity_filter:
        words = filter_profanity(words)
    return words
