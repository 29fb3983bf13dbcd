"""Twilio Media Streams end to end: simulated two-party calls through a real gateway.

Calls are made from espeak speech (customer on the inbound track, agent on
the outbound one), mu-law 8 kHz in 20 ms chunks, paced faster than real time.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from gateway.protocols.twilio import compute_signature
from gateway.server.app import Gateway
from tests.client import Received, collect
from tests.conftest import make_config
from tests.http_receiver import receiving
from tests.twilio_sim import call_events, play_call, signature_headers, twilio_url, two_party

pytestmark = pytest.mark.model

TOKEN = "twilio-test-token"
# Words tiny.en still hears in narrow-band (8 kHz) espeak speech: "tomorrow"
# and "station" survive; "invoice" does not (it does at 16 kHz).
CUSTOMER = "Please call me back tomorrow morning about the invoice."
AGENT = "We will meet at the station at seven o'clock."


@pytest.fixture
async def gateway(backend: Any, tmp_path: Path) -> AsyncIterator[Gateway]:
    config = make_config(store_path=str(tmp_path / "calls.sqlite3"), twilio_auth_token=TOKEN)
    async with Gateway(config, backends={"tiny.en": backend}) as gw:
        yield gw


def http_get(port: int, path: str, key: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if key:
        request.add_header("Authorization", f"Token {key}")
    try:
        with urllib.request.urlopen(request) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


async def get_json(port: int, path: str, key: str | None = None) -> Any:
    status, _, body = await asyncio.to_thread(http_get, port, path, key)
    assert status == 200, body
    return json.loads(body)


def words_of(finals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for m in finals for w in m["channel"]["alternatives"][0]["words"]]


def sent_finals(live: Received) -> list[tuple[int, str]]:
    """(channel, text) of every final with words a subscriber saw."""
    return sorted(
        (m["channel_index"][0], m["channel"]["alternatives"][0]["transcript"])
        for m in live.finals
        if m["channel"]["alternatives"][0]["transcript"]
    )


class Follower:
    """A live subscriber (an agent-assist screen) on one call."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received = Received()
        self.task = asyncio.create_task(collect(ws, self.received))

    @classmethod
    async def open(cls, port: int, call_id: str, headers: dict[str, str] | None = None) -> Follower:
        ws = await connect(f"ws://127.0.0.1:{port}/v1/calls/{call_id}/events", additional_headers=headers or {})
        assert json.loads(await ws.recv())["type"] == "Subscribed"  # registered before the call starts
        return cls(ws)

    async def done(self) -> Received:
        await asyncio.wait_for(self.task, 120)
        return self.received

    def finals(self, speaker: str) -> list[dict[str, Any]]:
        return [m for m in self.received.finals if m["speaker"] == speaker]

    def text(self, speaker: str) -> str:
        return " ".join(m["channel"]["alternatives"][0]["transcript"] for m in self.finals(speaker)).lower()


async def test_two_party_call_is_transcribed_per_channel(gateway: Gateway) -> None:
    inbound, outbound = two_party(CUSTOMER, AGENT)
    follower = await Follower.open(gateway.port, "CA100")
    events = list(call_events({"inbound": inbound, "outbound": outbound}, "CA100", "MZ100", {"crm": "42"}))
    twilio_side = await play_call(gateway.port, events, speed=4.0, token=TOKEN)
    assert twilio_side.close_code == 1000
    assert twilio_side.messages == [], "nothing is ever sent to Twilio"

    live = await follower.done()
    assert live.close_code == 1000
    assert live.close_reason == "call ended"
    started = live.of("StreamStarted")[0]
    assert started["stream_id"] == "MZ100"
    assert started["labels"] == ["customer", "agent"]
    customer, agent = follower.text("customer"), follower.text("agent")
    assert "tomorrow" in customer, customer
    assert "station" not in customer, customer
    assert "station" in agent, agent
    assert "tomorrow" not in agent, agent
    assert {tuple(m["channel_index"]) for m in live.of("Results")} <= {(0, 2), (1, 2)}
    assert any(not m["is_final"] for m in live.of("Results")), "interims reach the screen too"
    assert live.of("StreamEnded")[0]["status"] == "completed"
    assert live.messages[-1]["type"] == "CallEnded"
    # The tracks share one clock: each speaker's words sit where they spoke in the call.
    customer_end = np.flatnonzero(inbound)[-1] / 8000
    agent_start = np.flatnonzero(outbound)[0] / 8000
    assert max(w["end"] for w in words_of(follower.finals("customer"))) <= customer_end + 0.3
    assert min(w["start"] for w in words_of(follower.finals("agent"))) >= agent_start - 0.3

    # ... and stored: the same finals, retrievable in every format.
    listing = await get_json(gateway.port, "/v1/transcripts?call_id=CA100")
    assert [s["stream_id"] for s in listing["streams"]] == ["MZ100"]
    stored = await get_json(gateway.port, "/v1/transcripts/MZ100")
    assert stored["status"] == "completed"
    assert stored["params"]["custom_parameters"] == {"crm": "42"}
    assert stored["stats"]["late_chunks"] == 0
    assert stored["stats"]["audio_seconds"] == pytest.approx(len(inbound) / 8000, abs=0.001)
    assert sorted((f["channel"], f["text"]) for f in stored["finals"]) == sent_finals(live)
    by_speaker = {c["speaker"]: c["transcript"].lower() for c in stored["channels"]}
    assert "tomorrow" in by_speaker["customer"]
    assert "station" in by_speaker["agent"]
    _, vtt_type, vtt = await asyncio.to_thread(http_get, gateway.port, "/v1/transcripts/MZ100?format=vtt")
    assert vtt_type.startswith("text/vtt")
    assert b"<v customer>" in vtt
    assert b"<v agent>" in vtt
    _, _, srt = await asyncio.to_thread(http_get, gateway.port, "/v1/transcripts/MZ100?format=srt")
    assert b"customer: " in srt
    assert b"agent: " in srt
    assert b" --> " in srt
    _, _, text = await asyncio.to_thread(http_get, gateway.port, "/v1/transcripts/MZ100?format=text")
    speakers = [line.split("] ")[1].split(":")[0] for line in text.decode().splitlines()]
    assert speakers[0] == "customer"
    assert "agent" in speakers


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        # Signed for another host: a replayed handshake.
        {"X-Twilio-Signature": compute_signature(TOKEN, "wss://evil.example/v1/twilio")},
    ],
)
async def test_bad_signature_is_refused_before_upgrade(gateway: Gateway, headers: dict[str, str]) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(twilio_url(gateway.port), additional_headers=headers):
            pass
    assert info.value.response.status_code == 403
    assert "X-Twilio-Signature" in json.loads(info.value.response.body)["err_msg"]


async def bad_call(port: int, frames: list[Any]) -> Received:
    received = Received()
    async with connect(twilio_url(port), additional_headers=signature_headers(port, TOKEN)) as ws:
        reader = asyncio.create_task(collect(ws, received))
        for frame in frames:
            await ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))
        await asyncio.wait_for(reader, 30)
    return received


async def test_malformed_events_close_only_their_call(gateway: Gateway) -> None:
    inbound, outbound = two_party(CUSTOMER, AGENT)
    good_events = list(call_events({"inbound": inbound, "outbound": outbound}, "CA200", "MZ200"))
    good = asyncio.create_task(play_call(gateway.port, good_events, speed=3.0, token=TOKEN))
    start = good_events[1]
    started = {**start, "streamSid": "MZ201", "start": {**start["start"], "streamSid": "MZ201", "callSid": "CA201"}}
    media = dict(good_events[5])
    bad_media = {**media, "media": {**media["media"], "payload": "%%% not base64 %%%"}}
    cases = {
        "bad json": (["{'event': 'media'"], 1007, "not valid JSON"),
        "binary": ([b"\x00\x01"], 1007, "JSON text frames"),
        "media before start": ([media], 1008, "'media' event before 'start'"),
        "unknown event": ([{"event": "transcribe-please"}], 1008, "unknown Twilio event"),
        "bad base64": ([started, media, bad_media], 1007, "not valid base64"),
    }
    for name, (frames, code, words) in cases.items():
        got = await bad_call(gateway.port, frames)
        assert got.close_code == code, name
        assert words in got.close_reason, (name, got.close_reason)
        assert got.messages == []
    # The call that failed after 'start' is on record, with why it ended.
    failed = await get_json(gateway.port, "/v1/transcripts/MZ201")
    assert failed["status"].startswith("error: media payload is not valid base64")

    assert (await good).close_code == 1000
    stored = await get_json(gateway.port, "/v1/transcripts/MZ200")
    by_speaker = {c["speaker"]: c["transcript"].lower() for c in stored["channels"]}
    assert "tomorrow" in by_speaker["customer"]
    assert "station" in by_speaker["agent"]


async def test_hangup_without_stop_keeps_the_finals(gateway: Gateway) -> None:
    inbound, outbound = two_party(CUSTOMER, AGENT)
    events = list(call_events({"inbound": inbound, "outbound": outbound}, "CA300", "MZ300"))
    follower = await Follower.open(gateway.port, "CA300")
    cut = [e for e in events if e["event"] != "stop"]  # the socket just drops
    async with connect(twilio_url(gateway.port), additional_headers=signature_headers(gateway.port, TOKEN)) as ws:
        for event in cut:
            await ws.send(json.dumps(event))
            await asyncio.sleep(0.002)
    live = await follower.done()
    assert live.of("StreamEnded")[0]["status"] == "disconnected"
    stored = await get_json(gateway.port, "/v1/transcripts/MZ300")
    assert stored["status"] == "disconnected"
    assert "tomorrow" in stored["channels"][0]["transcript"].lower()
    assert sorted((f["channel"], f["text"]) for f in stored["finals"]) == sent_finals(live)


async def test_concurrent_calls_store_and_post_every_final(backend: Any, tmp_path: Path) -> None:
    lines = [
        (CUSTOMER, AGENT),
        ("The quick brown fox jumps over the lazy dog.", "Please call me back tomorrow morning about the invoice."),
        (AGENT, "The quick brown fox jumps over the lazy dog."),
        ("Please call me back tomorrow morning about the invoice.", AGENT),
    ]
    with receiving() as webhook:
        config = make_config(
            store_path=str(tmp_path / "calls.sqlite3"), twilio_auth_token=TOKEN, webhook_url=webhook.url
        )
        async with Gateway(config, backends={"tiny.en": backend}) as gateway:
            followers = [await Follower.open(gateway.port, f"CA4{i}") for i in range(len(lines))]
            calls = []
            for i, (customer, agent) in enumerate(lines):
                inbound, outbound = two_party(customer, agent)
                events = list(call_events({"inbound": inbound, "outbound": outbound}, f"CA4{i}", f"MZ4{i}"))
                calls.append(play_call(gateway.port, events, speed=2.0, token=TOKEN))
            closes = await asyncio.gather(*calls)
            assert [c.close_code for c in closes] == [1000] * len(lines)
            sent = {f"MZ4{i}": sent_finals(await follower.done()) for i, follower in enumerate(followers)}
            for stream_id, finals in sent.items():
                stored = await get_json(gateway.port, f"/v1/transcripts/{stream_id}")
                assert finals, f"{stream_id} produced finals"
                assert sorted((f["channel"], f["text"]) for f in stored["finals"]) == finals, stream_id
            stats = await get_json(gateway.port, "/v1/stats")
            assert stats["callcenter"]["store_errors"] == 0
            assert stats["callcenter"]["active_calls"] == 0
        # Leaving the gateway delivered what the webhook still had queued.
        posted = webhook.events
    for stream_id, finals in sent.items():
        mine = [e for e in posted if e["stream_id"] == stream_id]
        assert [e["type"] for e in mine if e["type"] != "Results"] == ["StreamStarted", "StreamEnded"]
        results = [e for e in mine if e["type"] == "Results"]
        assert all(e["is_final"] and e["speaker"] in ("customer", "agent") for e in results)
        assert sent_finals(Received(results)) == finals, stream_id


async def test_keys_guard_subscribers_and_transcripts(backend: Any, tmp_path: Path) -> None:
    config = make_config(
        store_path=str(tmp_path / "calls.sqlite3"),
        twilio_auth_token=TOKEN,
        api_keys={"ops-key": "default", "other-key": "globex"},
    )
    async with Gateway(config, backends={"tiny.en": backend}) as gw:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://127.0.0.1:{gw.port}/v1/calls/CA500/events"):
                pass
        assert info.value.response.status_code == 401
        follower = await Follower.open(gw.port, "CA500", {"Authorization": "Token ops-key"})
        inbound, outbound = two_party(CUSTOMER, AGENT)
        events = call_events({"inbound": inbound, "outbound": outbound}, "CA500", "MZ500")
        assert (await play_call(gw.port, events, speed=4.0, token=TOKEN)).close_code == 1000
        assert (await follower.done()).close_code == 1000
        assert "tomorrow" in follower.text("customer")
        status, _, _ = await asyncio.to_thread(http_get, gw.port, "/v1/transcripts/MZ500")
        assert status == 401
        status, _, _ = await asyncio.to_thread(http_get, gw.port, "/v1/transcripts/MZ500", "other-key")
        assert status == 404, "another tenant's call does not exist for it"
        stored = await get_json(gw.port, "/v1/transcripts/MZ500", "ops-key")
        assert "tomorrow" in stored["channels"][0]["transcript"].lower()
        listing = await get_json(gw.port, "/v1/transcripts", "other-key")
        assert listing["streams"] == []
        # An API key also opens the Twilio endpoint (bridges, the bench); no key and no signature does not.
        async with connect(twilio_url(gw.port), additional_headers={"Authorization": "Token ops-key"}) as ws:
            await ws.send(json.dumps({"event": "stop"}))
        with pytest.raises(InvalidStatus):
            async with connect(twilio_url(gw.port)):
                pass
