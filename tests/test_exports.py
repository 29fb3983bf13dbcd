"""Transcript exports: JSON, text, SRT, WebVTT with speaker labels (pure)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from gateway.transcripts.exports import ExportFormat, cues, render, to_json, to_srt, to_text, to_vtt
from gateway.transcripts.records import FinalRecord, StreamInfo, StreamKind, StreamRecord


def words(text: str, start: float, step: float = 0.4) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"word": w.strip(".,?").lower(), "punctuated_word": w, "start": start + i * step, "end": start + i * step + 0.3}
        for i, w in enumerate(text.split())
    )


def final(channel: int, text: str, start: float) -> FinalRecord:
    ws = words(text, start)
    return FinalRecord(channel, ws[0]["start"], ws[-1]["end"], text, ws, True)


CALL = StreamRecord(
    StreamInfo("MZ1", "CA1", StreamKind.TWILIO, "default", ("customer", "agent"), datetime(2026, 1, 1, tzinfo=UTC)),
    datetime(2026, 1, 1, 0, 1, tzinfo=UTC),
    "completed",
)
FINALS = [
    final(1, "Thanks for calling, how can I help?", 3.0),
    final(0, "Hello, my invoice is wrong.", 0.5),
    final(0, "It says ninety dollars.", 6.5),
]


def test_json_orders_finals_by_time_and_labels_speakers() -> None:
    body = to_json(CALL, FINALS)
    assert [f["speaker"] for f in body["finals"]] == ["customer", "agent", "customer"]
    assert body["channels"][0] == {
        "channel": 0,
        "speaker": "customer",
        "transcript": "Hello, my invoice is wrong. It says ninety dollars.",
    }
    assert body["channels"][1]["speaker"] == "agent"
    assert body["status"] == "completed"
    assert body["call_id"] == "CA1"
    assert json.loads(render(ExportFormat.JSON, CALL, FINALS)) == body


def test_text_is_one_line_per_speaker_turn() -> None:
    assert to_text(CALL, FINALS).splitlines() == [
        "[00:00.5] customer: Hello, my invoice is wrong.",
        "[00:03.0] agent: Thanks for calling, how can I help?",
        "[00:06.5] customer: It says ninety dollars.",
    ]
    assert to_text(CALL, []) == ""


def test_srt_cues_are_numbered_timed_and_labelled() -> None:
    blocks = to_srt(CALL, FINALS).strip().split("\n\n")
    assert blocks[0].splitlines() == ["1", "00:00:00,500 --> 00:00:02,400", "customer: Hello, my invoice is wrong."]
    assert [b.splitlines()[0] for b in blocks] == [str(i) for i in range(1, len(blocks) + 1)]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", b.splitlines()[1]) for b in blocks)


def test_vtt_uses_voice_spans_and_escapes_text() -> None:
    listen = StreamRecord(
        StreamInfo("r1", "r1", StreamKind.LISTEN, "anonymous", ("channel 0",), datetime(2026, 1, 1, tzinfo=UTC)),
        None,
        "active",
    )
    vtt = to_vtt(listen, [final(0, "Use <b> & co.", 61.0)])
    assert vtt.startswith("WEBVTT\n\n")
    assert "00:01:01.000 --> 00:01:02.500\n<v channel 0>Use &lt;b&gt; &amp; co.</v>" in vtt


def test_long_finals_are_cut_into_readable_cues() -> None:
    long = final(0, " ".join(["word"] * 60), 0.0)
    got = cues(CALL, [long], max_chars=40, max_seconds=5.0)
    assert len(got) > 1
    assert all(len(c.text) <= 40 and c.end - c.start <= 5.0 + 0.3 for c in got)
    assert " ".join(c.text for c in got) == long.text


def test_final_without_words_is_one_cue() -> None:
    bare = FinalRecord(0, 1.0, 1.0, "hm", (), False)
    assert cues(CALL, [bare])[0].end > 1.0
