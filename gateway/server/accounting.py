"""Usage per tenant: what finished streams cost, plus what live ones cost so far.

Pure bookkeeping, no I/O. Each stream registers its live usage report
(:class:`~gateway.engines.base.Usage` or ``StreamUsage``) when it starts; the
ledger reads it whenever asked, so the relay budget sees minutes as they are
spent, and folds it into the tenant's totals when the stream ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.engines.base import Usage, UsageReport


@dataclass(slots=True)
class Totals:
    """Summed usage of some streams, per engine."""

    streams: int = 0
    failovers: int = 0
    engines: dict[str, Usage] = field(default_factory=dict)

    def add(self, report: UsageReport) -> None:
        """Count one stream."""
        self.streams += 1
        for part in report.by_engine():
            self._accumulate(part)

    def merged(self, other: Totals) -> Totals:
        out = Totals(self.streams + other.streams, self.failovers + other.failovers)
        for source in (self, other):
            for usage in source.engines.values():
                out._accumulate(usage)
        return out

    def _accumulate(self, usage: Usage) -> None:
        total = self.engines.setdefault(usage.engine, Usage(usage.engine))
        total.audio_s += usage.audio_s
        total.inference_s += usage.inference_s
        total.billed_s += usage.billed_s
        total.cost_usd += usage.cost_usd

    def billed_s(self, engine: str) -> float:
        usage = self.engines.get(engine)
        return usage.billed_s if usage else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "streams": self.streams,
            "failovers": self.failovers,
            "cost_usd": round(sum(u.cost_usd for u in self.engines.values()), 6),
            "engines": {name: usage.as_dict() for name, usage in sorted(self.engines.items())},
        }


@dataclass(slots=True)
class _Live:
    tenant: str
    report: UsageReport


class Ledger:
    """Usage of every tenant since the server started (in memory)."""

    def __init__(self) -> None:
        self._done: dict[str, Totals] = {}
        self._live: dict[str, _Live] = {}

    def start(self, request_id: str, tenant: str, report: UsageReport) -> None:
        """A stream began; its report is read live until :meth:`finish`."""
        self._live[request_id] = _Live(tenant, report)

    def finish(self, request_id: str) -> None:
        live = self._live.pop(request_id, None)
        if live is not None:
            self._done.setdefault(live.tenant, Totals()).add(live.report)

    def failover(self, tenant: str) -> None:
        """A stream of ``tenant`` moved to another engine."""
        self._done.setdefault(tenant, Totals()).failovers += 1

    def totals(self, tenant: str) -> Totals:
        """``tenant``'s finished streams plus its live ones so far."""
        live = Totals()
        for entry in self._live.values():
            if entry.tenant == tenant:
                live.add(entry.report)
        live.streams = 0  # live streams are counted when they finish
        return self._done.get(tenant, Totals()).merged(live)

    def tenants(self) -> list[str]:
        return sorted(set(self._done) | {entry.tenant for entry in self._live.values()})

    def billed_s(self, engine: str, tenant: str | None = None) -> float:
        """Seconds billed on ``engine`` by ``tenant`` (None: every tenant), live streams included."""
        done = sum(t.billed_s(engine) for name, t in self._done.items() if tenant in (None, name))
        live = sum(
            part.billed_s
            for entry in self._live.values()
            if tenant in (None, entry.tenant)
            for part in entry.report.by_engine()
            if part.engine == engine
        )
        return done + live

    @property
    def failovers(self) -> int:
        return sum(t.failovers for t in self._done.values())
