"""API-key authentication, pure: header values in, a :class:`Principal` out.

Accepted forms (Deepgram's): ``Authorization: Token KEY`` or ``Bearer KEY``
(scheme compared case-insensitively), or, for browsers that cannot set
headers, the subprotocol pair ``["token", KEY]`` / ``["bearer", KEY]``; the
server must then answer with the scheme as the chosen subprotocol.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from gateway.core.errors import Unauthorized

SCHEMES = ("token", "bearer")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant a key belongs to (``anonymous`` when open)."""

    tenant: str
    key_id: str = ""
    subprotocol: str | None = None


ANONYMOUS = Principal("anonymous")


def split_subprotocols(header: str | None) -> list[str]:
    if not header:
        return []
    return [p.strip() for p in header.split(",") if p.strip()]


def _match(key: str, keys: dict[str, str]) -> str | None:
    found = None
    for candidate, tenant in keys.items():
        # Constant-time compare against every key: no early exit on a match.
        if hmac.compare_digest(candidate.encode(), key.encode()):
            found = tenant
    return found


def authenticate(authorization: str | None, subprotocols: list[str], keys: dict[str, str]) -> Principal:
    """Check credentials; with no keys configured everyone is anonymous."""
    offered = None
    for i, proto in enumerate(subprotocols[:-1]):
        if proto.lower() in SCHEMES:
            offered = (proto, subprotocols[i + 1])
            break
    if not keys:
        return Principal("anonymous", subprotocol=offered[0] if offered else None)
    key: str | None = None
    chosen: str | None = None
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() not in SCHEMES or not value.strip():
            raise Unauthorized("Authorization header must be 'Token <key>' or 'Bearer <key>'")
        key = value.strip()
    elif offered is not None:
        chosen, key = offered
    if key is None:
        raise Unauthorized("credentials required: send 'Authorization: Token <key>' or subprotocols token, <key>")
    tenant = _match(key, keys)
    if tenant is None:
        raise Unauthorized("invalid credentials")
    return Principal(tenant, key_id=key[:4] + "...", subprotocol=chosen)
