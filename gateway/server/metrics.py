"""Prometheus metrics of one gateway (``GET /metrics``), observed at the server's edges.

Nothing here reaches into a protocol or an engine: streams are counted where
the server opens and closes them, decodes where the server hands the model
to the scheduler (:class:`ObservedBackend`), finals and store writes where
every stream's messages already pass (:class:`ObservedFanout`), and what is
live (open streams, queues, time behind) is read at scrape time by
:class:`LiveCollector`. Each gateway has its own registry, so several in one
process (tests) never share counts.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.core.types import Backend, DecodeRequest, DecodeResult, concurrency
from gateway.transcripts.fanout import Fanout
from gateway.transcripts.hub import Hub
from gateway.transcripts.records import FinalRecord
from gateway.transcripts.store import AddFinal, TranscriptStore, Write
from gateway.transcripts.webhook import WebhookPoster

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BEHIND_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
LAG_PERIOD_S = 0.25


@dataclass(slots=True)
class LiveStream:
    """What the scrape needs of one open stream."""

    door: str
    engine: str
    tenant: str
    audio_s: Callable[[], float]
    """Seconds of audio the client has sent so far."""
    behind_s: float = 0.0
    """Audio received minus the end of the audio the latest Results covered, when it was sent."""


class GatewayMetrics:
    """Every metric of one gateway; the server calls the ``stream_*`` and ``refused`` hooks."""

    def __init__(self, resolve: Callable[[str], str | None] = lambda _key: None) -> None:
        self.resolve = resolve
        """Maps a stream id that is not a key (a Twilio streamSid) to the key its door registered."""
        self._aliases: dict[str, str] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.streams_total = Counter("gateway_streams", "Streams opened", ["door", "engine", "tenant"], registry=r)
        self.closes = Counter(
            "gateway_stream_closes",
            "Streams ended, by WebSocket close code (1006: the client vanished)",
            ["door", "code"],
            registry=r,
        )
        self.refusals = Counter(
            "gateway_handshake_refusals",
            "Upgrades refused before the handshake, by HTTP status",
            ["status"],
            registry=r,
        )
        self.finals = Counter("gateway_finals", "Final Results sent", ["door", "engine"], registry=r)
        self.decode_seconds = Histogram(
            "gateway_decode_seconds",
            "Wall time of one batched model call",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "gateway_decode_batch_size", "Stream windows per model call", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.result_behind = Histogram(
            "gateway_result_behind_seconds",
            "Audio received minus the end of the audio a Results message covers, when it is sent",
            ["door", "is_final"],
            buckets=BEHIND_BUCKETS,
            registry=r,
        )
        self.store_write_seconds = Histogram(
            "gateway_store_write_seconds",
            "Time from queueing a transcript write to its commit (or failure)",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "gateway_event_loop_lag_seconds",
            f"How late the event loop ran a callback due every {LAG_PERIOD_S} s (time other work held it)",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.live: dict[str, LiveStream] = {}
        self.audio_closed: dict[tuple[str, str, str], float] = {}

    # -- hooks ------------------------------------------------------------------

    def stream_opened(self, key: str, door: str, engine: str, tenant: str, audio_s: Callable[[], float]) -> None:
        self.streams_total.labels(door, engine, tenant).inc()
        self.live[key] = LiveStream(door, engine, tenant, audio_s)

    def stream_closed(self, key: str, code: int | None) -> None:
        live = self.live.pop(key, None)
        for alias in [a for a, k in self._aliases.items() if k == key]:
            del self._aliases[alias]
        if live is None:
            return
        labels = (live.door, live.engine, live.tenant)
        self.audio_closed[labels] = self.audio_closed.get(labels, 0.0) + live.audio_s()
        self.closes.labels(live.door, str(code if code is not None else 1006)).inc()

    def refused(self, status: int) -> None:
        self.refusals.labels(str(status)).inc()

    def message(self, key: str, message: dict[str, Any]) -> None:
        """One message a stream sent: finals are counted, Results measured against the audio in."""
        if message.get("type") != "Results":
            return
        live = self.live.get(self._aliases.get(key, key))
        if live is None and (found := self.resolve(key)) is not None:
            self._aliases[key] = found
            live = self.live.get(found)
        if live is None:
            return
        final = bool(message.get("is_final"))
        try:
            end = float(message.get("start", 0.0)) + float(message.get("duration", 0.0))
        except (TypeError, ValueError):
            return
        live.behind_s = max(0.0, live.audio_s() - end)
        self.result_behind.labels(live.door, "true" if final else "false").observe(live.behind_s)
        if final and FinalRecord.from_results(message) is not None:
            self.finals.labels(live.door, live.engine).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def watch_loop(self) -> None:
        """Measure event-loop lag until cancelled (run as a task of the server)."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + LAG_PERIOD_S
            await asyncio.sleep(LAG_PERIOD_S)
            self.loop_lag.observe(max(0.0, loop.time() - due))


class ObservedBackend:
    """A :class:`Backend` that times each model call (runs in the scheduler's worker thread)."""

    def __init__(self, inner: Backend, metrics: GatewayMetrics) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_batch = inner.max_batch
        self.workers = concurrency(inner)
        self._seconds = metrics.decode_seconds.labels(inner.name)
        self._sizes = metrics.batch_size.labels(inner.name)

    def decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        started = time.perf_counter()
        try:
            return self.inner.decode_batch(requests)
        finally:
            # prometheus-client's metrics are thread-safe: observing from the worker is fine.
            self._seconds.observe(time.perf_counter() - started)
            self._sizes.observe(len(requests))


class ObservedFanout(Fanout):
    """The call center's fanout, also feeding every stream message and store write to the metrics."""

    def __init__(
        self, store: TranscriptStore | None, hub: Hub, webhook: WebhookPoster | None, metrics: GatewayMetrics
    ) -> None:
        super().__init__(store, hub, webhook)
        self.metrics = metrics
        self.last_write_ok = True
        """The latest final written committed (False after e.g. a full disk, until one commits again)."""

    async def message(self, stream_id: str, message: dict[str, Any]) -> None:
        self.metrics.message(stream_id, message)
        await super().message(stream_id, message)

    async def _write(self, write: Write, stream_id: str) -> None:
        started = time.perf_counter()
        errors = self.store_errors
        await super()._write(write, stream_id)
        ok = self.store_errors == errors
        if isinstance(write, AddFinal):  # an insert needs room; an end-of-stream update may not
            self.last_write_ok = ok
        outcome = "ok" if ok else "error"
        self.metrics.store_write_seconds.labels(outcome).observe(time.perf_counter() - started)


Gauges = Callable[[], Iterator[Metric]]


class LiveCollector(Collector):
    """Read-at-scrape metrics: open streams, audio in, time behind, and whatever ``extra`` yields."""

    def __init__(self, metrics: GatewayMetrics, extra: Gauges) -> None:
        self.metrics = metrics
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        labels = ["door", "engine", "tenant"]
        open_ = GaugeMetricFamily("gateway_streams_open", "Streams open now", labels=labels)
        audio = CounterMetricFamily("gateway_audio_seconds", "Seconds of audio received", labels=labels)
        behind = GaugeMetricFamily(
            "gateway_stream_behind_seconds",
            "Per open stream: audio received minus the end of the audio its latest Results covered",
            labels=["stream", "door"],
        )
        counts: dict[tuple[str, str, str], int] = {}
        seconds = dict(m.audio_closed)
        for key, live in list(m.live.items()):
            group = (live.door, live.engine, live.tenant)
            counts[group] = counts.get(group, 0) + 1
            seconds[group] = seconds.get(group, 0.0) + live.audio_s()
            behind.add_metric([key, live.door], live.behind_s)
        for group, n in counts.items():
            open_.add_metric(list(group), n)
        for group, s in seconds.items():
            audio.add_metric(list(group), s)
        yield open_
        yield audio
        yield behind
        yield from self.extra()


MIN_FREE_BYTES = 1 << 20


def store_writable(store: TranscriptStore | None) -> bool:
    """The store is running, its disk has room and its database takes a write lock (blocking: run in a thread)."""
    if store is None:
        return True
    if not store.running:
        return False
    try:
        disk = os.statvfs(os.path.dirname(os.path.abspath(store.path)))
        if disk.f_bavail * disk.f_frsize < MIN_FREE_BYTES:
            return False
    except OSError:
        return False
    try:
        with sqlite3.connect(store.path, timeout=1.0) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
    except sqlite3.Error:
        return False
    return True


def server_gauges(
    queues: Mapping[str, int], relay: Mapping[str, Any], callcenter: Mapping[str, Any], draining: bool
) -> Iterator[Metric]:
    """Read-at-scrape metrics of the server's parts (from their own stats)."""
    queue = GaugeMetricFamily("gateway_decode_queue_depth", "Decode requests waiting for the model", labels=["model"])
    for model, depth in queues.items():
        queue.add_metric([model], depth)
    yield queue
    yield CounterMetricFamily(
        "gateway_relay_failovers", "Relayed streams taken over by the local engine", value=relay.get("failovers", 0)
    )
    failures = CounterMetricFamily("gateway_relay_failures", "Relay upstream failures, by kind", labels=["kind"])
    for kind, count in dict(relay.get("failures") or {}).items():
        failures.add_metric([kind], count)
    yield failures
    yield CounterMetricFamily(
        "gateway_store_errors",
        "Transcript writes that failed (finals were still sent)",
        value=callcenter.get("store_errors", 0),
    )
    yield CounterMetricFamily(
        "gateway_subscribers_dropped",
        "Live-event subscribers dropped for falling behind",
        value=callcenter.get("subscribers_dropped", 0),
    )
    yield GaugeMetricFamily("gateway_draining", "1 while the server drains after SIGTERM", value=int(draining))
