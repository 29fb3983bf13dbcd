"""The streaming core of one audio channel: VAD, window, commit policy.

Pure and synchronous. The shell feeds audio with :meth:`push`, asks
:meth:`next_request` for a window to decode whenever no decode is in flight,
and hands the answer back to :meth:`complete`. Both return events:
:class:`Transcript` (interim or final Results), :class:`SpeechStarted` and
:class:`UtteranceEnd`. Nothing here blocks or knows about time other than
stream time (samples received).

Window policy: the window starts a little before speech onset and grows as
audio arrives, at most ``max_window_s``. Each decode re-reads the whole
window; LocalAgreement-2 commits stable words. Finals come
* at an endpoint (VAD silence >= endpointing): everything, ``speech_final``;
  also when the VAD still hears "speech" (noise, breath) but decodes of the
  audio for ``endpointing + words_end_s`` after the last word found
  no word: the words have ended, whatever the VAD says;
* on Finalize / close: everything, ``from_finalize`` for Finalize;
* when the window passes ``soft_window_s``: the committed words only, and
  the window is trimmed to the end of the last one;
* when the window nears ``max_window_s``: the hypothesis up to a second
  before the window's end is forced into a final.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from gateway.core.commit import LocalAgreement
from gateway.core.policy import (
    DecodePolicy,
    commit_horizon,
    commit_ready,
    deadline_horizon,
    doubt_horizon,
    sure_horizon,
)
from gateway.core.types import SAMPLE_RATE, Audio, DecodeRequest, DecodeResult, Word
from gateway.core.vad import SpeechEnd, SpeechStart, VadConfig, VoiceActivityDetector

EDGE_S = DecodePolicy().edge_s
"""Words ending this close to the end of a decoded window are not committed yet (default)."""

INTERIM_EDGE_S = 0.1
"""Interims stop before a word ending this close to the decoded end: it is likely cut ("greasy w")."""

HEARD_SLACK_S = 0.4
"""A final's word starting this long after the last voiced audio was not heard (Whisper's "Thank you.")."""

BLIP_S = 0.06
"""A word this short, starting after the last voiced audio, is a blip the model made of the silence."""

PAUSE_DECODE_MS = 120
"""Unvoiced audio after speech that triggers a decode at once, so the endpoint's final is ready when it comes."""

WORDS_END_MARGIN_S = 0.3
"""Decoded audio with no word, beyond the endpointing silence, that ends an utterance the VAD still holds open."""

_CLAUSE_END = (".", "?", "!", ",", ";", ":")


class FlushReason(StrEnum):
    ENDPOINT = "endpoint"
    PAUSE = "pause"
    """A pause in speech while endpointing is off: final, never speech_final."""
    FINALIZE = "finalize"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class Transcript:
    """A Results message for one channel: the span [start, start+duration]."""

    words: tuple[Word, ...]
    start: float
    duration: float
    is_final: bool
    speech_final: bool = False
    from_finalize: bool = False


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    time: float


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    last_word_end: float


Event = Transcript | SpeechStarted | UtteranceEnd


@dataclass(frozen=True, slots=True)
class TranscriberConfig:
    """Per-stream tuning; the session derives it from query parameters."""

    interim_results: bool = True
    endpointing_ms: int | None = 300
    utterance_end_ms: int | None = None
    vad_events: bool = False
    min_endpointing_ms: int = 300
    interim_step_s: float = DecodePolicy().step_s
    soft_window_s: float = 12.0
    max_window_s: float = 28.0
    preroll_s: float = 0.3
    final_after_s: float | None = 0.5
    """Committed words become a final (``is_final``, not ``speech_final``) once the
    oldest has waited this long, or at once when they end a clause; None: only
    at endpoints and window trims."""
    context_s: float = 0.0
    """Audio kept before new speech, already finalised, so Whisper hears what led up to it."""
    prompt_chars: int = 200
    commit_edge_s: float = EDGE_S
    """Audio a decode must hold after a word's end before the word may be committed."""
    interim_edge_s: float = INTERIM_EDGE_S
    """Interims stop before a word ending this close to the decoded end (it may be cut)."""
    first_step_s: float = DecodePolicy().first_step_s
    """The interim step until the utterance has shown a word (see policy.py)."""
    doubt_probability: float = DecodePolicy().doubt_probability
    """Words less probable than this wait for ``doubt_edge_s`` of context (0: off; see policy.py)."""
    doubt_edge_s: float = DecodePolicy().doubt_edge_s
    doubt_window_s: float = DecodePolicy().doubt_window_s
    quiet_decodes: int = 1
    """Interim decodes with no new voiced audio while words wait for agreement (see policy.py)."""
    sure_probability: float = DecodePolicy().sure_probability
    """Words at least this probable commit from one decode with ``sure_edge_s`` of context (0: off)."""
    sure_edge_s: float = DecodePolicy().sure_edge_s
    max_wait_s: float = DecodePolicy().max_wait_s
    """Right context after which a word commits from one decode, agreed or not (0: off; see policy.py)."""
    commit_step_s: float = DecodePolicy().commit_step_s
    """New audio that lets a decode run before the step once it can commit a word (0: off; see policy.py)."""
    words_end_s: float | None = WORDS_END_MARGIN_S
    """Decoded audio with no word, beyond the endpointing silence, that ends an utterance the VAD
    holds open (None: only the VAD ends utterances)."""
    vad: VadConfig = VadConfig()

    @property
    def policy(self) -> DecodePolicy:
        return DecodePolicy(
            step_s=self.interim_step_s,
            first_step_s=self.first_step_s,
            edge_s=self.commit_edge_s,
            doubt_probability=self.doubt_probability,
            doubt_edge_s=self.doubt_edge_s,
            doubt_window_s=self.doubt_window_s,
            quiet_decodes=self.quiet_decodes,
            sure_probability=self.sure_probability,
            sure_edge_s=self.sure_edge_s,
            commit_step_s=self.commit_step_s,
            max_wait_s=self.max_wait_s,
        )


@dataclass(slots=True)
class _InFlight:
    request: DecodeRequest
    flush: FlushReason | None
    end_sample: int
    voiced_end: float
    """The VAD's last voiced end when the flush this decode answers was asked for (or when it started)."""
    labels: set[FlushReason] = field(default_factory=set)
    """Every flush this decode answers; non-empty on an interim decode adopted as the flush."""
    asked_at: int = 0
    """The stream sample where the first flush it answers was decided: its final spans at least to there."""


class ChannelTranscriber:
    """One channel's streaming state. Not thread-safe; owned by one session."""

    def __init__(
        self,
        config: TranscriberConfig,
        vad_rate: int = SAMPLE_RATE,
        start_s: float = 0.0,
        seed: Sequence[Word] = (),
    ) -> None:
        """``start_s``: stream time of the first sample pushed (a stream taken over mid-way, e.g. on failover);
        ``seed``: the words finalised before it, so a re-heard seam word is not finalised twice and the
        decoder is prompted with what was said."""
        self.config = config
        end_ms = max(config.endpointing_ms or 0, config.min_endpointing_ms)
        if config.endpointing_ms is None:
            # Still detect pauses to finalise and stop decoding silence, just
            # never call them endpoints.
            end_ms = max(800, config.min_endpointing_ms)
        self.vad = VoiceActivityDetector(vad_rate, replace(config.vad, end_ms=end_ms), start_s)
        self.agreement = LocalAgreement()
        self.policy = config.policy
        self._voiced_mark = start_s  # the VAD's last voiced end when the last decode was asked for
        self._quiet_decodes = 0  # decodes since then with no new voiced audio
        self._chunks: list[Audio] = []
        self._buffer = np.zeros(0, dtype=np.float32)
        origin = round(start_s * SAMPLE_RATE)
        self.buffer_start = origin  # stream sample index of the buffer's first sample
        self.samples = origin  # stream samples received (16 kHz), counted from the stream's start
        self.span_start = origin / SAMPLE_RATE
        self._speech_since_final = False
        self._decoded_until = origin
        self._in_flight: _InFlight | None = None
        self._flush: FlushReason | None = None
        self._labels: set[FlushReason] = set()  # every reason the pending flush answers
        self._heard_until = origin  # stream sample where the last completed decode's audio ended
        self._closing = False  # CloseStream or disconnect: no more interims
        self._flush_until = 0  # stream sample where the pending flush cuts the window
        self._flush_voiced = start_s  # the VAD's last voiced end when that flush was asked for
        self._queued_voiced = start_s  # the same for the queued endpoint
        self._shown = False  # an interim of the current utterance has shown words
        self._speech_after_cut = False  # speech began after that cut
        self._queued_endpoint: int | None = None  # and ended too, before the flush was done
        self._finalized: list[Word] = list(seed)[-100:]  # recent finals, for the prompt
        self.agreement.seed(list(seed))
        self._last_interim: tuple[str, ...] = ()
        self.last_word_end: float | None = None
        self._utterance_end_sent = True
        self._onsets: deque[float] = deque(maxlen=32)  # recent speech onsets (s), for a pause decoded late
        self._words_ended = False  # the utterance was ended by its words while the VAD still hears speech
        self.closed = False

    # -- audio in ---------------------------------------------------------

    @property
    def time(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def busy(self) -> bool:
        return self._in_flight is not None

    def push(self, audio: Audio, vad_audio: np.ndarray | None = None) -> list[Event]:
        """Append 16 kHz audio (and the VAD's copy at its rate); return events."""
        if self.closed:
            return []
        self._chunks.append(audio)
        self.samples += len(audio)
        if vad_audio is None:
            vad_audio = np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)
        events: list[Event] = []
        for vad_event in self.vad.feed(vad_audio):
            if isinstance(vad_event, SpeechStart):
                self._words_ended = False
                self._onsets.append(vad_event.time)
                self._speech_since_final = True
                if self._flushing:
                    self._speech_after_cut = True
                if self.config.vad_events:
                    events.append(SpeechStarted(vad_event.time))
            elif isinstance(vad_event, SpeechEnd) and self._flushing and self._speech_after_cut:
                # A whole second utterance went by while the first waits for its final.
                self._queued_endpoint = self._sample_at(vad_event.at)
                self._queued_voiced = self.vad.last_voiced_end
            elif isinstance(vad_event, SpeechEnd) and self._words_ended and self._nothing_new:
                # The endpoint came already, from the words: the VAD's end of the noise after them is none.
                self._words_ended = False
                self._speech_since_final = False
            elif isinstance(vad_event, SpeechEnd) and self._speech_since_final and self._flush is None:
                endpointing = self.config.endpointing_ms is not None
                # The utterance ends here even if its final decode starts later (a
                # busy model): speech after this point belongs to the next one.
                reason = FlushReason.ENDPOINT if endpointing else FlushReason.PAUSE
                self.request_flush(reason, at=self._sample_at(vad_event.at))
        if not self._speech_since_final and self._in_flight is None and not self.agreement.pending:
            self._drop_silence()
        events.extend(self.immediate_flush())
        events.extend(self._check_utterance_end())
        return events

    def _sample_at(self, time: float) -> int:
        """The stream sample at ``time`` (the VAD's clock), never past the audio received."""
        return min(self.samples, round(time * SAMPLE_RATE))

    def _covers(self, end_sample: int) -> bool:
        """Whether audio decoded up to ``end_sample`` holds every voiced frame heard so far."""
        return round(self.vad.last_voiced_end * SAMPLE_RATE) <= end_sample and not self._speech_after_cut

    def _window(self) -> Audio:
        if self._chunks:
            self._buffer = np.concatenate([self._buffer, *self._chunks])
            self._chunks = []
        return self._buffer

    def _trim_to(self, sample: int) -> None:
        buffer = self._window()
        cut = min(max(0, sample - self.buffer_start), len(buffer))
        self._buffer = buffer[cut:]
        self.buffer_start += cut

    def _drop_silence(self) -> None:
        # Keep only a pre-roll before the (not yet detected) next onset.
        keep = int(max(self.config.preroll_s, self.config.context_s) * SAMPLE_RATE)
        if self.samples - self.buffer_start > 2 * keep:
            # span_start stays: the next Results span still begins where the last final ended.
            self._trim_to(self.samples - keep)

    # -- decode scheduling ------------------------------------------------

    def request_flush(self, reason: FlushReason, at: int | None = None) -> None:
        """Ask for a final covering everything received (endpoint, Finalize or close).

        ``at``: the stream sample where the flush was decided (the VAD's endpoint, which lies
        inside the chunk just pushed); by default all audio received. The final spans to it.

        A decode in flight that already hears every voiced frame answers the
        flush itself (its words are what the interims showed, and nothing is
        decoded twice); so does the last decode when none is in flight (see
        :meth:`immediate_flush`). The labels of every reason it answers go on
        that one final: Finalize just after an endpoint gives one result with
        both ``speech_final`` and ``from_finalize``.
        """
        if reason is FlushReason.CLOSE:
            self._closing = True
        until = self.samples if at is None else at
        flight = self._in_flight
        answers = flight is not None and (flight.flush is not None or flight.labels or self._flush is None)
        if flight is not None and answers and self._covers(flight.end_sample):
            if not flight.labels:
                flight.voiced_end = self.vad.last_voiced_end
                flight.asked_at = until
            flight.labels.add(reason)
            return
        if self._flush is None or reason not in (FlushReason.ENDPOINT, FlushReason.PAUSE):
            self._flush = reason
            self._flush_until = until
            self._flush_voiced = self.vad.last_voiced_end
        self._labels.add(reason)

    @property
    def _flushing(self) -> bool:
        """A flush is pending or being decoded."""
        return self._flush is not None or (self._in_flight is not None and bool(self._in_flight.labels))

    @property
    def wants_decode(self) -> bool:
        """Whether :meth:`next_request` would return something now."""
        if self._in_flight is not None or self.closed:
            return False
        if self._flush is not None:
            return True
        if self._closing or not (self._speech_since_final or self.agreement.pending):
            return False
        paused_ms = (self.vad.time - self.vad.last_voiced_end) * 1000
        if self.vad.in_speech and paused_ms >= PAUSE_DECODE_MS and not self._covers(self._heard_until):
            # Speech paused: decode now, so the endpoint (if it comes) finds its words heard.
            return True
        new_s = (self.samples - max(self._decoded_until, self.buffer_start)) / SAMPLE_RATE
        new_voiced = self.vad.last_voiced_end > self._voiced_mark
        tail = self.agreement.tail
        ready = bool(tail) and commit_ready(
            tail[0].end,
            tail[0].probability,
            (self.samples - self.buffer_start) / SAMPLE_RATE,
            self._decoded_until / SAMPLE_RATE,
            self.time,
            self.policy,
        )
        return self.policy.due(new_s, new_voiced, bool(tail), self._quiet_decodes, self._shown, ready)

    def next_request(self, prompt_prefix: str = "") -> DecodeRequest | None:
        """The window to decode next, or None. Marks it in flight."""
        if not self.wants_decode:
            return None
        window = self._window()
        if self._flush is not None:
            window = window[: max(0, self._flush_until - self.buffer_start)]
        request = DecodeRequest(
            audio=window,
            offset=self.buffer_start / SAMPLE_RATE,
            prompt=(prompt_prefix + self._prompt_text())[-self.config.prompt_chars :],
            final=self._flush is not None,
        )
        labels = set()
        if self._flush is not None:
            labels, self._labels = self._labels | {self._flush}, set()
        voiced_end = self._flush_voiced if self._flush is not None else self.vad.last_voiced_end
        self._in_flight = _InFlight(request, self._flush, self.buffer_start + len(window), voiced_end, labels)
        voiced = self.vad.last_voiced_end
        self._quiet_decodes = 0 if voiced > self._voiced_mark else self._quiet_decodes + 1
        self._voiced_mark = voiced
        self._decoded_until = self.buffer_start + len(window)
        return request

    def immediate_flush(self) -> list[Event]:
        """Finish a pending flush without decoding when nothing new is to be heard.

        With nothing pending the final is empty; when the last decode's audio
        holds every voiced frame, its hypothesis (what the interims showed)
        is the final. Returns [] if a decode is needed.
        """
        if self._flush is None or self._in_flight is not None:
            return []
        if self._speech_since_final or self.agreement.pending:
            if not (self._covers(self._heard_until) and self._heard_until <= self._flush_until):
                return []
            self.agreement.commit_all()
            words = self._heard(self.agreement.take_committed(), self._flush_voiced)
            end_time = self._flush_until / SAMPLE_RATE
            reason, self._flush = self._flush, None
            labels, self._labels = self._labels | {reason}, set()
            events: list[Event] = [self._final(words, end_time, labels)]
            self._after_flush(end_time)
            return events
        reason, self._flush = self._flush, None
        labels, self._labels = self._labels | {reason}, set()
        return [self._final(list(self.agreement.take_committed()), self.time, labels)]

    def _heard(self, words: list[Word], voiced_end: float | None = None) -> list[Word]:
        """Drop words the model made up from silence: starting well after the last voiced frame
        (``voiced_end``, by default the VAD's latest), or a blip starting after it."""
        voiced = self.vad.last_voiced_end if voiced_end is None else voiced_end
        limit = voiced + HEARD_SLACK_S
        return [w for w in words if w.start <= limit and not (w.start >= voiced and w.end - w.start < BLIP_S)]

    def _after_flush(self, end_time: float) -> None:
        """After a flush's final: trim the window, and queue the endpoint that came meanwhile."""
        # Committed words inside the kept audio are filtered by time on the next decode.
        keep_s = max(self.config.preroll_s, self.config.context_s)
        self._trim_to(int((end_time - keep_s) * SAMPLE_RATE))
        self._speech_since_final = self.vad.in_speech or self._speech_after_cut
        self._speech_after_cut = False
        self._shown = False
        if self._flush is None and self._queued_endpoint is not None:
            endpointing = self.config.endpointing_ms is not None
            self._flush = FlushReason.ENDPOINT if endpointing else FlushReason.PAUSE
            self._flush_until = self._queued_endpoint
            self._flush_voiced = self._queued_voiced
        self._queued_endpoint = None

    def complete(self, result: DecodeResult) -> list[Event]:
        """Take the answer to the request in flight; return the events it makes."""
        if self._in_flight is None:
            raise RuntimeError("complete() without a request in flight")
        flight, self._in_flight = self._in_flight, None
        end_time = flight.end_sample / SAMPLE_RATE
        hypothesis = list(result.words)
        events: list[Event] = []
        self._heard_until = flight.end_sample
        if flight.labels:
            # A flush decode that heard nothing (the guard dropped it, or the model
            # wrote nothing this time) keeps what the interims showed.
            self.agreement.commit_all(hypothesis if hypothesis else None)
            words = self._heard(self.agreement.take_committed(), flight.voiced_end)
            if flight.flush is not None and self._flush is flight.flush and not self._labels:
                self._flush = None  # (a flush asked for meanwhile, not heard by this decode, stays)
            # An interim decode adopted as the flush heard up to where it started; the final still
            # spans to where the flush was decided (the endpoint's silence is the utterance's).
            span_end = max(flight.end_sample, flight.asked_at) / SAMPLE_RATE
            events.append(self._final(words, span_end, flight.labels))
            self._after_flush(span_end)
        else:
            window_s = (flight.end_sample - self.buffer_start) / SAMPLE_RATE
            self.agreement.update(
                hypothesis,
                horizon=commit_horizon(end_time, self.policy),
                doubt=doubt_horizon(end_time, window_s, self.policy),
                sure=sure_horizon(end_time, self.policy),
                deadline=deadline_horizon(end_time, self.policy),
            )
            if window_s >= self.config.max_window_s:
                self.agreement.commit_before(end_time - 1.0)
            committed = self.agreement.committed
            if window_s >= self.config.soft_window_s and committed:
                words = self.agreement.take_committed()
                cut = words[-1].end
                events.append(self._final(words, cut, set()))
                self._trim_to(int(cut * SAMPLE_RATE))
            elif committed and self._settled(committed, end_time):
                # Stable words go out as a final without trimming the window:
                # later decodes still hear them (and drop them by time), so the
                # context stays while the client stops waiting for the endpoint.
                words = self.agreement.take_committed()
                events.append(self._final(words, words[-1].end, set()))
            events.extend(self._end_by_words(hypothesis, end_time))
            if self.config.interim_results and not self._closing:
                pending = self._whole_words(self._heard(self.agreement.pending), end_time - self.config.interim_edge_s)
                texts = tuple(w.text for w in pending)
                if texts and texts != self._last_interim:
                    self._last_interim = texts
                    events.append(
                        Transcript(tuple(pending), self.span_start, max(0.0, end_time - self.span_start), False)
                    )
                    self._note_words(pending)
                    self._shown = True
        events.extend(self._check_utterance_end())
        return events

    @property
    def _nothing_new(self) -> bool:
        """No word decoded since the last final, and no decode in flight that could bring one."""
        return self._in_flight is None and not self.agreement.pending

    def _end_by_words(self, hypothesis: list[Word], decoded_end: float) -> list[Event]:
        """The endpoint's final, when the VAD holds the utterance open but its words have ended.

        After an interim decode of audio up to ``decoded_end`` that heard words
        (``hypothesis``; a decode that heard none, e.g. dropped by the guard,
        proves nothing) and agreed on every word: if none ends later than ``endpointing + words_end_s`` before it,
        what keeps the VAD in speech is not speech (a noisy room, breath, a hum,
        which is what held endpoints open for seconds in issue 14). The words go
        out as the endpoint's final now, from this decode (they have all the
        right context a flush would give them), spanning to the last word plus
        the endpointing silence; the audio after that stays in the window, so a
        word that was just starting is heard again, not lost.
        """
        pending = self.agreement.pending
        if self._words_ended:
            if not pending:
                return []
            self._words_ended = False  # words again after the words' endpoint: they may end too
        margin = self.config.words_end_s
        if margin is None or not hypothesis or not self.vad.in_speech or self._flushing or self._closing:
            return []  # (noise alone, no word yet, never makes an endpoint)
        if self.agreement.tail:
            return []  # words two decodes do not yet agree on: the model is still reading speech
        last = max(w.end for w in [*hypothesis, *pending])
        silence = self.vad.end_s
        if decoded_end - last < silence + margin:
            return []
        words = self.agreement.take_committed()
        endpointing = self.config.endpointing_ms is not None
        labels = {FlushReason.ENDPOINT if endpointing else FlushReason.PAUSE}
        event = self._final(words, min(decoded_end, last + silence), labels)
        # The window is kept (as for a settled final): later decodes still hear the utterance, so a
        # word that was just starting is read in its context, and the noise after it is not decoded
        # alone (Whisper writes "That's it." for a window of noise).
        self._shown = False
        self._words_ended = True
        return [event]

    @staticmethod
    def _whole_words(words: list[Word], limit: float) -> list[Word]:
        """Interims end at a word boundary: a last word ending after ``limit``, near the decoded end, may be cut."""
        cut = len(words)
        while cut and words[cut - 1].end > limit:
            cut -= 1
        return words[:cut]

    def _prompt_text(self) -> str:
        # Only text the window no longer holds: Whisper must not be told what it is about to hear.
        window_start = self.buffer_start / SAMPLE_RATE
        return " ".join(w.text for w in self._finalized if w.end <= window_start + 0.05)

    def _settled(self, committed: list[Word], end_time: float) -> bool:
        """Whether committed words should be finalised before the endpoint."""
        wait = self.config.final_after_s
        if wait is None:
            return False
        if committed[-1].text.endswith(_CLAUSE_END):
            return True
        return end_time - committed[0].end >= wait

    def _final(self, words: list[Word], end_time: float, labels: set[FlushReason]) -> Transcript:
        """A final answering ``labels`` (none: committed words finalised before the endpoint)."""
        start = self.span_start
        event = Transcript(
            tuple(words),
            start,
            max(0.0, end_time - start),
            is_final=True,
            speech_final=FlushReason.ENDPOINT in labels,
            from_finalize=FlushReason.FINALIZE in labels,
        )
        self.span_start = max(start, end_time)
        self._last_interim = ()
        if words:
            self._finalized = (self._finalized + words)[-100:]
            self._note_words(words)
        return event

    def _note_words(self, words: list[Word]) -> None:
        end = words[-1].end
        if self.last_word_end is None or end > self.last_word_end:
            self.last_word_end = end
            self._utterance_end_sent = False

    def _check_utterance_end(self) -> list[Event]:
        gap_ms = self.config.utterance_end_ms
        if gap_ms is None or self._utterance_end_sent or self.last_word_end is None:
            return []
        if self._flush is not None or self._in_flight is not None or self.agreement.pending:
            return []
        silent_until = self.time
        if self.vad.in_speech and not self._words_ended:
            # Speech came back before the last words were decoded (a busy model): the pause before it
            # still counts, measured on the audio, as Deepgram measures it.
            later = [t for t in self._onsets if t > self.last_word_end]
            if not later:
                return []
            silent_until = later[0]
        if (silent_until - self.last_word_end) * 1000 < gap_ms:
            return []
        self._utterance_end_sent = True
        return [UtteranceEnd(self.last_word_end)]

    def close(self) -> None:
        self.closed = True
