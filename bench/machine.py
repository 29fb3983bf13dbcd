"""A short description of the machine a bench ran on, for the results file."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max``), if limited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _gpus() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def describe() -> dict[str, object]:
    """CPU model, usable cores, memory, GPUs, OS and Python version."""
    import psutil  # type: ignore[import-untyped]

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "cgroup_cpu_quota": _cpu_quota(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": _gpus(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def one_line(machine: dict[str, object]) -> str:
    """E.g. ``2 CPUs (AMD EPYC ...), 23.4 GiB, no GPU``."""
    gpus = machine.get("gpus") or []
    gpu = ", ".join(str(g) for g in gpus) if isinstance(gpus, list) and gpus else "no GPU"
    return f"{machine.get('usable_cpus')} CPUs ({machine.get('cpu')}), {machine.get('memory_gib')} GiB, {gpu}"
