"""The listen protocol state machine and message builders, pure."""

from __future__ import annotations

import pytest

from gateway.core import messages
from gateway.core.errors import CloseCode, FrameTooLarge, InvalidAudio, InvalidMessage, InvalidTransition
from gateway.core.params import parse_params
from gateway.core.transcriber import Transcript
from gateway.core.types import Word
from gateway.protocols.listen import (
    AudioReceived,
    CloseStream,
    Finalize,
    IgnoredAudio,
    KeepAlive,
    ListenProtocol,
    State,
    UnknownMessage,
)


def proto(query: str = "encoding=linear16&sample_rate=16000") -> ListenProtocol:
    return ListenProtocol(parse_params(query), max_frame_bytes=1000)


def test_audio_and_control_messages() -> None:
    p = proto()
    assert isinstance(p.receive_bytes(b"\x00\x01" * 160), AudioReceived)
    assert isinstance(p.receive_text('{"type":"KeepAlive"}'), KeepAlive)
    assert isinstance(p.receive_text('{"type":"Finalize"}'), Finalize)
    assert p.state is State.OPEN
    assert isinstance(p.receive_text('{"type":"CloseStream"}'), CloseStream)
    assert p.state is State.CLOSING
    assert isinstance(p.receive_bytes(b"\x00\x00"), IgnoredAudio)
    assert p.audio_seconds == pytest.approx(0.01)


def test_empty_binary_frame_is_the_old_close_signal() -> None:
    p = proto()
    assert isinstance(p.receive_bytes(b""), CloseStream)
    assert p.state is State.CLOSING


def test_unknown_type_is_reported_not_fatal() -> None:
    assert proto().receive_text('{"type":"Shout"}') == UnknownMessage("Shout")


@pytest.mark.parametrize("text", ["not json", "[1,2]", '{"kind":"KeepAlive"}', '{"type":5}'])
def test_malformed_text_closes_with_1007(text: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        proto().receive_text(text)
    assert info.value.code is CloseCode.INVALID_PAYLOAD


def test_bad_frames() -> None:
    with pytest.raises(InvalidAudio) as info:
        proto().receive_bytes(b"\x00\x01\x02")
    assert info.value.code == 1007
    assert "DATA-0000" in info.value.reason
    with pytest.raises(FrameTooLarge):
        proto().receive_bytes(b"\x00" * 1002)


def test_closed_is_final() -> None:
    p = proto()
    p.close()
    with pytest.raises(InvalidTransition):
        p._transition(State.CLOSING)


def test_results_message_shape() -> None:
    event = Transcript((Word("Hello,", 0.1, 0.4, 0.9), Word("world.", 0.5, 0.9, 0.7)), 0.0, 1.0, True, True)
    model = messages.ModelInfo("whisper-tiny.en", "1", "whisper", "uuid-1")
    formatted = messages.results(event, channel=1, channels=2, request_id="r", model=model, formatted=True)
    assert formatted["channel_index"] == [1, 2]
    alt = formatted["channel"]["alternatives"][0]
    assert alt["transcript"] == "Hello, world."
    assert alt["words"][0] == {
        "word": "hello",
        "start": 0.1,
        "end": 0.4,
        "confidence": 0.9,
        "punctuated_word": "Hello,",
    }
    assert alt["confidence"] == pytest.approx(0.8)
    plain = messages.results(event, channel=0, channels=1, request_id="r", model=model, formatted=False)
    assert plain["channel"]["alternatives"][0]["transcript"] == "hello world"
    assert plain["metadata"] == {"request_id": "r", "model_uuid": "uuid-1", "model_info": model.as_dict()}
