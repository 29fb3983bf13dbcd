"""Containerised live audio: Ogg/Opus, WebM/Opus and FLAC, decoded frame by frame as it arrives.

Pure and per-stream. A container decoder is fed the WebSocket's binary frames
(cut anywhere: a MediaRecorder chunk, a slice of a file), demuxes them
incrementally (:mod:`gateway.core.ogg`, :mod:`gateway.core.webm`,
:mod:`gateway.core.flac`), decodes the packets with a PyAV ``CodecContext`` (libavcodec's
Opus / FLAC decoders, in the calling thread: a packet takes microseconds) and
hands the samples to the same :class:`~gateway.core.audio.PcmPipeline` raw
audio goes through (mix or split channels, libsoxr to 16 kHz, the VAD copy).

Which decoder a stream gets (:func:`make_decoder`): raw samples for
``linear16``/``mulaw``/``alaw``; a container decoder for a container encoding
(``opus`` without a container is Deepgram's raw Opus: one packet per binary frame);
and, with no ``encoding`` at all, the first bytes decide, as Deepgram does:
``OggS``, EBML (WebM) or ``fLaC`` select a container, ``RIFF`` a WAV header
(:mod:`gateway.core.wav`), anything else is linear16 at ``sample_rate``.
Bytes that are not the container, or a codec the gateway does not decode,
raise :class:`~gateway.core.errors.InvalidAudio` (close 1007).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from gateway.core.audio import AudioDecoder, DecodedFrame, Float32, PcmPipeline, empty_frame
from gateway.core.errors import InvalidAudio
from gateway.core.flac import FLAC_MAGIC, FlacFramer
from gateway.core.ogg import CAPTURE, OggDemuxer
from gateway.core.params import Encoding, StreamParams
from gateway.core.wav import RIFF_MAGIC, WavDecoder
from gateway.core.webm import EBML_MAGIC, WebmDemuxer

_MAGIC = {CAPTURE: "ogg", EBML_MAGIC: "webm", FLAC_MAGIC: "flac"}
_NAMES = {"ogg": "Ogg", "webm": "WebM", "flac": "FLAC", "raw": "raw Opus"}

# What each container encoding may carry: (containers, codecs).
_ALLOWED: dict[Encoding | None, tuple[set[str], set[str]]] = {
    Encoding.OPUS: ({"ogg", "webm", "raw"}, {"opus"}),
    Encoding.OGG_OPUS: ({"ogg"}, {"opus"}),
    Encoding.OGG: ({"ogg"}, {"opus"}),
    Encoding.WEBM: ({"webm"}, {"opus"}),
    Encoding.FLAC: ({"flac"}, {"flac"}),
    None: ({"ogg", "webm", "flac"}, {"opus", "flac"}),
}
_WEBM_CODECS = {"A_OPUS": "opus"}


class FrameDecoder(Protocol):
    """What a listen stream decodes its binary frames with."""

    out_channels: int

    def decode(self, frame: bytes) -> DecodedFrame: ...

    def flush_frame(self) -> DecodedFrame | None: ...


def sniff(head: bytes) -> str | None:
    """The container the first bytes announce (``ogg``, ``webm``, ``flac``), or None."""
    return _MAGIC.get(bytes(head[:4]))


def vad_rate_of(params: StreamParams) -> int:
    """The rate the engines run the VAD at for this stream (8 kHz only for declared 8 kHz audio)."""
    return 8_000 if params.sample_rate == 8_000 else 16_000


def make_decoder(params: StreamParams) -> FrameDecoder:
    """The decoder for one ``/v1/listen`` stream's parameters."""
    vad_rate = vad_rate_of(params)
    if "encoding" not in params.raw and params.encoding is Encoding.LINEAR16:
        return AutoDecoder(params, vad_rate)  # linear16 is only the default here: no encoding was asked for
    if params.encoding.is_container:
        return ContainerDecoder(params.encoding, params.channels, params.multichannel, vad_rate)
    return AudioDecoder(params.encoding, params.sample_rate, params.channels, params.multichannel, vad_rate)


def _to_float(frame: Any) -> Float32:
    """A PyAV AudioFrame as float32 samples shaped (frames, channels)."""
    raw = frame.to_ndarray()
    array: np.ndarray[Any, Any] = raw.T if frame.format.is_planar else raw.reshape(-1, frame.layout.nb_channels)
    out: Float32
    if array.dtype == np.int16:
        out = array.astype(np.float32) / np.float32(32768.0)
    elif array.dtype == np.int32:
        out = (array / 2147483648.0).astype(np.float32)
    elif array.dtype == np.uint8:
        out = (array.astype(np.float32) - 128.0) / np.float32(128.0)
    else:
        out = array.astype(np.float32, copy=False)
    return out


class _Packets:
    """A PyAV decoder for one codec: packets in, float samples out."""

    def __init__(self, codec: str, extradata: bytes) -> None:
        import av

        self._av = av
        self.context: Any = av.CodecContext.create(codec, "r")
        if extradata:
            self.context.extradata = extradata
        # Opus: libavcodec reads the pre-skip from OpusHead (the extradata) and drops it itself.

    def decode(self, packets: list[Any]) -> list[tuple[int, Float32]]:
        """(sample rate, samples) for every frame the packets (bytes or av.Packet; None flushes) decode to."""
        out: list[tuple[int, Float32]] = []
        try:
            for packet in packets:
                data = self._av.Packet(packet) if isinstance(packet, bytes) else packet
                out += [(frame.sample_rate, _to_float(frame)) for frame in self.context.decode(data)]
        except self._av.FFmpegError as exc:
            raise InvalidAudio(f"could not decode the {self.context.codec.name} audio: {exc}") from None
        return out


class ContainerDecoder:
    """One stream of containerised audio: demux, decode, resample."""

    def __init__(self, expected: Encoding | None, channels: int, multichannel: bool, vad_rate: int) -> None:
        self.expected = expected
        self.channels = channels
        self.multichannel = multichannel
        self.out_channels = channels if multichannel else 1
        self.vad_rate = vad_rate
        self.container: str | None = None
        self.codec: str | None = None
        self._head = b""
        self._ogg: OggDemuxer | None = None
        self._webm: WebmDemuxer | None = None
        self._flac: FlacFramer | None = None
        self._packets: _Packets | None = None
        self._pcm: PcmPipeline | None = None
        self._format: tuple[int, int] | None = None

    def decode(self, frame: bytes) -> DecodedFrame:
        """Whatever audio ``frame`` completes (often none: headers, a page not yet whole)."""
        if self.container is None:
            if self.expected is Encoding.OPUS and not self._head and len(frame) < 4:
                self._start(None)  # an Opus packet that short (DTX) is no container's first bytes
            else:
                self._head += frame
                if len(self._head) < 4:
                    return empty_frame(self.out_channels)
                self._start(sniff(self._head))
                frame, self._head = self._head, b""
        return self._samples(self._decode_packets(self._demux(frame)))

    def flush_frame(self) -> DecodedFrame | None:
        """At the end of the stream: what the parser and decoder still hold, and the resampler's tail."""
        decoded: list[tuple[int, Float32]] = []
        if self._packets is not None and self._flac is not None:
            decoded = self._packets.decode([*self._flac.flush(), None])
        frame = self._samples(decoded) if decoded else None
        tail = self._pcm.flush_frame() if self._pcm is not None else None
        if frame is None or tail is None:
            return frame or tail
        return DecodedFrame(
            tuple(np.concatenate(pair) for pair in zip(frame.channels, tail.channels, strict=True)),
            tuple(np.concatenate(pair) for pair in zip(frame.vad_channels, tail.vad_channels, strict=True)),
            frame.input_seconds,
        )

    # -- steps ------------------------------------------------------------------

    def _start(self, container: str | None) -> None:
        if container is None and self.expected is Encoding.OPUS:
            self._start_raw_opus()
            return
        containers, _ = _ALLOWED[self.expected]
        wanted = " or ".join(_NAMES[c] for c in sorted(containers))
        if container is None:
            raise InvalidAudio(f"encoding={self.expected} expects {wanted} data; the stream begins otherwise")
        if container not in containers:
            raise InvalidAudio(f"encoding={self.expected} expects {wanted} data; the stream is {_NAMES[container]}")
        self.container = container
        if container == "ogg":
            self._ogg = OggDemuxer()
        elif container == "webm":
            self._webm = WebmDemuxer()
        else:
            self._flac = FlacFramer()

    def _start_raw_opus(self) -> None:
        # Deepgram's encoding=opus without a container: each binary frame is one Opus packet.
        if self.channels > 2:
            raise InvalidAudio("raw Opus packets are decoded as mono or stereo; send more channels in Ogg or WebM")
        self.container = "raw"
        self._use_codec("opus", b"")
        assert self._packets is not None
        self._packets.context.sample_rate = 48_000
        self._packets.context.layout = "stereo" if self.channels == 2 else "mono"

    def _use_codec(self, codec: str, extradata: bytes) -> None:
        _, codecs = _ALLOWED[self.expected]
        if codec not in codecs:
            raise InvalidAudio(
                f"the {_NAMES[self.container or '']} stream carries {codec}; this gateway decodes "
                + " and ".join(sorted(codecs))
                + (f" for encoding={self.expected}" if self.expected else "")
            )
        self.codec = codec
        self._packets = _Packets(codec, extradata)

    def _demux(self, data: bytes) -> list[Any]:
        if self.container == "raw":
            return [data] if data else []
        if self._ogg is not None:
            return self._ogg_packets(self._ogg.feed(data))
        if self._webm is not None:
            frames = self._webm.feed(data)
            if self._packets is None and self._webm.track is not None:
                track = self._webm.track
                self._use_codec(_WEBM_CODECS.get(track.codec_id, track.codec_id), track.codec_private)
            return frames
        return self._flac_frames(data)

    def _ogg_packets(self, packets: list[bytes]) -> list[Any]:
        audio: list[Any] = []
        for packet in packets:
            if packet.startswith(b"OpusHead"):  # a (chained) stream's first packet: (re)start the decoder
                self._use_codec("opus", packet)
            elif packet.startswith(b"OpusTags"):
                continue
            elif self._packets is None:
                raise InvalidAudio(f"the Ogg stream carries {_ogg_codec(packet)}; this gateway decodes Opus in Ogg")
            else:
                audio.append(packet)
        return audio

    def _flac_frames(self, data: bytes) -> list[Any]:
        assert self._flac is not None
        frames = self._flac.feed(data)
        if self._packets is None and self._flac.streaminfo is not None:
            self._use_codec("flac", self._flac.streaminfo)
        return frames

    def _decode_packets(self, packets: list[Any]) -> list[tuple[int, Float32]]:
        if not packets:
            return []
        assert self._packets is not None
        return self._packets.decode(packets)

    def _samples(self, decoded: list[tuple[int, Float32]]) -> DecodedFrame:
        if not decoded:
            return empty_frame(self.out_channels)
        rate, first = decoded[0]
        if self._pcm is None:
            if self.multichannel and first.shape[1] != self.channels:
                raise InvalidAudio(
                    f"the stream has {first.shape[1]} channel(s); multichannel=true asked for {self.channels}"
                )
            self._format = (rate, first.shape[1])
            self._pcm = PcmPipeline(rate, first.shape[1], self.multichannel, self.vad_rate)
        if any((r, s.shape[1]) != self._format for r, s in decoded):
            raise InvalidAudio("the stream changed its sample rate or channel count mid-stream")
        samples = np.concatenate([s for _, s in decoded]) if len(decoded) > 1 else first
        return self._pcm.process(np.ascontiguousarray(samples))


class AutoDecoder:
    """No ``encoding`` given: a container (or WAV) if the first bytes say so, else linear16 at ``sample_rate``."""

    def __init__(self, params: StreamParams, vad_rate: int) -> None:
        self.params = params
        self.vad_rate = vad_rate
        self.out_channels = params.output_channels
        self._head = b""
        self.inner: FrameDecoder | None = None

    def decode(self, frame: bytes) -> DecodedFrame:
        if self.inner is None:
            self._head += frame
            if len(self._head) < 4:
                return empty_frame(self.out_channels)
            p = self.params
            if sniff(self._head) is not None:
                self.inner = ContainerDecoder(None, p.channels, p.multichannel, self.vad_rate)
            elif self._head.startswith(RIFF_MAGIC):
                self.inner = WavDecoder(p.channels, p.multichannel, self.vad_rate)
            else:
                self.inner = AudioDecoder(Encoding.LINEAR16, p.sample_rate, p.channels, p.multichannel, self.vad_rate)
            frame, self._head = self._head, b""
        return self.inner.decode(frame)

    def flush_frame(self) -> DecodedFrame | None:
        if self.inner is None:
            return None  # fewer than 4 bytes ever arrived: nothing to transcribe
        return self.inner.flush_frame()


def _ogg_codec(packet: bytes) -> str:
    for magic, name in (
        (b"\x01vorbis", "Vorbis"),
        (b"\x7fFLAC", "FLAC"),
        (b"Speex", "Speex"),
        (b"\x80theora", "Theora"),
    ):
        if packet.startswith(magic):
            return name
    return "an unknown codec"
