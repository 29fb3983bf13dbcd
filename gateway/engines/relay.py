"""The relay engine: a stream served by Deepgram's live API through deepgram-sdk.

:class:`DeepgramRelayEngine` holds one ``AsyncDeepgramClient`` pointed at the
configured upstream (Deepgram itself by default, or anything speaking its
protocol, such as another gateway). Each :class:`RelayStream` opens one
upstream connection with the client's own query parameters, forwards raw
audio, Finalize and CloseStream, sends KeepAlive when nothing else went up
for a while, and hands the upstream's messages back with the gateway's
request id.

Failure is reported once, through the ``fail`` callback, as an
:class:`~gateway.core.errors.UpstreamError` saying what happened: rejected
(401/403/400: permanent), unavailable, dropped, stalled; or
:class:`~gateway.core.errors.RelayBudgetExhausted`. From then on the stream emits
nothing and keeps the audio its upstream had not finalized
(:attr:`RelayStream.pending`), so another engine can take over from there
(see :mod:`gateway.engines.failover`).

States: ``CONNECTING`` -> ``OPEN`` -> ``CLOSING`` (CloseStream sent) ->
``CLOSED``; any live state -> ``FAILED`` -> ``CLOSED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from gateway.core import messages
from gateway.core.audio import DecodedFrame
from gateway.core.errors import (
    InvalidTransition,
    RelayBudgetExhausted,
    StreamError,
    UpstreamDropped,
    UpstreamError,
    UpstreamStalled,
    UpstreamUnavailable,
)
from gateway.core.params import Encoding, StreamParams
from gateway.core.types import Word
from gateway.engines.base import Emit, Fail, Usage
from gateway.engines.pending import PendingAudio
from gateway.engines.relay_config import RelayConfig
from gateway.engines.relay_upstream import close_text, environment, final_span, rejection

log = logging.getLogger(__name__)

BudgetLeft = Callable[[], float | None]
"""Relay seconds a stream may still bill (None: no cap)."""
STOP_GRACE_S = 2.0
GATEWAY_PARAMS = frozenset({"engine", "callback", "callback_method"})
"""Query parameters that steer this gateway or that it serves itself: not sent upstream (the gateway
POSTs to ``callback``, so Deepgram must not as well; it could not reach a private URL anyway)."""
GATEWAY_ENCODINGS = frozenset({Encoding.OGG, Encoding.WEBM})
"""Container encodings only this gateway names (Deepgram takes those containers with no ``encoding``)."""


class RelayState(Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


_ALLOWED = {
    RelayState.CONNECTING: {RelayState.OPEN, RelayState.CLOSING, RelayState.FAILED, RelayState.CLOSED},
    RelayState.OPEN: {RelayState.CLOSING, RelayState.FAILED, RelayState.CLOSED},
    RelayState.CLOSING: {RelayState.FAILED, RelayState.CLOSED},
    RelayState.FAILED: {RelayState.CLOSED},
    RelayState.CLOSED: set(),
}


@dataclass(frozen=True, slots=True)
class _Audio:
    raw: bytes
    seconds: float


class _Control(Enum):
    FINALIZE = "Finalize"
    CLOSE_STREAM = "CloseStream"
    KEEP_ALIVE = "KeepAlive"


class DeepgramRelayEngine:
    """Serves streams from an upstream speaking Deepgram's live protocol."""

    def __init__(self, config: RelayConfig) -> None:
        if not config.api_key:
            raise ValueError("the relay needs an API key")
        self.name = "deepgram"
        self.config = config
        self.client = AsyncDeepgramClient(api_key=config.api_key, environment=environment(config.url))
        self.model = messages.ModelInfo(
            name=f"deepgram-relay:{config.model}",
            version="relay",
            arch="deepgram",
            uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"gateway:relay:{config.url}")),
        )
        self.streams = 0
        self.failures: dict[str, int] = {}
        """Failed streams by error tag (for /v1/stats)."""

    def model_info(self) -> dict[str, str]:
        return {**self.model.as_dict(), "uuid": self.model.uuid}

    def open_stream(
        self,
        params: StreamParams,
        request_id: str,
        emit: Emit,
        fail: Fail,
        *,
        budget_left: BudgetLeft | None = None,
        replayable: bool = False,
    ) -> RelayStream:
        """Serve a stream.

        ``budget_left()`` gives the relay seconds still allowed (None: no cap);
        ``replayable`` keeps the unfinalized audio for an engine that may take over.
        """
        self.streams += 1
        return RelayStream(self, params, request_id, emit, fail, budget_left, replayable)

    def upstream_query(self, params: StreamParams) -> tuple[str, dict[str, list[str]]]:
        """The model and the other parameters sent upstream: the client's, minus the gateway's own."""
        model = params.model or self.config.model
        rest = {k: list(v) for k, v in params.raw.items() if k not in GATEWAY_PARAMS and k != "model"}
        if params.encoding in GATEWAY_ENCODINGS:
            rest.pop("encoding", None)  # Deepgram knows no such name; it sniffs the container itself
        return model, rest


class RelayStream:
    """One client stream relayed upstream."""

    def __init__(
        self,
        engine: DeepgramRelayEngine,
        params: StreamParams,
        request_id: str,
        emit: Emit,
        fail: Fail,
        budget_left: BudgetLeft | None = None,
        replayable: bool = False,
    ) -> None:
        self.engine = engine
        self.config = engine.config
        self.params = params
        self.request_id = request_id
        self._emit = emit
        self._fail = fail
        self._budget_left = budget_left
        self._next_budget_check = 0.0
        self.state = RelayState.CONNECTING
        self.usage = Usage(engine.name)
        vad_rate = 8_000 if params.sample_rate == 8_000 else 16_000
        self.pending = PendingAudio(params.output_channels, vad_rate, self.config.max_pending_s) if replayable else None
        self.failure: StreamError | None = None
        self.finalize_pending = False
        self.final_words: dict[int, list[Word]] = {}
        """The last finalised words per channel: the seam a taking-over engine continues from."""
        """A Finalize the upstream has not answered yet (a taking-over engine must honour it)."""
        self.upstream_request_id: str | None = None
        self._billed_channels = params.channels if params.multichannel else 1
        self._outbox: asyncio.Queue[_Audio | _Control] = asyncio.Queue()
        self._unanswered_since: float | None = None
        self._unanswered_s = 0.0  # audio seconds sent since the upstream's last message
        self._upstream_error = ""
        self._task = asyncio.create_task(self._run(), name=f"{request_id}:relay")

    def _transition(self, to: RelayState) -> None:
        if to not in _ALLOWED[self.state]:
            raise InvalidTransition(f"relay stream cannot go from {self.state.value} to {to.value}")
        self.state = to

    @property
    def live(self) -> bool:
        return self.state in (RelayState.CONNECTING, RelayState.OPEN)

    # -- EngineStream -------------------------------------------------------

    async def push(self, frame: DecodedFrame, raw: bytes) -> None:
        if self.state is RelayState.CLOSED:
            return
        if self.pending is not None:
            # Kept even once failed: the engine taking over replays it.
            self.pending.append(frame)
        if not self.live:
            return
        if self._budget_spent():
            self._failed(RelayBudgetExhausted("the relay-minutes budget is exhausted"))
            # End the upstream stream politely: nothing more is billed.
            self._outbox.put_nowait(_Control.CLOSE_STREAM)
            return
        if raw:  # an empty frame (the resampler's tail at close) must not reach Deepgram: it means "close"
            self._outbox.put_nowait(_Audio(raw, frame.input_seconds))

    async def finalize(self) -> None:
        self.finalize_pending = True
        if self.live:
            self._outbox.put_nowait(_Control.FINALIZE)

    async def keep_alive(self) -> None:
        if self.live:
            self._outbox.put_nowait(_Control.KEEP_ALIVE)

    async def close(self) -> None:
        """Send CloseStream and wait for the upstream's last finals (or its failure)."""
        if self.live:
            self._transition(RelayState.CLOSING)
            self._outbox.put_nowait(_Control.CLOSE_STREAM)
        if self.state is RelayState.CLOSING:
            try:
                async with asyncio.timeout(self.config.close_timeout_s):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._failed(
                    UpstreamStalled(f"the upstream sent no last finals within {self.config.close_timeout_s:g} s")
                )
        await self._stop()

    async def abort(self) -> None:
        await self._stop()

    async def _stop(self) -> None:
        self._task.cancel()
        # Bounded: leaving the connection waits for the upstream's close handshake, which a dead
        # peer never sends; the task finishes on its own later.
        await asyncio.wait([self._task], timeout=STOP_GRACE_S)
        if self.state is not RelayState.CLOSED:
            self._transition(RelayState.CLOSED)

    # -- accounting and failure -------------------------------------------------

    def _billed(self, seconds: float) -> None:
        """Audio reached the upstream: that is what Deepgram bills (per channel when multichannel)."""
        self.usage.audio_s += seconds
        self.usage.billed_s += seconds * self._billed_channels
        self.usage.cost_usd = self.usage.billed_s / 60 * self.config.price_per_minute

    def _budget_spent(self) -> bool:
        if self._budget_left is None or self.usage.billed_s < self._next_budget_check:
            return False
        self._next_budget_check = self.usage.billed_s + self.config.budget_check_s
        left = self._budget_left()
        return left is not None and left <= 0

    def _remember_words(self, channel: int, message: dict[str, Any]) -> None:
        try:
            words = message["channel"]["alternatives"][0]["words"]
            found = [
                Word(str(w.get("punctuated_word") or w["word"]), float(w["start"]), float(w["end"]), 1.0) for w in words
            ]
        except (KeyError, IndexError, TypeError, ValueError):
            return  # a Results without usable words leaves the seam where it was
        if found:
            self.final_words[channel] = (self.final_words.get(channel, []) + found)[-20:]

    def _failed(self, exc: StreamError) -> None:
        if not self.live and self.state is not RelayState.CLOSING:
            return
        self._transition(RelayState.FAILED)
        self.failure = exc
        self.engine.failures[exc.tag] = self.engine.failures.get(exc.tag, 0) + 1
        log.warning("stream %s: relay failed: %s (%s)", self.request_id, exc.message, exc.tag)
        self._fail(exc)

    # -- the upstream connection --------------------------------------------

    async def _run(self) -> None:
        try:
            await self._serve()
        except StreamError as exc:
            self._failed(exc)
        except ConnectionClosed as exc:
            self._failed(UpstreamDropped(f"the upstream connection was lost ({close_text(exc)})"))
        except Exception as exc:
            # A bug of ours or the SDK's: still a failure of this stream only, reported like the others.
            log.exception("stream %s: relay crashed", self.request_id)
            self._failed(UpstreamError(f"the relay failed: {type(exc).__name__}: {exc}"))

    async def _serve(self) -> None:
        model, query = self.engine.upstream_query(self.params)
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(self.config.connect_timeout_s):
                    connection = await stack.enter_async_context(
                        self.engine.client.listen.v1.connect(
                            model=model, request_options={"additional_query_parameters": query}
                        )
                    )
            except ApiError as exc:
                raise rejection(exc) from None
            except TimeoutError:
                raise UpstreamUnavailable(
                    f"the upstream did not answer within {self.config.connect_timeout_s:g} s"
                ) from None
            except (OSError, InvalidHandshake, InvalidURI) as exc:
                raise UpstreamUnavailable(f"cannot reach the upstream: {exc}") from None
            if self.state is RelayState.CONNECTING:
                self._transition(RelayState.OPEN)
            await self._pump(connection)

    async def _pump(self, connection: Any) -> None:
        receiver = asyncio.create_task(self._receive(connection))
        tasks = {receiver, asyncio.create_task(self._send(connection)), asyncio.create_task(self._watch())}
        try:
            while True:
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if (exc := task.exception()) is not None:
                        raise exc
                if receiver in done:
                    break
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
        if self.state is RelayState.CLOSING:
            self._transition(RelayState.CLOSED)
        elif self.live:
            error = f": {self._upstream_error}" if self._upstream_error else ""
            raise UpstreamDropped(f"the upstream closed the stream before CloseStream{error}")

    async def _send(self, connection: Any) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout(self.config.keepalive_s):
                    item = await self._outbox.get()
            except TimeoutError:
                # Nothing went up for a while (a silent client): Deepgram would close after 10 s.
                await connection.send_keep_alive()
                continue
            if isinstance(item, _Audio):
                await connection.send_media(item.raw)
                self._billed(item.seconds)
                self._unanswered_s += item.seconds
                if self._unanswered_since is None:
                    self._unanswered_since = loop.time()
            elif item is _Control.FINALIZE:
                await connection.send_finalize()
            elif item is _Control.KEEP_ALIVE:
                await connection.send_keep_alive()
            else:
                await connection.send_close_stream()
                return

    async def _watch(self) -> None:
        stall = self.config.stall_s
        if stall <= 0:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(stall / 4)
            since = self._unanswered_since
            # Both clocks: a client pausing (no audio) is no stall, nor is a burst sent faster than real time.
            if since is not None and self._unanswered_s >= stall and loop.time() - since >= stall:
                raise UpstreamStalled(f"no message from the upstream for {stall:g} s while audio flowed")

    async def _receive(self, connection: Any) -> None:
        async for message in connection:
            self._unanswered_since = None
            self._unanswered_s = 0.0
            if message is None or isinstance(message, bytes):
                continue  # a type the SDK does not know, or binary: nothing a client expects
            await self._forward(message.dict())

    async def _forward(self, message: dict[str, Any]) -> None:
        if self.state is RelayState.FAILED:
            return  # the engine taking over owns the output (and the pending audio) now
        kind = message.get("type")
        if kind == "Metadata":
            # The session sends the stream's own Metadata (with usage) at close.
            self.upstream_request_id = message.get("request_id")
            log.info("stream %s: upstream request %s", self.request_id, self.upstream_request_id)
            return
        if kind == "Error":
            self._upstream_error = str(message.get("description") or message.get("message") or "")
            return
        if kind == "Results":
            metadata = message.get("metadata")
            if isinstance(metadata, dict):
                metadata["request_id"] = self.request_id
            if message.get("from_finalize"):
                self.finalize_pending = False
            span = final_span(message) if message.get("is_final") else None
            if span is not None and self.pending is not None:
                self.pending.finalized(*span)
                self._remember_words(span[0], message)
        # Shielded: once its audio is released from pending, a final must reach the
        # client even if a failure cancels the receiver mid-send.
        await asyncio.shield(self._emit(message))
