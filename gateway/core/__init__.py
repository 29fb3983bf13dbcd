"""The pure, sans-I/O core: bytes and messages in, values and events out.

No sockets, no asyncio, no threads, no model: every module here can be driven
synchronously by a test. Audio flows through it in this order:

``params`` (query string -> StreamParams) -> ``audio`` (decode, resample to
16 kHz) -> ``vad`` (speech start/end with hysteresis) -> ``transcriber``
(the window of at most 30 s and when to decode it) -> ``commit`` (which words
are stable) -> ``messages`` (Deepgram-shaped Results/Metadata/...).
``types`` holds the values exchanged with engines, ``guard`` the hallucination
filters shared by the Whisper backends, ``timeline`` the reordering of
timestamped telephony frames, and ``errors`` the close codes and the one
exception tree everything raises.
"""
