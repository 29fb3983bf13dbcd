"""Incremental FLAC framer: a native FLAC byte stream in, whole frames out, one frame behind.

Pure and per-stream. libavcodec's FLAC parser (``CodecContext.parse``) gives
back at most one frame per call and verifies ten frames ahead, so fed a live
stream's chunks it falls further behind with every chunk; this framer instead
reads the metadata blocks (STREAMINFO becomes the decoder's extradata) and
cuts each frame where the next frame header begins: a sync code, valid
header fields, a matching CRC-8 *and* the next frame (or sample) number, which
rules out a sync pattern inside audio data. A frame is released when the next
one's header has arrived; :meth:`FlacFramer.flush` releases the last one.
Malformed bytes raise :class:`~gateway.core.errors.InvalidAudio`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.core.errors import InvalidAudio

FLAC_MAGIC = b"fLaC"
_MAX_BUFFER = 1 << 20
_SYNCS = (b"\xff\xf8", b"\xff\xf9")


def _crc8_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC8 = _crc8_table()


def crc8(data: bytes | bytearray) -> int:
    """FLAC's header CRC-8 (polynomial 0x07, initial 0)."""
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


@dataclass(frozen=True, slots=True)
class FrameHeader:
    number: int
    """Frame number (fixed block size) or first sample number (variable)."""
    block_size: int
    variable: bool
    length: int


Incomplete = Literal["incomplete"]
Invalid = Literal["invalid"]


def _block_size(code: int, extra: int) -> int:
    if code == 1:
        return 192
    if code <= 5:
        return 576 << (code - 2)
    if code in (6, 7):
        return extra + 1
    return 256 << (code - 8)


def read_header(buffer: bytes | bytearray, pos: int) -> FrameHeader | Incomplete | Invalid:
    """The frame header at ``pos``, "incomplete" if more bytes are needed, "invalid" if it is none."""
    b = buffer
    if len(b) < pos + 5:
        return "incomplete"
    if b[pos] != 0xFF or b[pos + 1] & 0xFE != 0xF8:
        return "invalid"
    block_code, rate_code = b[pos + 2] >> 4, b[pos + 2] & 0x0F
    channels, sample_size, reserved = b[pos + 3] >> 4, (b[pos + 3] >> 1) & 0x07, b[pos + 3] & 0x01
    if block_code == 0 or rate_code == 15 or channels > 10 or sample_size == 3 or reserved:
        return "invalid"
    first = b[pos + 4]
    if first < 0x80:
        count, number = 1, first
    elif 0xC0 <= first < 0xFF:
        count = 8 - (first ^ 0xFF).bit_length()
        number = first & (0x7F >> count)
    else:
        return "invalid"
    end = pos + 4 + count
    end += {6: 1, 7: 2}.get(block_code, 0)
    extra_at = end
    end += {12: 1, 13: 2, 14: 2}.get(rate_code, 0)
    if len(b) < end + 1:
        return "incomplete"
    for byte in b[pos + 5 : pos + 4 + count]:
        if byte & 0xC0 != 0x80:
            return "invalid"
        number = (number << 6) | (byte & 0x3F)
    if crc8(b[pos:end]) != b[end]:
        return "invalid"
    size_bytes = {6: 1, 7: 2}.get(block_code, 0)
    extra = int.from_bytes(b[extra_at - size_bytes : extra_at], "big") if size_bytes else 0
    return FrameHeader(number, _block_size(block_code, extra), bool(b[pos + 1] & 0x01), end + 1 - pos)


class FlacFramer:
    """Splits a native FLAC stream (``fLaC`` + metadata + frames) into frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.streaminfo: bytes | None = None
        """The 34-byte STREAMINFO block, once the metadata has been read."""
        self._current: FrameHeader | None = None
        self._scan = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Every frame completed by ``data`` (a frame is complete once the next one's header is in)."""
        self._buffer += data
        if self.streaminfo is None and not self._read_metadata():
            return []
        buffer = self._buffer
        if self._current is None:
            header = read_header(buffer, 0)
            if header == "incomplete":
                return []
            if header == "invalid":
                raise InvalidAudio("malformed FLAC: no frame header after the metadata")
            self._current, self._scan = header, header.length
        frames: list[bytes] = []
        while True:
            found = [p for p in (buffer.find(sync, self._scan) for sync in _SYNCS) if p >= 0]
            if not found:
                self._scan = max(self._scan, len(buffer) - 1)
                break
            pos = min(found)
            header = read_header(buffer, pos)
            if header == "incomplete":
                self._scan = pos
                break
            if header != "invalid" and self._follows(header):
                frames.append(bytes(buffer[:pos]))
                del buffer[:pos]
                self._current, self._scan = header, header.length
            else:
                self._scan = pos + 1
        if len(buffer) > _MAX_BUFFER:
            raise InvalidAudio("malformed FLAC: no next frame header within 1 MiB")
        return frames

    def flush(self) -> list[bytes]:
        """The last frame (nothing follows it to mark its end)."""
        if self._current is None or not self._buffer:
            return []
        last = bytes(self._buffer)
        self._buffer.clear()
        self._current = None
        return [last]

    def _follows(self, header: FrameHeader) -> bool:
        current = self._current
        assert current is not None
        step = current.block_size if current.variable else 1
        return header.variable == current.variable and header.number == current.number + step

    def _read_metadata(self) -> bool:
        header = self._buffer
        pos, streaminfo = 4, b""
        while True:
            if len(header) < pos + 4:
                return self._wait()
            kind, size = header[pos] & 0x7F, int.from_bytes(header[pos + 1 : pos + 4], "big")
            if pos == 4 and (kind != 0 or size != 34):
                raise InvalidAudio("malformed FLAC: the stream does not begin with a STREAMINFO block")
            if len(header) < pos + 4 + size:
                return self._wait()
            if kind == 0:
                streaminfo = bytes(header[pos + 4 : pos + 4 + size])
            last = header[pos] & 0x80
            pos += 4 + size
            if last:
                break
        self.streaminfo = streaminfo
        del header[:pos]
        return True

    def _wait(self) -> bool:
        if self._buffer[:4] != FLAC_MAGIC[: len(self._buffer[:4])]:
            raise InvalidAudio("the stream is not FLAC (no 'fLaC' marker)")
        if len(self._buffer) > _MAX_BUFFER:
            raise InvalidAudio("malformed FLAC: metadata blocks exceed 1 MiB")
        return False
