"""POST transcript events to a configured URL, off the streams' path.

One background task per gateway (not per stream) drains a bounded queue:
it takes what is queued (up to ``batch_max`` events) and POSTs it as
``{"events": [...]}`` JSON with ``urllib`` in a worker thread. A failed
POST (connection error, 5xx, 408 or 429) is retried with exponential
backoff; other 4xx answers are not retried. Streams only ever call
:meth:`WebhookPoster.submit`, which never waits: when the queue is full the
event is dropped and counted.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

log = logging.getLogger(__name__)

Post = Callable[[str, bytes, float], int]
"""Blocking POST: (url, JSON body, timeout) -> HTTP status; raises OSError when unreachable."""


def check_url(url: str) -> str:
    """Refuse a webhook URL urllib could not POST to (at startup, not per event)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook URL must be http:// or https://, got {url!r}")
    return url


RETRY_STATUSES = frozenset({408, 429})


def post_json(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "transcription-gateway"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


@dataclass(slots=True)
class WebhookStats:
    posted_events: int = 0
    posts: int = 0
    retries: int = 0
    failed_events: int = 0
    dropped_events: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "posted_events": self.posted_events,
            "posts": self.posts,
            "retries": self.retries,
            "failed_events": self.failed_events,
            "dropped_events": self.dropped_events,
        }


class WebhookPoster:
    """Delivers events to ``url``; run :meth:`run` as one task."""

    def __init__(
        self,
        url: str,
        *,
        queue_limit: int = 10_000,
        batch_max: int = 50,
        attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        timeout_s: float = 5.0,
        post: Post = post_json,
    ) -> None:
        self.url = url
        self.batch_max = batch_max
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self._post = post
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(queue_limit)
        self.stats = WebhookStats()

    def submit(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for delivery; never waits."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            if self.stats.dropped_events % 1000 == 0:
                log.warning("webhook queue full (%d events): dropping events", self._queue.maxsize)
            self.stats.dropped_events += 1

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._deliver(batch)

    async def drain(self) -> None:
        """Deliver what is queued now (at shutdown, under the caller's timeout)."""
        while not self._queue.empty():
            batch: list[dict[str, Any]] = []
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._deliver(batch)

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        body = json.dumps({"events": batch}, separators=(",", ":")).encode()
        delay = self.backoff_s
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
            try:
                status = await anyio.to_thread.run_sync(self._post, self.url, body, self.timeout_s)
            except (OSError, http.client.HTTPException) as exc:  # unreachable, refused, timed out, garbled
                problem = f"{type(exc).__name__}: {exc}"
                continue
            self.stats.posts += 1
            if 200 <= status < 300:
                self.stats.posted_events += len(batch)
                return
            problem = f"HTTP {status}"
            if status < 500 and status not in RETRY_STATUSES:
                break
        self.stats.failed_events += len(batch)
        log.warning("webhook %s: gave up on %d events (%s)", self.url, len(batch), problem)
