"""Real-time streaming transcription gateway speaking Deepgram's live protocol."""

__version__ = "0.1.0"
