"""When a channel decodes, and which words are ready to commit: the streaming policy's knobs.

Pure. The transcriber asks :meth:`DecodePolicy.due` whether a new interim
decode is worth its cost, instead of decoding as often as the model allows:
a decode is due once a step of new audio has arrived *and* something changed
since the last one: new voiced audio, or unstable words that one more decode
over the silence after them can confirm (at most ``quiet_decodes`` such
decodes, since re-reading the same speech again changes nothing). The step is
``first_step_s`` until the utterance has shown a word (the first interim is
what a caption reader waits for), ``step_s`` after. A decode is also due,
before the step, once the audio received holds the oldest unstable word's
commit context and the last decode's did not (:func:`commit_ready`): that is
the decode that can commit it, so a word's final waits for its context and one
decode, not for the next step as well. Likewise once it holds ``max_wait_s``
after that word: the decode that commits it whether or not it agrees with the
last one (:func:`deadline_horizon`).
:func:`commit_horizon` is the right context a word needs before it may be
committed; :func:`doubt_horizon` asks more of a word the model doubts while
the window is still short (the start of an utterance, where a little more
audio most often rewrites a word: "how do you" becoming "had he").

Which knob trades what (measured with ``python -m bench tune``):
``step_s`` trades CPU for interim and final latency; ``first_step_s`` trades a
little CPU for the first interim; ``edge_s`` trades final latency for accuracy
(a word committed with little audio after it is the one a longer window would
still change); ``doubt_probability``/``doubt_edge_s`` trade the latency of
doubtful words for accuracy; ``sure_probability``/``sure_edge_s`` trade
accuracy for fewer decodes per final (a confident word needs one decode with
right context, not two that agree); ``quiet_decodes`` trades a little CPU for finals
before the endpoint when speech pauses; ``max_wait_s`` caps how long a word
the decodes keep changing waits (its latest reading, with that much right
context, commits: accuracy on such words for the tail of final latency);
``commit_step_s`` schedules the decode
that can commit the oldest unstable word as soon as its context has arrived
(finals sooner, for a few more decodes; with a longer ``step_s``, fewer).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodePolicy:
    """Decode scheduling and commit context of one channel."""

    step_s: float = 0.75
    """New audio (stream seconds) between two interim decodes."""
    first_step_s: float = 0.3
    """The step until the utterance has shown a word in an interim."""
    edge_s: float = 0.5
    """A word is committed only when the decoded audio goes on this long after its end."""
    doubt_probability: float = 0.6
    """Words the model gives a lower probability need ``doubt_edge_s`` instead (0: off)."""
    doubt_edge_s: float = 1.5
    """Right context a doubtful word needs before it may be committed."""
    doubt_window_s: float = 5.0
    """Doubt applies while the decoded window is shorter than this (the utterance's start)."""
    quiet_decodes: int = 1
    """Interim decodes allowed with no new voiced audio, while unstable words wait."""
    sure_probability: float = 0.0
    """Words at least this probable commit from one decode, without a second agreeing (0: off)."""
    sure_edge_s: float = 0.5
    """Right context a sure word needs to commit from one decode."""
    max_wait_s: float = 2.0
    """A word with this much right context in a decode commits from it, agreed or not (0: off)."""
    commit_step_s: float = 0.2
    """With this much new audio (0: off), a decode is due early once the oldest unstable word has
    its commit context (``edge_s``) in the audio received, which the last decode did not hold."""

    def due(
        self,
        new_s: float,
        new_voiced: bool,
        unstable: bool,
        quiet_decodes_done: int,
        shown: bool = True,
        commit_ready: bool = False,
    ) -> bool:
        """Whether an interim decode is worth running now.

        ``new_s``: audio received since the last decode's end; ``new_voiced``:
        whether the VAD heard speech in it; ``unstable``: words wait for
        agreement; ``quiet_decodes_done``: decodes since the last voiced audio;
        ``shown``: an interim of this utterance has shown a word already;
        ``commit_ready``: the audio received now holds the oldest unstable
        word's commit context and the last decode's did not (see :func:`commit_ready`).
        """
        if commit_ready and unstable and self.commit_step_s > 0.0 and new_s >= self.commit_step_s:
            # The one decode that can commit the word: run it now rather than at the next step.
            return True
        step = self.step_s if shown else min(self.step_s, self.first_step_s)
        if new_s < step:
            return False
        if new_voiced:
            return True
        return unstable and quiet_decodes_done < self.quiet_decodes


def commit_ready(
    word_end_s: float,
    probability: float,
    window_s: float,
    decoded_end_s: float,
    received_s: float,
    policy: DecodePolicy,
) -> bool:
    """Whether a word (end, probability) could commit from a decode of the audio received
    (``received_s``) but not from the last one (ending at ``decoded_end_s``, with a window of
    ``window_s``): its right context, as :func:`commit_horizon` and :func:`doubt_horizon` ask it."""
    edge = policy.edge_s
    doubtful = policy.doubt_probability > 0.0 and probability < policy.doubt_probability
    if doubtful and window_s < policy.doubt_window_s:
        edge = max(edge, policy.doubt_edge_s)
    if decoded_end_s < word_end_s + edge <= received_s:
        return True
    # A word that two decodes would not agree on commits once it has its deadline's context.
    before, now = deadline_horizon(decoded_end_s, policy), deadline_horizon(received_s, policy)
    return before is not None and now is not None and before < word_end_s <= now


def commit_horizon(decoded_end_s: float, policy: DecodePolicy) -> float:
    """Latest word end that a decode ending at ``decoded_end_s`` may commit."""
    return decoded_end_s - policy.edge_s


def sure_horizon(decoded_end_s: float, policy: DecodePolicy) -> tuple[float, float] | None:
    """``(probability, horizon)``: words at least that probable, ending by the horizon, commit alone."""
    if policy.sure_probability <= 0.0:
        return None
    return policy.sure_probability, decoded_end_s - max(policy.edge_s, policy.sure_edge_s)


def deadline_horizon(decoded_end_s: float, policy: DecodePolicy) -> float | None:
    """Latest word end that a decode ending at ``decoded_end_s`` commits unagreed; None when off."""
    if policy.max_wait_s <= 0.0:
        return None
    return decoded_end_s - max(policy.edge_s, policy.max_wait_s)


def doubt_horizon(decoded_end_s: float, window_s: float, policy: DecodePolicy) -> tuple[float, float] | None:
    """``(probability, horizon)``: words less probable than that must end by the horizon; None when off."""
    if policy.doubt_probability <= 0.0 or window_s >= policy.doubt_window_s:
        return None
    return policy.doubt_probability, decoded_end_s - max(policy.edge_s, policy.doubt_edge_s)
