"""A backend that decodes on a Ray Serve pool instead of in this process.

:class:`RayPoolBackend` satisfies :class:`~gateway.core.types.Backend`, so the
gateway's scheduler, transcribers and streams are unchanged: each stream's VAD,
window and commit state stays here, and only decode requests (a window of
audio, its offset and prompt) travel to the pool (:mod:`gateway.pool`). Any
number of stateless gateways can therefore share one pool.

Each request of a scheduler batch is submitted on its own, so the replicas'
``serve.batch`` merges requests from every gateway into one model call (what
keeps a GPU full). A request whose replica dies before answering is sent
again once (Serve routes it to a live replica); a second failure fails the
decode, which the stream reports like any engine failure.

Calls block: like every backend, this one runs in the scheduler's worker
thread, never on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.core.types import DecodeRequest, DecodeResult

log = logging.getLogger(__name__)

DEFAULT_APP = "whisper"
"""The Serve application name the pool deploys and gateways look up."""


class Response(Protocol):
    """What a Serve handle's ``.remote()`` returns (a DeploymentResponse)."""

    def result(self, *, timeout_s: float | None = None) -> Any: ...


@dataclass(slots=True)
class PoolStats:
    requests: int = 0
    retried: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"pool_requests": self.requests, "pool_retried": self.retried, "pool_failed": self.failed}


@dataclass(slots=True)
class Resubmitter:
    """Wait for each response; send a request again when its replica died (pure: no Ray here)."""

    submit: Callable[[DecodeRequest], Response]
    retryable: tuple[type[BaseException], ...]
    retries: int = 1
    timeout_s: float | None = 120.0
    stats: PoolStats = field(default_factory=PoolStats)

    def run(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        # Submit everything first: the pool batches what arrives together.
        responses = [self.submit(request) for request in requests]
        self.stats.requests += len(requests)
        return [self._wait(request, response) for request, response in zip(requests, responses, strict=True)]

    def _wait(self, request: DecodeRequest, response: Response) -> DecodeResult:
        attempt = 0
        while True:
            try:
                result = response.result(timeout_s=self.timeout_s)
            except self.retryable as exc:
                if attempt >= self.retries:
                    self.stats.failed += 1
                    raise
                attempt += 1
                self.stats.retried += 1
                log.warning("pool replica lost a decode (%s); sending it again", type(exc).__name__)
                response = self.submit(request)
                continue
            if not isinstance(result, DecodeResult):
                raise TypeError(f"the pool answered {type(result).__name__}, not DecodeResult")
            return result


class RayPoolBackend:
    """Decode on the Serve application ``app`` of the Ray cluster at ``address``."""

    def __init__(self, address: str = "auto", app: str = DEFAULT_APP, *, max_batch: int = 32) -> None:
        import ray
        from ray import serve
        from ray.exceptions import ActorUnavailableError, RayActorError

        if not ray.is_initialized():
            ray.init(address=address, namespace="gateway", log_to_driver=False, logging_level=logging.WARNING)
        self._handle = serve.get_app_handle(app)
        self.max_batch = max_batch
        info: dict[str, Any] = self._handle.info.remote().result(timeout_s=120.0)
        self.name = str(info["name"])
        self.info = info
        self.resubmitter = Resubmitter(
            submit=lambda request: self._handle.decode.remote(request),
            retryable=(RayActorError, ActorUnavailableError),
        )

    @property
    def stats(self) -> PoolStats:
        return self.resubmitter.stats

    def decode_batch(self, requests: list[DecodeRequest]) -> list[DecodeResult]:
        return self.resubmitter.run(requests)
