"""Helpers for the browser tests: a speech WAV, a gateway subprocess, a
static file server, and the Chromium launch options (the reverse proxy is
:mod:`tests.prefix_proxy`).

Nothing here imports the gateway package: the tests drive the real server
as a subprocess, exactly as an operator starts it.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path(os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium"))

Launch = Callable[..., Any]
"""The ``launch`` fixture (conftest.py): ``launch(wav, *, fake_ui=True, extra_args=(), **context_options)``
starts Chromium with a fresh profile and returns its Playwright browser context."""

# Sentences espeak-ng says clearly enough for tiny.en, separated by pauses.
SENTENCES = (
    "Hello world.",
    "This is a test of live captions.",
    "The quick brown fox jumps over the lazy dog.",
    "Good morning everyone, welcome to the meeting.",
)
EXPECTED_WORDS = frozenset(
    {
        "test",
        "live",
        "captions",
        "caption",
        "quick",
        "brown",
        "fox",
        "lazy",
        "dog",
        "morning",
        "everyone",
        "welcome",
        "meeting",
    }
)


def chromium_args(wav: Path | None, *, fake_ui: bool = True, extra: tuple[str, ...] = ()) -> list[str]:
    """Flags for Debian's chromium: quiet, no network chatter, a fake microphone fed from ``wav``."""
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-device-for-media-stream",
    ]
    if fake_ui:
        # Answers the permission prompt with "allow" (and overrides a denied permission).
        args.append("--use-fake-ui-for-media-stream")
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    args.extend(extra)
    return args


def make_speech_wav(directory: Path, *, rate: int = 48_000) -> Path:
    """Synthesise the test sentences with espeak-ng and join them with pauses (16-bit mono WAV).

    Chromium's fake capture loops the file, so it ends with a longer pause.
    """
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is required for the browser tests (apt-get install espeak-ng sox)")
    directory.mkdir(parents=True, exist_ok=True)
    parts: list[Path] = []
    silence = directory / "pause.wav"
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(silence), "trim", "0", "0.9"], check=True)
    for i, sentence in enumerate(SENTENCES):
        part = directory / f"sentence{i}.wav"
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", "130", "-w", str(part), sentence], check=True, stdout=subprocess.DEVNULL
        )
        parts += [silence, part]
    parts += [silence, silence]
    joined = directory / "joined.wav"
    subprocess.run(["sox", *map(str, parts), str(joined)], check=True)
    out = directory / f"speech-{rate}.wav"
    subprocess.run(
        ["sox", str(joined), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer", str(out)], check=True
    )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """``python -m gateway`` on a free loopback port, logging to a file."""

    def __init__(self, log_path: Path, *, api_key: str | None = None, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.api_key = api_key
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}/"
        cmd = [
            sys.executable,
            "-m",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--store",
            "none",
            *extra,
        ]
        if api_key:
            cmd += ["--api-key", api_key]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "v1/config", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise TimeoutError(f"gateway did not answer HTTP within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


@contextlib.contextmanager
def running_gateway(log_path: Path, **kwargs: object) -> Iterator[Gateway]:
    gw = Gateway(log_path, **kwargs)  # type: ignore[arg-type]
    try:
        gw.wait_ready()
        yield gw
    finally:
        gw.stop()


class StaticServer:
    """Serves ``directory`` at ``/static/`` and a blank page at ``/unit.html`` on loopback (no gateway)."""

    PAGE = b"<!doctype html><meta charset=utf-8><title>unit</title><p>unit tests</p>"

    def __init__(self, directory: Path) -> None:
        page = self.PAGE

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self) -> None:
                if self.path == "/unit.html":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                elif self.path.startswith("/static/"):
                    self.path = self.path[len("/static") :]
                    super().do_GET()
                else:
                    self.send_error(404)

            def guess_type(self, path: str | os.PathLike[str]) -> str:
                return "text/javascript" if str(path).endswith(".js") else super().guess_type(path)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="static-server", daemon=True)

    def __enter__(self) -> StaticServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)
