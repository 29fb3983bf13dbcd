"""Offline baseline: each recording transcribed once, whole, by faster-whisper on the same model file."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.data import SAMPLE_RATE, Audio


@dataclass(slots=True)
class OfflineRun:
    """Transcripts of one beam size and the time they took (model load excluded)."""

    beam_size: int
    texts: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    audio_s: float = 0.0

    @property
    def rtf(self) -> float:
        """Transcription time over audio time."""
        return self.seconds / self.audio_s if self.audio_s else 0.0


def resolve_device(device: str) -> str:
    """``auto`` as ``cuda`` when CTranslate2 sees a GPU, else ``cpu``."""
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def default_compute_type(device: str) -> str:
    """int8 on the CPU, float16 on a GPU (what the gateway and WhisperLive pick)."""
    return "float16" if device == "cuda" else "int8"


def transcribe_all(
    model_path: str,
    items: Sequence[tuple[str, Audio]],
    beams: Sequence[int],
    device: str = "cpu",
    compute_type: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[OfflineRun]:
    """Transcribe every ``(id, audio)`` once per beam size; the model is freed afterwards."""
    from faster_whisper import WhisperModel

    device = resolve_device(device)
    model = WhisperModel(model_path, device=device, compute_type=compute_type or default_compute_type(device))
    runs = []
    try:
        if items:  # warm-up so the first timed file does not pay start-up costs
            list(model.transcribe(items[0][1][:SAMPLE_RATE], language="en", beam_size=1)[0])
        for beam in beams:
            run = OfflineRun(beam_size=beam)
            for rec_id, audio in items:
                start = time.perf_counter()
                segments, _ = model.transcribe(audio, language="en", beam_size=beam)
                run.texts[rec_id] = " ".join(s.text.strip() for s in segments).strip()
                run.seconds += time.perf_counter() - start
                run.audio_s += len(audio) / SAMPLE_RATE
            if progress:
                progress(f"offline beam {beam}: {len(items)} files, RTF {run.rtf:.3f}")
            runs.append(run)
    finally:
        del model
        gc.collect()
    return runs
