"""Property-based fuzzing of every sans-I/O parser and state machine.

Any byte string or message sequence must yield events or a named error (a
:class:`~gateway.core.errors.GatewayError` subclass), never another exception:
listen parameters, the listen protocol, Twilio Media Streams events, the audio
decoder, and the upstream (relayed Deepgram) messages the gateway reads.

Bounded for CI: ``FUZZ_EXAMPLES`` (default 300) examples per property, no
per-example deadline (the machine is shared). Set it higher to fuzz longer.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.audio import AudioDecoder
from gateway.core.errors import GatewayError, HandshakeError, StreamError
from gateway.core.params import Encoding, StreamParams, parse_params
from gateway.engines.relay_upstream import final_span
from gateway.protocols.listen import ListenProtocol
from gateway.protocols.twilio import MediaStreamProtocol
from gateway.server.metrics import GatewayMetrics
from gateway.transcripts.records import FinalRecord

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -------------------------------------------------------------------

PARAM_NAMES = (
    "encoding", "sample_rate", "channels", "multichannel", "interim_results", "endpointing", "utterance_end_ms",
    "language", "model", "punctuate", "smart_format", "vad_events", "tag", "engine", "keywords", "diarize",
)  # fmt: skip
PARAM_VALUES = st.one_of(
    st.sampled_from(["linear16", "mulaw", "alaw", "opus", "true", "false", "0", "-1", "8000", "16000", "48000"]),
    st.sampled_from(["nova-2", "tiny.en", "whisper", "deepgram", "1e9", "", "%00", "%ZZ", "\u00e9", "10" * 40]),
    st.text(max_size=20),
    st.integers(-(10**12), 10**12).map(str),
)
QUERY = st.one_of(
    st.text(max_size=200),
    st.lists(st.tuples(st.sampled_from(PARAM_NAMES), PARAM_VALUES), max_size=8).map(
        lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
    ),
)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
CONTROL = st.sampled_from(["KeepAlive", "Finalize", "CloseStream", "Configure", "Bogus", ""])


def control_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=80),
        JSON.map(json.dumps),
        st.builds(
            lambda t, extra: json.dumps({"type": t, **extra}), CONTROL, st.dictionaries(st.text(max_size=6), JSON)
        ),
        st.builds(lambda t: json.dumps({"type": t}), JSON),
    )


FRAME = st.one_of(st.binary(max_size=2000), control_text())
PARAMS = st.sampled_from(
    [
        StreamParams(encoding=Encoding.LINEAR16, sample_rate=16_000),
        StreamParams(encoding=Encoding.LINEAR16, sample_rate=44_100, channels=2),
        StreamParams(encoding=Encoding.LINEAR16, sample_rate=48_000, channels=2, multichannel=True),
        StreamParams(encoding=Encoding.MULAW, sample_rate=8_000),
        StreamParams(encoding=Encoding.ALAW, sample_rate=8_000, channels=2, multichannel=True),
    ]
)


def twilio_event() -> st.SearchStrategy[str]:
    """Twilio-shaped events with fuzzed fields, plus raw junk."""
    media = st.fixed_dictionaries(
        {"event": st.just("media"), "sequenceNumber": st.one_of(st.integers(-5, 10**6).map(str), JSON)},
        optional={
            "media": st.fixed_dictionaries(
                {},
                optional={
                    "track": st.one_of(st.sampled_from(["inbound", "outbound", "both"]), JSON),
                    "chunk": st.one_of(st.integers(-5, 10**6).map(str), JSON),
                    "timestamp": st.one_of(st.integers(-(10**6), 10**9).map(str), JSON),
                    "payload": st.one_of(st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()), JSON),
                },
            ),
            "streamSid": st.text(max_size=8),
        },
    )
    start = st.fixed_dictionaries(
        {"event": st.just("start")},
        optional={
            "streamSid": st.one_of(st.just("MZ1"), JSON),
            "start": st.fixed_dictionaries(
                {},
                optional={
                    "streamSid": st.one_of(st.just("MZ1"), JSON),
                    "callSid": st.one_of(st.just("CA1"), JSON),
                    "tracks": st.one_of(st.sampled_from([["inbound"], ["inbound", "outbound"], ["outbound"]]), JSON),
                    "mediaFormat": st.one_of(
                        st.just({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}), JSON
                    ),
                    "customParameters": JSON,
                },
            ),
        },
    )
    others = st.builds(
        lambda kind, extra: {"event": kind, **extra},
        st.sampled_from(["connected", "dtmf", "mark", "stop", "other"]),
        st.dictionaries(st.sampled_from(["dtmf", "mark", "stop", "protocol", "streamSid", "sequenceNumber"]), JSON),
    )
    return st.one_of(media, start, others, JSON).map(json.dumps) | st.text(max_size=60)


# -- properties -----------------------------------------------------------------


@FUZZ
@given(QUERY)
def test_listen_params_parse_or_refuse(query: str) -> None:
    try:
        params = parse_params(query)
    except HandshakeError as exc:
        assert exc.status in (400, 401, 402, 403) and exc.message  # noqa: PT017 (the error is the outcome)
        return
    assert params.sample_rate > 0 and params.channels >= 1


@FUZZ
@given(PARAMS, st.lists(FRAME, max_size=12))
def test_listen_protocol_events_or_stream_error(params: StreamParams, frames: list[bytes | str]) -> None:
    protocol = ListenProtocol(params, max_frame_bytes=1500)
    for frame in frames:
        try:
            event = protocol.receive_bytes(frame) if isinstance(frame, bytes) else protocol.receive_text(frame)
        except StreamError as exc:
            assert exc.code >= 1000 and exc.reason  # noqa: PT017
            continue  # the shell would close here; the state machine must still be consistent
        assert event is not None
    protocol.close()
    assert protocol.audio_seconds >= 0


@FUZZ
@given(PARAMS, st.lists(st.binary(max_size=3000), max_size=8))
def test_audio_decoder_frames_or_invalid_audio(params: StreamParams, frames: list[bytes]) -> None:
    decoder = AudioDecoder(params.encoding, params.sample_rate, params.channels, params.multichannel)
    for frame in frames:
        try:
            decoded = decoder.decode(frame)
        except StreamError:
            continue
        assert len(decoded.channels) == (params.channels if params.multichannel else 1)
        assert all(c.dtype.name == "float32" and abs(c).max(initial=0) <= 4 for c in decoded.channels)
    decoder.flush_frame()


@FUZZ
@given(st.lists(twilio_event(), max_size=12))
def test_twilio_events_or_named_error(texts: list[str]) -> None:
    protocol = MediaStreamProtocol()
    for text in texts:
        try:
            events = protocol.receive_text(text)
        except GatewayError as exc:
            assert isinstance(exc, StreamError) and exc.reason  # noqa: PT017
            return  # the session closes the stream on the first error
        assert isinstance(events, list)
    protocol.close()


RESULTS = st.fixed_dictionaries(
    {"type": st.just("Results")},
    optional={
        "is_final": JSON,
        "start": JSON,
        "duration": JSON,
        "channel_index": JSON,
        "speech_final": JSON,
        "channel": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {
                    "alternatives": st.one_of(
                        JSON, st.lists(st.dictionaries(st.sampled_from(["transcript", "words"]), JSON))
                    )
                }
            ),
        ),
    },
)


@FUZZ
@given(RESULTS)
def test_upstream_results_are_read_or_skipped(message: dict[str, Any]) -> None:
    """A relayed Deepgram message of any shape: a final record or None; metrics skip what they cannot read."""
    try:
        record = FinalRecord.from_results(message)
    except GatewayError:
        record = None
    assert record is None or record.text
    span = final_span(message)
    assert span is None or (span[0] >= 0 and span[1] == span[1])
    metrics = GatewayMetrics()
    metrics.stream_opened("s", "listen", "deepgram", "t", lambda: 1.0)
    metrics.message("s", message)
    metrics.stream_closed("s", 1000)
