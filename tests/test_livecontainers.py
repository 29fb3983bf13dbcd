"""Containerised live audio (Ogg/Opus, WebM/Opus, FLAC), pure: files made here, fed in any chunking."""

from __future__ import annotations

import bisect
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.audio import AudioDecoder, DecodedFrame
from gateway.core.containers import decode_file
from gateway.core.errors import InvalidAudio
from gateway.core.flac import FlacFramer, FrameHeader, crc8, read_header
from gateway.core.livecontainers import AutoDecoder, ContainerDecoder, FrameDecoder, make_decoder, sniff
from gateway.core.ogg import OggDemuxer, ogg_crc
from gateway.core.params import parse_params
from gateway.core.webm import WebmDemuxer, split_block
from gateway.protocols.listen import AudioReceived, ListenProtocol
from tests import speech

KINDS = {"ogg": ("ogg", "libopus"), "webm": ("webm", "libopus"), "flac": ("flac", "flac")}


@pytest.fixture(scope="module")
def pcm() -> speech.Int16:
    return np.concatenate([speech.silence(0.3), speech.espeak("Please call me back tomorrow."), speech.silence(0.3)])


@pytest.fixture(scope="module")
def files(pcm: speech.Int16) -> dict[str, bytes]:
    return {name: speech.encode(pcm, *kind) for name, kind in KINDS.items()}


def feed(decoder: FrameDecoder, data: bytes, sizes: list[int]) -> tuple[np.ndarray, float]:
    """Feed ``data`` cut into ``sizes`` (cycled); the 16 kHz audio and input seconds that came out."""
    out: list[np.ndarray] = []
    seconds, pos, i = 0.0, 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        frame = decoder.decode(data[pos : pos + size])
        out.append(frame.channels[0])
        assert len(frame.vad_channels[0]) == len(frame.channels[0]), "the VAD copy is 16 kHz too"
        seconds += frame.input_seconds
        pos, i = pos + size, i + 1
    tail = decoder.flush_frame()
    if tail is not None:
        out.append(tail.channels[0])
        seconds += tail.input_seconds
    return np.concatenate(out), seconds


def unknown_cluster_sizes(data: bytes) -> bytes:
    """WebM as browsers' MediaRecorder writes it: every Cluster of unknown size."""
    out = bytearray(data)
    pos = out.find(b"\x1f\x43\xb6\x75")
    while pos >= 0:
        length = 9 - out[pos + 4].bit_length()
        out[pos + 4 : pos + 4 + length] = bytes([(1 << (9 - length)) - 1] + [0xFF] * (length - 1))
        pos = out.find(b"\x1f\x43\xb6\x75", pos + 4)
    return bytes(out)


@pytest.mark.parametrize("name", ["ogg", "webm", "flac"])
def test_whole_file_decodes_like_the_file_decoder(files: dict[str, bytes], pcm: speech.Int16, name: str) -> None:
    audio, seconds = feed(make_decoder(parse_params("")), files[name], [len(files[name])])
    reference = decode_file(files[name])
    assert abs(len(audio) - len(reference)) < 400, "at most an Opus frame's end padding apart"
    n = min(len(audio), len(reference))
    assert np.corrcoef(audio[:n], reference[:n])[0, 1] > 0.999
    assert seconds == pytest.approx(len(pcm) / 16_000, abs=0.03)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["ogg", "webm", "flac"]), sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=20))
def test_any_chunking_gives_the_same_audio(files: dict[str, bytes], name: str, sizes: list[int]) -> None:
    whole, _ = feed(make_decoder(parse_params("")), files[name], [len(files[name])])
    chunked, _ = feed(make_decoder(parse_params("")), files[name], sizes)
    assert len(chunked) == len(whole)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_mediarecorder_style_webm_with_unknown_sizes(files: dict[str, bytes]) -> None:
    live = unknown_cluster_sizes(files["webm"])
    assert live != files["webm"]
    audio, _ = feed(make_decoder(parse_params("encoding=webm")), live, [997])
    whole, _ = feed(make_decoder(parse_params("")), files["webm"], [len(files["webm"])])
    np.testing.assert_allclose(audio, whole, atol=1e-4)


def test_stereo_opus_is_mixed_or_split(pcm: speech.Int16) -> None:
    stereo = speech.encode(pcm, "ogg", "libopus", layout="stereo")
    mixed, _ = feed(make_decoder(parse_params("encoding=opus")), stereo, [4096])
    assert len(mixed) > 0.9 * len(pcm)
    split = make_decoder(parse_params("encoding=opus&channels=2&multichannel=true"))
    frames = [split.decode(stereo[i : i + 4096]) for i in range(0, len(stereo), 4096)]
    assert all(len(f.channels) == 2 for f in frames)
    with pytest.raises(InvalidAudio, match="2 channel"):
        make_decoder(parse_params("encoding=opus&channels=3&multichannel=true")).decode(stereo)


def test_telephony_vad_rate_is_kept_for_containers(files: dict[str, bytes]) -> None:
    decoder = make_decoder(parse_params("encoding=opus&sample_rate=8000"))
    frame = decoder.decode(files["ogg"])
    assert len(frame.vad_channels[0]) == pytest.approx(len(frame.channels[0]) / 2, rel=0.02), "the VAD copy at 8 kHz"


def test_protocol_counts_container_seconds(files: dict[str, bytes], pcm: speech.Int16) -> None:
    protocol = ListenProtocol(parse_params("encoding=flac"))
    data = files["flac"]
    events = [protocol.receive_bytes(data[i : i + 3000]) for i in range(0, len(data), 3000)]
    assert all(isinstance(e, AudioReceived) for e in events)
    assert isinstance(protocol.tail(), DecodedFrame), "the FLAC parser still held frames"
    assert protocol.audio_seconds == pytest.approx(len(pcm) / 16_000, abs=0.01)


def test_no_encoding_and_no_container_is_linear16(pcm: speech.Int16) -> None:
    decoder = make_decoder(parse_params(""))
    assert isinstance(decoder, AutoDecoder)
    raw = pcm.tobytes()
    audio, seconds = feed(decoder, raw, [2, 2, 640])  # the first frames too short to sniff
    assert isinstance(decoder.inner, AudioDecoder)
    np.testing.assert_allclose(audio, pcm.astype(np.float32) / 32768, atol=1e-6)
    assert seconds == pytest.approx(len(pcm) / 16_000)
    assert isinstance(make_decoder(parse_params("encoding=mulaw&sample_rate=8000")), AudioDecoder)


def test_raw_opus_packets_one_per_frame(files: dict[str, bytes]) -> None:
    packets = OggDemuxer().feed(files["ogg"])[2:]  # past OpusHead and OpusTags
    raw = make_decoder(parse_params("encoding=opus&sample_rate=48000"))
    audio = np.concatenate([raw.decode(packet).channels[0] for packet in packets])
    contained = make_decoder(parse_params("")).decode(files["ogg"]).channels[0]
    n = len(contained)
    # Raw packets keep the 312 samples (at 48 kHz: 104 at 16 kHz) of pre-skip OpusHead has libavcodec drop.
    assert len(audio) >= n + 104
    assert np.corrcoef(audio[104 : 104 + n], contained)[0, 1] > 0.999
    assert len(raw.decode(b"\xf8").channels[0]) >= 0, "a 1-byte packet (DTX) is a packet"
    with pytest.raises(InvalidAudio, match="could not decode"):
        make_decoder(parse_params("encoding=opus&sample_rate=48000")).decode(b"\xff" * 40)


def test_sniffing() -> None:
    assert (sniff(b"OggS\0\2"), sniff(b"\x1a\x45\xdf\xa3"), sniff(b"fLaC"), sniff(b"RIFF")) == (
        "ogg",
        "webm",
        "flac",
        None,
    )


@pytest.mark.parametrize(
    ("query", "kind", "needle"),
    [
        ("encoding=opus", "flac", "expects Ogg or raw Opus or WebM data; the stream is FLAC"),
        ("encoding=ogg-opus", "webm", "expects Ogg data; the stream is WebM"),
        ("encoding=flac", "ogg", "expects FLAC data; the stream is Ogg"),
        ("encoding=flac", "raw", "expects FLAC data; the stream begins otherwise"),
    ],
)
def test_a_container_other_than_the_encoding_is_refused(
    files: dict[str, bytes], query: str, kind: str, needle: str
) -> None:
    data = files.get(kind, b"\0\1" * 500)
    with pytest.raises(InvalidAudio, match=needle) as caught:
        make_decoder(parse_params(query)).decode(data)
    assert caught.value.code == 1007


def ogg_page(packet: bytes, serial: int = 7, flags: int = 0x02) -> bytes:
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = b"OggS\0" + bytes([flags]) + struct.pack("<qII", 0, serial, 0) + b"\0\0\0\0" + bytes([len(lacing)])
    page = header + bytes(lacing) + packet
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def test_ogg_crc_matches_real_pages_and_catches_corruption(files: dict[str, bytes]) -> None:
    data = files["ogg"]
    packets = OggDemuxer().feed(data)
    assert packets[0].startswith(b"OpusHead") and packets[1].startswith(b"OpusTags")
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0x40
    with pytest.raises(InvalidAudio, match="checksum"):
        ContainerDecoder(None, 1, False, 16_000).decode(bytes(corrupt))


def test_ogg_packets_span_pages_and_other_streams_are_skipped() -> None:
    big = bytes(range(256)) * 3  # 768 bytes: lacing 255, 255 on one page, then 255, 3 on the next
    first = ogg_page(b"head", flags=0x02)
    other = ogg_page(b"video", serial=9, flags=0x02)
    lacing_torn = b"OggS\0\0" + struct.pack("<qII", 0, 7, 1) + b"\0\0\0\0" + bytes([2]) + bytes([255, 255])
    torn = lacing_torn + big[:510]
    torn = torn[:22] + struct.pack("<I", ogg_crc(torn)) + torn[26:]
    rest = b"OggS\0\1" + struct.pack("<qII", 0, 7, 2) + b"\0\0\0\0" + bytes([2]) + bytes([255, 3])
    rest += big[510:]
    rest = rest[:22] + struct.pack("<I", ogg_crc(rest)) + rest[26:]
    demuxer = OggDemuxer()
    assert demuxer.feed(first + other + torn) == [b"head"]
    assert demuxer.feed(rest) == [big]


def test_ogg_with_another_codec_is_named() -> None:
    with pytest.raises(InvalidAudio, match="carries Vorbis"):
        ContainerDecoder(None, 1, False, 16_000).decode(ogg_page(b"\x01vorbis" + b"\0" * 22))


def test_ogg_garbage_loses_sync(files: dict[str, bytes]) -> None:
    decoder = ContainerDecoder(None, 1, False, 16_000)
    decoder.decode(files["ogg"])
    with pytest.raises(InvalidAudio, match="page sync"):
        decoder.decode(b"\xff" * 50)


def test_webm_with_another_codec_is_named(files: dict[str, bytes]) -> None:
    with pytest.raises(InvalidAudio, match="carries A_TEST"):
        ContainerDecoder(None, 1, False, 16_000).decode(files["webm"].replace(b"A_OPUS", b"A_TEST"))


def test_webm_garbage_is_invalid(files: dict[str, bytes]) -> None:
    decoder = make_decoder(parse_params(""))
    decoder.decode(files["webm"][:3000])
    with pytest.raises(InvalidAudio):
        decoder.decode(b"\0" * 10000)


def test_webm_lacing_is_undone() -> None:
    frames = [b"a" * 3, b"b" * 300, b"c" * 5]
    xiph = b"\x81\0\0\x02" + bytes([2]) + bytes([3, 255, 45]) + b"".join(frames)
    assert split_block(xiph) == (1, frames)
    fixed = b"\x81\0\0\x04" + bytes([1]) + b"x" * 8
    assert split_block(fixed) == (1, [b"x" * 4, b"x" * 4])
    # EBML lacing: first size 3 (0x83), then +297 as a 2-byte signed difference (bias 8191).
    ebml = b"\x81\0\0\x06" + bytes([2]) + b"\x83" + (0x4000 | (297 + 8191)).to_bytes(2, "big") + b"".join(frames)
    assert split_block(ebml) == (1, frames)
    with pytest.raises(InvalidAudio):
        split_block(b"\x81\0\0\x02" + bytes([2]) + bytes([200, 200]) + b"x")


def test_webm_demuxer_skips_what_it_does_not_need(files: dict[str, bytes]) -> None:
    demuxer = WebmDemuxer()
    frames = [f for i in range(0, len(files["webm"]), 7) for f in demuxer.feed(files["webm"][i : i + 7])]
    assert demuxer.track is not None
    assert (demuxer.track.codec_id, demuxer.track.sample_rate, demuxer.track.channels) == ("A_OPUS", 48_000, 1)
    assert len(frames) > 50 and all(len(f) < 2000 for f in frames)


def wav_bytes(
    samples: np.ndarray, rate: int, channels: int = 1, tag: int = 1, bits: int = 16, size: int | None = None
) -> bytes:
    data = samples.tobytes()
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\0"
    body += b"data" + struct.pack("<I", len(data) if size is None else size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=10), live=st.booleans())
def test_wav_header_is_read_and_samples_may_be_cut(sizes: list[int], live: bool) -> None:
    pcm = (np.sin(np.arange(8000) / 5) * 8000).astype("<i2")
    data = wav_bytes(pcm, 8000, size=0xFFFFFFFF if live else None) + (b"" if live else b"LIST\4\0\0\0tail")
    decoder = make_decoder(parse_params(""))
    audio, seconds = feed(decoder, data, sizes)
    assert seconds == pytest.approx(1.0)
    assert len(audio) == pytest.approx(16_000, abs=40), "8 kHz from the header, resampled to 16 kHz"


def test_wav_stereo_mulaw_and_refusals() -> None:
    codes = np.frombuffer(b"\x10\x90" * 4000, np.uint8)
    frame = make_decoder(parse_params("channels=2&multichannel=true")).decode(wav_bytes(codes, 8000, 2, tag=7, bits=8))
    assert len(frame.channels) == 2 and frame.input_seconds == pytest.approx(0.5)
    with pytest.raises(InvalidAudio, match="format 3 with 32-bit"):
        make_decoder(parse_params("")).decode(wav_bytes(np.zeros(10, np.float32), 16000, tag=3, bits=32))
    with pytest.raises(InvalidAudio, match="RIFF/WAVE"):
        make_decoder(parse_params("")).decode(b"RIFF\0\0\0\0AVI LIST")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 4000))
def test_flac_frames_are_ffmpegs_packets_one_frame_behind(files: dict[str, bytes], size: int) -> None:
    import io

    import av

    with av.open(io.BytesIO(files["flac"])) as container:
        packets = [bytes(p) for p in container.demux(audio=0) if p.size]
    data = files["flac"]
    ends, pos = [], 0
    for packet in packets:
        pos = data.index(packet, pos) + len(packet)
        ends.append(pos)
    framer = FlacFramer()
    frames: list[bytes] = []
    for i in range(0, len(data), size):
        frames += framer.feed(data[i : i + size])
        # a frame is out once the next one's header (at most 16 bytes) has arrived
        assert len(frames) >= bisect.bisect_right(ends, i + size - 16) - 1
    assert framer.streaminfo is not None and len(framer.streaminfo) == 34
    assert [*frames, *framer.flush()] == packets


def test_flac_header_checks() -> None:
    assert crc8(b"123456789") == 0xF4  # the CRC-8 (poly 0x07) catalogue check value
    head = b"\xff\xf8\xc5\x08\x00"  # 4096-sample blocks, 16 kHz, mono, 16-bit, frame 0
    header = read_header(head + bytes([crc8(head)]), 0)
    assert isinstance(header, FrameHeader) and (header.number, header.block_size, header.length) == (0, 4096, 6)
    assert read_header(head + bytes([crc8(head) ^ 1]), 0) == "invalid"
    assert read_header(head[:3], 0) == "incomplete"
    with pytest.raises(InvalidAudio, match="not FLAC"):
        FlacFramer().feed(b"fLaX")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["ogg", "webm", "flac", "wav"]),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=6),
    size=st.integers(1, 3000),
    cut=st.floats(0.05, 1),
)
def test_damaged_containers_raise_invalid_audio_only(
    files: dict[str, bytes], name: str, flips: list[tuple[float, int]], size: int, cut: float
) -> None:
    original = files.get(name) or wav_bytes(np.zeros(4000, "<i2"), 16_000)
    data = bytearray(original[: max(8, int(len(original) * cut))])
    for where, xor in flips:
        data[int(where * (len(data) - 1))] ^= xor
    error = refusal(make_decoder(parse_params("")), bytes(data), size)
    assert error is None or error.code == 1007, "any other exception fails the test by itself"


def refusal(decoder: FrameDecoder, data: bytes, size: int) -> InvalidAudio | None:
    """Feed ``data`` in ``size`` pieces; the InvalidAudio it raised, if it did."""
    try:
        for i in range(0, len(data), size):
            assert len(decoder.decode(data[i : i + size]).channels) == 1
        decoder.flush_frame()
    except InvalidAudio as exc:
        return exc
    return None


@settings(max_examples=200, deadline=None)
@given(
    magic=st.sampled_from([b"OggS", b"\x1a\x45\xdf\xa3", b"fLaC", b"RIFF", b""]),
    rest=st.binary(max_size=600),
    size=st.integers(1, 200),
    query=st.sampled_from(["", "encoding=opus&sample_rate=48000", "encoding=opus&channels=2&sample_rate=48000"]),
)
def test_garbage_after_a_magic_raises_invalid_audio_only(magic: bytes, rest: bytes, size: int, query: str) -> None:
    error = refusal(make_decoder(parse_params(query)), magic + rest, size)
    assert error is None or error.code == 1007
