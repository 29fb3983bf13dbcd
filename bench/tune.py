"""``python -m bench tune``: sweep the streaming policy's knobs, print the WER / latency / CPU frontier.

Every combination of ``--grid KNOB=V1,V2`` values replays every recording
through the pure streaming core with the real model (:mod:`bench.simulate`),
so a sweep costs CPU time, not real time. A row is on the *frontier* when no
other row is at least as good on WER, word-final p50 and CPU per audio second
and better on one. Latencies are simulated from the decodes' measured wall
times on this machine (one stream), so confirm a choice with ``bench run``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.data import SAMPLE_RATE
from bench.noise import streamed
from bench.simulate import Replay, replay
from bench.speech import noise_level, speech_regions
from bench.stats import summarize
from bench.wer import score
from gateway.core.transcriber import TranscriberConfig
from gateway.core.types import Backend

KNOBS: dict[str, str] = {
    "interim-step-ms": "new audio between two interim decodes",
    "commit-edge-ms": "audio needed after a word before it is committed",
    "final-after-ms": "committed words wait at most this long for a final (-1: endpoints only)",
    "quiet-decodes": "interim decodes without new speech while words wait",
    "commit-step-ms": "new audio after which a decode that can commit a word runs before the step (0: off)",
    "first-step-ms": "interim step until the utterance has shown a word",
    "interim-edge-ms": "interims stop before a word ending this close to the decoded end",
    "doubt-probability": "words less probable than this need --doubt-edge-ms of context (0: off)",
    "doubt-edge-ms": "right context a doubtful word needs before commit",
    "doubt-window-ms": "doubt applies while the window is shorter than this",
    "sure-probability": "words at least this probable commit from one decode (0: off)",
    "sure-edge-ms": "right context a sure word needs to commit from one decode",
    "max-wait-ms": "right context after which a word commits from one decode, agreed or not (0: off)",
    "words-end-ms": "decoded audio with no word, after the endpointing silence, that ends an utterance (-1: off)",
    "context-ms": "finalised audio kept before the next utterance, heard again as context",
    "final-beam-size": "beam of the decode that makes an endpoint/Finalize final",
    "beam-size": "beam of interim decodes",
    "encoder-pad": "silence after the window in the encoder input, s ('full': 30 s input)",
    "encoder-min": "shortest encoder input, s",
    "vad-weak-hold-ms": "voiced frames under --vad-strong-db hold speech this long after the last strong one",
    "vad-strong-db": "a voiced frame this far over the noise floor is strong",
    "vad-resume-ms": "a pause this long needs onset evidence, or a frame near the speech's level, to resume (-1: off)",
    "vad-resume-db": "a frame within this much of the recent peak resumes speech after such a pause at once",
}
BACKEND_KNOBS = ("final-beam-size", "beam-size", "encoder-pad", "encoder-min")


class GridError(ValueError):
    """A ``--grid`` value that is not ``KNOB=V1,V2`` with a known knob."""


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["interim-step-ms=300,500"]`` as ``{"interim-step-ms": ["300", "500"]}``."""
    grid: dict[str, list[str]] = {}
    for item in items:
        knob, sep, values = item.partition("=")
        knob = knob.strip().lstrip("-")
        if not sep or knob not in KNOBS:
            raise GridError(f"expected KNOB=V1,V2 with KNOB one of {', '.join(KNOBS)}; got {item!r}")
        parsed = [v.strip() for v in values.split(",") if v.strip()]
        if not parsed:
            raise GridError(f"no values for {knob}")
        for value in parsed:
            _check_value(knob, value)
        grid[knob] = parsed
    return grid


def _check_value(knob: str, value: str) -> None:
    """Refuse a value the knob cannot read before any clip is replayed (backend knobs are read later)."""
    spec = TRANSCRIBER_KNOBS.get(knob) or VAD_KNOBS.get(knob)
    if spec is None:
        return
    try:
        parsed = spec[1](value)
    except ValueError as exc:
        raise GridError(f"{knob}: expected a number, got {value!r}") from exc
    if isinstance(parsed, float) and not math.isfinite(parsed):
        raise GridError(f"{knob}: expected a finite number, got {value!r}")


def combinations(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every point of the grid (one empty point, the defaults, when the grid is empty)."""
    knobs = list(grid)
    return [dict(zip(knobs, values, strict=True)) for values in itertools.product(*(grid[k] for k in knobs))]


def _ms(value: str) -> float:
    return float(value) / 1000


def _ms_or_off(value: str) -> float | None:
    ms = float(value)
    return None if ms < 0 else ms / 1000


TRANSCRIBER_KNOBS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "interim-step-ms": ("interim_step_s", _ms),
    "commit-edge-ms": ("commit_edge_s", _ms),
    "final-after-ms": ("final_after_s", _ms_or_off),
    "context-ms": ("context_s", _ms),
    "interim-edge-ms": ("interim_edge_s", _ms),
    "commit-step-ms": ("commit_step_s", _ms),
    "first-step-ms": ("first_step_s", _ms),
    "doubt-probability": ("doubt_probability", float),
    "doubt-edge-ms": ("doubt_edge_s", _ms),
    "doubt-window-ms": ("doubt_window_s", _ms),
    "quiet-decodes": ("quiet_decodes", int),
    "sure-probability": ("sure_probability", float),
    "sure-edge-ms": ("sure_edge_s", _ms),
    "max-wait-ms": ("max_wait_s", _ms),
    "words-end-ms": ("words_end_s", _ms_or_off),
}
"""Grid knob -> (TranscriberConfig field, how its value is read)."""


def _int_or_off(value: str) -> int | None:
    ms = int(value)
    return None if ms < 0 else ms


VAD_KNOBS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "vad-weak-hold-ms": ("weak_hold_ms", int),
    "vad-strong-db": ("strong_snr_db", float),
    "vad-resume-ms": ("resume_after_ms", _int_or_off),
    "vad-resume-db": ("resume_db", float),
}
"""Grid knob -> (VadConfig field, how its value is read)."""


def transcriber_config(point: Mapping[str, str], base: TranscriberConfig | None = None) -> TranscriberConfig:
    """The transcriber tuning of one grid point (others: the gateway's defaults)."""
    config = base or TranscriberConfig()
    fields = {TRANSCRIBER_KNOBS[k][0]: TRANSCRIBER_KNOBS[k][1](v) for k, v in point.items() if k in TRANSCRIBER_KNOBS}
    vad = {VAD_KNOBS[k][0]: VAD_KNOBS[k][1](v) for k, v in point.items() if k in VAD_KNOBS}
    return replace(config, **fields, vad=replace(config.vad, **vad))


def backend_key(point: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The part of a grid point that needs its own backend."""
    return tuple((k, point[k]) for k in BACKEND_KNOBS if k in point)


def make_backend(model_path: str, key: tuple[tuple[str, str], ...], cpu_threads: int = 0) -> Backend:
    """The backend the gateway would build for these options (CPU, int8), decoding one stream
    (``cpu_threads`` 0: the threads a gateway's decode worker has by default)."""
    from gateway.engines.batched import BatchedWhisperBackend
    from gateway.engines.whisper import WhisperBackend, WhisperOptions
    from gateway.server.backends import decode_workers

    opts = dict(key)
    defaults = WhisperOptions(model_path=model_path)
    pad_text = opts.get("encoder-pad", str(defaults.encoder_pad_s))
    pad = None if pad_text.lower() in ("full", "none") else float(pad_text)
    options = replace(
        defaults,
        beam_size=int(opts.get("beam-size", defaults.beam_size)),
        final_beam_size=int(opts.get("final-beam-size", defaults.final_beam_size)),
        cpu_threads=cpu_threads or max(1, (os.cpu_count() or 1) // decode_workers(0, "cpu")),
        encoder_pad_s=pad,
        encoder_min_s=float(opts.get("encoder-min", defaults.encoder_min_s)),
    )
    kind = WhisperBackend if pad is None else BatchedWhisperBackend
    return kind(options)


@dataclass(frozen=True, slots=True)
class Row:
    """One grid point's pooled figures."""

    point: dict[str, str]
    wer: float
    word_final_p50: float
    word_final_p95: float
    first_result_p50: float
    cpu_per_audio_s: float
    decodes_per_audio_s: float
    speech_final_p50: float = float("nan")
    speech_final_p95: float = float("nan")
    """``speech_final`` arrival after the last word it closes (as ``bench run``'s)."""
    speech_final_voice_p50: float = float("nan")
    speech_final_voice_p95: float = float("nan")
    """The same after the end of the voice in the recording (``bench run``'s ``speech_final_voice``)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "point": self.point,
            "wer": self.wer,
            "word_final_p50": self.word_final_p50,
            "word_final_p95": self.word_final_p95,
            "first_result_p50": self.first_result_p50,
            "cpu_per_audio_s": self.cpu_per_audio_s,
            "decodes_per_audio_s": self.decodes_per_audio_s,
            "speech_final_p50": self.speech_final_p50,
            "speech_final_p95": self.speech_final_p95,
            "speech_final_voice_p50": self.speech_final_voice_p50,
            "speech_final_voice_p95": self.speech_final_voice_p95,
        }


def pool(point: dict[str, str], replays: Sequence[tuple[str, float | None, Replay]]) -> Row:
    """Pool ``(reference, speech onset, replay)`` of every recording into one row."""
    wer = score((ref, r.text) for ref, _, r in replays)
    finals = summarize(v for _, _, r in replays for v in r.word_final_latencies())
    first = summarize(
        r.first_result - onset for _, onset, r in replays if r.first_result is not None and onset is not None
    )
    audio = sum(r.audio_s for _, _, r in replays) or 1.0
    endpoints = summarize(v for _, _, r in replays for v in r.speech_final_delays())
    voiced = summarize(v for _, _, r in replays for v in r.speech_final_voice_delays())
    return Row(
        point=point,
        wer=wer.wer if wer else float("nan"),
        word_final_p50=finals.p50 if finals else float("nan"),
        word_final_p95=finals.p95 if finals else float("nan"),
        first_result_p50=first.p50 if first else float("nan"),
        cpu_per_audio_s=sum(r.cpu_s for _, _, r in replays) / audio,
        decodes_per_audio_s=sum(r.decodes for _, _, r in replays) / audio,
        speech_final_p50=endpoints.p50 if endpoints else float("nan"),
        speech_final_p95=endpoints.p95 if endpoints else float("nan"),
        speech_final_voice_p50=voiced.p50 if voiced else float("nan"),
        speech_final_voice_p95=voiced.p95 if voiced else float("nan"),
    )


def frontier(rows: Sequence[Row]) -> list[bool]:
    """Whether each row is undominated on (WER, word-final p50, CPU per audio second)."""

    def key(r: Row) -> tuple[float, float, float]:
        return (r.wer, r.word_final_p50, r.cpu_per_audio_s)

    flags = []
    for row in rows:
        mine = key(row)
        dominated = any(
            all(a <= b for a, b in zip(key(o), mine, strict=True)) and key(o) != mine for o in rows if o is not row
        )
        flags.append(not dominated)
    return flags


def table(rows: Sequence[Row], offline_wer: float | None = None) -> str:
    """The sweep as Markdown, best WER first, frontier rows marked."""
    flags = dict(zip(map(id, rows), frontier(rows), strict=True))
    knobs = sorted({k for r in rows for k in r.point})
    head = [*knobs, "WER", "penalty vs offline b1", "word final p50 / p95", "first result p50", "CPU s / audio s",
            "decodes / audio s", "speech_final p50 / p95", "after voice end p50 / p95", "frontier"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for row in sorted(rows, key=lambda r: (r.wer, r.word_final_p50)):
        penalty = f"{100 * (row.wer - offline_wer):+.1f} pts" if offline_wer is not None else "-"
        cells = [row.point.get(k, "default") for k in knobs] + [
            f"{100 * row.wer:.1f}%",
            penalty,
            f"{row.word_final_p50:.2f} / {row.word_final_p95:.2f}",
            f"{row.first_result_p50:.2f}",
            f"{row.cpu_per_audio_s:.3f}",
            f"{row.decodes_per_audio_s:.2f}",
            f"{row.speech_final_p50:.2f} / {row.speech_final_p95:.2f}",
            f"{row.speech_final_voice_p50:.2f} / {row.speech_final_voice_p95:.2f}",
            "*" if flags[id(row)] else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep(
    clips: Sequence[tuple[str, Any, float | None]],
    grid: Mapping[str, Sequence[str]],
    model_path: str,
    progress: Callable[[str], None],
    cpu_threads: int = 0,
    tail_s: float = 1.0,
    decode_s: float | None = None,
    noise_dbfs: float | None = None,
    snr_db: float | None = None,
) -> list[Row]:
    """Replay ``(reference, audio, speech onset)`` clips at every grid point (with ``noise_dbfs``:
    white noise at that level under the recording and its tail; with ``snr_db``: that many dB under
    each recording's speech level)."""
    voices = [speech_regions(audio, SAMPLE_RATE) for _, audio, _ in clips]  # from the clean audio
    if noise_dbfs is not None or snr_db is not None:
        levels = [noise_dbfs if snr_db is None else noise_level(audio, snr_db) for _, audio, _ in clips]
        # Seed 0 for every recording, as bench run's clients mix it.
        mixed = zip(clips, levels, strict=True)
        clips = [(ref, streamed(audio, tail_s, level), onset) for (ref, audio, onset), level in mixed]
        tail_s = 0.0
    rows = []
    backends: dict[tuple[tuple[str, str], ...], Backend] = {}
    for point in combinations(grid):
        key = backend_key(point)
        if key not in backends:
            backends[key] = make_backend(model_path, key, cpu_threads)
        started = time.perf_counter()
        config = transcriber_config(point)
        replays = [
            (ref, onset, replay(audio, config, backends[key], tail_s, decode_s=decode_s)) for ref, audio, onset in clips
        ]
        for (_, _, done), voice in zip(replays, voices, strict=True):
            done.voice = voice
        row = pool(point, replays)
        rows.append(row)
        progress(
            f"{point or 'defaults'}: WER {100 * row.wer:.1f}%, word final p50 {row.word_final_p50:.2f} s, "
            f"CPU {row.cpu_per_audio_s:.3f} s/s ({time.perf_counter() - started:.0f} s)"
        )
    return rows


def write(out: Path, rows: Sequence[Row], offline_wer: float | None, meta: Mapping[str, Any]) -> None:
    """``tune.json`` and ``tune.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    body = {**meta, "offline_beam1_wer": offline_wer, "rows": [r.as_dict() for r in rows]}
    (out / "tune.json").write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    (out / "tune.md").write_text(table(rows, offline_wer) + "\n", encoding="utf-8")
