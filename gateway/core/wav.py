"""WAV streamed live: the RIFF header read as it arrives, then its samples as raw audio.

Pure and per-stream. :class:`WavDecoder` reads the ``fmt `` chunk (16-bit PCM,
mu-law or A-law; WAVE_FORMAT_EXTENSIBLE too), hands the ``data`` chunk to an
:class:`~gateway.core.audio.AudioDecoder` at the header's rate and channel
count, and keeps a sample cut between frames for the next one (a file sliced
anywhere). A data size of 0 or 0xFFFFFFFF (a live writer's) means "until the
end"; bytes after a sized data chunk (LIST metadata) are not audio and are
dropped. Other formats raise :class:`~gateway.core.errors.InvalidAudio`.
"""

from __future__ import annotations

import struct

from gateway.core.audio import AudioDecoder, DecodedFrame, empty_frame
from gateway.core.errors import InvalidAudio
from gateway.core.params import Encoding

RIFF_MAGIC = b"RIFF"
_FORMATS = {(1, 16): Encoding.LINEAR16, (7, 8): Encoding.MULAW, (6, 8): Encoding.ALAW}
_EXTENSIBLE = 0xFFFE
_MAX_HEADER = 1 << 16


class WavDecoder:
    """One stream of WAV bytes."""

    def __init__(self, channels: int, multichannel: bool, vad_rate: int) -> None:
        self.channels = channels
        self.multichannel = multichannel
        self.out_channels = channels if multichannel else 1
        self.vad_rate = vad_rate
        self._header = bytearray()
        self._fmt: tuple[Encoding, int, int] | None = None
        self.inner: AudioDecoder | None = None
        self._left: int | None = None
        """Data bytes still to come (None: until the stream ends)."""
        self._partial = b""

    def decode(self, frame: bytes) -> DecodedFrame:
        if self.inner is None:
            self._header += frame
            data = self._read_header()
            if data is None:
                return empty_frame(self.out_channels)
            frame = data
        if self._left is not None:
            frame, self._left = frame[: self._left], self._left - min(self._left, len(frame))
        frame = self._partial + frame
        assert self.inner is not None
        whole = len(frame) - len(frame) % self.inner.frame_bytes
        frame, self._partial = frame[:whole], frame[whole:]
        return self.inner.decode(frame)

    def flush_frame(self) -> DecodedFrame | None:
        return self.inner.flush_frame() if self.inner is not None else None

    def _read_header(self) -> bytes | None:
        """Once the header is whole: set the decoder up, return the data bytes that followed it."""
        head = self._header
        if len(head) > _MAX_HEADER:
            raise InvalidAudio("malformed WAV: no data chunk in the first 64 KiB")
        if len(head) < 12:
            return None
        if head[:4] != RIFF_MAGIC or head[8:12] != b"WAVE":
            raise InvalidAudio("malformed WAV: no RIFF/WAVE header")
        pos = 12
        while len(head) >= pos + 8:
            kind, size = bytes(head[pos : pos + 4]), int.from_bytes(head[pos + 4 : pos + 8], "little")
            if kind == b"data":
                self._start(size)
                return bytes(head[pos + 8 :])
            if len(head) < pos + 8 + size:
                return None
            if kind == b"fmt ":
                self._fmt = _parse_fmt(bytes(head[pos + 8 : pos + 8 + size]))
            pos += 8 + size + (size & 1)  # chunks are padded to an even length
        return None

    def _start(self, size: int) -> None:
        if self._fmt is None:
            raise InvalidAudio("malformed WAV: the data chunk comes before the fmt chunk")
        encoding, rate, channels = self._fmt
        if self.multichannel and channels != self.channels:
            raise InvalidAudio(f"the WAV has {channels} channel(s); multichannel=true asked for {self.channels}")
        if not 8_000 <= rate <= 48_000:
            raise InvalidAudio(f"the WAV's sample rate {rate} is outside 8000 to 48000")
        self.inner = AudioDecoder(encoding, rate, channels, self.multichannel, self.vad_rate)
        self._left = None if size in (0, 0xFFFFFFFF) else size


def _parse_fmt(body: bytes) -> tuple[Encoding, int, int]:
    if len(body) < 16:
        raise InvalidAudio("malformed WAV: a fmt chunk shorter than 16 bytes")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = int.from_bytes(body[24:26], "little")  # the sub-format GUID starts with the format tag
    encoding = _FORMATS.get((tag, bits))
    if encoding is None:
        raise InvalidAudio(
            f"WAV format {tag} with {bits}-bit samples is not supported; send 16-bit PCM, mu-law or A-law"
        )
    if not 1 <= channels <= 8:
        raise InvalidAudio(f"the WAV has {channels} channels (1 to 8 are supported)")
    return encoding, rate, channels
