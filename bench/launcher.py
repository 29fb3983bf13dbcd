"""Start servers under test as subprocesses on free loopback ports and wait until they listen."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WL_VENV = REPO / ".peers" / "whisperlive-venv"


class LaunchError(RuntimeError):
    """A server did not come up."""


def free_port(host: str = HOST) -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class Server:
    """A running server: its process, where it listens and where it logs."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    argv: list[str]

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT``."""
        return f"ws://{HOST}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def _wait_listening(server: Server, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise LaunchError(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, server.port), 1.0)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.25)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    await stop(server)
    raise LaunchError(f"{server.name} did not listen on {server.port} within {within:.0f} s:\n{server.log_tail()}")


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group (so it can be stopped with its children), logging to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


async def start(
    name: str, argv: list[str], port: int, log: Path, within: float = 300.0, env: dict[str, str] | None = None
) -> Server:
    """Run ``argv`` (which must listen on ``port``), logging to ``log``; return once it accepts TCP."""
    server = Server(name=name, proc=spawn(argv, log, env), port=port, log=log, argv=argv)
    await _wait_listening(server, within)
    return server


def gateway_argv(port: int, model: str | None, extra: list[str], python: str = sys.executable) -> list[str]:
    """Command line of our gateway on ``port`` with ``--model`` and extra options."""
    argv = [python, "-m", "gateway", "--host", HOST, "--port", str(port)]
    if model:
        argv += ["--model", model]
    if "--store" not in extra:
        # No transcript database left behind in the working directory (pass --store PATH to measure with one).
        argv += ["--store", "none"]
    return argv + extra


def whisperlive_argv(
    port: int, model: str, extra: list[str], python: str = str(WL_VENV / "bin" / "python")
) -> list[str]:
    """Command line of the WhisperLive server (by default in its own venv) on ``port`` with ``model``."""
    return [
        python,
        str(BENCH_DIR / "wl_server.py"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--model",
        model,
        *extra,
    ]


def ensure_whisperlive(venv: Path = WL_VENV) -> None:
    """Install WhisperLive into ``venv`` with bench/setup_peers.sh unless it is there already."""
    python = venv / "bin" / "python"
    if python.exists():
        probe = subprocess.run([str(python), "-c", "import whisper_live.server"], capture_output=True, check=False)
        if probe.returncode == 0:
            return
    print(f"bench: installing WhisperLive into {venv} (bench/setup_peers.sh)", file=sys.stderr, flush=True)
    done = subprocess.run(["bash", str(BENCH_DIR / "setup_peers.sh"), str(venv)], cwd=REPO, check=False)
    if done.returncode != 0:
        raise LaunchError("bench/setup_peers.sh failed; see its output above")


def _terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def stop(server: Server, grace: float = 10.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers past ``grace`` seconds."""
    await asyncio.to_thread(_terminate, server.proc, grace)
