"""The asyncio shells against scripted fake servers on loopback, and the command line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from bench import dg_client, wl_client
from bench.cli import build_parser, config_from, int_list

AUDIO = np.zeros(1600 * 3, dtype=np.float32)  # 0.3 s


def words(*items: tuple[str, float, float]) -> list[dict[str, object]]:
    return [{"word": w, "punctuated_word": w, "start": s, "end": e} for w, s, e in items]


def results(is_final: bool, ws: list[dict[str, object]], **flags: bool) -> str:
    return json.dumps(
        {
            "type": "Results",
            "is_final": is_final,
            "speech_final": flags.get("speech_final", False),
            "from_finalize": flags.get("from_finalize", False),
            "start": 0.0,
            "duration": 0.3,
            "channel": {"alternatives": [{"transcript": " ".join(str(w["word"]) for w in ws), "words": ws}]},
        }
    )


class FakeDeepgram:
    """Answers the first audio frame with an interim, Finalize with a final, CloseStream with Metadata."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.headers: list[str | None] = []
        self.audio_bytes = 0
        self.controls: list[str] = []

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        self.headers.append(ws.request.headers.get("Authorization"))
        async for message in ws:
            if isinstance(message, bytes):
                if self.audio_bytes == 0:
                    await ws.send(json.dumps({"type": "SpeechStarted", "timestamp": 0.0}))
                    await ws.send(results(False, words(("hel", 0.0, 0.1))))
                self.audio_bytes += len(message)
                continue
            kind = json.loads(message)["type"]
            self.controls.append(kind)
            if kind == "Finalize":
                await ws.send(results(True, words(("hello", 0.0, 0.2)), from_finalize=True))
            elif kind == "CloseStream":
                await ws.send(json.dumps({"type": "Metadata", "duration": self.audio_bytes / 32000}))
                await ws.close()


@pytest.fixture
async def fake_dg() -> AsyncIterator[tuple[FakeDeepgram, Server]]:
    fake = FakeDeepgram()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        yield fake, server


def port_of(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


async def test_deepgram_client_streams_finalizes_and_closes(fake_dg: tuple[FakeDeepgram, Server]) -> None:
    fake, server = fake_dg
    url = f"ws://127.0.0.1:{port_of(server)}"
    options = dg_client.DgOptions(url=url, api_key="secret", tail_s=0.1, keep_raw=True)
    tl = await dg_client.stream(AUDIO, options)
    assert tl.error is None
    assert fake.audio_bytes == (len(AUDIO) + 1600) * 2  # linear16, recording plus 0.1 s tail
    assert fake.controls == ["Finalize", "CloseStream"]
    assert fake.paths[0].startswith("/v1/listen?")
    assert "interim_results=true" in fake.paths[0]
    assert fake.headers == ["Token secret"]
    assert [u.is_final for u in tl.updates] == [False, True]
    assert tl.updates[1].from_finalize
    assert tl.final_text() == "hello"
    assert tl.billed_s == pytest.approx(0.4)
    assert tl.sent_s == pytest.approx(0.4)
    assert tl.end_sent is not None
    assert tl.close_sent is not None
    assert tl.closed_at is not None
    assert tl.end_sent <= tl.close_sent <= tl.closed_at
    assert len(tl.speech_started) == 1
    assert len(tl.raw) == 4
    assert tl.metadata_at is not None and tl.close_sent <= tl.metadata_at


async def test_deepgram_client_close_ending_sends_closestream_only(fake_dg: tuple[FakeDeepgram, Server]) -> None:
    """--ending close: CloseStream right after the audio (as an SDK's finish()), no Finalize."""
    fake, server = fake_dg
    options = dg_client.DgOptions(url=f"ws://127.0.0.1:{port_of(server)}", tail_s=0.1, ending="close")
    tl = await dg_client.stream(AUDIO, options)
    assert tl.error is None
    assert fake.controls == ["CloseStream"]
    assert tl.end_sent is not None and tl.close_sent is not None and tl.end_sent <= tl.close_sent
    assert tl.metadata_at is not None and tl.metadata_at >= tl.close_sent


async def test_deepgram_client_reports_a_refused_connection() -> None:
    async with serve(lambda ws: ws.close(), "127.0.0.1", 0) as server:
        port = port_of(server)
    tl = await dg_client.stream(AUDIO, dg_client.DgOptions(url=f"ws://127.0.0.1:{port}", tail_s=0.0))
    assert tl.error is not None
    assert tl.updates == []


class FakeWhisperLive:
    """SERVER_READY after the options; a segment per audio frame batch; closes on END_OF_AUDIO."""

    def __init__(self) -> None:
        self.options: dict[str, object] = {}
        self.frames = 0

    async def handler(self, ws: ServerConnection) -> None:
        self.options = json.loads(await ws.recv())
        await ws.send(json.dumps({"uid": self.options["uid"], "message": "SERVER_READY", "backend": "faster_whisper"}))
        async for message in ws:
            if message == b"END_OF_AUDIO":
                await ws.close()
                return
            self.frames += 1
            if self.frames == 5:
                seg = {
                    "start": "0.000",
                    "end": "0.200",
                    "text": " hi there",
                    "completed": False,
                    "words": [
                        {"word": " hi", "start": "0.000", "end": "0.100", "probability": 0.9},
                        {"word": " there", "start": "0.100", "end": "0.200", "probability": 0.9},
                    ],
                }
                await ws.send(json.dumps({"uid": self.options["uid"], "segments": [seg]}))
            if self.frames == 10:
                seg = {"start": "0.000", "end": "0.200", "text": " hi there.", "completed": True}
                await ws.send(json.dumps({"uid": self.options["uid"], "segments": [seg]}))


async def test_whisperlive_client_waits_for_ready_streams_float32_and_settles() -> None:
    fake = FakeWhisperLive()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        options = wl_client.WlOptions(url=f"ws://127.0.0.1:{port_of(server)}", tail_s=0.0, settle_s=0.2)
        tl = await wl_client.stream(AUDIO, options)
    assert tl.error is None
    assert fake.options["word_timestamps"] is True
    assert fake.frames == 15  # 0.3 s in 20 ms frames
    assert [(u.is_final, u.transcript) for u in tl.updates] == [(False, "hi there"), (True, "hi there.")]
    assert [w.text for w in tl.updates[1].words] == ["hi", "there"]  # borrowed from the interim
    assert tl.end_sent is None  # no flush in this protocol
    assert tl.closed_at is not None


def test_cli_builds_a_config(tmp_path: Path) -> None:
    argv = [
        "run",
        "--target",
        "gateway",
        "--target",
        "url=ws://127.0.0.1:1",
        "--ramp",
        "1,2,4",
        "--dg-param",
        "smart_format=true",
        "--gateway-arg=--final-beam-size=5",
        "--no-offline",
        "--noise-dbfs",
        "-45",
        "--ending",
        "close",
        "--out",
        str(tmp_path),
    ]
    cfg = config_from(build_parser().parse_args(argv), argv)
    assert cfg.noise_dbfs == -45.0 and cfg.ending == "close"
    assert [t.kind for t in cfg.targets] == ["gateway", "url"]
    assert cfg.levels == [1, 2, 4]
    assert cfg.dg_params == {"smart_format": "true"}
    assert cfg.gateway_args == ["--final-beam-size=5"]
    assert cfg.offline_beams == []
    assert cfg.out == tmp_path
    default = config_from(build_parser().parse_args(["run"]), [])
    assert [t.kind for t in default.targets] == ["gateway", "whisperlive"]
    assert default.levels == [1]
    assert default.offline_beams == [1, 5]
    assert default.noise_dbfs is None and default.ending == "finalize"


def test_int_list() -> None:
    assert int_list("1,2, 8") == [1, 2, 8]
    for bad in ("", "0", "a,b"):
        with pytest.raises(Exception, match="expected"):
            int_list(bad)
