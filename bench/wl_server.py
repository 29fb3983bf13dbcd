"""Start a WhisperLive server on a local model file. Runs in WhisperLive's own venv, not ours.

    .peers/whisperlive-venv/bin/python bench/wl_server.py --port 9090 --model PATH

WhisperLive 0.10.0 ships no command-line entry point in its wheel; this does what its
``run_server.py`` does for the faster_whisper backend with a custom model: one model shared
by all clients (``single_model``), loaded when the first client connects.
"""

from __future__ import annotations

import argparse
import logging


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--model", required=True, help="CTranslate2 Whisper model folder")
    parser.add_argument("--max-clients", type=int, default=256)
    parser.add_argument("--max-connection-time", type=int, default=3600)
    parser.add_argument(
        "--cpu-threads", type=int, default=0, help="OMP_NUM_THREADS for CTranslate2 (0: leave the default)"
    )
    args = parser.parse_args()
    if args.cpu_threads:
        import os

        os.environ["OMP_NUM_THREADS"] = str(args.cpu_threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from whisper_live.server import TranscriptionServer  # type: ignore[import-not-found]

    TranscriptionServer().run(
        args.host,
        port=args.port,
        backend="faster_whisper",
        faster_whisper_custom_model_path=args.model,
        single_model=True,
        max_clients=args.max_clients,
        max_connection_time=args.max_connection_time,
    )


if __name__ == "__main__":
    main()
