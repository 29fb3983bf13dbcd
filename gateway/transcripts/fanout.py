"""Where every stream's messages go besides its client: store, hub, webhook.

A stream calls :meth:`Fanout.begin`, then :meth:`Fanout.message` for every
message it sends (it is a session sink), then :meth:`Fanout.end`. For each
final with words the store write is awaited (write-through: the final is
durable before the stream sends it on); the hub and the webhook are only
handed the event, they never make a stream wait.

Events for subscribers and the webhook are the stream's own messages plus
``stream_id``, ``call_id`` and, for per-channel messages, ``speaker``;
lifecycle events ``StreamStarted`` / ``StreamEnded`` (and the hub's
``CallEnded``) frame them. The webhook gets finals with words, ``Dtmf`` and
the lifecycle events; subscribers get everything.

A store that fails (disk full, locked) is logged and counted in
``store_errors`` and the streams go on: live transcription matters more
than the archive.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.transcripts.hub import Hub
from gateway.transcripts.records import FinalRecord, StreamInfo
from gateway.transcripts.store import AddFinal, EndStream, OpenStream, TranscriptStore, Write
from gateway.transcripts.webhook import WebhookPoster

log = logging.getLogger(__name__)

WEBHOOK_TYPES = frozenset({"StreamStarted", "StreamEnded", "Dtmf"})


class DuplicateStream(ValueError):
    """A stream id that is live or stored already."""


@dataclass(slots=True)
class _Live:
    info: StreamInfo
    stored: bool
    status: str = "disconnected"
    finals: int = 0
    recorded: bool = False
    """The end is in the store already (written when Metadata went out)."""


class Fanout:
    """Fans messages of every stream out to the store, the hub and the webhook."""

    def __init__(self, store: TranscriptStore | None, hub: Hub, webhook: WebhookPoster | None) -> None:
        self.store = store
        self.hub = hub
        self.webhook = webhook
        self._live: dict[str, _Live] = {}
        self.store_errors = 0

    def __contains__(self, stream_id: str) -> bool:
        return stream_id in self._live

    async def begin(self, info: StreamInfo) -> None:
        """Register a stream; raises DuplicateStream if its id was used before."""
        if info.stream_id in self._live:
            raise DuplicateStream(f"stream {info.stream_id!r} is already live")
        stored = False
        if self.store is not None:
            try:
                await self.store.write(OpenStream(info))
                stored = True
            except sqlite3.IntegrityError:
                raise DuplicateStream(f"stream {info.stream_id!r} is already stored") from None
            except sqlite3.Error as exc:
                self._store_failed("open", info.stream_id, exc)
        self._live[info.stream_id] = _Live(info, stored)
        self.hub.stream_started(info)
        if self.webhook is not None:
            self.webhook.submit({"type": "StreamStarted", **info.summary()})

    async def message(self, stream_id: str, message: dict[str, Any]) -> None:
        """One message of a live stream (the session sink)."""
        live = self._live[stream_id]
        info = live.info
        kind = message.get("type")
        final = FinalRecord.from_results(message)
        if final is not None:
            live.finals += 1
            if live.stored:
                await self._write(AddFinal(stream_id, final, datetime.now(UTC)), stream_id)
        elif kind == "Metadata":
            # Record the end before the client sees it: a transcript fetched
            # right after the close already reads "completed".
            live.status = "completed"
            await self._record_end(live, {"duration": message.get("duration"), "usage": message.get("usage")})
        elif kind == "Error":
            live.status = f"error: {message.get('description', '')}"[:200]
        to_webhook = self.webhook is not None and (final is not None or kind in WEBHOOK_TYPES)
        if not (to_webhook or self.hub.wanted(info.call_id)):
            return
        event = {**message, "stream_id": stream_id, "call_id": info.call_id}
        channel = message.get("channel_index") if kind == "Results" else message.get("channel")
        if isinstance(channel, list) and channel:
            event["speaker"] = info.label(int(channel[0]))
        self.hub.publish(info, event)
        if to_webhook:
            assert self.webhook is not None
            self.webhook.submit(event)

    async def end(self, stream_id: str, status: str | None = None, stats: dict[str, Any] | None = None) -> None:
        """The stream is over; ``status`` overrides what its messages said."""
        live = self._live[stream_id]
        final_status = live.status = status or live.status
        await self._record_end(live, stats or {})
        del self._live[stream_id]
        self.hub.stream_ended(live.info, final_status)
        if self.webhook is not None:
            self.webhook.submit(
                {
                    "type": "StreamEnded",
                    "stream_id": stream_id,
                    "call_id": live.info.call_id,
                    "status": final_status,
                    "finals": live.finals,
                }
            )

    async def _record_end(self, live: _Live, stats: dict[str, Any]) -> None:
        if live.stored and not live.recorded:
            live.recorded = True
            await self._write(
                EndStream(live.info.stream_id, datetime.now(UTC), live.status, stats), live.info.stream_id
            )

    async def _write(self, write: Write, stream_id: str) -> None:
        assert self.store is not None
        try:
            await self.store.write(write)
        except sqlite3.Error as exc:
            self._store_failed(type(write).__name__, stream_id, exc)

    def _store_failed(self, what: str, stream_id: str, exc: sqlite3.Error) -> None:
        self.store_errors += 1
        log.error("transcript store: %s for stream %s failed: %s", what, stream_id, exc)
