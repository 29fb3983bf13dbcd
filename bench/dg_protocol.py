"""Deepgram live protocol, sans I/O: URLs, control messages and parsing of server messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bench.timeline import Timeline, Update, Word

DEFAULT_PARAMS: dict[str, str] = {
    "encoding": "linear16",
    "sample_rate": "16000",
    "channels": "1",
    "interim_results": "true",
    "endpointing": "300",
    "utterance_end_ms": "1000",
    "vad_events": "true",
}

FINALIZE = json.dumps({"type": "Finalize"})
CLOSE_STREAM = json.dumps({"type": "CloseStream"})


def listen_url(base: str, model: str, extra: Mapping[str, str] | None = None) -> str:
    """``base`` (``ws://host:port`` or a full ``.../v1/listen`` URL) with the streaming query parameters.

    Parameters already in ``base`` are kept; ``extra`` overrides the defaults.
    """
    parts = urlsplit(base)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL: {base!r}")
    path = parts.path if parts.path not in ("", "/") else "/v1/listen"
    params = dict(DEFAULT_PARAMS)
    params["model"] = model
    params.update(parse_qsl(parts.query))
    params.update(extra or {})
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(params), ""))


def auth_headers(api_key: str | None) -> dict[str, str]:
    """``Authorization: Token KEY`` when a key is given."""
    return {"Authorization": f"Token {api_key}"} if api_key else {}


def _words(alternative: Mapping[str, Any]) -> tuple[Word, ...]:
    out = []
    for w in alternative.get("words") or []:
        text = w.get("punctuated_word") or w.get("word") or ""
        out.append(Word(text=str(text), start=float(w["start"]), end=float(w["end"])))
    return tuple(out)


def parse_results(message: Mapping[str, Any], arrival: float) -> Update:
    """A ``Results`` message as an :class:`Update` (first alternative)."""
    alternatives = (message.get("channel") or {}).get("alternatives") or [{}]
    first = alternatives[0]
    return Update(
        arrival=arrival,
        is_final=bool(message.get("is_final")),
        transcript=str(first.get("transcript") or ""),
        words=_words(first),
        speech_final=bool(message.get("speech_final")),
        from_finalize=bool(message.get("from_finalize")),
    )


class ProtocolError(ValueError):
    """The server sent something that is not a Deepgram message."""


def apply_message(timeline: Timeline, raw: str, arrival: float) -> str:
    """Record one text message from the server into ``timeline``; return its ``type``.

    ``Error`` messages are recorded in ``timeline.error``; unknown types are ignored.
    """
    try:
        message = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"not JSON: {raw[:80]!r}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"not a JSON object: {raw[:80]!r}")
    kind = str(message.get("type", ""))
    if kind == "Results":
        timeline.updates.append(parse_results(message, arrival))
    elif kind == "SpeechStarted":
        timeline.speech_started.append(arrival)
    elif kind == "UtteranceEnd":
        last = message.get("last_word_end")
        if isinstance(last, int | float) and last >= 0:
            timeline.utterance_ends.append((arrival, float(last)))
    elif kind == "Metadata":
        timeline.metadata_at = arrival
        duration = message.get("duration")
        if isinstance(duration, int | float):
            timeline.billed_s = float(duration)
    elif kind == "Error":
        timeline.error = str(message.get("description") or message.get("message") or message)
    return kind
