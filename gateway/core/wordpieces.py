"""Whisper's word pieces joined back into the words Deepgram sends.

Whisper's word timestamps split a word at a punctuation token inside it: "o'clock" comes back
as " o" and "'clock", "well-known" as " well" and "-known", "3.5" as " 3" and ".5". The model
marks a new word with a leading space, so a piece without one (after the first) continues the
word before it. Deepgram writes such words whole ("o'clock"), and clients that join words with
spaces (LiveKit, or a transcript rebuilt from ``words``) would otherwise show "o 'clock".
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.core.types import Word

Piece = tuple[str, float, float, float]
"""(text as the model wrote it, leading space included; start; end; probability)."""


def join_pieces(pieces: Iterable[Piece]) -> list[Word]:
    """Words of one decoded sequence, a piece with no leading space glued to the word before it.

    The glued word spans both pieces and keeps the lower probability: it is as doubtful as its
    weakest part. Pieces that are only whitespace are dropped.
    """
    words: list[Word] = []
    for raw, start, end, probability in pieces:
        text = raw.strip()
        if not text:
            continue
        if words and not raw[:1].isspace():
            last = words[-1]
            words[-1] = Word(last.text + text, last.start, max(last.end, end), min(last.probability, probability))
        else:
            words.append(Word(text, start, end, probability))
    return words
