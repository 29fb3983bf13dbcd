"""The server's side of routing: engines per stream, the relay budget, /v1/usage.

Glue between the pure policy (:mod:`gateway.server.routing`), the usage ledger
(:mod:`gateway.server.accounting`) and the engines: the server asks
:meth:`EngineRouter.choose` for each stream's engine, registers the stream's
usage with :attr:`EngineRouter.ledger`, and mounts :meth:`EngineRouter.usage_route`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from websockets.http11 import Request, Response

from gateway.core.errors import HandshakeError
from gateway.core.params import StreamParams
from gateway.engines.base import Engine
from gateway.engines.failover import RoutedEngine
from gateway.engines.local import WhisperEngine
from gateway.engines.relay import DeepgramRelayEngine
from gateway.server import routing
from gateway.server.accounting import Ledger
from gateway.server.auth import Principal
from gateway.server.config import ServerConfig
from gateway.server.http import error_response, json_response
from gateway.server.routing import EngineKind, RelayUse, Route

log = logging.getLogger(__name__)

LocalEngine = Callable[[StreamParams, bool], WhisperEngine]
"""(params, strict) -> the local engine for the stream's model; strict raises BadRequest on an unknown model."""


class EngineRouter:
    """Routes streams to the local engine, the relay, or the relay with local failover."""

    def __init__(self, config: ServerConfig) -> None:
        self.policy = config.routing
        self.relay = DeepgramRelayEngine(config.relay) if config.relay.enabled else None
        self.ledger = Ledger()
        self.open = not config.api_keys

    def relay_use(self, tenant: str) -> RelayUse:
        engine = EngineKind.DEEPGRAM.value
        return RelayUse(self.ledger.billed_s(engine, tenant), self.ledger.billed_s(engine))

    def relay_left_s(self, tenant: str) -> float | None:
        return routing.relay_left_s(self.policy, tenant, self.relay_use(tenant))

    def route(self, params: StreamParams, tenant: str) -> Route:
        return routing.route(
            self.policy, tenant, params.engine, relay_enabled=self.relay is not None, used=self.relay_use(tenant)
        )

    def choose(self, params: StreamParams, tenant: str, local: LocalEngine) -> Engine:
        """The engine of one stream; raises a HandshakeError if the stream cannot be served as asked."""
        chosen = self.route(params, tenant)
        if chosen.skipped:
            log.debug("tenant %s routed to %s (%s)", tenant, ",".join(chosen.engines), "; ".join(chosen.skipped))
        if chosen.primary is EngineKind.WHISPER or self.relay is None:
            return local(params, True)
        fallback = local(params, False) if chosen.fallback is EngineKind.WHISPER else None
        return RoutedEngine(
            self.relay,
            fallback,
            budget_left=lambda: self.relay_left_s(tenant),
            on_failover=lambda _exc: self.ledger.failover(tenant),
        )

    def config_view(self, tenant: str) -> dict[str, Any]:
        """The engines ``tenant`` may ask for, and what it gets when it asks for none (/v1/config)."""
        relay_enabled = self.relay is not None
        used = self.relay_use(tenant)
        default = routing.route(self.policy, tenant, None, relay_enabled=relay_enabled, used=used)
        return {
            "engines": routing.offered(self.policy, tenant, relay_enabled=relay_enabled, used=used),
            "default_engine": ",".join(default.engines),
        }

    def stats(self) -> dict[str, Any]:
        relay = self.relay
        return {
            "enabled": relay is not None,
            "streams": relay.streams if relay else 0,
            "failures": dict(relay.failures) if relay else {},
            "failovers": self.ledger.failovers,
            "billed_seconds": round(self.ledger.billed_s(EngineKind.DEEPGRAM.value), 3),
        }

    def usage_route(self, principal: Callable[[Request], Principal]) -> Callable[[Request], Response]:
        """``GET /v1/usage``: the caller's tenant (every tenant when the gateway is open)."""

        def handle(request: Request) -> Response:
            try:
                caller = principal(request)
            except HandshakeError as exc:
                return error_response(exc, str(uuid.uuid4()))
            # An open gateway has no tenants to keep apart; otherwise a key sees its own tenant only.
            tenants = self.ledger.tenants() if self.open else [caller.tenant]
            price = self.relay.config.price_per_minute if self.relay else None
            body: dict[str, Any] = {
                "relay_price_per_minute_usd": price,
                "tenants": {tenant: self._tenant_usage(tenant) for tenant in tenants},
            }
            return json_response(200, body)

        return handle

    def _tenant_usage(self, tenant: str) -> dict[str, Any]:
        left = self.relay_left_s(tenant)
        rules = self.policy.tenant(tenant)
        return {
            **self.ledger.totals(tenant).as_dict(),
            "private": rules.private,
            "relay_minutes_left": None if left is None else round(left / 60, 4),
        }
