#!/usr/bin/env bash
# Install the WhisperLive peer into its own virtual environment.
#
#   bash bench/setup_peers.sh [VENV_DIR]      (default: .peers/whisperlive-venv)
#
# WhisperLive 0.10.0 declares heavy, pinned requirements (PyAudio, torch, torchaudio,
# openvino, openai-whisper, librosa, tokenizers==0.20.3, CUDA wheels, ...) that clash
# with ours.  Its faster_whisper server path imports only: torch (device detection),
# ctranslate2, huggingface_hub, faster_whisper (audio/feature/tokenizer/vad helpers),
# tokenizers, tqdm, onnxruntime (Silero VAD), numpy, websockets, fastapi, starlette
# and uvicorn.  So whisper-live goes in with --no-deps and only those are added.
#
# torch: a CPU build is preferred (a CUDA build from PyPI is several GB).  If the
# base interpreter already has torch (the GPU machine does), the venv reuses it via
# --system-site-packages instead of installing one.
set -euo pipefail

VENV="${1:-.peers/whisperlive-venv}"
PYTHON="${PYTHON:-python3}"
WL_VERSION="${WL_VERSION:-0.10.0}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0+cpu}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import whisper_live.server" 2>/dev/null; then
    echo "setup_peers: WhisperLive already installed in $VENV" >&2
    exit 0
fi

if "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "setup_peers: reusing the base interpreter's torch (--system-site-packages)" >&2
    "$PYTHON" -m venv --system-site-packages "$VENV"
    need_torch=0
else
    "$PYTHON" -m venv "$VENV"
    need_torch=1
fi
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

if [ "$need_torch" = 1 ]; then
    # Local version "+cpu" only matches a CPU wheel; fall back to the plain pin only
    # when explicitly allowed, since that one pulls the CUDA build and its libraries.
    if ! "${pip[@]}" "$TORCH_SPEC"; then
        if [ "${ALLOW_CUDA_TORCH:-0}" = 1 ]; then
            "${pip[@]}" "torch==2.13.0"
        else
            echo "setup_peers: could not install $TORCH_SPEC (a CPU build of torch)." >&2
            echo "  Set TORCH_SPEC to a CPU wheel you can reach, or ALLOW_CUDA_TORCH=1 for the CUDA build." >&2
            exit 1
        fi
    fi
fi

"${pip[@]}" --no-deps "whisper-live==$WL_VERSION"
# What its faster_whisper backend imports (faster-whisper 1.2.0 is WhisperLive's own pin;
# it brings ctranslate2, tokenizers, onnxruntime, huggingface_hub, av and tqdm; its utils import
# requests, which huggingface_hub 1.x no longer brings). pip then lists the declared requirements
# left out on purpose as "conflicts": expected.
"${pip[@]}" "faster-whisper==1.2.0" requests "websockets>=13" "numpy<2.5,>=1.26.4" fastapi uvicorn

"$VENV/bin/python" -c "import whisper_live.server, whisper_live.backend.faster_whisper_backend" \
    && echo "setup_peers: WhisperLive $WL_VERSION ready in $VENV" >&2
