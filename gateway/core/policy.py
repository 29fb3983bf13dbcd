"""When a channel decodes, and which words are ready to commit: the streaming policy's knobs.

Pure. The transcriber asks :meth:`DecodePolicy.due` whether a new interim
decode is worth its cost, instead of decoding as often as the model allows:
a decode is due once ``step_s`` of new audio has arrived *and* something
changed since the last one: new voiced audio, or unstable words that one more
decode over the silence after them can confirm (at most ``quiet_decodes`` such
decodes, since re-reading the same speech again changes nothing).
:func:`commit_horizon` is the right context a word needs before it may be
committed.

Which knob trades what (measured with ``python -m bench tune``):
``step_s`` trades CPU for interim and final latency; ``edge_s`` trades final
latency for accuracy (a word committed with little audio after it is the one
a longer window would still change); ``quiet_decodes`` trades a little CPU for
finals before the endpoint when speech pauses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodePolicy:
    """Decode scheduling and commit context of one channel."""

    step_s: float = 0.5
    """New audio (stream seconds) between two interim decodes."""
    edge_s: float = 0.6
    """A word is committed only when the decoded audio goes on this long after its end."""
    quiet_decodes: int = 1
    """Interim decodes allowed with no new voiced audio, while unstable words wait."""

    def due(self, new_s: float, new_voiced: bool, unstable: bool, quiet_decodes_done: int) -> bool:
        """Whether an interim decode is worth running now.

        ``new_s``: audio received since the last decode's end; ``new_voiced``:
        whether the VAD heard speech in it; ``unstable``: words wait for
        agreement; ``quiet_decodes_done``: decodes since the last voiced audio.
        """
        if new_s < self.step_s:
            return False
        if new_voiced:
            return True
        return unstable and quiet_decodes_done < self.quiet_decodes


def commit_horizon(decoded_end_s: float, policy: DecodePolicy) -> float:
    """Latest word end that a decode ending at ``decoded_end_s`` may commit."""
    return decoded_end_s - policy.edge_s
