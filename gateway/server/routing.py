"""Which engine serves a stream: the open/closed routing policy, pure.

A stream is served by the local Whisper engine (``whisper``), by Deepgram
through the relay (``deepgram``), or by an ordered list of preferences
(``deepgram,whisper``): the first engine allowed serves, the next ones take
over if it fails mid-stream. Preferences come, first found, from the
stream's ``engine`` query parameter, the tenant's policy, the server's.

Three rules take the relay out of a route whatever was asked:

* a *private* tenant's audio never leaves the machine;
* the relay-minutes budget (per tenant and per server) is spent;
* the server has no relay configured.

If that leaves nothing of what the stream asked for explicitly, the
handshake is refused (403 private, 402 budget, 400 no relay); preferences
that came from a policy fall back to the local engine instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.core.errors import BadRequest, Forbidden, HandshakeError, PaymentRequired


class EngineKind(StrEnum):
    WHISPER = "whisper"
    DEEPGRAM = "deepgram"


def parse_preferences(text: str) -> tuple[EngineKind, ...]:
    """``"deepgram,whisper"`` -> (DEEPGRAM, WHISPER); raises BadRequest on anything else."""
    names = [name.strip().lower() for name in text.split(",")]
    kinds: list[EngineKind] = []
    for name in names:
        try:
            kind = EngineKind(name)
        except ValueError:
            raise BadRequest(
                f"unknown engine {name!r}; use whisper, deepgram, or an order such as deepgram,whisper"
            ) from None
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """One tenant's rules; unset fields follow the server's."""

    engines: tuple[EngineKind, ...] | None = None
    private: bool = False
    relay_budget_min: float | None = None
    """Relay minutes (billed) this tenant may use; None: no tenant cap."""


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """The server's rules and each tenant's."""

    engines: tuple[EngineKind, ...] = (EngineKind.WHISPER,)
    tenants: Mapping[str, TenantPolicy] = field(default_factory=dict)
    relay_budget_min: float | None = None
    """Relay minutes (billed) all tenants together may use; None: no cap."""

    def tenant(self, name: str) -> TenantPolicy:
        return self.tenants.get(name, TenantPolicy())


@dataclass(frozen=True, slots=True)
class RelayUse:
    """Relay seconds already billed, for the budget: the tenant's and the server's."""

    tenant_s: float = 0.0
    server_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Route:
    """The serving engine first, then the ones that take over on failure, in order."""

    engines: tuple[EngineKind, ...]
    skipped: tuple[str, ...] = ()
    """Why preferred engines were left out (for logs and /v1/config)."""

    @property
    def primary(self) -> EngineKind:
        return self.engines[0]

    @property
    def fallback(self) -> EngineKind | None:
        return self.engines[1] if len(self.engines) > 1 else None


def relay_left_s(policy: RoutingPolicy, tenant: str, used: RelayUse) -> float | None:
    """Relay seconds left to ``tenant`` under both caps; None when neither caps it."""
    caps: list[float] = []
    tenant_cap = policy.tenant(tenant).relay_budget_min
    if tenant_cap is not None:
        caps.append(tenant_cap * 60 - used.tenant_s)
    if policy.relay_budget_min is not None:
        caps.append(policy.relay_budget_min * 60 - used.server_s)
    return max(0.0, min(caps)) if caps else None


def relay_refusal(
    policy: RoutingPolicy, tenant: str, *, relay_enabled: bool, used: RelayUse = RelayUse()
) -> HandshakeError | None:
    """Why the relay is closed to ``tenant`` now (the error an explicit request gets), or None."""
    if policy.tenant(tenant).private:
        return Forbidden(f"tenant {tenant!r} is private: its audio never leaves this machine; use engine=whisper")
    if not relay_enabled:
        return BadRequest("engine 'deepgram' is not available: this gateway has no Deepgram relay configured")
    left = relay_left_s(policy, tenant, used)
    if left is not None and left <= 0:
        return PaymentRequired("the relay-minutes budget is exhausted; use engine=whisper or engine=deepgram,whisper")
    return None


def route(
    policy: RoutingPolicy,
    tenant: str,
    requested: str | None,
    *,
    relay_enabled: bool,
    used: RelayUse = RelayUse(),
) -> Route:
    """Decide a stream's engines; raises a HandshakeError when an explicit request cannot be met."""
    explicit = requested is not None
    rules = policy.tenant(tenant)
    preferences = parse_preferences(requested) if requested is not None else (rules.engines or policy.engines)
    refusal = relay_refusal(policy, tenant, relay_enabled=relay_enabled, used=used)
    allowed = [kind for kind in preferences if kind is not EngineKind.DEEPGRAM or refusal is None]
    skipped = (f"deepgram: {refusal.message}",) if refusal is not None and EngineKind.DEEPGRAM in preferences else ()
    if not allowed:
        if explicit and refusal is not None:
            raise refusal
        # A policy's preferences never refuse a stream: the local engine is always there.
        allowed.append(EngineKind.WHISPER)
    return Route(tuple(allowed), skipped)


def offered(policy: RoutingPolicy, tenant: str, *, relay_enabled: bool, used: RelayUse = RelayUse()) -> list[str]:
    """The ``engine`` values ``tenant`` may ask for now (for /v1/config)."""
    if relay_refusal(policy, tenant, relay_enabled=relay_enabled, used=used) is not None:
        return [EngineKind.WHISPER.value]
    return [EngineKind.WHISPER.value, EngineKind.DEEPGRAM.value, f"{EngineKind.DEEPGRAM},{EngineKind.WHISPER}"]
