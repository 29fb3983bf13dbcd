"""Socket-level fuzzing of a real gateway on loopback.

Seeded random clients do what broken or hostile clients do: random bytes
instead of HTTP, handshakes cut short, random WebSocket frames (hand-built,
with bad opcodes, reserved bits, unmasked or oversized), random control
messages in random order, and clients that stall. Afterwards the server has
logged no unexpected error, holds no stream, answers /healthz, and still
transcribes a clean stream correctly: bad input never disturbs other streams.

``SOCKET_FUZZ_CASES`` (default 60) sets how many clients; ``SOCKET_FUZZ_SEED`` the seed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import struct
from collections.abc import AsyncIterator

import pytest

from gateway.core.types import Backend
from gateway.server.app import Gateway
from tests import speech
from tests.client import pcm16, stream, url, wer
from tests.conftest import make_config

pytestmark = pytest.mark.model

CASES = int(os.environ.get("SOCKET_FUZZ_CASES", "60"))
SEED = int(os.environ.get("SOCKET_FUZZ_SEED", "11"))
CONTROL = ("KeepAlive", "Finalize", "CloseStream", "Configure", "Nope")


@pytest.fixture
async def fuzz_gateway(backend: Backend) -> AsyncIterator[Gateway]:
    config = make_config(idle_timeout_s=1.5, max_frame_bytes=64 * 1024)
    async with Gateway(config, backends={"tiny.en": backend}) as gw:
        yield gw


def ws_frame(rng: random.Random, opcode: int, payload: bytes, *, mask: bool = True, rsv: int = 0) -> bytes:
    """One client WebSocket frame, built by hand (so it can be wrong)."""
    head = bytes([0x80 | (rsv << 4) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = rng.randbytes(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def upgrade_request(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def read_some(reader: asyncio.StreamReader, seconds: float = 3.0) -> bytes:
    """What the server says until it closes (or goes quiet for ``seconds``)."""
    out = b""
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), seconds)
        except (TimeoutError, ConnectionError):
            return out
        if not chunk:
            return out
        out += chunk


def random_payload(rng: random.Random) -> tuple[int, bytes]:
    kind = rng.randrange(6)
    if kind == 0:
        return 0x2, rng.randbytes(rng.choice([0, 1, 3, 320, 641, 6400, 70_000]))  # audio, odd or too large
    if kind == 1:
        return 0x1, json.dumps({"type": rng.choice(CONTROL)}).encode()
    if kind == 2:
        return 0x1, rng.randbytes(rng.randrange(1, 40))  # text that is not UTF-8 (or not JSON)
    if kind == 3:
        return 0x9, rng.randbytes(rng.randrange(0, 20))  # ping
    if kind == 4:
        return rng.choice([0x3, 0x4, 0x5, 0xB, 0xF]), rng.randbytes(8)  # reserved opcodes
    return 0x0, rng.randbytes(10)  # a continuation with nothing to continue


async def fuzz_client(port: int, rng: random.Random) -> str:
    """One hostile client; returns what it did (for the failure message)."""
    path = rng.choice(["/v1/listen?encoding=linear16&sample_rate=16000", "/v1/listen", "/v1/twilio", "/nowhere"])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    scenario = rng.choice(["bytes", "partial-handshake", "bad-http", "frames", "stall", "frames-then-vanish"])
    try:
        if scenario == "bytes":
            writer.write(rng.randbytes(rng.randrange(1, 3000)))
        elif scenario == "partial-handshake":
            request = upgrade_request(path)
            writer.write(request[: rng.randrange(1, len(request))])
        elif scenario == "bad-http":
            writer.write(
                rng.choice(
                    [
                        b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 20_000 + b"\r\n\r\n",
                        b"POST /v1/listen HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                        b"GET /v1/listen?encoding=%ZZ&sample_rate=-1 HTTP/1.1\r\nHost: x\r\n\r\n",
                        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on a plain port
                        b"GET / HTTP/9.9\r\n\r\n",
                    ]
                )
            )
        elif scenario in ("frames", "frames-then-vanish"):
            writer.write(upgrade_request(path))
            await writer.drain()
            for _ in range(rng.randrange(1, 12)):
                opcode, payload = random_payload(rng)
                writer.write(
                    ws_frame(rng, opcode, payload, mask=rng.random() > 0.1, rsv=rng.choice([0, 0, 0, 0, 1, 4]))
                )
                await writer.drain()
                if rng.random() < 0.3:
                    await asyncio.sleep(rng.random() * 0.2)  # a slow client
            if scenario == "frames-then-vanish":
                writer.transport.abort()
                return f"{scenario} {path}"
        # "stall": connect and say nothing; the server's timeouts must end it.
        await writer.drain()
        await read_some(reader)
    except ConnectionError:
        pass  # the server may cut a bad client before it is done writing
    finally:
        writer.close()
    return f"{scenario} {path}"


async def test_random_clients_never_hurt_the_server(
    fuzz_gateway: Gateway, speech_pcm: speech.Int16, caplog: pytest.LogCaptureFixture
) -> None:
    gw = fuzz_gateway
    rng = random.Random(SEED)
    caplog.set_level(logging.WARNING)
    # A clean stream runs while the fuzzers do: it must not notice them.
    clean = asyncio.create_task(stream(url(gw.port), pcm16(speech_pcm), speed=4.0))
    done: list[str] = []
    for start in range(0, CASES, 6):  # six hostile clients at a time
        batch = [fuzz_client(gw.port, random.Random(rng.random())) for _ in range(min(6, CASES - start))]
        done += await asyncio.wait_for(asyncio.gather(*batch), 120)
    received = await asyncio.wait_for(clean, 180)
    assert received.close_code == 1000
    assert wer(" ".join(speech.SENTENCES), received.final_text()) < 0.5, received.final_text()

    while gw.active or gw.callcenter.calls:  # noqa: ASYNC110 (idle timeouts end the stalled ones)
        await asyncio.sleep(0.1)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()
    unexpected = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not unexpected, [f"{r.name}: {r.getMessage()}" for r in unexpected]
    assert len(done) == CASES
