"""The one asyncio shell every front door runs: read, feed, flush, say goodbye.

A door (Deepgram live, Twilio, ...) subclasses :class:`StreamShell` and
supplies only its protocol: how a frame becomes engine calls
(:meth:`StreamShell.on_frame`), the last audio held inside its decoder, how an
ending is reported (:meth:`StreamShell.on_end`) and what it says to a client
still there (:meth:`StreamShell.goodbye`). The shell owns everything else, the
same way for every door:

- frames are read with an idle timeout (:class:`~gateway.core.errors.IdleTimeout`);
- every ending (the client's close message, a protocol error, the client
  vanishing, the engine failing) goes through one :meth:`StreamShell._finish`,
  which flushes the engine first, so finals are delivered (to the client if it
  is still there, to the door's sinks always);
- server shutdown cancels the task: the engine is aborted, the door told;
- a server drain (:meth:`StreamShell.drain`) stops reading and ends the stream
  like a client's close (finals flushed, goodbye said) but with 1012.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from gateway.core.audio import DecodedFrame
from gateway.core.errors import CloseCode, IdleTimeout, StreamError, UpstreamError
from gateway.engines.base import EngineStream

log = logging.getLogger(__name__)


class StreamShell(ABC):
    """One client connection from upgrade to close; subclasses add the protocol."""

    idle_message = "no message within the timeout window"
    """The reason an idle stream is closed with (each door words it like its model)."""

    def __init__(self, websocket: ServerConnection, *, idle_timeout_s: float) -> None:
        self.websocket = websocket
        self.idle_timeout_s = idle_timeout_s
        self.stream: EngineStream | None = None
        self.client_gone = False
        self._failure: BaseException | None = None
        self._reader: asyncio.Task[None] | None = None
        self._receiving = False
        self.draining = False

    @property
    def label(self) -> str:
        """How log lines name this stream."""
        return "stream"

    # -- what a door supplies ------------------------------------------------

    @abstractmethod
    async def on_frame(self, data: str | bytes) -> bool:
        """Handle one WebSocket frame; True when the client asked to end the stream."""

    def tail_frame(self) -> DecodedFrame | None:
        """Audio still held inside the door's decoder (e.g. a resampler's last ms)."""
        return None

    @abstractmethod
    def close_protocol(self) -> None:
        """Put the door's protocol into its closed state."""

    async def on_end(self, error: StreamError | None) -> None:  # noqa: B027 (an optional hook: doing nothing is right)
        """The stream has ended and its finals are flushed: record or report it."""

    async def on_abort(self) -> None:  # noqa: B027 (an optional hook: doing nothing is right)
        """The server is shutting down and this stream was cut (no flush)."""

    async def goodbye(self, error: StreamError | None) -> None:  # noqa: B027 (an optional hook: doing nothing is right)
        """Last words to a client still connected, before the close frame."""

    # -- the shared skeleton -------------------------------------------------

    def on_failure(self, exc: BaseException) -> None:
        """The engine stream failed: stop reading; :meth:`run` reports it."""
        self._failure = exc
        if self._reader is not None:
            self._reader.cancel()

    def drain(self) -> None:
        """The server is restarting: read no more, flush, say goodbye and close with 1012."""
        self.draining = True
        # Cancelling recv() loses nothing (websockets keeps the frame); a frame being handled
        # is finished first and the read loop stops after it.
        if self._reader is not None and self._receiving:
            self._reader.cancel()

    def failure_error(self) -> StreamError:
        if isinstance(self._failure, StreamError):
            return self._failure  # the engine said what went wrong (e.g. the relay's upstream refused)
        return UpstreamError(f"engine failed: {self._failure}")

    async def run(self) -> None:
        """Serve the stream until it ends, whichever way."""
        self._reader = asyncio.current_task()
        try:
            await self._read()
        except StreamError as exc:
            await self._finish(exc)
        except ConnectionClosed:
            self.client_gone = True
            await self._finish(None)
        except asyncio.CancelledError:
            if self.draining and self._failure is None:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                await self._finish(None)
                return
            if self._failure is None:
                await self._abort()
                raise
            await self._finish(self.failure_error())
        else:
            await self._finish(None)

    async def _read(self) -> None:
        while not self.draining:
            try:
                self._receiving = True
                async with asyncio.timeout(self.idle_timeout_s):
                    data = await self.websocket.recv()
            except TimeoutError:
                raise IdleTimeout(self.idle_message) from None
            finally:
                self._receiving = False
            if await self.on_frame(data):
                return

    async def _finish(self, error: StreamError | None) -> None:
        """Flush finals, report the ending, then close the way the ending asks for."""
        # From here a failing engine is reported by the ending, not by cancelling this task.
        self._reader = None
        if self.stream is not None:
            try:
                tail = self.tail_frame()
                if tail is not None:
                    await self.stream.push(tail, b"")
                await self.stream.close()
            except Exception as exc:
                log.exception("%s: flush failed", self.label)
                error = error or UpstreamError(f"engine failed while flushing: {exc}")
        if error is None and self._failure is not None:
            error = self.failure_error()
        if error is not None:
            log.info("%s: closing %d %s", self.label, error.code, error.reason)
        await self.on_end(error)
        self.close_protocol()
        if self.client_gone:
            return
        await self.goodbye(error)
        if error is not None:
            await self.websocket.close(error.code, error.reason)
        elif self.draining:
            await self.websocket.close(CloseCode.SERVICE_RESTART, "server restarting; reconnect")
        else:
            await self.websocket.close(CloseCode.NORMAL, "")

    async def _abort(self) -> None:
        """Server shutdown: stop at once, but still let the door record the end."""
        if self.stream is not None:
            await self.stream.abort()
        await self.on_abort()
