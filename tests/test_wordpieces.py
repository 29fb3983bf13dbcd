"""Whisper word pieces joined into whole words (``gateway.core.wordpieces``)."""

from __future__ import annotations

from gateway.core.types import Word
from gateway.core.wordpieces import join_pieces


def test_a_piece_without_a_leading_space_continues_the_word() -> None:
    """What tiny.en's word timestamps give for "at 7 o'clock." (seen through LiveKit as "7 o 'clock.")."""
    pieces = [(" at", 5.0, 5.2, 0.9), (" 7", 5.2, 5.6, 0.8), (" o", 5.6, 5.8, 0.7), ("'clock.", 5.8, 6.3, 0.95)]
    assert join_pieces(pieces) == [
        Word("at", 5.0, 5.2, 0.9),
        Word("7", 5.2, 5.6, 0.8),
        Word("o'clock.", 5.6, 6.3, 0.7),
    ]


def test_hyphens_decimals_and_quotes() -> None:
    pieces = [(" a", 0.0, 0.1, 1.0), (" well", 0.1, 0.3, 1.0), ("-known", 0.3, 0.6, 0.6), (" 3", 0.6, 0.7, 1.0)]
    words = join_pieces([*pieces, (".5", 0.7, 0.9, 1.0), (" 'quoted'", 1.0, 1.4, 1.0)])
    assert [w.text for w in words] == ["a", "well-known", "3.5", "'quoted'"]
    assert (words[1].start, words[1].end, words[1].probability) == (0.1, 0.6, 0.6)


def test_first_piece_and_empty_pieces() -> None:
    """The first piece starts a word even without a space; whitespace-only and empty pieces are dropped."""
    assert join_pieces([("Hello", 0.0, 0.4, 0.9), ("", 0.4, 0.4, 0.1), (" ", 0.4, 0.5, 0.1)]) == [
        Word("Hello", 0.0, 0.4, 0.9)
    ]
    assert join_pieces([]) == []
