"""Settings of the Deepgram relay engine (one frozen value built by the CLI or by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

DEEPGRAM_URL = "wss://api.deepgram.com"
NOVA3_STREAMING_USD_PER_MIN = 0.0048
"""Deepgram's pay-as-you-go price of Nova-3 (monolingual) streaming, per audio minute,
as its pricing page listed it in August-September 2026 (it was $0.0077 early in 2026)."""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """The Deepgram relay engine; enabled when an API key is set."""

    url: str = DEEPGRAM_URL
    """Upstream speaking Deepgram's live protocol (ws://, wss://, http:// or https://)."""
    api_key: str | None = field(default=None, repr=False)
    """Sent upstream as ``Authorization: Token``; kept out of repr so it is never logged."""
    model: str = "nova-3"
    """Model asked for when the client names none."""
    price_per_minute: float = NOVA3_STREAMING_USD_PER_MIN
    keepalive_s: float = 4.0
    """KeepAlive upstream after this long with nothing sent (Deepgram closes after 10 s)."""
    stall_s: float = 15.0
    """Audio flowing this long with no upstream message is a stall (0: never)."""
    connect_timeout_s: float = 10.0
    close_timeout_s: float = 15.0
    """Wait this long for the upstream's last finals after CloseStream."""
    max_pending_s: float = 120.0
    """Unfinalized audio kept for a failover; older audio is dropped."""
    budget_check_s: float = 1.0
    """Relay audio between two budget checks of a stream (bounds the overshoot)."""

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)
