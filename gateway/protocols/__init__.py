"""Front doors: one sans-I/O protocol per wire format, each under a thin asyncio shell.

``listen`` is Deepgram's live protocol (``/v1/listen``) as a state machine and
``listen_session`` its shell; ``twilio`` is Twilio Media Streams and
``twilio_session`` its shell. The shells read frames, feed the protocol, hand
audio to an engine stream and deliver what it emits; they import the core,
the engines and the transcript fan-out, never the server.
"""
