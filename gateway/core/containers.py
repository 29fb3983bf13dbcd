"""Decode a whole audio file (WAV, MP3, FLAC, Ogg/Opus, WebM/Opus, M4A...) to 16 kHz mono.

Pure: bytes in, float32 samples out, through PyAV (FFmpeg's demuxers and
decoders, the library faster-whisper itself reads files with). Raises
:class:`~gateway.core.errors.InvalidAudio` when the bytes are not audio.
"""

from __future__ import annotations

import io

import numpy as np

from gateway.core.errors import InvalidAudio
from gateway.core.types import SAMPLE_RATE, Audio


def decode_file(data: bytes) -> Audio:
    """Every audio sample of the file's first audio stream, mixed to mono, at 16 kHz."""
    import av

    if not data:
        raise InvalidAudio("the request body is empty: send the audio file as the body")
    chunks: list[Audio] = []
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise InvalidAudio("the file has no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
    except InvalidAudio:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise InvalidAudio(f"could not decode the audio file: {exc}") from None
    if not chunks:
        raise InvalidAudio("the file holds no decodable audio")
    return np.ascontiguousarray(np.concatenate(chunks))
