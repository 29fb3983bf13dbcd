"""The streaming policy's pure core: when a decode is due, which words may be committed."""

from __future__ import annotations

import numpy as np

from gateway.core.policy import DecodePolicy, commit_horizon, commit_ready, deadline_horizon, doubt_horizon
from gateway.core.transcriber import ChannelTranscriber, TranscriberConfig
from gateway.core.types import DecodeResult, Word
from tests import speech


def test_no_decode_before_a_step_of_new_audio() -> None:
    policy = DecodePolicy(step_s=0.5)
    assert not policy.due(0.49, new_voiced=True, unstable=True, quiet_decodes_done=0)
    assert policy.due(0.5, new_voiced=True, unstable=False, quiet_decodes_done=0)


def test_silence_is_decoded_only_to_confirm_waiting_words() -> None:
    policy = DecodePolicy(step_s=0.5, quiet_decodes=1)
    assert not policy.due(2.0, new_voiced=False, unstable=False, quiet_decodes_done=0)
    assert policy.due(2.0, new_voiced=False, unstable=True, quiet_decodes_done=0)
    assert not policy.due(2.0, new_voiced=False, unstable=True, quiet_decodes_done=1)
    assert not DecodePolicy(quiet_decodes=0).due(2.0, new_voiced=False, unstable=True, quiet_decodes_done=0)


def test_commit_horizon_keeps_right_context() -> None:
    assert commit_horizon(10.0, DecodePolicy(edge_s=0.6)) == 10.0 - 0.6


def _feed(core: ChannelTranscriber, pcm: np.ndarray) -> None:
    floats = pcm.astype(np.float32) / 32768.0
    for i in range(0, len(floats), 320):
        core.push(floats[i : i + 320])


def test_pause_without_new_speech_stops_interim_decodes() -> None:
    # Endpointing off: a pause is finalised only after 800 ms; until then at most
    # one decode over the silence (to confirm the unstable word), not one per step.
    config = TranscriberConfig(endpointing_ms=None, interim_step_s=0.2, quiet_decodes=1, final_after_s=None)
    core = ChannelTranscriber(config)
    _feed(core, np.concatenate([speech.silence(0.5), speech.espeak("hello there"), speech.silence(0.05)]))
    decodes = 0
    word = Word("hello", 0.6, 0.9, 0.9)
    while (request := core.next_request()) is not None:
        decodes += 1
        core.complete(DecodeResult((word,), 0.0))
    assert decodes == 1
    quiet = 0
    for _ in range(30):  # 0.6 s of silence, 20 ms at a time: below the 800 ms pause
        _feed(core, speech.silence(0.02))
        if (request := core.next_request()) is not None:
            if request.final:  # the pause became long enough to finalise
                break
            quiet += 1
            core.complete(DecodeResult((word,), 0.0))
    assert quiet <= config.quiet_decodes


def test_words_near_the_window_edge_wait_for_right_context() -> None:
    config = TranscriberConfig(
        commit_edge_s=1.0, final_after_s=None, endpointing_ms=None, interim_step_s=0.5, commit_step_s=0.0
    )
    core = ChannelTranscriber(config)
    _feed(core, np.concatenate([speech.silence(0.5), speech.espeak("one two three four five six")]))
    end = core.time
    near = Word("six", end - 0.5, end - 0.2, 0.9)
    early = Word("one", 0.6, 0.9, 0.9)
    for _ in range(2):  # two agreeing decodes of the same window
        request = core.next_request()
        assert request is not None
        core.complete(DecodeResult((early, near), 0.0))
        _feed(core, speech.espeak("seven")[:8000])
    assert [w.text for w in core.agreement.committed] == ["one"]


def test_the_first_interim_of_an_utterance_comes_after_a_shorter_step() -> None:
    policy = DecodePolicy(step_s=0.5, first_step_s=0.25)
    assert policy.due(0.3, new_voiced=True, unstable=False, quiet_decodes_done=0, shown=False)
    assert not policy.due(0.3, new_voiced=True, unstable=False, quiet_decodes_done=0, shown=True)


def test_doubt_applies_only_while_the_window_is_short() -> None:
    policy = DecodePolicy(edge_s=0.5, doubt_probability=0.6, doubt_edge_s=1.5, doubt_window_s=5.0)
    assert doubt_horizon(4.0, 3.0, policy) == (0.6, 4.0 - 1.5)
    assert doubt_horizon(9.0, 6.0, policy) is None
    assert doubt_horizon(4.0, 3.0, DecodePolicy(doubt_probability=0.0)) is None


def test_first_interim_decode_comes_at_the_first_step() -> None:
    config = TranscriberConfig(
        interim_step_s=1.0, first_step_s=0.2, final_after_s=None, endpointing_ms=None, commit_step_s=0.0
    )
    core = ChannelTranscriber(config)
    _feed(core, np.concatenate([speech.silence(0.5), speech.espeak("hello there my friend")[:4800]]))
    request = core.next_request()
    assert request is not None, "0.3 s of speech is past the first step"
    core.complete(DecodeResult((Word("hello", 0.5, 0.58, 0.9),), 0.0))
    _feed(core, speech.espeak("hello there my friend")[4800:9600])  # another 0.3 s
    assert core.next_request() is None, "once a word is shown, the step is the normal one"


def test_a_decode_that_can_commit_a_word_comes_before_the_step() -> None:
    policy = DecodePolicy(step_s=1.0, edge_s=0.5, commit_step_s=0.2, doubt_probability=0.0)
    # "brown" ends at 2.0 s; the last decode ended at 2.3 s (too soon to commit it); 2.5 s arrived.
    assert commit_ready(2.0, 0.9, 3.0, 2.3, 2.5, policy)
    assert not commit_ready(2.0, 0.9, 3.0, 2.3, 2.45, policy), "its context has not arrived yet"
    assert not commit_ready(2.0, 0.9, 3.0, 2.6, 2.8, policy), "the last decode had it already"
    assert policy.due(0.2, new_voiced=True, unstable=True, quiet_decodes_done=0, commit_ready=True)
    assert not policy.due(0.19, new_voiced=True, unstable=True, quiet_decodes_done=0, commit_ready=True)
    assert not policy.due(0.2, new_voiced=True, unstable=True, quiet_decodes_done=0), "otherwise the step"
    assert not DecodePolicy(step_s=1.0, commit_step_s=0.0).due(0.5, True, True, 0, commit_ready=True), "0: off"


def test_a_doubtful_word_is_ready_only_with_the_doubt_context() -> None:
    policy = DecodePolicy(edge_s=0.5, doubt_probability=0.6, doubt_edge_s=1.5, doubt_window_s=5.0, commit_step_s=0.2)
    assert not commit_ready(2.0, 0.3, 3.0, 2.3, 2.6, policy)
    assert commit_ready(2.0, 0.3, 3.0, 3.3, 3.6, policy)
    assert commit_ready(2.0, 0.3, 6.0, 2.3, 2.6, policy), "a long window: doubt no longer applies"


def test_commit_step_decodes_when_the_oldest_unstable_word_has_its_context() -> None:
    config = TranscriberConfig(
        interim_step_s=2.0, first_step_s=0.2, commit_step_s=0.2, final_after_s=None, endpointing_ms=None
    )
    core = ChannelTranscriber(config)
    _feed(core, np.concatenate([speech.silence(0.5), speech.espeak("one two three four five six")[:8000]]))
    request = core.next_request()
    assert request is not None
    decoded_end = core.time
    core.complete(DecodeResult((Word("one", 0.6, decoded_end - 0.3, 0.9),), 0.0))
    _feed(core, speech.espeak("seven")[:3200])  # 0.2 s: the word's 0.5 s of context is in
    assert core.next_request() is not None, "the decode that can commit 'one' runs before the 2 s step"


def test_the_deadline_decode_comes_once_a_changing_word_has_its_context() -> None:
    policy = DecodePolicy(edge_s=0.5, doubt_probability=0.0, max_wait_s=2.0, commit_step_s=0.2)
    assert deadline_horizon(10.0, policy) == 8.0
    assert deadline_horizon(10.0, DecodePolicy(max_wait_s=0.0)) is None, "0: off"
    assert deadline_horizon(10.0, DecodePolicy(edge_s=0.5, max_wait_s=0.2)) == 9.5, "never inside the commit edge"
    # "light" ends at 1.2 s; decodes ending at 2.8 s disagreed on it; 3.2 s has arrived: its deadline.
    assert commit_ready(1.2, 0.4, 3.0, 2.8, 3.2, policy)
    assert not commit_ready(1.2, 0.4, 3.0, 3.3, 3.5, policy), "the last decode had the deadline's audio"
    assert not commit_ready(1.2, 0.4, 3.0, 2.8, 3.2, DecodePolicy(max_wait_s=0.0)), "0: off"
