"""Deepgram message parsing and WhisperLive segment tracking."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from bench.dg_protocol import ProtocolError, apply_message, auth_headers, listen_url
from bench.timeline import Timeline
from bench.wl_protocol import SegmentTracker, handshake


def test_listen_url_adds_streaming_parameters() -> None:
    url = listen_url("ws://127.0.0.1:8000", "nova-3")
    parts = urlsplit(url)
    assert parts.path == "/v1/listen"
    query = parse_qs(parts.query)
    assert query["encoding"] == ["linear16"]
    assert query["sample_rate"] == ["16000"]
    assert query["interim_results"] == ["true"]
    assert query["endpointing"] == ["300"]
    assert query["utterance_end_ms"] == ["1000"]
    assert query["vad_events"] == ["true"]
    assert query["model"] == ["nova-3"]


def test_listen_url_keeps_path_and_query_and_applies_overrides() -> None:
    url = listen_url("wss://example.test/custom/listen?tier=x&endpointing=500", "m", {"smart_format": "true"})
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.path == "/custom/listen"
    assert query["tier"] == ["x"]
    assert query["endpointing"] == ["500"]
    assert query["smart_format"] == ["true"]


def test_listen_url_rejects_http() -> None:
    with pytest.raises(ValueError, match="WebSocket"):
        listen_url("http://example.test", "m")


def test_auth_header() -> None:
    assert auth_headers("k") == {"Authorization": "Token k"}
    assert auth_headers(None) == {}


def results(is_final: bool, words: list[tuple[str, float, float]], **flags: bool) -> str:
    return json.dumps(
        {
            "type": "Results",
            "start": 0.0,
            "duration": 1.0,
            "is_final": is_final,
            "speech_final": flags.get("speech_final", False),
            "from_finalize": flags.get("from_finalize", False),
            "channel": {
                "alternatives": [
                    {
                        "transcript": " ".join(w for w, _, _ in words),
                        "words": [
                            {"word": w.lower().strip(","), "punctuated_word": w, "start": s, "end": e}
                            for w, s, e in words
                        ],
                    }
                ]
            },
        }
    )


def test_apply_message_records_every_kind() -> None:
    tl = Timeline(audio_s=1.0)
    assert apply_message(tl, json.dumps({"type": "SpeechStarted", "timestamp": 0.1}), 0.3) == "SpeechStarted"
    apply_message(tl, results(False, [("Hello,", 0.1, 0.4)]), 0.6)
    apply_message(tl, results(True, [("Hello,", 0.1, 0.4), ("world", 0.4, 0.8)], speech_final=True), 1.2)
    apply_message(tl, json.dumps({"type": "UtteranceEnd", "last_word_end": 0.8}), 1.9)
    apply_message(tl, json.dumps({"type": "Metadata", "duration": 1.5}), 2.0)
    apply_message(tl, json.dumps({"type": "SomethingNew"}), 2.1)
    assert tl.speech_started == [0.3]
    assert [u.is_final for u in tl.updates] == [False, True]
    assert tl.updates[1].speech_final
    assert [w.text for w in tl.updates[1].words] == ["Hello,", "world"]
    assert tl.updates[1].words[1].end == 0.8
    assert tl.utterance_ends == [(1.9, 0.8)]
    assert tl.billed_s == 1.5
    assert tl.error is None
    apply_message(tl, json.dumps({"type": "Error", "description": "bad audio"}), 2.2)
    assert tl.error == "bad audio"


def test_apply_message_rejects_non_json() -> None:
    with pytest.raises(ProtocolError):
        apply_message(Timeline(audio_s=1.0), "not json", 0.0)
    with pytest.raises(ProtocolError):
        apply_message(Timeline(audio_s=1.0), "[1, 2]", 0.0)


def test_results_without_words_or_alternatives_parse_as_empty() -> None:
    tl = Timeline(audio_s=1.0)
    apply_message(tl, json.dumps({"type": "Results", "is_final": True, "channel": {"alternatives": []}}), 1.0)
    assert tl.updates[0].transcript == ""
    assert tl.updates[0].words == ()


def seg(start: float, end: float, text: str, completed: bool, words: bool = True) -> dict[str, object]:
    item: dict[str, object] = {"start": f"{start:.3f}", "end": f"{end:.3f}", "text": text, "completed": completed}
    if words:
        step = (end - start) / max(1, len(text.split()))
        item["words"] = [
            {
                "word": f" {w}",
                "start": f"{start + i * step:.3f}",
                "end": f"{start + (i + 1) * step:.3f}",
                "probability": 0.9,
            }
            for i, w in enumerate(text.split())
        ]
    return item


def msg(*segments: dict[str, object]) -> str:
    return json.dumps({"uid": "u", "segments": list(segments)})


def test_handshake_is_json_with_the_options_whisperlive_reads() -> None:
    options = json.loads(handshake("u1", "tiny.en"))
    assert options["uid"] == "u1"
    assert options["language"] == "en"
    assert options["use_vad"] is True
    assert options["word_timestamps"] is True


def test_tracker_turns_resent_segments_into_finals_once_and_interims_on_change() -> None:
    t = SegmentTracker()
    t.feed(json.dumps({"uid": "u", "message": "SERVER_READY", "backend": "faster_whisper"}), 0.0)
    assert t.ready
    t.feed(msg(seg(0.0, 1.0, "hello", False)), 1.0)
    t.feed(msg(seg(0.0, 1.0, "hello", False)), 1.3)  # unchanged: no new interim
    t.feed(msg(seg(0.0, 1.5, "hello world", True), seg(1.5, 2.0, "how", False)), 2.0)
    t.feed(msg(seg(0.0, 1.5, "hello world", True), seg(1.5, 2.5, "how are", False)), 2.5)
    kinds = [(u.arrival, u.is_final, u.transcript) for u in t.updates]
    assert kinds == [(1.0, False, "hello"), (2.0, True, "hello world"), (2.0, False, "how"), (2.5, False, "how are")]
    assert [w.text for w in t.updates[1].words] == ["hello", "world"]
    last = t.finish()
    assert last is not None
    assert (last.arrival, last.is_final, last.transcript) == (2.5, True, "how are")
    assert t.finish() is None


def test_final_at_close_is_stamped_with_the_last_message_that_carried_it() -> None:
    t = SegmentTracker()
    t.feed(msg(seg(0.0, 1.0, "hi", False)), 1.0)
    t.feed(msg(seg(0.0, 1.0, "hi", False)), 3.0)
    last = t.finish()
    assert last is not None
    assert last.arrival == 3.0


def test_completed_segment_without_words_borrows_them_from_the_identical_interim() -> None:
    t = SegmentTracker()
    t.feed(msg(seg(0.0, 1.0, "Good morning.", False)), 1.0)
    t.feed(msg(seg(0.0, 1.0, "good morning", True, words=False)), 2.0)
    assert [w.text for w in t.updates[-1].words] == ["Good", "morning."]
    t.feed(msg(seg(0.0, 1.0, "good morning", True, words=False), seg(1.0, 2.0, "other", True, words=False)), 3.0)
    assert t.updates[-1].words == ()  # no identical interim to borrow from


def test_status_messages_are_kept() -> None:
    t = SegmentTracker()
    t.feed(json.dumps({"uid": "u", "status": "WAIT", "message": 2.5}), 0.0)
    assert t.status == "WAIT: 2.5"
    assert not t.ready
