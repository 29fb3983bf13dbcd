"""Server configuration: one frozen value built by the CLI (or by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.routing import RoutingPolicy
from gateway.transcriber import TranscriberConfig

DEEPGRAM_URL = "wss://api.deepgram.com"
NOVA3_STREAMING_USD_PER_MIN = 0.0048
"""Deepgram's pay-as-you-go price of Nova-3 (monolingual) streaming, per audio minute,
as its pricing page listed it in August-September 2026 (it was $0.0077 early in 2026)."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model the gateway serves under ``name`` (the ``model`` query parameter)."""

    name: str
    path: str


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


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    models: tuple[ModelSpec, ...] = ()
    """Served models; the first is the default. Empty means tiny.en."""
    device: str = "cpu"
    compute_type: str = "auto"
    beam_size: int = 1
    final_beam_size: int = 1
    cpu_threads: int = 0
    max_batch: int = 0
    """Windows per model call; 0 picks 1 on CPU and 16 on CUDA."""
    api_keys: dict[str, str] = field(default_factory=dict)
    """API key -> tenant name. Empty: the gateway is open."""
    max_streams: int = 64
    max_frame_bytes: int = 1 << 20
    idle_timeout_s: float = 10.0
    transcriber: TranscriberConfig = TranscriberConfig()
    static_dir: str | None = None
    """Serve the captions page from here instead of the packaged one."""
    relay: RelayConfig = RelayConfig()
    routing: RoutingPolicy = RoutingPolicy()
    store_path: str | None = None
    """SQLite file keeping every final of every stream; None: no store (the CLI defaults to one)."""
    webhook_url: str | None = None
    """POST finals and stream start/end events here (JSON batches)."""
    subscriber_queue: int = 256
    """Events a live subscriber may fall behind before it is dropped."""
    twilio_auth_token: str | None = None
    """Validate X-Twilio-Signature on /v1/twilio with this token."""
    public_url: str | None = None
    """The gateway's URL as Twilio sees it (e.g. wss://gw.example.com) when a proxy changes the host."""
    twilio_tenant: str = "default"
    """Tenant owning Twilio calls (whose API keys may read their transcripts)."""
