"""Plain HTTP responses for routes served before (or instead of) an upgrade, static files included."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Response

from gateway.core.errors import HandshakeError

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    426: "Upgrade Required",
    503: "Service Unavailable",
}


def body_response(status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> Response:
    all_headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body))})
    for name, value in (headers or {}).items():
        all_headers[name] = value
    return Response(status, REASONS.get(status, "Error"), all_headers, body)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return body_response(status, json.dumps(body).encode(), "application/json", headers)


def error_response(error: HandshakeError, request_id: str) -> Response:
    """Deepgram's error shape: JSON body plus ``dg-error`` and ``dg-request-id`` headers."""
    body = {"err_code": error.err_code, "err_msg": error.message, "request_id": request_id}
    return json_response(error.status, body, {"dg-error": error.message, "dg-request-id": request_id})


def static_file(static_dir: Path, path: str) -> Response | None:
    """``/`` (index.html) or ``/static/NAME`` from ``static_dir``; None for any other path or a missing file."""
    name = "index.html" if path == "/" else path.removeprefix("/static/")
    if path == "/" or path.startswith("/static/"):
        target = (static_dir / name).resolve()
        if target.is_file() and target.parent == static_dir.resolve():
            body = target.read_bytes()
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if target.suffix == ".js":
                ctype = "text/javascript"
            headers = Headers({"Content-Type": ctype, "Content-Length": str(len(body)), "Cache-Control": "no-cache"})
            return Response(200, "OK", headers, body)
    return None


_SECRET_PARAMS = ("key", "token", "secret", "password", "auth", "signature")


def redacted_query(query: str) -> str:
    """The query string for logs, with any credential-like parameter's value replaced."""
    parts = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if sep and any(s in name.lower() for s in _SECRET_PARAMS):
            value = "REDACTED"
        parts.append(f"{name}{sep}{value}")
    return "&".join(parts)
