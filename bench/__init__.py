"""Streaming-transcription bench: latency, accuracy and capacity of Deepgram-protocol targets and peers.

The package is a sans-I/O core (pacing, timelines, latency bookkeeping, WER,
statistics, report rendering) plus thin asyncio shells (a Deepgram live
client, a WhisperLive client, a server launcher and a process sampler).
Run it with ``python -m bench run ...``; see bench/README.md.
"""

__version__ = "0.1.0"
