"""``python -m bench soak``: hold N connections on a real gateway for T seconds, with faults.

Most connections sit idle with KeepAlive; a few stream real speech at real
time (each recording's finals checked against the transcript store: none
lost, none duplicated); some connect and drop (half say CloseStream early,
half vanish mid-utterance); a few go through the relay to a faulty upstream
(:mod:`bench.soak_upstream`: refused, dropped, stalled) and must fail over.
Midway the store's disk fills up for a while (a small tmpfs, when running
as root): finals must still reach the clients, the errors be counted, and
nothing crash. Reports errors, gateway RSS per connection, event-loop lag
p99 (the gateway's own histogram) and lost/duplicated finals.

This module runs it (gateway, faults, ramp, hold, report, command line); the
clients and their tally are :mod:`bench.soak_clients`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench import launcher
from bench.data import Audio, load_dataset, read_wav, resample
from bench.soak_clients import Soak, http_get
from bench.soak_upstream import FaultyUpstream
from bench.synth import SENTENCES, compose, espeak


@dataclass(slots=True)
class SoakConfig:
    connections: int = 1000
    duration_s: float = 60.0
    speakers: int = 2
    relay_speakers: int = 1
    churn_per_s: float = 2.0
    keepalive_s: float = 5.0
    connect_per_s: float = 100.0
    disk_full_s: float = 10.0
    data: Path | None = None
    out: Path = Path("artifacts/soak")
    gateway_args: list[str] = field(default_factory=list)


def speech_clips(data: Path | None, limit: int = 6) -> list[Audio]:
    if data is not None:
        clips = []
        for rec in load_dataset(data)[:limit]:
            audio, rate = read_wav(rec.path)
            clips.append(resample(audio, rate))
        return clips
    return [compose([espeak(s) for s in SENTENCES[i : i + 2]]) for i in range(0, 6, 2)]


# -- the run ------------------------------------------------------------------------


def _mount_small_disk(path: Path, size: str = "16m") -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _truncate_wal(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db, timeout=10.0)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _fill(path: Path) -> None:
    with (path / "filler").open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * (1 << 16))
            out.flush()


def _buckets(text: str, name: str) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            out.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    return out


def _histogram_quantile(text: str, name: str, q: float, since: str = "") -> float | None:
    """The upper bound of the bucket holding quantile ``q`` (of what was observed after ``since``)."""
    before = dict(_buckets(since, name))
    buckets = [(bound, count - before.get(bound, 0.0)) for bound, count in _buckets(text, name)]
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= q * total:
            return bound
    return None


def _metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


async def run_soak(cfg: SoakConfig) -> dict[str, Any]:
    cfg.out.mkdir(parents=True, exist_ok=True)
    clips = speech_clips(cfg.data)
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    disk = tmp / "disk"
    small_disk = _mount_small_disk(disk)
    if not small_disk:
        disk.mkdir(parents=True, exist_ok=True)
    port = launcher.free_port()
    async with FaultyUpstream() as upstream:
        extra = [
            "--store", str(disk / "soak.sqlite3"), "--max-streams", str(cfg.connections + 200),
            "--idle-timeout", str(max(30.0, 3 * cfg.keepalive_s)), "--deepgram-api-key", "soak-fake",
            "--relay-url", upstream.url, "--relay-stall-timeout", "3", "--log-level", "WARNING", *cfg.gateway_args,
        ]  # fmt: skip
        server = await launcher.start(
            "gateway", launcher.gateway_argv(port, None, extra), port, cfg.out / "gateway.log"
        )
        try:
            return await _drive(cfg, server, port, clips, upstream, disk if small_disk else None)
        finally:
            await launcher.stop(server)
            if small_disk:
                await asyncio.to_thread(subprocess.run, ["umount", str(disk)], check=False)
            shutil.rmtree(tmp, ignore_errors=True)


async def _drive(
    cfg: SoakConfig, server: launcher.Server, port: int, clips: list[Audio], upstream: FaultyUpstream, disk: Path | None
) -> dict[str, Any]:
    soak = Soak(port, clips, keepalive_s=cfg.keepalive_s, churn_per_s=cfg.churn_per_s)
    proc = psutil.Process(server.proc.pid)
    while (await http_get(soak.http, "/readyz"))[0] != 200:  # noqa: ASYNC110 (polling another process)
        await asyncio.sleep(0.5)
    rss_base = proc.memory_info().rss
    tasks: list[asyncio.Task[None]] = []
    idle_n = max(0, cfg.connections - cfg.speakers - cfg.relay_speakers)
    for i in range(cfg.speakers):
        tasks.append(asyncio.create_task(soak.speaker(i)))
    for i in range(cfg.relay_speakers):
        tasks.append(asyncio.create_task(soak.speaker(i, relay=True)))
    ramp_start = time.monotonic()
    for i in range(idle_n):
        tasks.append(asyncio.create_task(soak.idle()))
        if (i + 1) % 10 == 0:
            await asyncio.sleep(max(0.0, ramp_start + (i + 1) / cfg.connect_per_s - time.monotonic()))
    ramp_s = time.monotonic() - ramp_start
    churn = asyncio.create_task(soak.churner())
    hold_start = time.monotonic()
    hold_metrics = (await http_get(soak.http, "/metrics"))[1].decode()
    rss_peak = 0
    disk_full_at = hold_start + cfg.duration_s / 3 if disk is not None else None
    filled = False
    while time.monotonic() - hold_start < cfg.duration_s:
        await asyncio.sleep(1.0)
        rss_peak = max(rss_peak, proc.memory_info().rss)
        if disk_full_at is not None and not filled and time.monotonic() >= disk_full_at:
            assert disk is not None
            # An empty WAL first: SQLite reuses a grown WAL in place, so a full disk would only
            # bite once the WAL or the database had to grow again.
            await asyncio.to_thread(_truncate_wal, disk / "soak.sqlite3")
            await asyncio.to_thread(_fill, disk)
            filled = True
            soak.disk_full = (time.monotonic(), float("inf"))
        full = soak.disk_full
        if (
            disk is not None
            and full is not None
            and full[1] == float("inf")
            and time.monotonic() - full[0] >= cfg.disk_full_s
        ):
            (disk / "filler").unlink()
            soak.disk_full = (full[0], time.monotonic() + 5.0)  # writes queued meanwhile settle
    _, body = await http_get(soak.http, "/metrics")
    held = soak.open_now
    rss_loaded = proc.memory_info().rss
    soak.stop.set()
    churn.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(2.0)
    _, end_body = await http_get(soak.http, "/metrics")
    text, end_text = body.decode(), end_body.decode()
    t = soak.tally
    result = {
        "config": {**asdict(cfg), "out": str(cfg.out), "data": str(cfg.data) if cfg.data else "espeak"},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "ramp_s": round(ramp_s, 1),
        "held_at_end": held,
        "peak_open": soak.peak_open,
        "gateway_rss_base_mib": round(rss_base / 2**20, 1),
        "gateway_rss_loaded_mib": round(rss_loaded / 2**20, 1),
        "gateway_rss_peak_mib": round(rss_peak / 2**20, 1),
        "rss_per_connection_kib": round((rss_loaded - rss_base) / max(1, held) / 1024, 1),
        "event_loop_lag_p99_s": _histogram_quantile(end_text, "gateway_event_loop_lag_seconds", 0.99),
        "event_loop_lag_p50_s": _histogram_quantile(end_text, "gateway_event_loop_lag_seconds", 0.50),
        "event_loop_lag_p99_hold_s": _histogram_quantile(text, "gateway_event_loop_lag_seconds", 0.99, hold_metrics),
        "streams_open_metric": _metric(text, "gateway_streams_open"),
        "store_errors": _metric(end_text, "gateway_store_errors_total"),
        "relay_failovers": _metric(end_text, "gateway_relay_failovers_total"),
        "upstream_faults": upstream.counts,
        "disk_full": f"tmpfs filled for {cfg.disk_full_s:.0f} s" if disk is not None else "skipped (needs root)",
        "errors": dict(t.errors),
        "errors_total": sum(t.errors.values()),
        "closes": dict(t.closes),
        "idle_ok": t.idle_ok,
        "speech_sessions": t.sessions,
        "relay_sessions": t.relay_sessions,
        "disk_full_sessions": t.disk_full_sessions,
        "churned_closestream": t.churned,
        "vanished_mid_utterance": t.vanished,
        "finals_received": t.finals_received,
        "finals_stored_checked": t.finals_stored,
        "lost_finals": t.lost_finals,
        "duplicated_finals": t.duplicated_finals,
        "gateway_alive": server.proc.poll() is None,
    }
    (cfg.out / "soak.json").write_text(json.dumps(result, indent=2))
    return result


def summary(result: dict[str, Any]) -> str:
    keys = (
        "peak_open", "held_at_end", "ramp_s", "errors_total", "idle_ok", "speech_sessions", "relay_sessions",
        "disk_full_sessions", "churned_closestream", "vanished_mid_utterance", "finals_received",
        "finals_stored_checked", "lost_finals", "duplicated_finals", "rss_per_connection_kib", "gateway_rss_base_mib",
        "gateway_rss_loaded_mib", "event_loop_lag_p50_s", "event_loop_lag_p99_s",
        "event_loop_lag_p99_hold_s", "store_errors", "relay_failovers",
        "upstream_faults", "disk_full", "gateway_alive", "errors",
    )  # fmt: skip
    return "\n".join(f"{k}: {result[k]}" for k in keys)


def add_arguments(p: Any) -> None:
    p.add_argument("--connections", type=int, default=1000, help="concurrent connections held")
    p.add_argument("--duration", type=float, default=60.0, help="seconds to hold them (after the ramp)")
    p.add_argument("--speakers", type=int, default=2, help="connections streaming speech at real time (local engine)")
    p.add_argument("--relay-speakers", type=int, default=1, help="speech through the relay to a faulty upstream")
    p.add_argument("--churn", type=float, default=2.0, help="connect-and-drop clients per second")
    p.add_argument("--keepalive", type=float, default=5.0, help="seconds between an idle client's KeepAlives")
    p.add_argument("--connect-rate", type=float, default=100.0, help="new idle connections per second in the ramp")
    p.add_argument("--disk-full", type=float, default=10.0, help="seconds the store's disk stays full (root only)")
    p.add_argument("--data", type=Path, help="JSONL manifest of speech (default: espeak-ng sentences)")
    p.add_argument("--out", type=Path, default=Path("artifacts") / f"soak-{time.strftime('%Y%m%d-%H%M%S')}")
    p.add_argument("--gateway-arg", action="append", default=[], help="extra gateway option (repeatable)")


def config_from(args: Any) -> SoakConfig:
    return SoakConfig(
        connections=args.connections,
        duration_s=args.duration,
        speakers=args.speakers,
        relay_speakers=args.relay_speakers,
        churn_per_s=args.churn,
        keepalive_s=args.keepalive,
        connect_per_s=args.connect_rate,
        disk_full_s=args.disk_full,
        data=args.data,
        out=args.out,
        gateway_args=list(args.gateway_arg),
    )


def main(args: Any) -> int:
    result = asyncio.run(run_soak(config_from(args)))
    print(summary(result))
    bad = result["errors_total"] or result["lost_finals"] or result["duplicated_finals"] or not result["gateway_alive"]
    return 1 if bad else 0
