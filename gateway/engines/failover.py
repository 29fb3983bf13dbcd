"""Failover without loss: a relayed stream that the local engine takes over if the relay fails.

:class:`RoutedEngine` is what routing hands the session for a stream whose
route starts with the relay. With a local engine behind it, each stream is a
:class:`FailoverStream`: audio goes to the relay until it fails (refused,
dropped, stalled, out of budget); then a local stream starts at each
channel's last upstream final, the audio the upstream had not finalized is
replayed into it, and it carries on with the live audio. The client sees one
``EngineInfo`` message, no gap, and no final twice: upstream finals stop
where the local engine starts.

Every operation takes one lock, so the switch happens between two frames and
the replay comes before any newer audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from gateway.core import messages
from gateway.core.audio import DecodedFrame
from gateway.core.errors import StreamError
from gateway.core.params import StreamParams
from gateway.engines.base import Emit, EngineStream, Fail, StreamUsage
from gateway.engines.local import WhisperEngine, WhisperStream
from gateway.engines.relay import BudgetLeft, DeepgramRelayEngine, RelayStream

log = logging.getLogger(__name__)

OnFailover = Callable[[StreamError], None]
"""Told of every failover (metrics, per-tenant counts)."""


class RoutedEngine:
    """The relay, with (optionally) the local engine taking over failed streams."""

    def __init__(
        self,
        relay: DeepgramRelayEngine,
        fallback: WhisperEngine | None,
        *,
        budget_left: BudgetLeft | None = None,
        on_failover: OnFailover | None = None,
    ) -> None:
        self.name = relay.name
        self.relay = relay
        self.fallback = fallback
        self.budget_left = budget_left
        self.on_failover = on_failover

    def model_info(self) -> dict[str, str]:
        return self.relay.model_info()

    def open_stream(self, params: StreamParams, request_id: str, emit: Emit, fail: Fail) -> EngineStream:
        if self.fallback is None:
            return self.relay.open_stream(params, request_id, emit, fail, budget_left=self.budget_left)
        return FailoverStream(self, self.fallback, params, request_id, emit, fail)


class FailoverStream:
    """A relayed stream with the local engine ready to take over."""

    def __init__(
        self,
        routed: RoutedEngine,
        fallback: WhisperEngine,
        params: StreamParams,
        request_id: str,
        emit: Emit,
        fail: Fail,
    ) -> None:
        self.routed = routed
        self.fallback = fallback
        self.params = params
        self.request_id = request_id
        self._emit = emit
        self._fail = fail
        self._lock = asyncio.Lock()
        self.relay: RelayStream = routed.relay.open_stream(
            params, request_id, emit, self._relay_failed, budget_left=routed.budget_left, replayable=True
        )
        self.local: WhisperStream | None = None
        self._usage = StreamUsage([self.relay.usage])
        self._takeover: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def usage(self) -> StreamUsage:
        return self._usage

    # -- EngineStream ---------------------------------------------------------

    async def push(self, frame: DecodedFrame, raw: bytes) -> None:
        self._usage.audio_s += frame.input_seconds
        async with self._lock:
            if self.local is not None:
                await self.local.push(frame, raw)
            else:
                await self.relay.push(frame, raw)

    async def finalize(self) -> None:
        async with self._lock:
            if self.local is not None:
                await self.local.finalize()
            else:
                await self.relay.finalize()

    async def keep_alive(self) -> None:
        async with self._lock:
            if self.local is None:
                await self.relay.keep_alive()

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            # A live relay delivers its last finals here; a failed one just stops what is left of it.
            await self.relay.close()
            if self.local is None and self.relay.failure is not None:
                await self._take_over(self.relay.failure)
            if self.local is not None:
                await self.local.close()
        await self._reap()

    async def abort(self) -> None:
        self._closed = True
        await self._reap()
        await self.relay.abort()
        if self.local is not None:
            await self.local.abort()

    # -- the switch -------------------------------------------------------------

    def _relay_failed(self, exc: BaseException) -> None:
        # Called from the relay's own task: the switch waits for the lock in a task of its own.
        if self._takeover is None and isinstance(exc, StreamError):
            self._takeover = asyncio.create_task(self._take_over_soon(exc), name=f"{self.request_id}:failover")
        elif not isinstance(exc, StreamError):
            self._fail(exc)

    async def _take_over_soon(self, exc: StreamError) -> None:
        async with self._lock:
            if self.local is None and not self._closed:
                try:
                    await self._take_over(exc)
                except Exception as error:
                    # Nobody awaits this task: the session must hear of it and end the stream.
                    log.exception("stream %s: failover failed", self.request_id)
                    self._fail(error)

    async def _take_over(self, exc: StreamError) -> None:
        """Start the local engine where the relay's finals stopped and replay what they did not cover."""
        assert self.relay.pending is not None  # opened replayable
        replay = self.relay.pending.replay()
        seed = [self.relay.final_words.get(i, []) for i in range(len(replay.start_s))]
        local = self.fallback.open_stream(
            self.params, self.request_id, self._emit, self._fail, start_s=replay.start_s, seed=seed
        )
        self.local = local
        self._usage.parts.append(local.usage)
        self._usage.failovers += 1
        log.warning(
            "stream %s: failing over from %s to %s at %.2f s (%.2f s replayed): %s",
            self.request_id,
            self.routed.name,
            self.fallback.name,
            min(replay.start_s),
            replay.seconds,
            exc.message,
        )
        if self.routed.on_failover is not None:
            self.routed.on_failover(exc)
        await self._emit(
            messages.engine_info(
                request_id=self.request_id,
                engine=self.fallback.name,
                model=self.fallback.model.name,
                previous=self.routed.name,
                reason=exc.message,
                variant=exc.tag,
                start=min(replay.start_s),
            )
        )
        for frame in replay.frames:
            await local.push(frame, b"")
        if self.relay.finalize_pending:
            await local.finalize()

    async def _reap(self) -> None:
        task = self._takeover
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait([task])
