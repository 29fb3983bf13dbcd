"""Server configuration: one frozen value built by the CLI (or by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.core.transcriber import TranscriberConfig
from gateway.engines.relay_config import RelayConfig
from gateway.server.routing import RoutingPolicy


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model the gateway serves under ``name`` (the ``model`` query parameter)."""

    name: str
    path: str


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
    encoder_pad_s: float | None = 1.0
    """Silence after a window in the shortened encoder input; None: always 30 s (see WhisperOptions)."""
    encoder_min_s: float = 10.0
    max_batch: int = 0
    """Windows per model call; 0 picks 1 on CPU and 16 on CUDA."""
    decode_workers: int = 0
    """Model calls at once; 0 picks one per core on CPU and 1 on CUDA."""
    inference: str = "local"
    """Where decodes run: ``local`` (this process's model) or ``ray`` (a Ray Serve pool, :mod:`gateway.pool`)."""
    ray_address: str = "auto"
    """With ``inference="ray"``: the cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``)."""
    pool_app: str = "whisper"
    """With ``inference="ray"``: the pool's Serve application name."""
    api_keys: dict[str, str] = field(default_factory=dict)
    """API key -> tenant name. Empty: the gateway is open."""
    max_streams: int = 64
    max_frame_bytes: int = 1 << 20
    idle_timeout_s: float = 10.0
    max_upload_bytes: int = 100 << 20
    """Largest pre-recorded upload (POST body) accepted; larger ones get 413."""
    file_timeout_s: float = 600.0
    """Longest a pre-recorded request may take to answer once uploaded."""
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
    drain_timeout_s: float = 20.0
    """On SIGTERM: how long open streams may go on before they are flushed and closed with 1012."""
