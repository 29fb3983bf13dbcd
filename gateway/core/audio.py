"""Decode raw audio frames and resample them to 16 kHz mono channels.

Pure and per-stream: an :class:`AudioDecoder` holds the resampler state of one
stream, so frames of any size resample seamlessly. It validates frame sizes
(whole samples across all channels) and raises
:class:`~gateway.core.errors.InvalidAudio` otherwise.

:class:`PcmPipeline` is the float half (mix, resample, VAD copy) that the
container decoders (:mod:`gateway.core.livecontainers`) share.

Resampling uses libsoxr (high quality, linear phase), whose low-pass filter
keeps 48 kHz input from aliasing and 8 kHz telephony from imaging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr

from gateway.core.errors import InvalidAudio
from gateway.core.params import Encoding
from gateway.core.types import SAMPLE_RATE

Float32 = npt.NDArray[np.float32]
Int16 = npt.NDArray[np.int16]


def _mulaw_table() -> Float32:
    # G.711 mu-law expansion (ITU-T G.711), values scaled to [-1, 1].
    codes = np.arange(256, dtype=np.int32)
    u = ~codes & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    linear = np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84)
    return (linear / 32768.0).astype(np.float32)


def _alaw_table() -> Float32:
    # G.711 A-law expansion, values scaled to [-1, 1].
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    linear = np.where(sign != 0, magnitude, -magnitude)
    return (linear / 32768.0).astype(np.float32)


MULAW_TABLE = _mulaw_table()
ALAW_TABLE = _alaw_table()


def encode_mulaw(samples: Float32) -> bytes:
    """Encode float samples as G.711 mu-law (used by tests and simulators)."""
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    encoded: bytes = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()
    return encoded


def to_int16(samples: Float32) -> Int16:
    """Float [-1, 1] to int16 PCM with clipping."""
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One frame after decoding: 16 kHz float audio per transcribed channel."""

    channels: tuple[Float32, ...]
    vad_channels: tuple[Int16, ...]
    """The same audio for the VAD, int16 at :attr:`AudioDecoder.vad_rate`."""
    input_seconds: float


class PcmPipeline:
    """Float samples at their own rate in, 16 kHz per transcribed channel out (one stream's state).

    Mixes channels down unless ``multichannel``, resamples with libsoxr and
    makes the VAD's int16 copy at ``vad_rate`` (8 kHz for telephony, else 16 kHz).
    """

    def __init__(self, sample_rate: int, channels: int, multichannel: bool, vad_rate: int | None = None) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.multichannel = multichannel
        self.out_channels = channels if multichannel else 1
        # Narrow-band audio is judged by the VAD at its own rate (webrtcvad has
        # an 8 kHz mode tuned for it); everything else at 16 kHz after resampling.
        self.vad_rate = vad_rate if vad_rate is not None else (8_000 if sample_rate == 8_000 else SAMPLE_RATE)
        self._resampler: soxr.ResampleStream | None = None
        if sample_rate != SAMPLE_RATE:
            self._resampler = soxr.ResampleStream(
                sample_rate, SAMPLE_RATE, self.out_channels, dtype="float32", quality="HQ"
            )
        self._vad_resampler: soxr.ResampleStream | None = None
        if self.vad_rate not in (sample_rate, SAMPLE_RATE):
            self._vad_resampler = soxr.ResampleStream(
                sample_rate, self.vad_rate, self.out_channels, dtype="float32", quality="HQ"
            )

    def process(self, samples: Float32) -> DecodedFrame:
        """``samples`` shaped (frames, channels), in [-1, 1]."""
        if not self.multichannel and self.channels > 1:
            samples = samples.mean(axis=1, keepdims=True, dtype=np.float32)
        native = samples
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        out = tuple(np.ascontiguousarray(samples[:, i]) for i in range(self.out_channels))
        if self.vad_rate == self.sample_rate:
            vad_source = native
        elif self._vad_resampler is not None:
            vad_source = self._vad_resampler.resample_chunk(native)
        else:
            vad_source = samples
        vad = tuple(to_int16(vad_source[:, i]) for i in range(self.out_channels))
        return DecodedFrame(out, vad, native.shape[0] / self.sample_rate)

    def flush(self) -> tuple[Float32, ...]:
        """Drain the resampler's delay line at the end of the stream."""
        if self._resampler is None:
            return tuple(np.zeros(0, np.float32) for _ in range(self.out_channels))
        tail = self._resampler.resample_chunk(np.zeros((0, self.out_channels), np.float32), last=True)
        return tuple(np.ascontiguousarray(tail[:, i]) for i in range(self.out_channels))

    def flush_frame(self) -> DecodedFrame | None:
        """The resampler's tail as a last frame (None when there is none).

        The VAD copy is given only when the VAD runs at 16 kHz; at 8 kHz the
        few tail milliseconds are left to the transcriber alone.
        """
        tail = self.flush()
        if not any(len(channel) for channel in tail):
            return None
        if self.vad_rate == SAMPLE_RATE:
            vad = tuple(to_int16(channel) for channel in tail)
        else:
            vad = tuple(np.zeros(0, np.int16) for _ in tail)
        return DecodedFrame(tail, vad, 0.0)


def empty_frame(channels: int) -> DecodedFrame:
    """A frame with no audio (container headers, bytes still buffered)."""
    return DecodedFrame(
        tuple(np.zeros(0, np.float32) for _ in range(channels)),
        tuple(np.zeros(0, np.int16) for _ in range(channels)),
        0.0,
    )


class AudioDecoder:
    """Stateful decoder for one stream of raw samples: bytes in, per-channel 16 kHz audio out."""

    def __init__(
        self,
        encoding: Encoding,
        sample_rate: int,
        channels: int = 1,
        multichannel: bool = False,
        vad_rate: int | None = None,
    ) -> None:
        if encoding.is_container:
            raise ValueError(f"{encoding.value} is a container; use gateway.core.livecontainers")
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.channels = channels
        self.multichannel = multichannel
        self.frame_bytes = encoding.sample_width * channels
        self._pcm = PcmPipeline(sample_rate, channels, multichannel, vad_rate)
        self.out_channels = self._pcm.out_channels
        self.vad_rate = self._pcm.vad_rate
        self.samples_in = 0

    def decode(self, frame: bytes) -> DecodedFrame:
        """Decode one binary frame; raises InvalidAudio if it splits a sample."""
        if len(frame) % self.frame_bytes:
            raise InvalidAudio(
                f"frame of {len(frame)} bytes is not a whole number of {self.encoding.value} samples "
                f"({self.frame_bytes} bytes per sample across {self.channels} channel(s))"
            )
        samples = self._to_float(frame).reshape(-1, self.channels)
        self.samples_in += samples.shape[0]
        return self._pcm.process(samples)

    def flush(self) -> tuple[Float32, ...]:
        """Drain the resampler's delay line at the end of the stream."""
        return self._pcm.flush()

    def flush_frame(self) -> DecodedFrame | None:
        """The resampler's tail as a last frame (None when there is none)."""
        return self._pcm.flush_frame()

    def _to_float(self, frame: bytes) -> Float32:
        if self.encoding is Encoding.LINEAR16:
            return np.frombuffer(frame, dtype="<i2").astype(np.float32) / np.float32(32768.0)
        codes = np.frombuffer(frame, dtype=np.uint8)
        table = MULAW_TABLE if self.encoding is Encoding.MULAW else ALAW_TABLE
        return table[codes]
