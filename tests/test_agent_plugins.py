"""Voice-agent frameworks' Deepgram STT plugins, unmodified, against a real gateway at real time.

LiveKit (``livekit-plugins-deepgram``, its ``STT.stream()`` fed directly) and Pipecat (``pipecat-ai``'s
``DeepgramSTTService`` in a two-processor pipeline, no transport) each run in their own virtualenv
(:func:`tests.client_envs.agent_plugin`), driven by ``tests/clients/lk_stt.py`` and ``pc_stt.py``. Each
script writes what the plugin handed its application and every warning the framework logged; the
gateway side records every message it sent. The clip is two espeak-ng sentences: the first is followed
by 1.5 s of silence (an endpoint, and an utterance end at 1000 ms), the second ends 0.3 s before the
audio does, so its words are usually still pending when the plugin's flush (Finalize) comes (not
always: a model that keeps up may have finalised them as stable words already, which is as good).
"""

from __future__ import annotations

import logging
import wave
from pathlib import Path
from typing import Any

import pytest

from gateway.core.types import Backend
from tests import client_envs, speech
from tests.client import wer
from tests.conftest import make_config
from tests.test_third_party_clients import Recorder, run_client

pytestmark = pytest.mark.model

FIRST = "Please call me back tomorrow morning about the invoice."
LAST = "We will meet at the station at seven o'clock."


@pytest.fixture(scope="module")
def tail_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcm = speech.utterances((FIRST, LAST), gap_s=1.5)
    return speech.write_wav(tmp_path_factory.mktemp("plugins") / "clip.wav", pcm[: len(pcm) - int(0.9 * 16_000)])


def tail_s(clip: Path) -> float:
    """A time the last sentence's last words end after (it ends 0.3 s before the audio) and the first's never do.

    The tail is found by time, not by a word: tiny.en hears espeak's "seven o'clock" differently from run to run
    (the window a busy model decodes changes)."""
    with wave.open(str(clip)) as w:
        return w.getnframes() / w.getframerate() - 2.0


def plugin_env(name: str) -> client_envs.PythonClient:
    try:
        return client_envs.agent_plugin(name)
    except client_envs.ClientEnvError as exc:
        pytest.skip(f"could not install {' '.join(client_envs.AGENT_PLUGINS[name][0])}: {exc}")


def streams_of(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """The gateway's "opened" and "closed" log lines."""
    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.server.app"]
    return [m for m in messages if " opened: " in m], [m for m in messages if " closed: " in m]


def sent_finals(recorder: Recorder) -> list[dict[str, Any]]:
    return [m for _, _, m in recorder.sent if m.get("type") == "Results" and m["is_final"]]


def sent_interims(recorder: Recorder) -> list[dict[str, Any]]:
    """Interims with words: those a plugin hands its application (both skip empty ones)."""
    return [m for _, _, m in recorder.sent if m.get("type") == "Results" and not m["is_final"] and transcript(m)]


def assert_interims(recorder: Recorder, received: int, endpointing: str, name: str) -> None:
    """Every interim the gateway sent reached the application; on the default run there was at least one.

    (A model far behind real time skips interims by design, so only one run insists on them.)"""
    assert received == len(sent_interims(recorder)), f"{name}: {received} interims of {len(sent_interims(recorder))}"
    assert received or endpointing != "default", f"{name}: no interim at all"


def words_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    words: list[dict[str, Any]] = message["channel"]["alternatives"][0]["words"]
    return words


def transcript(message: dict[str, Any]) -> str:
    text: str = message["channel"]["alternatives"][0]["transcript"]
    return text


def assert_gateway_side(
    recorder: Recorder, caplog: pytest.LogCaptureFixture, name: str, tail: float | None, metadata: bool = True
) -> None:
    """One stream (no reconnect), closed normally, nothing the gateway warns about; with ``tail``, Finalize
    answered and the tail's words (ending after ``tail`` s) final; with ``metadata``, the client waited for the
    Metadata that CloseStream earns."""
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warned, f"{name}: the gateway warned: {warned}"
    opened, closed = streams_of(caplog)
    assert len(opened) == 1, f"{name}: one connection, no reconnect: {opened}"
    assert len(closed) == 1 and closed[0].endswith("close 1000"), f"{name}: clean close: {closed}"
    kinds = [m.get("type") for _, _, m in recorder.sent]
    assert "Error" not in kinds, f"{name}: the plugin sent nothing we answer with an Error: {recorder.sent}"
    assert not metadata or "Metadata" in kinds, f"{name}: CloseStream answered with Metadata"
    if tail is None:
        return
    # Finalize is answered with a from_finalize result, and the tail is final by then. Whether its
    # words were still pending when Finalize arrived (then they carry from_finalize) or were already
    # finalised as stable words depends on how far the model is behind: not asserted.
    finals = sent_finals(recorder)
    assert any(m["from_finalize"] for m in finals), f"{name}: Finalize answered: {finals}"
    tail_final = any(words_of(m) and words_of(m)[-1]["end"] >= tail for m in finals)
    assert tail_final, f"{name}: the tail's words are final: {finals}"


def log_lines(events: list[dict[str, Any]]) -> list[Any]:
    return [e["body"] for e in events if e["event"] == "log"]


@pytest.mark.parametrize("endpointing", ["default", "off"])
async def test_livekit_stt_stream(
    backend: Backend, tail_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, endpointing: str
) -> None:
    """LiveKit's defaults (nova-3, en-US, interim results, vad_events, endpointing 25 ms, filler_words, no_delay,
    mip_opt_out): START_OF_SPEECH, interims, finals, END_OF_SPEECH from speech_final; with endpointing off
    (``endpointing_ms=0``) END_OF_SPEECH comes from UtteranceEnd (``utterance_end_ms=1000``) and the tail is
    final once flush() (Finalize) is answered. Either way
    end_input() closes cleanly, no reconnect, and the plugin logs no warning about our messages."""
    from gateway.server.app import Gateway

    env = plugin_env("livekit")
    caplog.set_level(logging.INFO, logger="gateway.server.app")
    options = {} if endpointing == "default" else {"endpointing_ms": 0, "utterance_end_ms": 1000}
    async with Gateway(make_config(), backends={"tiny.en": backend}) as gw:
        recorder = Recorder(gw)
        gw.sinks.append(recorder)
        url = f"ws://127.0.0.1:{gw.port}/v1/listen"
        config = {"url": url, "wav": str(tail_clip), "options": options, "until_s": tail_s(tail_clip)}
        events = await run_client(env.python, "lk_stt.py", config, tmp_path / "events.jsonl")
    name = f"livekit-plugins-deepgram {env.version}"
    kinds = [e["event"] for e in events]
    assert not log_lines(events), f"{name}: warnings logged: {log_lines(events)}"
    assert kinds[-1] == "closed"
    assert "START_OF_SPEECH" in kinds, kinds
    assert_interims(recorder, kinds.count("INTERIM_TRANSCRIPT"), endpointing, name)
    heard = " ".join(e["body"]["text"] for e in events if e["event"] == "FINAL_TRANSCRIPT")
    assert wer(f"{FIRST} {LAST}", heard) < 0.5, heard
    assert "o 'clock" not in heard, f"{name}: Whisper's word pieces joined ('o'clock')"
    assert_gateway_side(recorder, caplog, name, tail_s(tail_clip) if endpointing == "off" else None)
    assert "END_OF_SPEECH" in kinds, f"{name}: speech_final (or with endpointing off, UtteranceEnd) ends the speech"
    if endpointing == "default":
        assert any(m["speech_final"] and transcript(m) for m in sent_finals(recorder)), "an endpoint was sent"
    else:
        assert any(m.get("type") == "UtteranceEnd" for _, _, m in recorder.sent), "UtteranceEnd was sent"
        # Whether the tail was still pending at flush() or already final as stable words depends on
        # how far the model is behind (Whisper may time the last word early): either way it is in.
        app_finals = [e["body"] for e in events if e["event"] == "FINAL_TRANSCRIPT"]
        assert any(f["end"] >= tail_s(tail_clip) for f in app_finals), f"{name}: the tail is final: {app_finals}"


@pytest.mark.parametrize("endpointing", ["default", "off"])
async def test_pipecat_deepgram_stt_service(
    backend: Backend, tail_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, endpointing: str
) -> None:
    """Pipecat's defaults (nova-3-general, interim results, smart_format, punctuate, no endpointing parameter so
    the server's default): InterimTranscriptionFrame and TranscriptionFrame; VADUserStoppedSpeakingFrame sends
    Finalize, and with endpointing off the tail is a TranscriptionFrame once Finalize is answered;
    EndFrame closes cleanly (CloseStream, close 1000), no reconnect, no warning logged by pipecat."""
    from gateway.server.app import Gateway

    env = plugin_env("pipecat")
    caplog.set_level(logging.INFO, logger="gateway.server.app")
    settings = {} if endpointing == "default" else {"endpointing": False}
    async with Gateway(make_config(), backends={"tiny.en": backend}) as gw:
        recorder = Recorder(gw)
        gw.sinks.append(recorder)
        config = {
            "url": f"ws://127.0.0.1:{gw.port}",
            "wav": str(tail_clip),
            "settings": settings,
            "until_s": tail_s(tail_clip),
        }
        events = await run_client(env.python, "pc_stt.py", config, tmp_path / "events.jsonl")
    name = f"pipecat-ai {env.version}"
    kinds = [e["event"] for e in events]
    assert not log_lines(events), f"{name}: warnings logged: {log_lines(events)}"
    assert "ErrorFrame" not in kinds and "pipeline_error" not in kinds, events
    assert kinds[-1] == "closed"
    assert_interims(recorder, kinds.count("InterimTranscriptionFrame"), endpointing, name)
    finals = [e["body"] for e in events if e["event"] == "TranscriptionFrame"]
    assert all(f["is_final"] for f in finals)
    heard = " ".join(f["text"] for f in finals)
    assert wer(f"{FIRST} {LAST}", heard) < 0.5, heard
    assert "o 'clock" not in heard, f"{name}: Whisper's word pieces joined ('o'clock')"
    # Pipecat's stop() sends CloseStream and closes the socket at once: it does not wait for Metadata.
    assert_gateway_side(recorder, caplog, name, tail_s(tail_clip) if endpointing == "off" else None, metadata=False)
    if endpointing == "default":
        assert any(f["speech_final"] for f in finals), f"{name}: the endpoint reaches the app as speech_final"
    else:
        # The tail reaches the app as a final, after Finalize or before it (already stable): marked
        # ``finalized`` when its words were still pending at Finalize (not asserted, see assert_gateway_side).
        assert any(f["end"] >= tail_s(tail_clip) for f in finals), f"{name}: the tail is final: {finals}"
