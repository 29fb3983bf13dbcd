"""Where the relay meets its upstream: the SDK's environment, refused handshakes, lost connections.

Pure mappings, kept apart from :mod:`gateway.engines.relay`'s stream
machinery: an upstream URL becomes deepgram-sdk's environment, a refused
handshake becomes the :class:`~gateway.core.errors.UpstreamError` the client
is told (4xx but 429 is permanent), a lost connection becomes words.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from deepgram import DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from websockets.exceptions import ConnectionClosed

from gateway.core.errors import UpstreamError, UpstreamRejected, UpstreamUnavailable


def environment(url: str) -> DeepgramClientEnvironment:
    """deepgram-sdk's environment for an upstream URL (the SDK appends /v1/listen itself)."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"relay URL must be ws://, wss://, http:// or https:// with a host, got {url!r}")
    path = parts.path.rstrip("/").removesuffix("/v1/listen")
    ws = urlunsplit((scheme, parts.netloc, path, "", ""))
    http = urlunsplit(({"ws": "http", "wss": "https"}[scheme], parts.netloc, path, "", ""))
    return DeepgramClientEnvironment(base=http, production=ws, agent=ws, agent_rest=http)


def rejection(exc: ApiError) -> UpstreamError:
    """Map a refused upstream handshake to a client-facing error."""
    status = exc.status_code or 0
    # The SDK keeps only the status; the upstream's own words (dg-error) are on the
    # websockets exception it was raised from.
    headers = getattr(exc.__context__, "headers", None)
    detail = headers.get("dg-error", "") if headers is not None else ""
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        return UpstreamRejected(f"the upstream refused the relay's credentials (HTTP {status}){suffix}")
    if 400 <= status < 500 and status != 429:
        return UpstreamRejected(f"the upstream rejected the stream's parameters (HTTP {status}){suffix}")
    return UpstreamUnavailable(f"the upstream is unavailable (HTTP {status}){suffix}")


def close_text(exc: ConnectionClosed) -> str:
    """How a lost upstream connection ended, for the error message."""
    frame = exc.rcvd
    if frame is None:
        return "no close frame"
    return f"close {frame.code} {frame.reason}".strip()


def final_span(message: dict[str, Any]) -> tuple[int, float] | None:
    """(channel, end of the audio it covers) of an upstream final; None if it does not say (then its
    audio stays pending, the safe side for a failover)."""
    try:
        channel = int((message.get("channel_index") or [0])[0])
        end = float(message.get("start") or 0.0) + float(message.get("duration") or 0.0)
    except (TypeError, ValueError, IndexError, KeyError, OverflowError):
        return None
    return (channel, end) if channel >= 0 and math.isfinite(end) else None
