"""The per-channel streaming core driven synchronously with a scripted decoder."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from gateway.core.transcriber import (
    ChannelTranscriber,
    FlushReason,
    SpeechStarted,
    TranscriberConfig,
    Transcript,
    UtteranceEnd,
)
from gateway.core.types import DecodeRequest, DecodeResult, Word
from gateway.core.vad import SpeechEnd, VadConfig, VoiceActivityDetector
from tests import speech

SCRIPT = [
    Word(t, 1.0 + 0.4 * i, 1.3 + 0.4 * i, 0.9) for i, t in enumerate(["alpha", "bravo", "charlie", "delta", "echo"])
]


class ScriptedDecoder:
    """Answers with the scripted words heard inside the window, wobbling the last one when the window's end is near
    (where a real model is unsure: the word may be cut)."""

    def __init__(self) -> None:
        self.requests: list[DecodeRequest] = []

    def __call__(self, request: DecodeRequest) -> DecodeResult:
        self.requests.append(request)
        end = request.offset + request.duration
        heard = [w for w in SCRIPT if w.start >= request.offset - 0.05 and w.end <= end]
        if heard and not request.final and len(self.requests) % 2 and heard[-1].end > end - 0.1:
            heard[-1] = Word(heard[-1].text + "x", heard[-1].start, heard[-1].end, 0.4)
        return DecodeResult(tuple(heard), 0.01)


def audio_with_speech() -> np.ndarray:
    # One second of silence, ~2.4 s of speech, then 1.5 s of silence.
    return np.concatenate([speech.silence(1.0), speech.espeak("alpha bravo charlie delta echo"), speech.silence(1.5)])


def drive(core: ChannelTranscriber, audio: np.ndarray, decode: Callable[[DecodeRequest], DecodeResult]) -> list:
    """Push ``audio`` in 20 ms frames, decoding at once whenever the core asks (an idle model)."""
    events: list = []
    floats = audio.astype(np.float32) / 32768.0
    for i in range(0, len(floats), 320):
        events += core.push(floats[i : i + 320])
        if (request := core.next_request()) is not None:
            events += core.complete(decode(request))
    return events


def run(config: TranscriberConfig, audio: np.ndarray, flush: FlushReason | None = None) -> tuple[list, ScriptedDecoder]:
    decoder = ScriptedDecoder()
    core = ChannelTranscriber(config)
    events = drive(core, audio, decoder)
    if flush is not None:
        core.request_flush(flush)
        events += core.immediate_flush()
        while (request := core.next_request()) is not None:
            events += core.complete(decoder(request))
    return events, decoder


def test_interims_then_one_speech_final_with_every_word() -> None:
    config = TranscriberConfig(endpointing_ms=300, utterance_end_ms=1000, vad_events=True, final_after_s=None)
    events, _ = run(config, audio_with_speech())
    transcripts = [e for e in events if isinstance(e, Transcript)]
    finals = [e for e in transcripts if e.is_final]
    assert isinstance(events[0], SpeechStarted)
    assert transcripts[0].is_final is False, "interims come before the final"
    assert len(finals) == 1
    assert finals[0].speech_final and not finals[0].from_finalize
    assert [w.text for w in finals[0].words] == [w.text for w in SCRIPT]
    assert isinstance(events[-1], UtteranceEnd)
    assert events[-1].last_word_end == SCRIPT[-1].end


def test_interims_only_grow_from_committed_words() -> None:
    events, _ = run(TranscriberConfig(endpointing_ms=300, final_after_s=None), audio_with_speech())
    final = next(e for e in events if isinstance(e, Transcript) and e.is_final)
    final_texts = [w.text for w in final.words]
    for interim in (e for e in events if isinstance(e, Transcript) and not e.is_final):
        texts = [w.text for w in interim.words]
        # Every interim word but the unstable last one is already what the final says.
        assert texts[:-1] == final_texts[: len(texts) - 1]
        assert interim.start == final.start


def test_no_interims_when_not_asked() -> None:
    events, _ = run(TranscriberConfig(interim_results=False, endpointing_ms=300), audio_with_speech())
    assert all(e.is_final for e in events if isinstance(e, Transcript))


def test_silence_is_never_decoded() -> None:
    events, decoder = run(TranscriberConfig(), speech.silence(5.0), flush=FlushReason.CLOSE)
    assert decoder.requests == []
    assert [e for e in events if isinstance(e, Transcript)] == [Transcript((), 0.0, 5.0, is_final=True)]


def test_finalize_mid_speech_flushes_with_from_finalize() -> None:
    audio = np.concatenate([speech.silence(1.0), speech.espeak("alpha bravo charlie delta echo")])[:32000]
    events, decoder = run(TranscriberConfig(endpointing_ms=300, final_after_s=None), audio, flush=FlushReason.FINALIZE)
    final = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert len(final) == 1
    assert final[0].from_finalize and not final[0].speech_final
    assert [w.text for w in final[0].words] == ["alpha", "bravo"]
    assert decoder.requests[-1].final
    assert final[0].start + final[0].duration == len(audio) / 16000


def test_long_speech_is_finalised_when_the_window_fills() -> None:
    config = TranscriberConfig(endpointing_ms=None, soft_window_s=1.5)
    events, decoder = run(config, audio_with_speech(), flush=FlushReason.CLOSE)
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert len(finals) >= 2
    assert not any(f.speech_final for f in finals), "endpointing=false never makes speech_final"
    said = [w.text for f in finals for w in f.words]
    assert said == [w.text for w in SCRIPT], "nothing lost, nothing repeated"
    for before, after in itertools.pairwise(finals):
        assert after.start >= before.start + before.duration - 1e-6, "final spans do not overlap"
    assert max(r.duration for r in decoder.requests) < 4.0


def test_a_slow_decode_skips_interims_never_audio() -> None:
    core = ChannelTranscriber(TranscriberConfig(endpointing_ms=300))
    floats = audio_with_speech().astype(np.float32) / 32768.0
    first = None
    for i in range(0, 32000, 320):  # the first two seconds
        core.push(floats[i : i + 320])
        first = first or core.next_request()
    assert first is not None
    # While that decode is "running", 1 s more arrives; no second request is issued.
    for i in range(32000, 48000, 320):
        core.push(floats[i : i + 320])
        assert core.next_request() is None
    core.complete(DecodeResult((), 0.0))
    newest = core.next_request()
    assert newest is not None
    assert newest.offset + newest.duration == pytest.approx(48000 / 16000), "the next decode covers all audio"
    assert newest.offset <= first.offset, "and still starts where the window started"


def test_settled_words_become_finals_before_the_endpoint() -> None:
    events, _ = run(TranscriberConfig(endpointing_ms=300, final_after_s=0.5), audio_with_speech())
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert len(finals) >= 2, "stable words did not wait for the endpoint"
    assert [w.text for f in finals for w in f.words] == [w.text for w in SCRIPT], "nothing lost or repeated"
    assert [f.speech_final for f in finals] == [False] * (len(finals) - 1) + [True]
    for before, after in itertools.pairwise(finals):
        assert after.start == pytest.approx(before.start + before.duration), "spans are contiguous"


def test_a_late_endpoint_flush_stops_at_the_endpoint() -> None:
    """A busy model must not pull the next utterance into this one's final."""
    core = ChannelTranscriber(TranscriberConfig(endpointing_ms=300, final_after_s=None))
    decoder = ScriptedDecoder()
    first = np.concatenate([speech.silence(1.0), speech.espeak("alpha bravo charlie delta echo"), speech.silence(0.6)])
    second = np.concatenate([speech.espeak("alpha bravo charlie"), speech.silence(1.0)])
    audio = np.concatenate([first, second]).astype(np.float32) / 32768.0
    events: list = []
    for i in range(0, len(audio), 320):  # nothing is decoded until all audio is in: a stalled model
        events += core.push(audio[i : i + 320])
    while (request := core.next_request()) is not None:
        events += core.complete(decoder(request))
    finals = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert len(finals) == 2, "both utterances are finalised, each on its own"
    assert all(f.speech_final for f in finals)
    assert finals[0].start + finals[0].duration < len(first) / 16000, "the first final stops at its endpoint"
    assert decoder.requests[0].offset + decoder.requests[0].duration < len(first) / 16000


def _push(core: ChannelTranscriber, pcm: np.ndarray) -> list:
    events: list = []
    floats = pcm.astype(np.float32) / 32768.0
    for i in range(0, len(floats), 320):
        events += core.push(floats[i : i + 320])
    return events


def test_a_flush_decode_that_hears_nothing_keeps_what_the_interims_showed() -> None:
    core = ChannelTranscriber(TranscriberConfig(endpointing_ms=None, final_after_s=None))
    _push(core, np.concatenate([speech.silence(0.5), speech.espeak("hello there")]))
    request = core.next_request()
    assert request is not None
    hello = Word("hello", 0.6, 0.9, 0.9)
    interims = [e for e in core.complete(DecodeResult((hello,), 0.0)) if isinstance(e, Transcript)]
    assert [w.text for w in interims[0].words] == ["hello"]
    _push(core, speech.espeak("my friend"))  # more speech: the flush must decode again
    core.request_flush(FlushReason.FINALIZE)
    assert core.immediate_flush() == []
    request = core.next_request()
    assert request is not None and request.final
    (final,) = [e for e in core.complete(DecodeResult((), 0.0)) if isinstance(e, Transcript)]
    assert final.is_final and final.from_finalize
    assert [w.text for w in final.words] == ["hello"]


def test_a_flush_after_an_interim_that_heard_every_voiced_frame_is_that_interim() -> None:
    # Issue 14, defect 3: a flush decode re-reading audio the interims had heard to its end
    # dropped words they had shown. With nothing voiced since, the final is the interim, undecoded.
    core = ChannelTranscriber(TranscriberConfig(endpointing_ms=None, final_after_s=None))
    _push(core, np.concatenate([speech.silence(0.5), speech.espeak("hello there"), speech.silence(0.25)]))
    words = (Word("hello", 0.55, 0.85, 0.9), Word("there", 0.85, 1.2, 0.4))
    shown: list[Transcript] = []
    while (request := core.next_request()) is not None:
        assert not request.final
        shown += [e for e in core.complete(DecodeResult(words, 0.0)) if isinstance(e, Transcript)]
    assert shown and [w.text for w in shown[-1].words] == ["hello", "there"] and not shown[-1].is_final
    core.request_flush(FlushReason.FINALIZE)
    (final,) = [e for e in core.immediate_flush() if isinstance(e, Transcript)]
    assert core.next_request() is None
    assert final.is_final and final.from_finalize
    assert final.words == words


def test_a_flush_final_is_judged_by_what_was_voiced_when_it_was_asked_for() -> None:
    # Endpointing at 1 s: the flush's window holds 1 s of silence after the speech, in which
    # the model may invent words. Speech of the next utterance arriving while the flush
    # decodes must not make those words look heard.
    core = ChannelTranscriber(TranscriberConfig(endpointing_ms=1000, final_after_s=None))
    _push(core, np.concatenate([speech.silence(0.5), speech.espeak("hello there"), speech.silence(1.3)]))
    voiced = core.vad.last_voiced_end
    request = core.next_request()
    while request is not None and not request.final:  # interims, answered with nothing
        core.complete(DecodeResult((), 0.0))
        request = core.next_request()
    assert request is not None and request.final
    _push(core, speech.espeak("and another thing"))  # the next utterance, during the decode
    assert core.vad.last_voiced_end > voiced + 1.0
    hello = Word("hello", 0.6, 0.9, 0.9)
    invented = Word("thanks", voiced + 0.6, voiced + 0.9, 0.9)
    blip = Word("you", voiced + 0.05, voiced + 0.07, 0.9)
    events = core.complete(DecodeResult((hello, blip, invented), 0.0))
    (final,) = [e for e in events if isinstance(e, Transcript) and e.is_final]
    assert final.speech_final
    assert [w.text for w in final.words] == ["hello"]


def test_a_pause_counts_for_utterance_end_even_when_decoded_after_speech_resumed() -> None:
    """A busy model finalises the first utterance only once the second has begun: the pause between them was still
    longer than utterance_end_ms, so UtteranceEnd (at the first utterance's last word) comes, before the second's
    words; measured on the audio, not on when the decode finished."""
    second_words = [Word(t, 5.2 + 0.4 * i, 5.5 + 0.4 * i, 0.9) for i, t in enumerate(["foxtrot", "golf", "hotel"])]

    class TwoUtterances(ScriptedDecoder):
        def __call__(self, request: DecodeRequest) -> DecodeResult:
            self.requests.append(request)
            end = request.offset + request.duration
            return DecodeResult(
                tuple(w for w in [*SCRIPT, *second_words] if w.start >= request.offset - 0.05 and w.end <= end), 0.01
            )

    core = ChannelTranscriber(TranscriberConfig(endpointing_ms=300, utterance_end_ms=1000, final_after_s=None))
    decoder = TwoUtterances()
    first = np.concatenate([speech.silence(1.0), speech.espeak("alpha bravo charlie delta echo"), speech.silence(1.6)])
    second = np.concatenate([speech.espeak("foxtrot golf hotel india juliet kilo lima"), speech.silence(1.5)])
    audio = np.concatenate([first, second]).astype(np.float32) / 32768.0
    stall_until = len(first) + 16_000  # the model answers nothing until 1 s into the second utterance
    events: list = []
    for i in range(0, len(audio), 320):
        events += core.push(audio[i : i + 320])
        if i >= stall_until and (request := core.next_request()) is not None:
            events += core.complete(decoder(request))
    ends = [e for e in events if isinstance(e, UtteranceEnd)]
    assert ends, "the 1.6 s pause ended the first utterance"
    assert ends[0].last_word_end == pytest.approx(SCRIPT[-1].end)
    said_after = [w.text for e in events[events.index(ends[0]) :] if isinstance(e, Transcript) for w in e.words]
    assert not {w.text for w in SCRIPT} & set(said_after), "UtteranceEnd follows the first utterance's words"


def hum(seconds: float, dbfs: float, f0: float = 150.0) -> np.ndarray:
    """A harmonic hum (a fan, a far voice): webrtcvad hears it as voiced."""
    t = np.arange(int(seconds * 16000)) / 16000
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
    x = x / np.sqrt(np.mean(x**2)) * 32768 * 10 ** (dbfs / 20)
    return np.round(x).astype(np.int16)


def test_words_end_the_utterance_when_a_hum_holds_the_vad_open() -> None:
    """The VAD hears "speech" for 3 s after the last word; the decodes hear no word in it. The endpoint
    comes from the words (span: last word + endpointing), long before the hum stops, and only once."""
    said = np.concatenate([speech.silence(1.0), speech.espeak("alpha bravo charlie delta echo"), speech.silence(4.5)])
    under = np.zeros_like(said)
    start = int(2.8 * 16000)
    noise = hum(3.0, -35.0)
    under[start : start + len(noise)] = noise
    audio = speech.mix(said, under)
    vad = VoiceActivityDetector(16000, VadConfig(end_ms=300))
    ends = [e.time for e in vad.feed(audio) if isinstance(e, SpeechEnd)]
    assert ends and ends[0] > 5.5, "precondition: the VAD alone holds the utterance open through the hum"

    config = TranscriberConfig(endpointing_ms=300, utterance_end_ms=1000)
    core, decoder = ChannelTranscriber(config), ScriptedDecoder()
    timed: list[tuple[float, object]] = []
    floats = audio.astype(np.float32) / 32768.0
    for i in range(0, len(floats), 320):
        events = core.push(floats[i : i + 320])
        if (request := core.next_request()) is not None:
            events += core.complete(decoder(request))
        timed += [(core.time, e) for e in events]
    endpoints = [(t, e) for t, e in timed if isinstance(e, Transcript) and e.speech_final]
    assert len(endpoints) == 1, "one speech_final: the VAD's late end of the hum makes no second one"
    at, final = endpoints[0]
    assert at < ends[0] - 1.0, f"speech_final at {at:.2f} s of stream time, the VAD ended at {ends[0]:.2f} s"
    assert final.start + final.duration <= SCRIPT[-1].end + 0.3 + 1e-6
    said_words = [w.text for _, e in timed if isinstance(e, Transcript) and e.is_final for w in e.words]
    assert said_words == [w.text for w in SCRIPT], "every word final once, in order"
    assert any(isinstance(e, UtteranceEnd) and t < ends[0] for t, e in timed)


def test_a_word_the_decodes_keep_changing_is_final_once_it_has_max_wait_of_context() -> None:
    sentence = speech.espeak("as light pollution in their heyday was not the kind of problem it is today")
    audio = np.concatenate([speech.silence(1.0), sentence, speech.silence(1.0)])
    speech_end = 1.0 + len(sentence) / 16_000

    def flipping(count: itertools.count[int]) -> Callable[[DecodeRequest], DecodeResult]:
        def decode(request: DecodeRequest) -> DecodeResult:
            # Every decode reads the first word differently ("light" / "my"); the rest agree.
            end = request.offset + request.duration
            first = Word("light" if next(count) % 2 else "my", 1.0, 1.3, 0.5)
            rest = [Word(f"w{i}", 1.4 + 0.3 * i, 1.6 + 0.3 * i, 0.9) for i in range(12)]
            return DecodeResult(tuple(w for w in [first, *rest] if w.end <= end), 0.0)

        return decode

    def finals(max_wait_s: float) -> list[Transcript]:
        core = ChannelTranscriber(TranscriberConfig(endpointing_ms=300, max_wait_s=max_wait_s))
        events = drive(core, audio, flipping(itertools.count()))
        return [e for e in events if isinstance(e, Transcript) and e.is_final and e.words]

    waited = finals(0.0)
    assert waited[0].speech_final and waited[0].words[0].end == 1.3, "without a deadline it waits for the endpoint"
    early = finals(2.0)
    assert not early[0].speech_final, "with one, it is final before the endpoint"
    assert early[0].words[0].text in ("light", "my")
    assert early[0].start + early[0].duration < speech_end
    assert [w.text for f in early for w in f.words][1:] == [f"w{i}" for i in range(12)], "nothing lost or repeated"


@pytest.mark.parametrize("chunk", [320, 1600, 4000])
@pytest.mark.parametrize("lag", [0, 3])
def test_the_endpoint_final_spans_to_where_the_vad_decided(chunk: int, lag: int) -> None:
    """The speech_final's span ends where the endpointing silence ran out, in stream time: not at the end of
    the chunk that carried that moment, nor where an interim decode adopted as the flush had stopped
    hearing (``lag``: each decode answers only ``lag`` chunks later, a busy model)."""
    audio = audio_with_speech()
    config = TranscriberConfig(endpointing_ms=300, final_after_s=None)
    vad = VoiceActivityDetector(16000, replace(config.vad, end_ms=300))
    decided = [e.at for e in vad.feed(audio) if isinstance(e, SpeechEnd)]
    assert len(decided) == 1
    core, decoder = ChannelTranscriber(config), ScriptedDecoder()
    floats = audio.astype(np.float32) / 32768.0
    events: list = []
    pending: DecodeRequest | None = None
    countdown = 0
    for i in range(0, len(floats), chunk):
        events += core.push(floats[i : i + chunk])
        if pending is None:
            pending, countdown = core.next_request(), lag
        elif countdown:
            countdown -= 1
        if pending is not None and not countdown:
            events += core.complete(decoder(pending))
            events += core.immediate_flush()
            pending = None
    endpoint = next(e for e in events if isinstance(e, Transcript) and e.speech_final)
    assert [w.text for w in endpoint.words] == [w.text for w in SCRIPT]
    assert endpoint.start + endpoint.duration == pytest.approx(decided[0], abs=1e-4)
