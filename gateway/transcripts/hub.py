"""In-process pub/sub of live stream events, keyed by call id.

Publishing never waits: each subscriber has a bounded queue, and one that
falls ``limit`` events behind is dropped (its socket is closed with
:class:`~gateway.core.errors.SlowSubscriber`) so it can never slow a call. A
subscriber may subscribe before its call starts (an agent screen opened
before the phone rings); it ends when the last stream of its call ends.
With a ``tenant``, a subscriber only sees streams of that tenant.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from gateway.core.errors import SlowSubscriber
from gateway.transcripts.records import StreamInfo

Event = dict[str, Any]


class Subscription:
    """One subscriber's queue. Read it with :meth:`next`."""

    def __init__(self, call_id: str, tenant: str | None, limit: int) -> None:
        self.call_id = call_id
        self.tenant = tenant
        self.limit = limit
        self._events: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._ended = False
        self.dropped: SlowSubscriber | None = None

    def offer(self, event: Event) -> None:
        """Queue ``event`` without waiting; drop the subscriber if it is too far behind."""
        if self._ended or self.dropped is not None:
            return
        if len(self._events) >= self.limit:
            self.dropped = SlowSubscriber(f"subscriber fell {self.limit} events behind and was dropped")
            self._events.clear()
        else:
            self._events.append(event)
        self._wake.set()

    def end(self) -> None:
        """No more events: :meth:`next` returns None once the queue is read."""
        self._ended = True
        self._wake.set()

    async def next(self) -> Event | None:
        """The next event; None at the end; raises SlowSubscriber once dropped."""
        while True:
            if self.dropped is not None:
                raise self.dropped
            if self._events:
                return self._events.popleft()
            if self._ended:
                return None
            self._wake.clear()
            await self._wake.wait()


class Hub:
    """Routes every stream's events to the subscribers of its call."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._subscribers: dict[str, set[Subscription]] = {}
        self._live: dict[str, dict[str, StreamInfo]] = {}
        self.dropped = 0

    def live_streams(self, call_id: str) -> list[StreamInfo]:
        return list(self._live.get(call_id, {}).values())

    def subscribe(self, call_id: str, tenant: str | None = None) -> Subscription:
        subscription = Subscription(call_id, tenant, self.limit)
        self._subscribers.setdefault(call_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.call_id)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.call_id]

    def wanted(self, call_id: str) -> bool:
        """Whether anyone follows ``call_id`` (skip building events otherwise)."""
        return call_id in self._subscribers

    def stream_started(self, info: StreamInfo) -> None:
        self._live.setdefault(info.call_id, {})[info.stream_id] = info
        self.publish(info, {"type": "StreamStarted", **info.summary()})

    def publish(self, info: StreamInfo, event: Event) -> None:
        for subscription in list(self._subscribers.get(info.call_id, ())):
            if subscription.tenant is None or subscription.tenant == info.tenant:
                subscription.offer(event)
                if subscription.dropped is not None:
                    self.dropped += 1
                    self.unsubscribe(subscription)

    def stream_ended(self, info: StreamInfo, status: str) -> None:
        self.publish(
            info, {"type": "StreamEnded", "stream_id": info.stream_id, "call_id": info.call_id, "status": status}
        )
        live = self._live.get(info.call_id, {})
        live.pop(info.stream_id, None)
        if live:
            return
        self._live.pop(info.call_id, None)
        self.publish(info, {"type": "CallEnded", "call_id": info.call_id})
        for subscription in list(self._subscribers.get(info.call_id, ())):
            if subscription.tenant is None or subscription.tenant == info.tenant:
                subscription.end()
                self.unsubscribe(subscription)
