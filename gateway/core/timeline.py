"""Place audio chunks of several tracks on one sample timeline (a jitter buffer).

Pure. Each chunk arrives with a start position (in samples, from a sender
timestamp) on one track. The timeline releases audio of every track for the
same span at once, so tracks stay aligned however their chunks arrive:

* contiguous audio present on every track is released at once;
* a gap (a missing chunk, or a track that sends nothing) is waited for while
  the newest audio on any track is less than ``window`` samples past it;
  after that it is released as silence of exactly its length, so later
  chunks keep their timestamps;
* a chunk arriving ahead of an earlier one inside the window is put back in
  order; a chunk for a span already released is late: dropped and counted
  (partly late chunks keep their unreleased tail);
* a chunk starting more than ``max_jump`` samples past the newest audio is
  refused (:class:`~gateway.core.errors.InvalidAudio`): a bad timestamp must not
  make the gateway invent minutes of silence.

Positions are sample indices; payloads are one byte per sample (G.711).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.errors import InvalidAudio

MULAW_SILENCE = 0xFF
"""The mu-law code of zero amplitude."""


@dataclass(slots=True)
class TimelineStats:
    """What the timeline had to mend, for logs and the stored stream."""

    chunks: int = 0
    reordered_chunks: int = 0
    late_chunks: int = 0
    late_samples: int = 0
    duplicate_samples: int = 0
    filled_samples: int = 0
    """Silence inserted for audio that never arrived in time."""

    def as_dict(self) -> dict[str, int]:
        return {
            "chunks": self.chunks,
            "reordered_chunks": self.reordered_chunks,
            "late_chunks": self.late_chunks,
            "late_samples": self.late_samples,
            "duplicate_samples": self.duplicate_samples,
            "filled_samples": self.filled_samples,
        }


class Timeline:
    """A jitter buffer for ``tracks`` byte-per-sample tracks sharing one clock."""

    def __init__(self, tracks: int, window: int, max_jump: int, silence: int = MULAW_SILENCE) -> None:
        if tracks < 1 or window < 0 or max_jump <= 0:
            raise ValueError("a timeline needs at least one track, a window >= 0 and max_jump > 0")
        self.tracks = tracks
        self.window = window
        self.max_jump = max_jump
        self._silence = bytes([silence])
        self.released = 0
        """Every track has been released up to this sample (exclusive)."""
        self._pending: list[dict[int, bytes]] = [{} for _ in range(tracks)]
        self._newest_start = [-1] * tracks
        self.horizon = 0
        """The furthest sample any track has reached."""
        self.stats = TimelineStats()

    def add(self, track: int, start: int, payload: bytes) -> None:
        """Take one chunk of ``track`` starting at sample ``start``."""
        if not 0 <= track < self.tracks:
            raise ValueError(f"track {track} out of range")
        if start < 0:
            raise InvalidAudio(f"chunk position {start} is negative")
        if start > self.horizon + self.max_jump:
            raise InvalidAudio(
                f"chunk starts {start - self.horizon} samples after the newest audio "
                f"(more than the {self.max_jump} allowed): timestamp out of range"
            )
        self.stats.chunks += 1
        end = start + len(payload)
        if end <= self.released:
            self.stats.late_chunks += 1
            self.stats.late_samples += len(payload)
            return
        if start < self.released:
            self.stats.late_samples += self.released - start
            payload = payload[self.released - start :]
            start = self.released
        if start < self._newest_start[track]:
            self.stats.reordered_chunks += 1
        self._newest_start[track] = max(self._newest_start[track], start)
        pending = self._pending[track]
        if len(pending.get(start, b"")) >= len(payload):
            self.stats.duplicate_samples += len(payload)
            return
        pending[start] = payload
        self.horizon = max(self.horizon, end)

    def release(self, final: bool = False) -> tuple[bytes, ...] | None:
        """Audio every track can give up now (``final``: everything), or None.

        The tuple holds one equal-length byte string per track.
        """
        if final:
            target = self.horizon
        else:
            ready = min(self._contiguous_end(track) for track in range(self.tracks))
            target = max(ready, self.horizon - self.window)
        if target <= self.released:
            return None
        out = tuple(self._take(track, target) for track in range(self.tracks))
        self.released = target
        return out

    def _contiguous_end(self, track: int) -> int:
        """Where the audio of ``track`` that follows the release point without a gap ends."""
        position = self.released
        pending = self._pending[track]
        # Chunks may overlap (resent or re-timed): follow the furthest reach.
        for start in sorted(pending):
            if start > position:
                break
            position = max(position, start + len(pending[start]))
        return position

    def _take(self, track: int, target: int) -> bytes:
        pending = self._pending[track]
        parts: list[bytes] = []
        position = self.released
        for start in sorted(pending):
            if start >= target:
                break
            payload = pending.pop(start)
            end = start + len(payload)
            if end <= position:
                self.stats.duplicate_samples += len(payload)
                continue
            if start > position:
                parts.append(self._silence * (start - position))
                self.stats.filled_samples += start - position
            elif start < position:
                self.stats.duplicate_samples += position - start
                payload = payload[position - start :]
                start = position
            if end > target:
                # Keep the part after the release point for the next release.
                rest = payload[target - start :]
                if len(pending.get(target, b"")) < len(rest):
                    pending[target] = rest
                payload = payload[: target - start]
                end = target
            parts.append(payload)
            position = end
        if position < target:
            parts.append(self._silence * (target - position))
            self.stats.filled_samples += target - position
        return b"".join(parts)
