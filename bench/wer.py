"""Word error rate after Whisper's English normalization (whisper_normalizer + jiwer)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer  # type: ignore[import-untyped]


@lru_cache(maxsize=1)
def _normalizer() -> EnglishTextNormalizer:
    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    """Whisper's English normalization: lower case, no punctuation, spelled numbers as digits, US spelling."""
    result: str = _normalizer()(text)
    return " ".join(result.split())


@dataclass(frozen=True, slots=True)
class WerScore:
    """Corpus-level word errors: ``wer = (S + D + I) / reference words``.

    ``skipped`` counts pairs left out because their normalized reference is empty.
    """

    wer: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    reference_words: int
    pairs: int
    skipped: int = 0

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict for JSON."""
        return asdict(self)


def score(pairs: Iterable[tuple[str, str]]) -> WerScore | None:
    """Score ``(reference, hypothesis)`` pairs together; ``None`` if no reference has words."""
    refs: list[str] = []
    hyps: list[str] = []
    skipped = 0
    for reference, hypothesis in pairs:
        ref = normalize(reference)
        if not ref:
            skipped += 1
            continue
        refs.append(ref)
        hyps.append(normalize(hypothesis))
    if not refs:
        return None
    out = jiwer.process_words(refs, hyps)
    errors = out.substitutions + out.deletions + out.insertions
    ref_words = out.substitutions + out.deletions + out.hits
    return WerScore(
        wer=errors / ref_words,
        substitutions=out.substitutions,
        deletions=out.deletions,
        insertions=out.insertions,
        hits=out.hits,
        reference_words=ref_words,
        pairs=len(refs),
        skipped=skipped,
    )
