"""What the gateway says about itself over plain HTTP, and its live gauges.

Routes this module adds to the :class:`~gateway.server.app.Gateway` (through :class:`Host`):

``GET /healthz``
    200 while the process serves at all.
``GET /readyz``
    200 when a model is loaded, the store takes writes and no drain is on; else 503
    (a load balancer stops sending).
``GET /metrics``
    Prometheus text: counters and histograms, plus the gauges of :meth:`StatusRoutes.gauges`.
``GET /v1/config``
    What the captions page offers: engines, models, whether a key is needed.
``GET /v1/stats``
    Open streams, relay and call-center counters, each model's scheduler figures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sized
from typing import Protocol

import anyio.to_thread
from prometheus_client.core import Metric
from websockets.http11 import Request, Response

from gateway.core.errors import HandshakeError
from gateway.engines.local import WhisperEngine
from gateway.server.auth import Principal
from gateway.server.calls import CallCenter
from gateway.server.config import ServerConfig
from gateway.server.dispatch import EngineRouter
from gateway.server.http import body_response, json_response
from gateway.server.metrics import CONTENT_TYPE, GatewayMetrics, server_gauges, store_writable


class Host(Protocol):
    """What the status routes read of the gateway that mounts them."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def engines(self) -> Mapping[str, WhisperEngine]: ...

    @property
    def default_model(self) -> str: ...

    @property
    def active(self) -> Sized: ...

    @property
    def draining(self) -> bool: ...

    @property
    def metrics(self) -> GatewayMetrics: ...

    @property
    def router(self) -> EngineRouter: ...

    @property
    def callcenter(self) -> CallCenter: ...

    def principal(self, request: Request | None) -> Principal: ...


class StatusRoutes:
    """The health, readiness, metrics, config and stats routes of one gateway."""

    def __init__(self, gateway: Host) -> None:
        self.gateway = gateway
        self.http_routes: dict[str, Callable[[Request], Response | Awaitable[Response]]] = {
            "/healthz": lambda _r: json_response(200, {"status": "ok"}),
            "/readyz": self.ready,
            "/metrics": lambda _r: body_response(200, gateway.metrics.render(), CONTENT_TYPE),
            "/v1/config": self.config,
            "/v1/stats": self.stats,
        }

    def config(self, request: Request) -> Response:
        gw = self.gateway
        return json_response(
            200,
            {
                "auth_required": bool(gw.config.api_keys),
                **gw.router.config_view(self._caller_tenant(request)),
                "models": list(gw.engines),
                "default_model": gw.default_model,
            },
        )

    def _caller_tenant(self, request: Request) -> str:
        """The tenant of the request's credentials; none or bad ones get the server's view."""
        try:
            return self.gateway.principal(request).tenant
        except HandshakeError:
            return ""  # /v1/config is public: a missing or wrong key only hides tenant rules

    def gauges(self) -> Iterator[Metric]:
        """The gauges read at each scrape (queues, relay, call center, drain)."""
        gw = self.gateway
        queues = {name: engine.scheduler.queued for name, engine in gw.engines.items()}
        return server_gauges(queues, gw.router.stats(), gw.callcenter.stats(), gw.draining)

    async def ready(self, request: Request) -> Response:
        """``GET /readyz``: 200 when a model is loaded, the store takes writes and no drain is on; else 503."""
        gw = self.gateway
        checks = {
            "model_loaded": bool(gw.engines),
            "store_writable": await anyio.to_thread.run_sync(store_writable, gw.callcenter.store)
            and gw.callcenter.fanout.last_write_ok,
            "not_draining": not gw.draining,
        }
        ready = all(checks.values())
        return json_response(200 if ready else 503, {"status": "ready" if ready else "not ready", **checks})

    def stats(self, request: Request) -> Response:
        gw = self.gateway
        return json_response(
            200,
            {
                "active_streams": len(gw.active),
                "max_streams": gw.config.max_streams,
                "relay": gw.router.stats(),
                "callcenter": gw.callcenter.stats(),
                "models": {name: model_stats(e) for name, e in gw.engines.items()},
            },
        )


def model_stats(engine: WhisperEngine) -> dict[str, float]:
    """One model's scheduler figures, with a remote pool's own counters (its resends) when it has them."""
    stats = engine.scheduler.stats.as_dict()
    backend = getattr(engine.scheduler.backend, "inner", engine.scheduler.backend)  # under the metrics' timer
    pool_stats = getattr(backend, "stats", None)  # a remote pool counts its resends
    if pool_stats is not None:
        stats.update(pool_stats.as_dict())
    return stats
