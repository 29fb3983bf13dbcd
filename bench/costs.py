"""Accuracy per kind of recording and dollars per audio hour: pure functions of a results dict.

*Per kind*: the manifest's ``kind`` field (``read_clean``, ``telephony_8k``,
...) groups the sessions; each group is scored together (corpus WER), beside
the offline beam-1 and beam-5 WER of the same files.

*Cost*: a local engine costs its machine time. ``CPU RTF`` (server CPU seconds
per audio second) times the price of one vCPU hour (``--cpu-hour-price``) is
the CPU dollars per audio hour; model seconds per audio second on a GPU (the
gateway's own ``/v1/stats`` inference time, the GPU being busy for that long)
times ``--gpu-hour-price`` are the GPU dollars. A relayed stream costs what
Deepgram bills: billed minutes times ``--relay-price-per-minute``, per audio
hour. Prices are inputs, never measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.wer import score


def _kinds(results: Mapping[str, Any]) -> dict[str, str]:
    return {f["id"]: f.get("kind") or "-" for f in results.get("dataset", {}).get("files", [])}


def per_kind(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (target, level, kind): streaming WER and the offline WERs of the same files."""
    kinds = _kinds(results)
    offline = {int(run["beam_size"]): run.get("per_file") or {} for run in results.get("offline") or []}
    refs = {f["id"]: f.get("reference", "") for f in results.get("dataset", {}).get("files", [])}
    rows = []
    for target in results.get("targets", []):
        for level in target.get("levels", []):
            groups: dict[str, list[Mapping[str, Any]]] = {}
            for session in level["sessions"]:
                if not session["error"]:
                    groups.setdefault(kinds.get(session["file"], "-"), []).append(session)
            for kind in sorted(groups):
                sessions = groups[kind]
                streamed = score((s["reference"], s["transcript"]) for s in sessions)
                files = sorted({s["file"] for s in sessions})
                off = {}
                for beam, per_file in offline.items():
                    scored = score((refs[f], per_file[f]["text"]) for f in files if f in per_file and refs.get(f))
                    off[beam] = scored.wer if scored else None
                rows.append(
                    {
                        "target": target["name"],
                        "streams": level["streams"],
                        "kind": kind,
                        "files": len(files),
                        "reference_words": streamed.reference_words if streamed else 0,
                        "wer": streamed.wer if streamed else None,
                        "offline": off,
                    }
                )
    return rows


def cost_row(level: Mapping[str, Any], prices: Mapping[str, float | None]) -> dict[str, float | None]:
    """$ per audio hour of one level: local CPU, local GPU, relay billing (None where not known)."""
    audio_s = float(level.get("sent_minutes") or 0.0) * 60.0
    cpu_rtf = level.get("cpu_rtf")
    model_s = level.get("model_s")
    gpu = bool(level.get("gpu"))
    model_rtf = float(model_s) / audio_s if model_s is not None and audio_s else None
    cpu_price, gpu_price, relay_price = (prices.get(k) for k in ("cpu_hour", "gpu_hour", "relay_minute"))
    billed = level.get("billed_minutes")
    return {
        "cpu_rtf": cpu_rtf,
        "model_rtf": model_rtf,
        "cpu_usd_per_audio_hour": cpu_rtf * cpu_price if cpu_rtf is not None and cpu_price is not None else None,
        "gpu_usd_per_audio_hour": (
            model_rtf * gpu_price if gpu and model_rtf is not None and gpu_price is not None else None
        ),
        "relay_usd_per_audio_hour": (
            float(billed) * relay_price * 3600.0 / audio_s
            if billed is not None and relay_price is not None and audio_s
            else None
        ),
    }
