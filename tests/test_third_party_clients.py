"""Unmodified third-party Deepgram clients against a real gateway, streaming speech at real time.

Each client runs in its own interpreter (see :mod:`tests.client_envs`): deepgram-sdk 3.x and 4.x in
virtualenvs cached under ``.cache/clients/``, driven by the scripts in ``tests/clients/``. The gateway
side records every message it emits with the protocol state at that moment, so "no interim after
CloseStream" is checked on what the gateway did, not on when the client happened to read it.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gateway.core.types import Backend
from gateway.protocols.listen import State
from tests import client_envs, speech
from tests.conftest import make_config

pytestmark = pytest.mark.model

LAST = "We will meet at the station at seven o'clock."


@pytest.fixture(scope="session", params=["dg3", "dg4"])
def legacy_sdk(request: pytest.FixtureRequest) -> client_envs.PythonClient:
    try:
        return client_envs.python_client(request.param)
    except client_envs.ClientEnvError as exc:
        pytest.skip(f"could not install {client_envs.PYTHON_SDKS[request.param]}: {exc}")


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sentences; the last one ends 0.3 s before the audio does, so it is pending at finish()."""
    pcm = speech.utterances(("Please call me back tomorrow morning about the invoice.", LAST), gap_s=1.2)
    return speech.write_wav(tmp_path_factory.mktemp("clients") / "clip.wav", pcm[: len(pcm) - int(0.9 * 16_000)])


class Recorder:
    """A gateway sink: every message with the state of its stream's protocol when it was sent."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        self.sent: list[tuple[str, State | None, dict[str, Any]]] = []

    async def __call__(self, request_id: str, message: dict[str, Any]) -> None:
        session = self.gateway.active.get(request_id)
        self.sent.append((request_id, session.protocol.state if session else None, message))


async def run_client(python: Path, script: str, config: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    config = {**config, "out": str(out)}
    proc = await asyncio.create_subprocess_exec(
        str(python),
        str(client_envs.CLIENTS / script),
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


def transcripts(events: list[dict[str, Any]], until: str = "finished") -> list[dict[str, Any]]:
    got = []
    for e in events:
        if e["event"] == until:
            break
        if e["event"] == "Transcript":
            got.append(e["body"])
    return got


def text(results: list[dict[str, Any]]) -> str:
    return " ".join(r["channel"]["alternatives"][0]["transcript"] for r in results if r.get("is_final")).lower()


async def test_legacy_sdk_finish_keeps_the_last_utterance(
    backend: Backend, legacy_sdk: client_envs.PythonClient, clip: Path, tmp_path: Path
) -> None:
    """Defects 1 and 2: ``LiveOptions()`` (model "None") connects, and the SDK's own finish() (CloseStream,
    0.5 s, close) gets the last final and Metadata; no interim follows CloseStream; the store has it all."""
    from gateway.server.app import Gateway

    config = make_config(store_path=str(tmp_path / "t.sqlite3"))
    async with Gateway(config, backends={"tiny.en": backend}) as gw:
        recorder = Recorder(gw)
        gw.sinks.append(recorder)
        options = {"encoding": "linear16", "sample_rate": 16000, "interim_results": True, "punctuate": True}
        events = await run_client(
            legacy_sdk.python,
            "dg_legacy.py",
            {"url": f"http://127.0.0.1:{gw.port}", "wav": str(clip), "options": options},
            tmp_path / "events.jsonl",
        )
        kinds = [e["event"] for e in events]
        assert "start_failed" not in kinds, "LiveOptions() without a model must connect"
        before_close = transcripts(events)
        heard = text(before_close)
        assert "station" in heard and "clock" in heard, f"{legacy_sdk.version}: last utterance lost: {heard!r}"
        assert "Metadata" in kinds[: kinds.index("finished")], "Metadata before the SDK closed the socket"
        interims_after = [
            m for _, state, m in recorder.sent
            if m.get("type") == "Results" and not m["is_final"] and state is not State.OPEN
        ]
        assert not interims_after, "no interim after CloseStream"
        request_id = recorder.sent[0][0]
        url = f"http://127.0.0.1:{gw.port}/v1/transcripts/{request_id}?format=text"
        stored = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
        assert "station" in stored.lower()
