"""Server configuration: one frozen value built by the CLI (or by tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.transcriber import TranscriberConfig


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
