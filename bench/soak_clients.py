"""The soak's clients and what they count: idle connections (KeepAlive), real-time
speakers (their finals checked against the transcript store), and churners
(CloseStream early, or vanish mid-utterance).

:class:`Soak` runs them against one gateway; :mod:`bench.soak` starts the
gateway, the faults and the clients, and reports the :class:`Tally`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.data import Audio
from bench.pacing import encode_linear16

CHUNK_S = 0.1
QUERY = "encoding=linear16&sample_rate=16000&interim_results=true"


@dataclass(slots=True)
class Tally:
    """What the clients counted over the whole soak."""

    errors: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    finals_received: int = 0
    finals_stored: int = 0
    lost_finals: int = 0
    duplicated_finals: int = 0
    disk_full_sessions: int = 0
    churned: int = 0
    vanished: int = 0
    idle_ok: int = 0
    relay_sessions: int = 0


def pcm(audio: Audio) -> bytes:
    return encode_linear16(audio)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


async def http_get(base: str, path: str) -> tuple[int, bytes]:
    return await asyncio.to_thread(_get, base + path)


class Soak:
    """The clients of one soak against the gateway on ``port``; setting ``stop`` ends them.

    The run sets ``disk_full`` to the window in which the store may miss finals
    (a speaker whose session overlaps it is counted, not checked).
    """

    def __init__(self, port: int, clips: list[Audio], *, keepalive_s: float, churn_per_s: float) -> None:
        self.keepalive_s = keepalive_s
        self.churn_per_s = churn_per_s
        self.ws = f"ws://127.0.0.1:{port}/v1/listen?{QUERY}"
        self.http = f"http://127.0.0.1:{port}"
        self.clips = [pcm(c) for c in clips]
        self.tally = Tally()
        self.stop = asyncio.Event()
        self.disk_full: tuple[float, float] | None = None
        self.open_now = 0
        self.peak_open = 0

    def _opened(self) -> None:
        self.open_now += 1
        self.peak_open = max(self.peak_open, self.open_now)

    async def _connect(self, query: str = QUERY) -> ClientConnection:
        url = self.ws if query == QUERY else self.ws.split("?")[0] + "?" + query
        for attempt in range(5):
            try:
                return await connect(url, open_timeout=30, max_queue=None)
            except OSError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- clients ------------------------------------------------------------------

    async def idle(self) -> None:
        try:
            ws = await self._connect()
        except Exception as exc:
            self.tally.errors[f"idle connect: {type(exc).__name__}"] += 1
            return
        self._opened()
        try:
            drain = asyncio.create_task(_messages(ws))
            while not self.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.keepalive_s * random.uniform(0.8, 1.0))
                await ws.send(json.dumps({"type": "KeepAlive"}))
            await ws.send(json.dumps({"type": "CloseStream"}))
            messages = await asyncio.wait_for(drain, 120)
            self.tally.closes[str(ws.close_code)] += 1
            if ws.close_code == 1000 and messages and messages[-1].get("type") == "Metadata":
                self.tally.idle_ok += 1
            else:
                self.tally.errors[f"idle closed {ws.close_code} {ws.close_reason}"[:80]] += 1
        except Exception as exc:
            self.tally.errors[f"idle: {type(exc).__name__} {exc}"[:80]] += 1
        finally:
            self.open_now -= 1
            await ws.close()

    async def speaker(self, index: int, relay: bool = False) -> None:
        clips = itertools.cycle(self.clips[index % len(self.clips) :] + self.clips[: index % len(self.clips)])
        query = QUERY + ("&engine=deepgram,whisper" if relay else "")
        while not self.stop.is_set():
            await self._speak(next(clips), query, relay)

    async def _speak(self, audio: bytes, query: str, relay: bool) -> None:
        started = time.monotonic()
        try:
            ws = await self._connect(query)
        except Exception as exc:
            self.tally.errors[f"speaker connect: {type(exc).__name__}"] += 1
            await asyncio.sleep(1.0)
            return
        self._opened()
        assert ws.response is not None
        request_id = ws.response.headers.get("dg-request-id", "")
        try:
            reader = asyncio.create_task(_messages(ws))
            step = int(32000 * CHUNK_S)
            t0 = time.monotonic()
            for n, i in enumerate(range(0, len(audio), step)):
                await ws.send(audio[i : i + step])
                await asyncio.sleep(max(0.0, t0 + (n + 1) * CHUNK_S - time.monotonic()))
            await ws.send(json.dumps({"type": "CloseStream"}))
            messages = await asyncio.wait_for(reader, 180)
        except Exception as exc:
            self.tally.errors[f"speaker: {type(exc).__name__} {exc}"[:80]] += 1
            return
        finally:
            self.open_now -= 1
        self.tally.sessions += 1
        self.tally.relay_sessions += relay
        self.tally.closes[str(ws.close_code)] += 1
        if ws.close_code != 1000:
            self.tally.errors[f"speaker closed {ws.close_code} {ws.close_reason}"[:80]] += 1
        finals = [m for m in messages if m.get("type") == "Results" and m.get("is_final") and _text(m)]
        self.tally.finals_received += len(finals)
        self.tally.duplicated_finals += _overlaps(finals)
        ended = time.monotonic()
        full = self.disk_full
        if full is not None and started < full[1] and ended > full[0]:
            self.tally.disk_full_sessions += 1  # the store may lack some of its finals: by design
            return
        await self._check_store(request_id, finals)

    async def _check_store(self, request_id: str, finals: list[dict[str, Any]]) -> None:
        status, body = await http_get(self.http, f"/v1/transcripts/{request_id}?format=json")
        if status != 200:
            self.tally.errors[f"store read {status}"] += 1
            return
        stored = json.loads(body)["finals"]
        self.tally.finals_stored += len(stored)
        got = Counter(" ".join(_text(m).split()) for m in finals)
        kept = Counter(" ".join(f["text"].split()) for f in stored)
        self.tally.lost_finals += sum(((got - kept) + (kept - got)).values())

    async def churner(self) -> None:
        """Connect, speak a little, then either CloseStream early or vanish mid-utterance."""
        rng = random.Random(7)
        while not self.stop.is_set():
            await asyncio.sleep(rng.expovariate(self.churn_per_s))
            asyncio.get_running_loop().create_task(self._churn(rng.random() < 0.5, rng.uniform(0.3, 2.0)))

    async def _churn(self, vanish: bool, seconds: float) -> None:
        try:
            ws = await self._connect()
        except Exception as exc:
            self.tally.errors[f"churn connect: {type(exc).__name__}"] += 1
            return
        self._opened()
        try:
            audio = self.clips[0][32000 // 2 : 32000 // 2 + int(seconds * 32000) // 2 * 2]
            for i in range(0, len(audio), 3200):
                await ws.send(audio[i : i + 3200])
                await asyncio.sleep(CHUNK_S)
            if vanish:
                ws.transport.abort()
                self.tally.vanished += 1
                return
            reader = asyncio.create_task(_messages(ws))
            await ws.send(json.dumps({"type": "CloseStream"}))
            await asyncio.wait_for(reader, 120)
            self.tally.churned += 1
            self.tally.closes[str(ws.close_code)] += 1
            if ws.close_code != 1000:
                self.tally.errors[f"churn closed {ws.close_code}"] += 1
        except Exception as exc:
            self.tally.errors[f"churn: {type(exc).__name__} {exc}"[:80]] += 1
        finally:
            self.open_now -= 1


async def _messages(ws: ClientConnection) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with contextlib.suppress(Exception):
        async for raw in ws:
            if isinstance(raw, str):
                out.append(json.loads(raw))
    return out


def _text(message: dict[str, Any]) -> str:
    return str(message["channel"]["alternatives"][0]["transcript"]).strip()


def _overlaps(finals: list[dict[str, Any]]) -> int:
    """Finals whose words start before the previous final's words ended (a final sent twice)."""
    words = [[w for w in m["channel"]["alternatives"][0].get("words", [])] for m in finals]
    ends = [(ws[0]["start"], ws[-1]["end"]) for ws in words if ws]
    return sum(1 for (_, a_end), (b_start, _) in itertools.pairwise(ends) if b_start < a_end - 0.05)
