"""The sans-I/O Twilio core: jitter-buffer timeline, event state machine, signatures."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from gateway.core.errors import InvalidAudio, InvalidMessage, TwilioProtocolError
from gateway.core.timeline import MULAW_SILENCE, Timeline
from gateway.protocols.twilio import (
    Audio,
    Connected,
    Dtmf,
    Mark,
    MediaStreamProtocol,
    Started,
    Stopped,
    TwilioConfig,
    compute_signature,
    signature_valid,
    signed_url,
)
from tests.twilio_sim import CHUNK, call_events, media

SILENCE = bytes([MULAW_SILENCE])


def chunks(track: int, count: int) -> list[bytes]:
    """Distinct recognisable payloads: byte values encode track and chunk."""
    return [bytes([(track * 100 + i) % 250]) * CHUNK for i in range(count)]


def released(timeline: Timeline, final: bool = False) -> tuple[bytes, ...]:
    out = timeline.release(final)
    return out if out is not None else tuple(b"" for _ in range(timeline.tracks))


# -- timeline ---------------------------------------------------------------------


def test_in_order_tracks_are_released_aligned_as_soon_as_both_arrive() -> None:
    timeline = Timeline(2, window=10 * CHUNK, max_jump=8000 * 60)
    a, b = chunks(0, 3), chunks(1, 3)
    timeline.add(0, 0, a[0])
    assert timeline.release() is None, "the other track's chunk may still come"
    timeline.add(1, 0, b[0])
    assert released(timeline) == (a[0], b[0])
    for i in (1, 2):
        timeline.add(0, i * CHUNK, a[i])
        timeline.add(1, i * CHUNK, b[i])
        assert released(timeline) == (a[i], b[i])
    assert timeline.stats.filled_samples == 0


def test_missing_chunk_becomes_silence_of_its_length_and_keeps_later_timestamps() -> None:
    window = 3 * CHUNK
    timeline = Timeline(1, window=window, max_jump=8000 * 60)
    a = chunks(0, 10)
    out = b""
    for i in range(10):
        if i == 4:
            continue  # lost
        timeline.add(0, i * CHUNK, a[i])
        out += released(timeline)[0]
    out += released(timeline, final=True)[0]
    assert len(out) == 10 * CHUNK
    assert out[4 * CHUNK : 5 * CHUNK] == SILENCE * CHUNK
    for i in range(10):
        if i != 4:
            assert out[i * CHUNK : (i + 1) * CHUNK] == a[i], f"chunk {i} moved"
    assert timeline.stats.filled_samples == CHUNK


def test_out_of_order_within_window_is_put_back_in_order() -> None:
    timeline = Timeline(1, window=4 * CHUNK, max_jump=8000 * 60)
    a = chunks(0, 8)
    order = [0, 1, 3, 2, 4, 6, 5, 7]
    out = b""
    for i in order:
        timeline.add(0, i * CHUNK, a[i])
        out += released(timeline)[0]
    out += released(timeline, final=True)[0]
    assert out == b"".join(a)
    assert timeline.stats.reordered_chunks == 2
    assert timeline.stats.late_chunks == 0
    assert timeline.stats.filled_samples == 0


def test_chunk_later_than_the_window_is_dropped_and_counted() -> None:
    timeline = Timeline(1, window=2 * CHUNK, max_jump=8000 * 60)
    a = chunks(0, 8)
    out = b""
    for i in [0, 1, 3, 4, 5, 6, 2, 7]:  # chunk 2 arrives four chunks late
        timeline.add(0, i * CHUNK, a[i])
        out += released(timeline)[0]
    out += released(timeline, final=True)[0]
    assert len(out) == 8 * CHUNK, "a late chunk never shifts what follows"
    assert out[2 * CHUNK : 3 * CHUNK] == SILENCE * CHUNK
    assert out[7 * CHUNK :] == a[7]
    assert timeline.stats.late_chunks == 1
    assert timeline.stats.late_samples == CHUNK


def test_a_silent_track_does_not_stall_the_other_beyond_the_window() -> None:
    window = 5 * CHUNK
    timeline = Timeline(2, window=window, max_jump=8000 * 60)
    a = chunks(0, 20)
    total = 0
    for i in range(20):
        timeline.add(0, i * CHUNK, a[i])
        got = released(timeline)
        assert len(got[0]) == len(got[1])
        assert set(got[1]) <= {MULAW_SILENCE}
        total += len(got[0])
        assert total >= (i + 1) * CHUNK - window
    assert total == 20 * CHUNK - window


def test_duplicates_and_overlaps_do_not_repeat_audio() -> None:
    timeline = Timeline(1, window=CHUNK, max_jump=8000 * 60)
    a = chunks(0, 3)
    timeline.add(0, 0, a[0])
    timeline.add(0, 0, a[0])
    timeline.add(0, CHUNK, a[1])
    timeline.add(0, CHUNK // 2, a[0][: CHUNK // 2] + a[1][: CHUNK // 2])  # overlaps both
    timeline.add(0, 2 * CHUNK, a[2])
    out = b"".join(released(timeline, final=True))
    assert len(out) == 3 * CHUNK
    assert out[:CHUNK] == a[0]
    assert out[2 * CHUNK :] == a[2]


def test_timestamp_jump_beyond_the_limit_is_refused() -> None:
    timeline = Timeline(1, window=CHUNK, max_jump=8000)
    timeline.add(0, 0, b"\x00" * CHUNK)
    with pytest.raises(InvalidAudio, match="timestamp out of range"):
        timeline.add(0, CHUNK + 8001, b"\x00" * CHUNK)


# -- the event state machine -----------------------------------------------------------


def simulated(seconds: float = 1.0) -> list[dict[str, Any]]:
    n = int(seconds * 8000)
    rng = np.random.default_rng(0)
    inbound = (rng.standard_normal(n) * 3000).astype(np.int16)
    outbound = (rng.standard_normal(n) * 3000).astype(np.int16)
    return list(call_events({"inbound": inbound, "outbound": outbound}, "CA1", "MZ1"))


def feed(protocol: MediaStreamProtocol, events: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for event in events:
        out += protocol.receive_text(json.dumps(event))
    return out


def samples_per_channel(events: list[Any]) -> list[int]:
    frames = [e.frame for e in events if isinstance(e, Audio)]
    frames += [e.frame for e in events if isinstance(e, Stopped) and e.frame is not None]
    return [sum(len(f.channels[c]) for f in frames) for c in range(2)]


def test_a_call_gives_start_then_two_aligned_channels_then_stop() -> None:
    protocol = MediaStreamProtocol()
    events = feed(protocol, simulated(1.0))
    assert isinstance(events[0], Connected)
    started = events[1]
    assert isinstance(started, Started)
    assert started.start.call_sid == "CA1"
    assert started.start.stream_sid == "MZ1"
    assert started.start.labels == ("customer", "agent")
    assert isinstance(events[-1], Stopped)
    audio = [e for e in events if isinstance(e, Audio)]
    assert audio
    assert all(len(a.frame.channels) == 2 for a in audio)
    assert all(len(a.frame.channels[0]) == len(a.frame.channels[1]) for a in audio)
    assert protocol.audio_seconds == pytest.approx(1.0)
    # 1 s at 8 kHz becomes 1 s at 16 kHz: stop drains the resampler too.
    assert samples_per_channel(events) == [16_000, 16_000]


def test_missing_and_reordered_chunks_keep_the_call_length() -> None:
    events = simulated(2.0)
    media_events = [i for i, e in enumerate(events) if e["event"] == "media"]
    dropped = {media_events[10], media_events[31]}  # one inbound, one outbound chunk lost
    kept = [e for i, e in enumerate(events) if i not in dropped]
    a, b = media_events[40], media_events[42]  # two inbound chunks swapped
    kept_index = {id(e): i for i, e in enumerate(kept)}
    ia, ib = kept_index[id(events[a])], kept_index[id(events[b])]
    kept[ia], kept[ib] = kept[ib], kept[ia]
    protocol = MediaStreamProtocol()
    out = feed(protocol, kept)
    assert protocol.audio_seconds == pytest.approx(2.0)
    assert protocol.stats.filled_samples == 2 * CHUNK
    assert protocol.stats.reordered_chunks == 1
    full = MediaStreamProtocol()
    assert samples_per_channel(out) == samples_per_channel(feed(full, simulated(2.0)))


def test_one_track_call_has_one_channel() -> None:
    inbound = np.zeros(1600, np.int16)
    protocol = MediaStreamProtocol()
    events = feed(protocol, list(call_events({"inbound": inbound}, "CA2", "MZ2")))
    assert events[1].start.labels == ("customer",)
    frames = [e.frame for e in events if isinstance(e, Audio)]
    assert frames
    assert all(len(f.channels) == 1 for f in frames)


def test_dtmf_and_mark_are_reported() -> None:
    protocol = MediaStreamProtocol()
    feed(protocol, simulated(0.2)[:-1])
    got = protocol.receive_text(json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "7"}}))
    assert got == [Dtmf(0, "7", pytest.approx(0.2))]
    assert protocol.receive_text(json.dumps({"event": "mark", "mark": {"name": "greeting"}})) == [Mark("greeting")]


def start_event(**start: Any) -> str:
    body = {"streamSid": "MZ9", "callSid": "CA9", "tracks": ["inbound", "outbound"], **start}
    return json.dumps({"event": "start", "start": body})


def one_media(payload: str = "//8=", track: str = "inbound") -> str:
    return json.dumps({"event": "media", "media": {"track": track, "chunk": "1", "timestamp": "0", "payload": payload}})


@pytest.mark.parametrize(
    ("frames", "error", "code", "words"),
    [
        (["{not json"], InvalidMessage, 1007, "not valid JSON"),
        (['["event"]'], InvalidMessage, 1007, "JSON object"),
        ([json.dumps({"event": "dance"})], TwilioProtocolError, 1008, "unknown Twilio event"),
        ([one_media()], TwilioProtocolError, 1008, "'media' event before 'start'"),
        ([start_event(), one_media("not base64!")], InvalidAudio, 1007, "not valid base64"),
        ([start_event(), one_media(track="sideways")], TwilioProtocolError, 1008, "did not announce"),
        (
            [start_event(), json.dumps({"event": "media", "media": {"payload": "//8="}})],
            TwilioProtocolError,
            1008,
            "track",
        ),
        ([start_event(tracks=["inbound"]), one_media(track="outbound")], TwilioProtocolError, 1008, "did not announce"),
        ([start_event(), start_event()], TwilioProtocolError, 1008, "'start' event after 'start'"),
        ([start_event(callSid=7)], TwilioProtocolError, 1008, "callSid"),
        ([start_event(tracks="both")], TwilioProtocolError, 1008, "tracks"),
        (
            [start_event(mediaFormat={"encoding": "audio/x-l16", "sampleRate": 16000})],
            InvalidAudio,
            1007,
            "mediaFormat",
        ),
        (
            [
                start_event(),
                json.dumps({"event": "media", "media": {"track": "inbound", "timestamp": "x", "payload": ""}}),
            ],
            TwilioProtocolError,
            1008,
            "media.timestamp must be an integer",
        ),
        ([start_event(), json.dumps({"event": "stop"}), one_media()], TwilioProtocolError, 1008, "after 'stop'"),
    ],
)
def test_malformed_events_raise_clear_errors(frames: list[str], error: type[Exception], code: int, words: str) -> None:
    protocol = MediaStreamProtocol()
    for frame in frames[:-1]:
        protocol.receive_text(frame)
    with pytest.raises(error) as info:
        protocol.receive_text(frames[-1])
    assert words in str(info.value)
    assert info.value.code == code  # type: ignore[attr-defined]
    assert len(info.value.reason.encode()) <= 123  # type: ignore[attr-defined]


def test_media_without_timestamp_is_placed_by_chunk_number() -> None:
    protocol = MediaStreamProtocol(TwilioConfig(reorder_window_ms=0))
    protocol.receive_text(start_event(tracks=["inbound"]))
    payload = base64.b64encode(b"\x10" * CHUNK).decode()
    protocol.receive_text(json.dumps({"event": "media", "media": {"chunk": "3", "payload": payload}}))
    assert protocol.timeline is not None
    assert protocol.timeline.released == 3 * CHUNK
    assert protocol.stats.filled_samples == 2 * CHUNK


def test_media_helper_matches_twilio_shape() -> None:
    event = media("outbound", 2, b"\xff" * CHUNK, "MZ1", 5)
    assert event["media"]["timestamp"] == "20"
    assert event["sequenceNumber"] == "5"


# -- signatures ---------------------------------------------------------------------

# Twilio's own test vector (twilio-python, tests/unit/test_request_validator.py).
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}


def test_signature_matches_twilios_published_vectors() -> None:
    assert compute_signature("12345", TWILIO_URL, TWILIO_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert signature_valid("12345", TWILIO_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TWILIO_PARAMS)
    # Signed with the default port, or checked behind a port-changing proxy.
    assert signature_valid("12345", TWILIO_URL, "kvajT1Ptam85bY51eRf/AJRuM3w=", TWILIO_PARAMS)
    with_port = TWILIO_URL.replace(".com", ".com:1234")
    assert signature_valid("12345", with_port, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TWILIO_PARAMS)
    assert not signature_valid("12345", TWILIO_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", {})
    assert not signature_valid("54321", TWILIO_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", TWILIO_PARAMS)
    assert not signature_valid("12345", TWILIO_URL, None, TWILIO_PARAMS)


def test_websocket_handshake_signs_the_public_url() -> None:
    url = signed_url("wss://calls.example.com/", "10.0.0.5:8000", "/v1/twilio")
    assert url == "wss://calls.example.com/v1/twilio"
    assert signed_url(None, "gw.example.com", "/v1/twilio") == "wss://gw.example.com/v1/twilio"
    signature = compute_signature("token", url)
    assert signature_valid("token", url, signature)
    assert not signature_valid("token", "wss://10.0.0.5:8000/v1/twilio", signature)
