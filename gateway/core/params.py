"""Parse ``/v1/listen`` query parameters into a validated :class:`StreamParams`.

Pure: takes the raw query string, returns a frozen value or raises
:class:`~gateway.core.errors.BadRequest` naming the offending parameter. Unknown
parameters are tolerated, as Deepgram does (clients send ``no_delay``,
``tier``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qs, urlsplit

from gateway.core.errors import BadRequest

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 48_000
MAX_CHANNELS = 8


class Encoding(StrEnum):
    """Audio encodings the gateway decodes: raw samples, or a container (see core/livecontainers.py)."""

    LINEAR16 = "linear16"
    MULAW = "mulaw"
    ALAW = "alaw"
    OPUS = "opus"
    """Ogg/Opus, as Deepgram means it (WebM/Opus is taken too)."""
    OGG_OPUS = "ogg-opus"
    FLAC = "flac"
    OGG = "ogg"
    WEBM = "webm"

    @property
    def sample_width(self) -> int:
        return 2 if self is Encoding.LINEAR16 else 1

    @property
    def is_container(self) -> bool:
        """Framed, self-describing audio: the rate and channels come from the stream itself."""
        return self not in (Encoding.LINEAR16, Encoding.MULAW, Encoding.ALAW)


_SUPPORTED = ", ".join(e.value for e in Encoding)

# Encodings Deepgram accepts that we recognise but do not decode: answered with
# a precise 400 rather than a generic "unknown".
_KNOWN_UNSUPPORTED = {"linear32", "amr-nb", "amr-wb", "speex", "g729"}

MAX_KEYTERM_CHARS = 500
"""All keyterms together, joined by ", ". Whisper keeps at most 223 tokens of hotwords; rare names
cost about one token per 2-3 characters, so this is what fits (Deepgram's own limit is 500 of its tokens)."""

REDACT_KINDS = ("pci", "numbers", "ssn")
"""What ``redact`` can ask for here (``true`` and ``aggressive_numbers`` mean ``numbers``)."""

_REDACT_ALIASES = {"true": "numbers", "aggressive_numbers": "numbers"}


class KeytermsTooLong(ValueError):
    """The keyterms do not fit the decoder's prompt."""


def clean_keyterms(terms: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Stripped, non-empty, first occurrence only; :class:`KeytermsTooLong` past :data:`MAX_KEYTERM_CHARS`."""
    seen: dict[str, None] = {}
    for term in terms:
        cleaned = " ".join(term.split())
        if cleaned:
            seen.setdefault(cleaned, None)
    kept = tuple(seen)
    if len(", ".join(kept)) > MAX_KEYTERM_CHARS:
        raise KeytermsTooLong(f"keyterms exceed {MAX_KEYTERM_CHARS} characters together")
    return kept


def _keywords(values: list[str]) -> list[str]:
    """Deepgram's ``keywords=term:boost``: the term, unless the boost suppresses it (<= 0)."""
    terms = []
    for value in values:
        term, sep, boost = value.rpartition(":")
        if not sep:
            terms.append(value)
            continue
        try:
            weight = float(boost)
        except ValueError:
            raise BadRequest(f"parameter 'keywords' must be term or term:boost, got {value!r}") from None
        if weight > 0:  # a suppressed keyword would be made likelier by a prompt: dropped
            terms.append(term)
    return terms


@dataclass(frozen=True, slots=True)
class StreamParams:
    """What one ``/v1/listen`` stream asked for."""

    encoding: Encoding = Encoding.LINEAR16
    sample_rate: int = 16_000
    channels: int = 1
    multichannel: bool = False
    interim_results: bool = False
    endpointing_ms: int | None = 10
    """Silence that closes an utterance, or None when endpointing is off."""
    utterance_end_ms: int | None = None
    vad_events: bool = False
    punctuate: bool = False
    smart_format: bool = False
    language: str = "en"
    model: str | None = None
    engine: str | None = None
    """Routing override (``whisper``, ``deepgram`` or ``a,b`` preferences)."""
    tags: tuple[str, ...] = ()
    keyterms: tuple[str, ...] = ()
    """``keyterm`` and ``keywords`` (boosts dropped): vocabulary the decoder is biased towards."""
    numerals: bool = False
    profanity_filter: bool = False
    redact: tuple[str, ...] = ()
    """Kinds of :data:`REDACT_KINDS` to replace with asterisks."""
    no_delay: bool = False
    diarize: bool = False
    callback: str | None = None
    callback_method: str = "POST"
    raw: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)
    """Every parameter as received, for relays that pass them through."""

    @property
    def output_channels(self) -> int:
        """Channels transcribed separately: ``channels`` if multichannel, else 1."""
        return self.channels if self.multichannel else 1

    @property
    def formatted(self) -> bool:
        """Whether transcripts keep Whisper's punctuation and casing."""
        return self.punctuate or self.smart_format


def _one(values: dict[str, list[str]], name: str) -> str | None:
    got = values.get(name)
    if not got:
        return None
    if len(got) > 1 and len(set(got)) > 1:
        raise BadRequest(f"parameter '{name}' given more than once with different values")
    return got[0]


def _bool(values: dict[str, list[str]], name: str, default: bool) -> bool:
    raw = _one(values, name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in ("true", "1", ""):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"parameter '{name}' must be true or false, got {raw!r}")


def _int(raw: str, name: str, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f"parameter '{name}' must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"parameter '{name}' must be between {low} and {high}, got {value}")
    return value


def _redact(values: list[str]) -> tuple[str, ...]:
    kinds: dict[str, None] = {}
    for value in values:
        for part in value.split(","):  # some clients join the kinds with commas
            kind = part.strip().lower()
            if kind in ("", "false"):
                continue
            kind = _REDACT_ALIASES.get(kind, kind)
            if kind not in REDACT_KINDS:
                raise BadRequest(
                    f"parameter 'redact': {part.strip()!r} is not supported here; use pci, numbers (or true) or ssn"
                )
            kinds.setdefault(kind, None)
    return tuple(kinds)


def parse_params(query: str) -> StreamParams:
    """Validate a raw query string (without the leading ``?``)."""
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=200)
    except ValueError as exc:
        raise BadRequest(f"malformed query string: {exc}") from None

    raw_encoding = _one(values, "encoding")
    if raw_encoding is None:
        # Linear16 unless the first bytes are a container (sniffed per stream, as Deepgram does).
        encoding = Encoding.LINEAR16
    else:
        try:
            encoding = Encoding(raw_encoding.strip().lower())
        except ValueError:
            if raw_encoding.strip().lower() in _KNOWN_UNSUPPORTED:
                raise BadRequest(
                    f"encoding '{raw_encoding}' is not supported by this gateway; use {_SUPPORTED}"
                ) from None
            raise BadRequest(f"unknown encoding {raw_encoding!r}; use {_SUPPORTED}") from None

    raw_rate = _one(values, "sample_rate")
    if raw_rate is None:
        if raw_encoding is not None and not encoding.is_container:
            raise BadRequest("parameter 'sample_rate' is required when 'encoding' is set")
        sample_rate = 16_000
    else:
        sample_rate = _int(raw_rate, "sample_rate", MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)

    raw_channels = _one(values, "channels")
    channels = 1 if raw_channels is None else _int(raw_channels, "channels", 1, MAX_CHANNELS)

    endpointing: int | None = 10
    raw_endpointing = _one(values, "endpointing")
    if raw_endpointing is not None:
        lowered = raw_endpointing.strip().lower()
        if lowered == "false":
            endpointing = None
        elif lowered == "true":
            endpointing = 10
        else:
            endpointing = _int(raw_endpointing, "endpointing", 0, 60_000)

    utterance_end: int | None = None
    raw_utterance_end = _one(values, "utterance_end_ms")
    if raw_utterance_end is not None:
        utterance_end = _int(raw_utterance_end, "utterance_end_ms", 0, 60_000)

    language = (_one(values, "language") or "en").strip()
    if not language or len(language) > 35 or not all(c.isalnum() or c == "-" for c in language):
        raise BadRequest(f"parameter 'language' is not a BCP-47 tag: {language!r}")

    model = _one(values, "model")
    if model is not None and model.strip().lower() in ("", "none", "null"):
        model = None  # deepgram-sdk 3.x sends its default, the string "None": no model asked for
    engine = _one(values, "engine")

    try:
        keyterms = clean_keyterms([*values.get("keyterm", []), *_keywords(values.get("keywords", []))])
    except KeytermsTooLong as exc:
        raise BadRequest(f"parameters 'keyterm'/'keywords': {exc}") from None
    callback = _one(values, "callback")
    if callback is not None:
        callback = callback.strip()
        target = urlsplit(callback)
        if target.scheme not in ("http", "https") or not target.hostname:
            raise BadRequest(f"parameter 'callback' must be an http or https URL, got {callback!r}")
    method = (_one(values, "callback_method") or "POST").strip().upper()
    if method not in ("POST", "PUT"):
        raise BadRequest(f"parameter 'callback_method' must be post or put, got {method.lower()!r}")

    return StreamParams(
        encoding=encoding,
        sample_rate=sample_rate,
        channels=channels,
        multichannel=_bool(values, "multichannel", False),
        interim_results=_bool(values, "interim_results", False),
        endpointing_ms=endpointing,
        utterance_end_ms=utterance_end,
        vad_events=_bool(values, "vad_events", False),
        punctuate=_bool(values, "punctuate", False),
        smart_format=_bool(values, "smart_format", False),
        language=language,
        model=model.strip() if model else None,
        engine=engine.strip().lower() if engine else None,
        tags=tuple(values.get("tag", [])),
        keyterms=keyterms,
        numerals=_bool(values, "numerals", False),
        profanity_filter=_bool(values, "profanity_filter", False),
        redact=_redact(values.get("redact", [])),
        no_delay=_bool(values, "no_delay", False),
        diarize=_bool(values, "diarize", False) or bool(_one(values, "diarize_model")),
        callback=callback,
        callback_method=method,
        raw={k: tuple(v) for k, v in values.items()},
    )
