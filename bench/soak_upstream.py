"""A faulty Deepgram upstream for the soak: every connection meets the next fault in turn.

``refuse``: HTTP 503 before the upgrade; ``drop``: accepts, takes audio, then
cuts the TCP connection without a close frame; ``stall``: accepts and takes
audio but never says a word. The gateway under soak relays to it and must
fail each stream over to its local engine without losing a final.
"""

from __future__ import annotations

import asyncio
import itertools
import json

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

FAULTS = ("refuse", "drop", "stall")


class FaultyUpstream:
    """Serve on a free loopback port; ``counts`` says how often each fault was dealt."""

    def __init__(self, drop_after_s: float = 2.0) -> None:
        self.drop_after_s = drop_after_s
        self.counts = dict.fromkeys(FAULTS, 0)
        self._next = itertools.cycle(FAULTS)
        self._server: Server | None = None
        self._fault: dict[int, str] = {}

    async def __aenter__(self) -> FaultyUpstream:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{next(iter(self._server.sockets)).getsockname()[1]}"

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        fault = next(self._next)
        self.counts[fault] += 1
        if fault == "refuse":
            body = json.dumps({"err_code": "SOAK", "err_msg": "refused by the soak", "request_id": "soak"}).encode()
            headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(body))})
            return Response(503, "Service Unavailable", headers, body)
        self._fault[id(connection)] = fault
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        fault = self._fault.pop(id(ws), "stall")
        audio = 0
        try:
            async for data in ws:
                if isinstance(data, bytes):
                    audio += len(data)
                    if fault == "drop" and audio / 32000 >= self.drop_after_s:
                        ws.transport.abort()
                        return
        except ConnectionClosed:
            return


async def serve_forever() -> None:  # pragma: no cover - manual use: python -m bench.soak_upstream
    async with FaultyUpstream() as upstream:
        print(upstream.url, flush=True)
        await asyncio.Future()
