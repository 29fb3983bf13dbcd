"""Live delivery: the subscriber hub and the webhook poster (no model needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from gateway.core.errors import SlowSubscriber
from gateway.transcripts.hub import Hub
from gateway.transcripts.records import StreamInfo, StreamKind
from gateway.transcripts.webhook import WebhookPoster, check_url
from tests.http_receiver import Receiver, receiving


def info(call_id: str = "CA1", tenant: str = "acme") -> StreamInfo:
    return StreamInfo("MZ-" + call_id, call_id, StreamKind.TWILIO, tenant, ("customer", "agent"), datetime.now(UTC))


async def test_slow_subscriber_is_dropped_without_touching_others() -> None:
    hub = Hub(limit=5)
    call = info()
    slow = hub.subscribe("CA1")
    fast = hub.subscribe("CA1")
    hub.stream_started(call)
    got = []
    for i in range(20):
        hub.publish(call, {"type": "Results", "n": i})
        got.append(await fast.next())  # keeps up
    with pytest.raises(SlowSubscriber, match="fell 5 events behind"):
        await slow.next()
    assert hub.dropped == 1
    assert [e["n"] for e in got[1:] if e is not None] == list(range(19))
    hub.stream_ended(call, "completed")
    rest = [await fast.next(), await fast.next(), await fast.next()]
    assert [e["type"] if e else None for e in rest] == ["Results", "StreamEnded", "CallEnded"]
    assert await fast.next() is None


async def test_subscribers_see_only_their_call_and_tenant() -> None:
    hub = Hub()
    mine = hub.subscribe("CA1", tenant="acme")
    other_tenant = hub.subscribe("CA1", tenant="globex")
    other_call = hub.subscribe("CA2")
    hub.stream_started(info("CA1"))
    assert (await mine.next() or {})["type"] == "StreamStarted"
    hub.stream_ended(info("CA1"), "completed")
    assert [(await mine.next() or {}).get("type") for _ in range(2)] == ["StreamEnded", "CallEnded"]
    assert await mine.next() is None
    assert not other_tenant._events
    assert not other_call._events
    assert hub.wanted("CA1")
    assert hub.wanted("CA2")


async def test_a_call_ends_with_its_last_stream() -> None:
    hub = Hub()
    inbound, outbound = info("CA1"), StreamInfo("MZ2", "CA1", StreamKind.TWILIO, "acme", ("agent",), datetime.now(UTC))
    sub = hub.subscribe("CA1")
    hub.stream_started(inbound)
    hub.stream_started(outbound)
    assert len(hub.live_streams("CA1")) == 2
    hub.stream_ended(inbound, "completed")
    hub.stream_ended(outbound, "completed")
    kinds = []
    while (event := await sub.next()) is not None:
        kinds.append(event["type"])
    assert kinds == ["StreamStarted", "StreamStarted", "StreamEnded", "StreamEnded", "CallEnded"]


# -- webhook ------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving(fail_first=2) as r:
        yield r


async def test_webhook_retries_and_delivers_everything(receiver: Receiver) -> None:
    poster = WebhookPoster(receiver.url, backoff_s=0.01, batch_max=4)
    task = asyncio.create_task(poster.run())
    for i in range(10):
        poster.submit({"type": "Results", "n": i})
    for _ in range(500):
        if poster.stats.posted_events == 10:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert [e["n"] for e in receiver.events] == list(range(10))
    assert poster.stats.retries == 2
    assert poster.stats.failed_events == 0


async def test_unreachable_webhook_gives_up_and_never_blocks() -> None:
    calls = 0

    def refuse(url: str, body: bytes, timeout: float) -> int:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError("nobody there")

    poster = WebhookPoster("http://127.0.0.1:9/hook", post=refuse, attempts=3, backoff_s=0.001, queue_limit=5)
    for i in range(8):
        poster.submit({"n": i})  # returns at once even when full
    assert poster.stats.dropped_events == 3
    await poster.drain()
    assert calls == 3, "one batch, three attempts"
    assert poster.stats.failed_events == 5


async def test_client_errors_are_not_retried() -> None:
    poster = WebhookPoster("http://x/hook", post=lambda u, b, t: 404, attempts=5, backoff_s=0.001)
    poster.submit({"n": 1})
    await poster.drain()
    assert poster.stats.posts == 1
    assert poster.stats.failed_events == 1


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        check_url("ftp://example.com/hook")
