"""Deepgram's mid-stream ``Configure`` message: validated into a change, answered as Deepgram does.

Pure. ``{"type": "Configure", "keyterms": [...], "features": {"numerals": true}}``:
``keyterms`` replaces the stream's keyterms (those of the ``keyterm`` query
parameter included; ``[]`` clears them; absent or null keeps them), ``features``
turns formatting features on or off. Answers follow deepgram-sdk 7's
``ListenV1ConfigureSuccess`` / ``ListenV1ConfigureFailure`` (codes from
``ListenV1ConfigureFailureCode``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.core.params import MAX_KEYTERM_CHARS, KeytermsTooLong, clean_keyterms

FEATURES = ("numerals", "profanity_filter")
"""Features a Configure may switch (the others are fixed by the model here)."""

KEYTERMS_NOT_SUPPORTED = "CONFIGURE_KEYTERMS_NOT_SUPPORTED"
KEYTERM_LIMIT_EXCEEDED = "CONFIGURE_KEYTERM_LIMIT_EXCEEDED"
INTERNAL_ERROR = "CONFIGURE_INTERNAL_ERROR"


@dataclass(frozen=True, slots=True)
class ConfigureChange:
    """What one Configure asks for."""

    keyterms: tuple[str, ...] | None = None
    """The new keyterms, or None to keep the current ones."""
    features: dict[str, bool] = field(default_factory=dict)


class ConfigureRejected(Exception):
    """A Configure that cannot be applied: answered with ConfigureFailure, the stream goes on."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def parse_configure(body: dict[str, Any]) -> ConfigureChange:
    """Validate a Configure body; :class:`ConfigureRejected` says why it cannot be applied."""
    unknown = sorted(k for k in body if k not in ("type", "keyterms", "features"))
    if unknown:
        raise ConfigureRejected(INTERNAL_ERROR, f"Configure fields not supported: {', '.join(unknown)}")
    keyterms: tuple[str, ...] | None = None
    raw_terms = body.get("keyterms")
    if raw_terms is not None:
        if not isinstance(raw_terms, list) or not all(isinstance(t, str) for t in raw_terms):
            raise ConfigureRejected(INTERNAL_ERROR, "keyterms must be an array of strings")
        try:
            keyterms = clean_keyterms(raw_terms)
        except KeytermsTooLong:
            raise ConfigureRejected(
                KEYTERM_LIMIT_EXCEEDED, f"keyterms exceed {MAX_KEYTERM_CHARS} characters together"
            ) from None
    raw_features = body.get("features")
    features: dict[str, bool] = {}
    if raw_features is not None:
        if not isinstance(raw_features, dict) or not all(isinstance(v, bool) for v in raw_features.values()):
            raise ConfigureRejected(INTERNAL_ERROR, "features must be an object of booleans")
        others = sorted(k for k in raw_features if k not in FEATURES)
        if others:
            raise ConfigureRejected(
                INTERNAL_ERROR, f"features not supported mid-stream: {', '.join(others)} (only {', '.join(FEATURES)})"
            )
        features = dict(raw_features)
    return ConfigureChange(keyterms, features)


def success(request_id: str, change: ConfigureChange) -> dict[str, Any]:
    """``ConfigureSuccess``; ``keyterms`` (those now in effect) only when the Configure replaced them."""
    body: dict[str, Any] = {"type": "ConfigureSuccess", "request_id": request_id}
    if change.keyterms is not None:
        body["keyterms"] = list(change.keyterms)
    return body


def failure(request_id: str, code: str, description: str) -> dict[str, Any]:
    return {"type": "ConfigureFailure", "request_id": request_id, "code": code, "description": description}
