"""A live stream's ``callback=URL``: each Results (and the closing Metadata) also POSTed there.

One sender task per stream, started with the first message, drains a bounded
queue with an ``httpx.AsyncClient`` (one connection kept alive). The stream only
ever enqueues, never waits on the network: when the receiver falls
``max_queue`` messages behind, new ones are dropped and counted. A failed
request (unreachable, or a 4xx/5xx answer) is logged and counted, not retried:
the client has the same messages on its socket. At the end of the stream
:meth:`StreamCallback.close` waits a bounded time for what is queued.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)

FORWARDED = frozenset({"Results", "Metadata"})


class StreamCallback:
    """A sink (``(request_id, message)``) that sends one stream's results to its callback URL."""

    def __init__(self, url: str, method: str = "POST", *, max_queue: int = 256, timeout_s: float = 10.0) -> None:
        self.url = url
        self.method = method
        self.timeout_s = timeout_s
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    async def __call__(self, request_id: str, message: dict[str, Any]) -> None:
        if message.get("type") not in FORWARDED:
            return
        if self._task is None:
            self._task = asyncio.create_task(self._run(request_id), name=f"{request_id}:callback")
        try:
            self._queue.put_nowait(json.dumps(message, separators=(",", ":")).encode())
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("stream %s: callback %s is behind; results dropped", request_id, self.url)

    async def _run(self, request_id: str) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "transcription-gateway", "dg-token": request_id}
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
            while (body := await self._queue.get()) is not None:
                try:
                    response = await client.request(self.method, self.url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    self.failed += 1
                    log.warning("stream %s: callback %s failed: %s", request_id, self.url, exc)
                    continue
                if response.status_code >= 400:
                    self.failed += 1
                    log.warning("stream %s: callback %s answered %d", request_id, self.url, response.status_code)
                else:
                    self.sent += 1

    async def close(self, wait_s: float = 10.0) -> None:
        """Send what is queued (for at most ``wait_s``), then stop."""
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(self._queue.put(None), wait_s)
            await asyncio.wait_for(asyncio.shield(task), wait_s)
        except TimeoutError:
            log.warning("callback %s: %d results not sent in %.0f s", self.url, self._queue.qsize(), wait_s)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
