"""Command line: ``python -m gateway [options]`` starts the server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
from dataclasses import replace

from gateway.core.transcriber import TranscriberConfig
from gateway.core.vad import VadConfig
from gateway.server import logs, relay_cli
from gateway.server.config import ModelSpec, ServerConfig


def _encoder_pad(value: str) -> float | None:
    if value.strip().lower() == "full":
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected seconds or 'full', got {value!r}") from exc


def _milliseconds(value: str) -> int:
    try:
        ms = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected whole milliseconds, got {value!r}") from exc
    if ms < 0:
        raise argparse.ArgumentTypeError(f"expected milliseconds >= 0, got {ms}")
    return ms


def _milliseconds_or_off(value: str) -> int | None:
    """Whole milliseconds, or -1 for off (None)."""
    if value.strip() == "-1":
        return None
    return _milliseconds(value)


def _decibels(value: str) -> float:
    try:
        db = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected decibels, got {value!r}") from exc
    if not math.isfinite(db):
        raise argparse.ArgumentTypeError(f"expected finite decibels, got {value!r}")
    return db


def _model(value: str) -> ModelSpec:
    name, sep, path = value.partition("=")
    return ModelSpec(name, path) if sep else ModelSpec(value, value)


def _key(value: str) -> tuple[str, str]:
    key, sep, tenant = value.partition("=")
    if not key:
        raise argparse.ArgumentTypeError("an API key cannot be empty")
    return key, tenant if sep else "default"


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="python -m gateway",
        description="Streaming transcription gateway speaking Deepgram's live protocol (/v1/listen), "
        "served by Whisper (faster-whisper) on this machine.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    net = p.add_argument_group("network")
    net.add_argument("--host", default=env("GATEWAY_HOST", "127.0.0.1"), help="address to bind")
    net.add_argument("--port", type=int, default=int(env("GATEWAY_PORT", "8000")), help="port (0: any free)")
    m = p.add_argument_group("model")
    m.add_argument(
        "--model",
        action="append",
        type=_model,
        metavar="[NAME=]PATH",
        help="model to serve: tiny.en (built in, default), base (pip extra 'base') or a CTranslate2 "
        "directory; repeat to serve several, the first is the default, clients pick with ?model=NAME",
    )
    m.add_argument("--device", choices=("cpu", "cuda", "auto"), default=env("GATEWAY_DEVICE", "cpu"))
    m.add_argument(
        "--compute-type",
        default=env("GATEWAY_COMPUTE_TYPE", "auto"),
        help="CTranslate2 compute type (int8, int8_float16, float16, float32; auto: int8 on CPU, float16 on GPU)",
    )
    m.add_argument("--beam-size", type=int, default=1, help="beam size of interim decodes")
    m.add_argument("--final-beam-size", type=int, default=1, help="beam size of the decode that makes a final")
    m.add_argument(
        "--cpu-threads",
        type=int,
        default=0,
        help="CTranslate2 CPU threads per decode (0: the cores shared out among --decode-workers)",
    )
    m.add_argument(
        "--decode-workers",
        type=int,
        default=0,
        help="model calls at once, one model in memory (0: one per core on CPU, 1 on CUDA)",
    )
    m.add_argument(
        "--encoder-pad",
        type=_encoder_pad,
        default=1.0,
        metavar="SECONDS|full",
        help="encode each window plus this much silence (at least --encoder-min seconds) instead of 30 s; "
        "'full': always 30 s (faster-whisper's transcribe, temperature fallback, when --max-batch is 1)",
    )
    m.add_argument("--encoder-min", type=float, default=10.0, help="shortest encoder input, seconds")
    m.add_argument(
        "--max-batch",
        type=int,
        default=0,
        help="most stream windows decoded in one batched model call (0: 1 on CPU, 16 on CUDA)",
    )
    m.add_argument(
        "--inference",
        choices=("local", "ray"),
        default=env("GATEWAY_INFERENCE", "local"),
        help="where decodes run: local (this process's model) or ray (a pool deployed by python -m gateway.pool)",
    )
    m.add_argument(
        "--ray-address",
        default=env("GATEWAY_RAY_ADDRESS", "auto"),
        help="with --inference ray: the Ray cluster (auto, HOST:PORT or ray://HOST:PORT)",
    )
    m.add_argument("--pool-app", default="whisper", help="with --inference ray: the pool's Serve application name")
    lim = p.add_argument_group("limits")
    lim.add_argument("--max-streams", type=int, default=64, help="concurrent streams; more are closed with 1013")
    lim.add_argument("--max-frame-bytes", type=int, default=1 << 20, help="largest WebSocket frame accepted")
    lim.add_argument("--max-upload-bytes", type=int, default=100 << 20, help="largest pre-recorded upload accepted")
    lim.add_argument("--idle-timeout", type=float, default=10.0, help="seconds without audio or message before 1011")
    s = p.add_argument_group("streaming")
    s.add_argument("--min-endpointing-ms", type=int, default=300, help="floor for the client's endpointing")
    s.add_argument(
        "--interim-step-ms",
        type=int,
        default=round(TranscriberConfig().interim_step_s * 1000),
        help="new audio between two decodes of a stream",
    )
    s.add_argument(
        "--commit-edge-ms",
        type=int,
        default=round(TranscriberConfig().commit_edge_s * 1000),
        help="audio a decode must hold after a word before the word is committed (right context)",
    )
    s.add_argument(
        "--final-after-ms",
        type=int,
        default=round((TranscriberConfig().final_after_s or 0) * 1000),
        help="committed words become a final once the oldest waited this long (or at a clause end); "
        "-1: only at endpoints",
    )
    s.add_argument(
        "--first-step-ms",
        type=int,
        default=round(TranscriberConfig().first_step_s * 1000),
        help="interim step until the utterance has shown a word (the first interim comes sooner)",
    )
    s.add_argument(
        "--commit-step-ms",
        type=int,
        default=round(TranscriberConfig().commit_step_s * 1000),
        help="once this much audio has come since the last decode and it holds the oldest unstable word's "
        "commit context, decode now instead of at the next step (0: off)",
    )
    s.add_argument(
        "--doubt-probability",
        type=float,
        default=TranscriberConfig().doubt_probability,
        help="words the model gives a lower probability wait for --doubt-edge-ms of context (0: off)",
    )
    s.add_argument(
        "--doubt-edge-ms",
        type=int,
        default=round(TranscriberConfig().doubt_edge_s * 1000),
        help="right context a doubtful word needs before it is committed",
    )
    s.add_argument(
        "--doubt-window-ms",
        type=int,
        default=round(TranscriberConfig().doubt_window_s * 1000),
        help="doubt applies while the window is shorter than this (the start of an utterance)",
    )
    s.add_argument(
        "--sure-probability",
        type=float,
        default=TranscriberConfig().sure_probability,
        help="words at least this probable commit from one decode with --sure-edge-ms of context, "
        "without waiting for a second decode to agree (0: off)",
    )
    s.add_argument(
        "--sure-edge-ms",
        type=int,
        default=round(TranscriberConfig().sure_edge_s * 1000),
        help="right context a sure word needs to commit from one decode",
    )
    s.add_argument(
        "--max-wait-ms",
        type=int,
        default=round(TranscriberConfig().max_wait_s * 1000),
        help="right context after which a word commits from one decode even if the last decode read it "
        "otherwise (caps how long a word the decodes keep changing waits; 0: off)",
    )
    s.add_argument(
        "--words-end-ms",
        type=int,
        default=round((TranscriberConfig().words_end_s or 0) * 1000),
        help="end an utterance the VAD holds open (noise) once decodes hear no word for endpointing + this "
        "after the last; -1: only the VAD ends utterances",
    )
    s.add_argument(
        "--quiet-decodes",
        type=int,
        default=TranscriberConfig().quiet_decodes,
        help="interim decodes with no new speech while words wait for agreement",
    )
    s.add_argument(
        "--soft-window", type=float, default=12.0, help="window seconds after which stable words become finals"
    )
    s.add_argument("--vad-aggressiveness", type=int, choices=range(4), default=2, help="webrtcvad mode")
    s.add_argument(
        "--vad-noise-gate",
        action="store_true",
        help="adaptive noise gate: wandering background noise cannot hold an utterance open "
        "(but quiet speech in such noise may be missed)",
    )
    s.add_argument(
        "--vad-weak-hold-ms",
        type=_milliseconds,
        default=VadConfig().weak_hold_ms,
        help="voiced frames less than --vad-strong-db over the noise floor (line noise, a room's tail) hold "
        "an utterance open only this long after its last stronger frame (a large value: always)",
    )
    s.add_argument(
        "--vad-strong-db",
        type=_decibels,
        default=VadConfig().strong_snr_db,
        help="a voiced frame this many dB over the noise floor is strong (see --vad-weak-hold-ms)",
    )
    s.add_argument(
        "--vad-resume-ms",
        type=_milliseconds_or_off,
        default=VadConfig().resume_after_ms,
        help="after a pause this long a click or a breath (a voiced frame more than --vad-resume-db under the "
        "speech's recent peak, with no onset's evidence) no longer restarts the endpointing silence (-1: off)",
    )
    s.add_argument(
        "--vad-resume-db",
        type=_decibels,
        default=VadConfig().resume_db,
        help="a voiced frame within this many dB of the recent peak resumes speech after such a pause at once",
    )
    a = p.add_argument_group("auth")
    a.add_argument(
        "--api-key",
        action="append",
        type=_key,
        metavar="KEY[=TENANT]",
        help="accepted API key (repeatable; also GATEWAY_API_KEYS, comma-separated); none: open to all",
    )
    c = p.add_argument_group("call center (Twilio Media Streams, stored transcripts)")
    c.add_argument(
        "--store",
        default=env("GATEWAY_STORE", "gateway-transcripts.sqlite3"),
        metavar="PATH",
        help="SQLite file keeping every final of every stream ('none': keep nothing)",
    )
    c.add_argument("--webhook-url", default=env("GATEWAY_WEBHOOK_URL"), help="POST finals here as JSON batches")
    c.add_argument(
        "--twilio-auth-token",
        help="check X-Twilio-Signature on /v1/twilio (also TWILIO_AUTH_TOKEN; not shown here, it is a secret)",
    )
    c.add_argument(
        "--public-url",
        default=env("GATEWAY_PUBLIC_URL"),
        help="base URL Twilio connects to (e.g. wss://gw.example.com) when behind a proxy; default wss://<Host>",
    )
    c.add_argument("--twilio-tenant", default="default", help="tenant owning Twilio calls (for API-key reads)")
    relay_cli.add_arguments(p)
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=float(env("GATEWAY_DRAIN_TIMEOUT", "20")),
        help="on SIGTERM, seconds open streams may go on (new ones get 503) before their finals are flushed "
        "and they are closed with 1012; a second SIGTERM exits at once",
    )
    p.add_argument("--log-level", default=env("GATEWAY_LOG_LEVEL", "INFO"))
    p.add_argument(
        "--log-format", choices=("text", "json"), default=env("GATEWAY_LOG_FORMAT", "text"), help="log line format"
    )
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    keys = dict(args.api_key or [])
    for item in filter(None, (os.environ.get("GATEWAY_API_KEYS") or "").split(",")):
        key, tenant = _key(item.strip())
        keys[key] = tenant
    base = TranscriberConfig()
    transcriber = replace(
        base,
        min_endpointing_ms=args.min_endpointing_ms,
        interim_step_s=args.interim_step_ms / 1000,
        commit_edge_s=args.commit_edge_ms / 1000,
        final_after_s=None if args.final_after_ms < 0 else args.final_after_ms / 1000,
        first_step_s=args.first_step_ms / 1000,
        commit_step_s=args.commit_step_ms / 1000,
        doubt_probability=args.doubt_probability,
        doubt_edge_s=args.doubt_edge_ms / 1000,
        doubt_window_s=args.doubt_window_ms / 1000,
        quiet_decodes=args.quiet_decodes,
        sure_probability=args.sure_probability,
        sure_edge_s=args.sure_edge_ms / 1000,
        max_wait_s=args.max_wait_ms / 1000,
        words_end_s=None if args.words_end_ms < 0 else args.words_end_ms / 1000,
        soft_window_s=args.soft_window,
        vad=replace(
            base.vad,
            aggressiveness=args.vad_aggressiveness,
            noise_gate=args.vad_noise_gate,
            weak_hold_ms=args.vad_weak_hold_ms,
            strong_snr_db=args.vad_strong_db,
            resume_after_ms=args.vad_resume_ms,
            resume_db=args.vad_resume_db,
        ),
    )
    return ServerConfig(
        host=args.host,
        port=args.port,
        models=tuple(args.model or ()),
        device=args.device,
        compute_type=args.compute_type,
        beam_size=args.beam_size,
        final_beam_size=args.final_beam_size,
        cpu_threads=args.cpu_threads,
        encoder_pad_s=args.encoder_pad,
        encoder_min_s=args.encoder_min,
        max_batch=args.max_batch,
        decode_workers=args.decode_workers,
        inference=args.inference,
        ray_address=args.ray_address,
        pool_app=args.pool_app,
        api_keys=keys,
        max_streams=args.max_streams,
        max_frame_bytes=args.max_frame_bytes,
        max_upload_bytes=args.max_upload_bytes,
        idle_timeout_s=args.idle_timeout,
        transcriber=transcriber,
        relay=relay_cli.relay_config(args),
        routing=relay_cli.routing_policy(args),
        store_path=None if args.store.strip().lower() in ("", "none") else args.store,
        webhook_url=args.webhook_url or None,
        twilio_auth_token=args.twilio_auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or None,
        public_url=args.public_url or None,
        twilio_tenant=args.twilio_tenant,
        drain_timeout_s=args.drain_timeout,
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    if logging.getLogger().level > logging.DEBUG:
        # Per-decode and per-connection INFO lines from the libraries would flood a busy server's log.
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        logging.getLogger("websockets").setLevel(logging.WARNING)
    from gateway.server.ops import run

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(config_from_args(args)))


if __name__ == "__main__":
    main()
