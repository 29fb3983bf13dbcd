"""Engines: what turns a window of 16 kHz audio into words (Whisper locally, Deepgram relayed)."""
