"""Incremental Ogg demuxer (RFC 3533): bytes as they arrive in, whole packets out.

Pure and per-stream: :class:`OggDemuxer` keeps the unfinished page and the
unfinished packet between calls, so the input may be cut anywhere. Only the
first logical stream is followed (a chained stream's next one takes over when
it ends); pages of other streams are skipped. Every page's CRC is checked, so
corrupt bytes end the stream with :class:`~gateway.core.errors.InvalidAudio`
instead of reaching the codec.
"""

from __future__ import annotations

import zlib

from gateway.core.errors import InvalidAudio

CAPTURE = b"OggS"
_HEADER = 27
_MAX_PACKET = 1 << 20

# Ogg's CRC is CRC-32 with polynomial 0x04C11DB7, not reflected, initial value 0, no final
# xor; zlib's crc32 is the reflected variant. Reflecting every input byte and the result
# turns one into the other, so the checksum runs in C (zlib) rather than a Python loop.
_REFLECT = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(page: bytes) -> int:
    """The Ogg checksum of ``page`` (its CRC field must be zero)."""
    reflected = zlib.crc32(page.translate(_REFLECT), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


class OggDemuxer:
    """Splits an Ogg byte stream into the packets of its first logical stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._packet = bytearray()
        self._serial: int | None = None
        self._ended = False
        self.pages = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Every packet completed by ``data``; raises InvalidAudio on bytes that are not Ogg."""
        self._buffer += data
        packets: list[bytes] = []
        while (page := self._next_page()) is not None:
            packets += self._read_page(page)
        return packets

    def _next_page(self) -> memoryview | None:
        buffer = self._buffer
        if len(buffer) < _HEADER:
            if not CAPTURE.startswith(bytes(buffer[:4])):
                raise InvalidAudio("the Ogg stream lost its page sync (no 'OggS' capture pattern)")
            return None
        if buffer[:4] != CAPTURE:
            raise InvalidAudio("the Ogg stream lost its page sync (no 'OggS' capture pattern)")
        if buffer[4] != 0:
            raise InvalidAudio(f"unsupported Ogg stream structure version {buffer[4]}")
        segments = buffer[26]
        if len(buffer) < _HEADER + segments:
            return None
        size = _HEADER + segments + sum(buffer[_HEADER : _HEADER + segments])
        if len(buffer) < size:
            return None
        page = bytes(buffer[:size])
        del buffer[:size]
        expected = int.from_bytes(page[22:26], "little")
        if ogg_crc(page[:22] + b"\0\0\0\0" + page[26:]) != expected:
            raise InvalidAudio("corrupt Ogg page (checksum mismatch)")
        self.pages += 1
        return memoryview(page)

    def _read_page(self, page: memoryview) -> list[bytes]:
        flags = page[5]
        serial = int.from_bytes(page[14:18], "little")
        if self._serial is None or (self._ended and flags & 0x02):
            if not flags & 0x02:
                raise InvalidAudio("the Ogg stream does not begin with a beginning-of-stream page")
            self._serial, self._ended = serial, False
            self._packet.clear()
        if serial != self._serial:
            return []  # another multiplexed logical stream (e.g. a video track): not ours
        segments = page[26]
        lacing = page[_HEADER : _HEADER + segments]
        body = page[_HEADER + segments :]
        if not flags & 0x01:
            self._packet.clear()  # a fresh packet starts here; a torn one before it is dropped
        packets: list[bytes] = []
        offset = 0
        for length in lacing:
            self._packet += body[offset : offset + length]
            offset += length
            if len(self._packet) > _MAX_PACKET:
                raise InvalidAudio("an Ogg packet exceeds 1 MiB")
            if length < 255:
                packets.append(bytes(self._packet))
                self._packet.clear()
        if flags & 0x04:
            self._ended = True
        return packets
