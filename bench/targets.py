"""Target specifications: what ``--target`` means.

    gateway                      our gateway, started by the bench (options from --gateway-arg)
    gateway:ARGS                 ... with extra command-line options, e.g. "gateway:--final-beam-size 5"
    whisperlive                  WhisperLive, installed and started by the bench on the same model file
    whisperlive:ARGS             ... with extra bench/wl_server.py options
    twilio / twilio:ARGS         our gateway, started by the bench, fed as Twilio Media Streams calls
                                 (8 kHz mu-law on /v1/twilio; results from /v1/calls/<callSid>/events)
    url=ws://HOST:PORT[/PATH]    any Deepgram-protocol server already running (a relay, Deepgram itself)

Any of them may carry a label first: ``beam5@gateway:--final-beam-size 5``,
``deepgram@url=wss://api.deepgram.com/v1/listen``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

KINDS = ("gateway", "whisperlive", "twilio", "url")

NOT_APPLICABLE: dict[str, tuple[str, ...]] = {
    "gateway": (),
    "url": (),
    "whisperlive": ("speech_final", "speech_final_voice", "utterance_end", "flush", "close_metadata"),
    "twilio": ("flush", "close_final", "close_metadata"),
}
"""Metrics a kind of target cannot produce: WhisperLive has no endpoint events and no flush."""


class TargetError(ValueError):
    """A --target value that does not parse."""


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One target: its label, kind, URL (``url`` kind) and extra server arguments."""

    label: str
    kind: str
    url: str | None = None
    args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def launched(self) -> bool:
        """Whether the bench starts this target's server itself."""
        return self.kind != "url"

    @property
    def protocol(self) -> str:
        """``deepgram``, ``whisperlive`` or ``twilio``."""
        return {"whisperlive": "whisperlive", "twilio": "twilio"}.get(self.kind, "deepgram")


def parse_target(text: str) -> TargetSpec:
    """Parse one ``--target`` value (see the module docstring)."""
    text = text.strip()
    label = ""
    head = text.split("=", 1)[0].split(":", 1)[0]
    if "@" in head:
        label, text = text.split("@", 1)
    if text.startswith("url="):
        url = text[len("url=") :]
        if not url.startswith(("ws://", "wss://")):
            raise TargetError(f"url target needs a ws:// or wss:// URL, got {url!r}")
        return TargetSpec(label=label or url, kind="url", url=url)
    kind, _, rest = text.partition(":")
    if kind not in ("gateway", "whisperlive", "twilio"):
        raise TargetError(
            f"unknown target {text!r}: expected gateway[:ARGS], whisperlive[:ARGS], twilio[:ARGS] or url=WS-URL"
        )
    args = tuple(shlex.split(rest))
    return TargetSpec(label=label or (f"{kind}({rest.strip()})" if args else kind), kind=kind, args=args)


def unique_labels(specs: list[TargetSpec]) -> list[TargetSpec]:
    """The same specs with repeated labels suffixed ``#2``, ``#3``..."""
    seen: dict[str, int] = {}
    out = []
    for spec in specs:
        count = seen.get(spec.label, 0) + 1
        seen[spec.label] = count
        label = spec.label if count == 1 else f"{spec.label}#{count}"
        out.append(TargetSpec(label=label, kind=spec.kind, url=spec.url, args=spec.args))
    return out
