"""Protocol-neutral record of one stream: what was sent when and what came back when.

All times are seconds on the *stream clock*: 0 is the instant the first audio
sample "happened" (the bench sends audio position ``a`` no earlier than
``a`` seconds after that instant), so an arrival time can be compared directly
with an audio time such as a word's end.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a result with absolute stream times (seconds)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Update:
    """One transcript update: a Deepgram ``Results`` message or a WhisperLive segment.

    ``is_final`` marks text that will not change (Deepgram ``is_final``, a
    WhisperLive ``completed`` segment). ``words`` may be empty when the target
    gives no word times; ``transcript`` is the text as sent.
    """

    arrival: float
    is_final: bool
    transcript: str
    words: tuple[Word, ...] = ()
    speech_final: bool = False
    from_finalize: bool = False


@dataclass(slots=True)
class Timeline:
    """Everything observed on one stream.

    ``audio_s`` is the recording's length; ``sent_s`` what was streamed in all
    (recording plus trailing silence). ``end_sent`` is when the end-of-stream
    flush went out (Deepgram ``Finalize``; ``None`` for WhisperLive, which has
    no flush). ``close_sent`` is when ``CloseStream`` (or its equivalent) went out;
    ``metadata_at`` when the server's ``Metadata`` arrived. ``billed_s`` is its ``duration``.
    """

    audio_s: float
    sent_s: float = 0.0
    updates: list[Update] = field(default_factory=list)
    speech_started: list[float] = field(default_factory=list)
    utterance_ends: list[tuple[float, float]] = field(default_factory=list)
    end_sent: float | None = None
    close_sent: float | None = None
    closed_at: float | None = None
    metadata_at: float | None = None
    billed_s: float | None = None
    pacing_lag_max: float = 0.0
    error: str | None = None
    raw: list[tuple[float, str]] = field(default_factory=list)

    @property
    def finals(self) -> list[Update]:
        """The final updates in arrival order."""
        return [u for u in self.updates if u.is_final]

    def final_text(self) -> str:
        """The stream's transcript: every final's text, in order."""
        return " ".join(u.transcript.strip() for u in self.finals if u.transcript.strip())
