"""What the session shell needs from any engine, local or relayed.

An :class:`Engine` opens one :class:`EngineStream` per client stream. The
stream takes decoded audio and control requests and reports outgoing
protocol messages through the ``emit`` callback the session gives it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from gateway.core.audio import DecodedFrame
from gateway.core.configure import ConfigureChange
from gateway.core.params import StreamParams

Emit = Callable[[dict[str, Any]], Awaitable[None]]
"""Sends one protocol message to the client (and the stream's other sinks)."""

Fail = Callable[[BaseException], None]
"""Reports that the engine cannot go on; the session ends the stream with 1011."""


@dataclass(slots=True)
class Usage:
    """What one stream cost, per engine (reported in Metadata and /v1/usage)."""

    engine: str
    audio_s: float = 0.0
    inference_s: float = 0.0
    billed_s: float = 0.0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "audio_seconds": round(self.audio_s, 3),
            "inference_seconds": round(self.inference_s, 3),
            "billed_seconds": round(self.billed_s, 3),
            "cost_usd": round(self.cost_usd, 6),
        }

    def by_engine(self) -> tuple[Usage, ...]:
        return (self,)


@dataclass(slots=True)
class StreamUsage:
    """A stream served by several engines in turn (failover): one :class:`Usage` each.

    ``audio_s`` is the stream's own audio; the parts may overlap, because
    audio an engine had not finalized is replayed to the next one.
    """

    parts: list[Usage]
    audio_s: float = 0.0
    failovers: int = 0

    def by_engine(self) -> tuple[Usage, ...]:
        return tuple(self.parts)

    def as_dict(self) -> dict[str, Any]:
        """Usage's keys (summed; ``engine`` is the one serving last), plus the parts."""
        return {
            "engine": self.parts[-1].engine,
            "audio_seconds": round(self.audio_s, 3),
            "inference_seconds": round(sum(p.inference_s for p in self.parts), 3),
            "billed_seconds": round(sum(p.billed_s for p in self.parts), 3),
            "cost_usd": round(sum(p.cost_usd for p in self.parts), 6),
            "failovers": self.failovers,
            "engines": [p.as_dict() for p in self.parts],
        }


class UsageReport(Protocol):
    """What a stream reports about its cost (a :class:`Usage` or a :class:`StreamUsage`)."""

    def as_dict(self) -> dict[str, Any]: ...

    def by_engine(self) -> tuple[Usage, ...]: ...


class EngineStream(Protocol):
    @property
    def usage(self) -> UsageReport:
        """What the stream cost so far (read live by the budget and /v1/usage)."""
        ...

    async def push(self, frame: DecodedFrame, raw: bytes) -> None:
        """New audio (decoded, plus the raw frame for relays)."""

    async def finalize(self) -> None:
        """Flush what was heard so far; the result carries from_finalize."""

    async def keep_alive(self) -> None:
        """The client is alive but silent."""

    async def close(self) -> None:
        """Flush everything and return once every final has been emitted."""

    async def abort(self) -> None:
        """Stop at once (server shutdown); no further messages."""


@runtime_checkable
class Configurable(Protocol):
    """An engine stream that takes Deepgram's mid-stream ``Configure`` (the local engine does;
    relayed streams answer ConfigureFailure)."""

    async def configure(self, change: ConfigureChange) -> None:
        """Apply a validated change from the next decode / Results on."""


class Engine(Protocol):
    name: str

    def open_stream(self, params: StreamParams, request_id: str, emit: Emit, fail: Fail) -> EngineStream:
        """Start serving one stream."""
        ...

    def model_info(self) -> dict[str, str]:
        """name/version/arch/uuid of what serves streams."""
        ...
