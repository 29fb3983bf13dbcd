"""Separate environments for third-party Deepgram clients, built once and cached.

Each client library runs unmodified in its own interpreter (a virtualenv per
deepgram-sdk major version and per voice-agent framework's Deepgram plugin,
a Node project for ``@deepgram/sdk``), created
under the git-ignored ``.cache/clients/`` from the public registries the first
time a session needs it and reused afterwards: a marker file, written only
after a successful install, names what was installed. A lock keeps two
sessions from building the same environment at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GATEWAY_CLIENT_CACHE", ROOT / ".cache" / "clients"))
CLIENTS = Path(__file__).resolve().parent / "clients"

PYTHON_SDKS = {
    # The newest release of each major line the issue names; pip resolves it.
    "dg3": "deepgram-sdk>=3,<4",
    "dg4": "deepgram-sdk>=4,<5",
}
NODE_SDK = "@deepgram/sdk@^5"
AGENT_PLUGINS = {
    # Voice-agent frameworks' Deepgram STT plugins, pinned exactly: (requirements, distribution whose version counts).
    # Pipecat's "deepgram" extra only: no VAD runs (the test plays a VAD's frames), so no "silero" extra.
    # Sizes measured on the 2-vCPU container: livekit 395 MB in 49 s, pipecat 536 MB in 69 s (numba, onnxruntime).
    "livekit": (("livekit-agents==1.8.9", "livekit-plugins-deepgram==1.8.9"), "livekit-plugins-deepgram"),
    "pipecat": (("pipecat-ai[deepgram]==1.14.0",), "pipecat-ai"),
}


class ClientEnvError(RuntimeError):
    """The environment could not be installed (registry unreachable, build failed)."""


@dataclass(frozen=True, slots=True)
class PythonClient:
    name: str
    python: Path
    version: str


@dataclass(frozen=True, slots=True)
class NodeClient:
    node: str
    modules: Path
    version: str


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClientEnvError(f"{' '.join(cmd)}: {exc}") from None
    if done.returncode != 0:
        raise ClientEnvError(f"{' '.join(cmd)} exited {done.returncode}: {(done.stderr or done.stdout)[-1500:]}")
    return done.stdout


def python_client(name: str) -> PythonClient:
    """A virtualenv holding ``PYTHON_SDKS[name]`` (and nothing of the gateway)."""
    return _virtualenv(name, (PYTHON_SDKS[name],), "deepgram-sdk")


def agent_plugin(name: str) -> PythonClient:
    """A virtualenv holding ``AGENT_PLUGINS[name]``: one voice-agent framework with its Deepgram plugin."""
    requirements, distribution = AGENT_PLUGINS[name]
    return _virtualenv(name, requirements, distribution, timeout=900)


def _virtualenv(name: str, requirements: tuple[str, ...], distribution: str, timeout: float = 600) -> PythonClient:
    requirement = " ".join(requirements)
    home = CACHE / name
    marker = home / ".installed.json"
    python = home / "bin" / "python"
    with _locked(name):
        if marker.is_file():
            info = json.loads(marker.read_text())
            if info.get("requirement") == requirement and python.exists():
                return PythonClient(name, python, info["version"])
        shutil.rmtree(home, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements]
        _run(pip, timeout=timeout)
        probe = f"import importlib.metadata as m; print(m.version({distribution!r}))"
        version = _run([str(python), "-c", probe]).strip()
        marker.write_text(json.dumps({"requirement": requirement, "version": version}))
        return PythonClient(name, python, version)


def node_client() -> NodeClient:
    """A Node project with ``@deepgram/sdk`` installed from npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise ClientEnvError("node and npm are not installed (scripts/setup-system.sh installs them)")
    home = CACHE / "node"
    marker = home / ".installed.json"
    with _locked("node"):
        if marker.is_file():
            info = json.loads(marker.read_text())
            if info.get("requirement") == NODE_SDK and (home / "node_modules" / "@deepgram" / "sdk").is_dir():
                return NodeClient(node, home / "node_modules", info["version"])
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        (home / "package.json").write_text(json.dumps({"name": "gateway-test-clients", "private": True}))
        _run([npm, "install", "--no-audit", "--no-fund", "--silent", NODE_SDK], cwd=home)
        package = json.loads((home / "node_modules" / "@deepgram" / "sdk" / "package.json").read_text())
        marker.write_text(json.dumps({"requirement": NODE_SDK, "version": package["version"]}))
        return NodeClient(node, home / "node_modules", package["version"])


def main_client() -> PythonClient:
    """deepgram-sdk 7.x: the gateway's own dependency, in this interpreter's environment."""
    import importlib.metadata

    return PythonClient("dg7", Path(sys.executable), importlib.metadata.version("deepgram-sdk"))
