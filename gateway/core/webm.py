"""Incremental WebM / Matroska demuxer: EBML bytes as they arrive in, audio frames out.

Pure and per-stream. Browsers' MediaRecorder writes WebM live: the Segment and
each Cluster have an unknown size and simply go on, so :class:`WebmDemuxer`
reads the element stream flat: it steps *into* the elements that hold what it
needs (Segment, Cluster, BlockGroup), reads Tracks and blocks whole, and skips
everything else (SeekHead, Cues, Tags, Void...) without buffering it. Frames of
the first audio track come out in order; lacing (Xiph, fixed, EBML) is split.
Malformed EBML raises :class:`~gateway.core.errors.InvalidAudio`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gateway.core.errors import InvalidAudio

EBML_MAGIC = b"\x1a\x45\xdf\xa3"

_SEGMENT, _CLUSTER, _BLOCK_GROUP = 0x18538067, 0x1F43B675, 0xA0
_TRACKS, _SIMPLE_BLOCK, _BLOCK = 0x1654AE6B, 0xA3, 0xA1
_ENTERED = {_SEGMENT, _CLUSTER, _BLOCK_GROUP}
_READ_WHOLE = {_TRACKS, _SIMPLE_BLOCK, _BLOCK}
_TRACK_ENTRY, _TRACK_NUMBER, _TRACK_TYPE, _CODEC_ID, _CODEC_PRIVATE = 0xAE, 0xD7, 0x83, 0x86, 0x63A2
_AUDIO, _SAMPLING_FREQUENCY, _CHANNELS = 0xE1, 0xB5, 0x9F
_AUDIO_TRACK = 2
_MAX_ELEMENT = 1 << 20


@dataclass(frozen=True, slots=True)
class Track:
    """The audio track the demuxer follows."""

    number: int
    codec_id: str
    """Matroska codec id, e.g. ``A_OPUS``."""
    codec_private: bytes
    sample_rate: int
    channels: int


def _vint(data: bytes | bytearray, pos: int, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at ``pos``: (value, length), None if cut short."""
    if pos >= len(data):
        return None
    first = data[pos]
    if first == 0:
        raise InvalidAudio("malformed WebM: an EBML number longer than 8 bytes")
    length = 9 - first.bit_length()
    if pos + length > len(data):
        return None
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for byte in data[pos + 1 : pos + length]:
        value = (value << 8) | byte
    return value, length


def _unknown(size: int, length: int) -> bool:
    return size == (1 << (7 * length)) - 1


def _children(data: bytes) -> list[tuple[int, bytes]]:
    """The (id, payload) children of a master element read whole."""
    out, pos = [], 0
    while pos < len(data):
        ident = _vint(data, pos, keep_marker=True)
        size = ident and _vint(data, pos + ident[1], keep_marker=False)
        if ident is None or size is None or pos + ident[1] + size[1] + size[0] > len(data):
            raise InvalidAudio("malformed WebM: an element runs past its parent")
        start = pos + ident[1] + size[1]
        out.append((ident[0], data[start : start + size[0]]))
        pos = start + size[0]
    return out


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big")


def parse_tracks(data: bytes) -> Track | None:
    """The first audio track of a Tracks element's payload, or None if it has none."""
    for ident, entry in _children(data):
        if ident != _TRACK_ENTRY:
            continue
        fields = dict(_children(entry))
        if _uint(fields.get(_TRACK_TYPE, b"")) != _AUDIO_TRACK:
            continue
        audio = dict(_children(fields.get(_AUDIO, b"")))
        raw_rate = audio.get(_SAMPLING_FREQUENCY, b"")
        rate = 8000.0
        if len(raw_rate) in (4, 8):
            (rate,) = struct.unpack(">f" if len(raw_rate) == 4 else ">d", raw_rate)
        return Track(
            number=_uint(fields.get(_TRACK_NUMBER, b"")),
            codec_id=fields.get(_CODEC_ID, b"").rstrip(b"\0").decode("ascii", "replace"),
            codec_private=fields.get(_CODEC_PRIVATE, b""),
            sample_rate=round(rate),
            channels=_uint(audio.get(_CHANNELS, b"\x01")),
        )
    return None


def split_block(block: bytes) -> tuple[int, list[bytes]]:
    """A (Simple)Block's track number and its frames, lacing undone."""
    head = _vint(block, 0, keep_marker=False)
    if head is None or len(block) < head[1] + 3:
        raise InvalidAudio("malformed WebM: a block shorter than its header")
    track, pos = head[0], head[1] + 3
    lacing = (block[head[1] + 2] >> 1) & 0x03
    if lacing == 0:
        return track, [block[pos:]]
    if pos >= len(block):
        raise InvalidAudio("malformed WebM: a laced block without a frame count")
    count = block[pos] + 1
    pos += 1
    sizes: list[int] = []
    if lacing == 1:  # Xiph: each size as a run of 255s and a last byte
        for _ in range(count - 1):
            size = 0
            while True:
                if pos >= len(block):
                    raise InvalidAudio("malformed WebM: a laced block cut inside its sizes")
                size += block[pos]
                pos += 1
                if block[pos - 1] != 255:
                    break
            sizes.append(size)
    elif lacing == 3:  # EBML: the first size, then signed differences
        first = _vint(block, pos, keep_marker=False)
        if first is None:
            raise InvalidAudio("malformed WebM: a laced block cut inside its sizes")
        sizes.append(first[0])
        pos += first[1]
        for _ in range(count - 2):
            diff = _vint(block, pos, keep_marker=False)
            if diff is None:
                raise InvalidAudio("malformed WebM: a laced block cut inside its sizes")
            sizes.append(sizes[-1] + diff[0] - ((1 << (7 * diff[1] - 1)) - 1))
            pos += diff[1]
    rest = len(block) - pos
    if lacing == 2:  # fixed: equal sizes
        if rest % count:
            raise InvalidAudio("malformed WebM: a fixed-size laced block does not divide evenly")
        sizes = [rest // count] * (count - 1)
    sizes.append(rest - sum(sizes))
    if any(size < 0 for size in sizes):
        raise InvalidAudio("malformed WebM: laced frame sizes exceed the block")
    frames = []
    for size in sizes:
        frames.append(block[pos : pos + size])
        pos += size
    return track, frames


class WebmDemuxer:
    """Splits a WebM/Matroska byte stream into the frames of its first audio track."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip = 0
        self._started = False
        self.track: Track | None = None
        """Known once the Tracks element has been read."""

    def feed(self, data: bytes) -> list[bytes]:
        """Every audio frame completed by ``data``; raises InvalidAudio on bytes that are not EBML."""
        if self._skip:
            skipped = min(self._skip, len(data))
            self._skip -= skipped
            data = data[skipped:]
        self._buffer += data
        frames: list[bytes] = []
        while self._buffer and not self._skip:
            element = self._next_element()
            if element is None:
                break
            ident, payload = element
            if ident == _TRACKS:
                if self.track is None:
                    self.track = parse_tracks(payload)
                    if self.track is None:
                        raise InvalidAudio("the WebM stream has no audio track")
            elif ident in (_SIMPLE_BLOCK, _BLOCK):
                if self.track is None:
                    raise InvalidAudio("malformed WebM: a block before the Tracks element")
                number, laced = split_block(payload)
                if number == self.track.number:
                    frames += laced
        return frames

    def _next_element(self) -> tuple[int, bytes] | None:
        buffer = self._buffer
        if not self._started:
            if len(buffer) < 4:
                if not EBML_MAGIC.startswith(bytes(buffer)):
                    raise InvalidAudio("the stream is not WebM (no EBML header)")
                return None
            if buffer[:4] != EBML_MAGIC:
                raise InvalidAudio("the stream is not WebM (no EBML header)")
        ident = _vint(buffer, 0, keep_marker=True)
        if ident is not None and ident[1] > 4:
            raise InvalidAudio("malformed WebM: an element id longer than 4 bytes")
        size = ident and _vint(buffer, ident[1], keep_marker=False)
        if ident is None or size is None:
            return None
        self._started = True
        start = ident[1] + size[1]
        if ident[0] in _ENTERED:
            del buffer[:start]  # its children follow; its end (often unknown) is not needed
            return ident[0], b""
        if _unknown(size[0], size[1]):
            raise InvalidAudio(f"unsupported WebM: element 0x{ident[0]:X} of unknown size")
        if ident[0] not in _READ_WHOLE:
            skipped = min(size[0], len(buffer) - start)
            del buffer[: start + skipped]
            self._skip = size[0] - skipped
            return ident[0], b""
        if size[0] > _MAX_ELEMENT:
            raise InvalidAudio(f"unsupported WebM: a {size[0]}-byte element (limit {_MAX_ELEMENT})")
        if len(buffer) < start + size[0]:
            return None
        payload = bytes(buffer[start : start + size[0]])
        del buffer[: start + size[0]]
        return ident[0], payload
