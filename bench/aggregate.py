"""From stream timelines to the numbers a report shows: session records, level summaries, capacity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.latency import METRICS, stream_latency
from bench.stats import summarize
from bench.timeline import Timeline
from bench.wer import score

CAPACITY_METRIC = "final"
"""Default metric whose p95 decides whether a concurrency level held."""


def session_record(
    file_id: str,
    reference: str,
    worker: int,
    timeline: Timeline,
    speech_onset: float | None,
    voice: Sequence[tuple[float, float]] = (),
) -> dict[str, Any]:
    """Everything measured on one stream, JSON-ready (``voice``: the recording's speech regions)."""
    lat = stream_latency(timeline, speech_onset, voice)
    text = timeline.final_text()
    wer = score([(reference, text)])
    return {
        "file": file_id,
        "worker": worker,
        "audio_s": timeline.audio_s,
        "sent_s": timeline.sent_s,
        "error": timeline.error,
        "transcript": text,
        "reference": reference,
        "wer": wer.to_dict() if wer else None,
        "pacing_lag_max_s": timeline.pacing_lag_max,
        "billed_s": timeline.billed_s,
        "updates": len(timeline.updates),
        "finals": len(timeline.finals),
        "final_words": len(lat.final_words),
        "words_seen_in_interims": lat.interim_matches,
        "words_without_times": lat.words_without_times,
        "speech_started_events": len(timeline.speech_started),
        "close_s": (
            timeline.closed_at - timeline.close_sent
            if timeline.closed_at is not None and timeline.close_sent is not None
            else None
        ),
        "latency": lat.samples,
    }


def level_summary(
    streams: int,
    sessions: Sequence[Mapping[str, Any]],
    threshold_s: float,
    load: Mapping[str, Any] | None = None,
    client_load: Mapping[str, Any] | None = None,
    wall_s: float = 0.0,
    metric: str = CAPACITY_METRIC,
) -> dict[str, Any]:
    """Pool the sessions of one concurrency level: latency percentiles, WER, load, and whether it held.

    A level holds when no session failed and the p95 of ``metric`` latency is
    at most ``threshold_s`` (a level without samples of it does not hold).
    """
    latency: dict[str, Any] = {}
    for name in METRICS:
        summary = summarize(v for s in sessions for v in s["latency"].get(name, []))
        latency[name] = summary.to_dict() if summary else None
    wer = score((s["reference"], s["transcript"]) for s in sessions if not s["error"])
    errors = [s["error"] for s in sessions if s["error"]]
    audio_s = sum(float(s["audio_s"]) for s in sessions)
    sent_s = sum(float(s["sent_s"]) for s in sessions)
    billed = [s["billed_s"] for s in sessions if s["billed_s"] is not None]
    p95 = (latency[metric] or {}).get("p95")
    held = not errors and p95 is not None and p95 <= threshold_s
    if errors:
        reason = f"{len(errors)} session(s) failed: {errors[0]}"
    elif p95 is None:
        reason = f"no {metric} samples"
    elif p95 > threshold_s:
        reason = f"p95 {metric} {p95:.2f} s > {threshold_s:.2f} s"
    else:
        reason = "held"
    return {
        "streams": streams,
        "sessions": list(sessions),
        "latency": latency,
        "wer": wer.to_dict() if wer else None,
        "errors": len(errors),
        "audio_minutes": audio_s / 60.0,
        "sent_minutes": sent_s / 60.0,
        "billed_minutes": sum(billed) / 60.0 if billed else None,
        "load": dict(load) if load else None,
        "client_load": dict(client_load) if client_load else None,
        "cpu_rtf": (float(load["cpu_s"]) / sent_s) if load and sent_s else None,
        "wall_s": wall_s,
        "pacing_lag_max_s": max((float(s["pacing_lag_max_s"]) for s in sessions), default=0.0),
        "held": held,
        "verdict": reason,
    }


def capacity(levels: Sequence[Mapping[str, Any]], threshold_s: float, metric: str = CAPACITY_METRIC) -> dict[str, Any]:
    """The largest stream count that held, trying levels in order until one fails."""
    best: int | None = None
    stopped = "all levels held"
    for level in levels:
        if not level["held"]:
            stopped = f"{level['streams']} streams: {level['verdict']}"
            break
        best = int(level["streams"])
    return {
        "metric": f"p95 {metric}",
        "threshold_s": threshold_s,
        "max_streams_held": best,
        "levels_tried": [int(level["streams"]) for level in levels],
        "stopped_because": stopped,
    }
