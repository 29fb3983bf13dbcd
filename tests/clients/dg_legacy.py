"""Drive deepgram-sdk 3.x/4.x, unmodified, against a gateway; runs in that SDK's own virtualenv.

Usage: python dg_legacy.py CONFIG_JSON. Streams a 16 kHz mono WAV at real time
with ``LiveOptions(**options)``, optionally sends Finalize and Configure, optionally
waits (at most 60 s) for a final containing ``await_final`` and, with
``await_speech_final``, for a ``speech_final`` result, then calls the SDK's
own ``finish()``; writes every event the SDK hands out, one JSON object a line, to
``config["out"]``.
"""

import json
import sys
import threading
import time
import wave

from deepgram import DeepgramClient, DeepgramClientOptions, LiveOptions, LiveTranscriptionEvents


def main() -> None:
    config = json.loads(sys.argv[1])
    lock = threading.Lock()
    with open(config["out"], "w") as out:
        run(config, lock, out)


def run(config: dict, lock: threading.Lock, out) -> None:

    finals: list[str] = []
    speech_finals: list[bool] = []

    def record(kind: str, body: object) -> None:
        with lock:
            out.write(json.dumps({"event": kind, "t": time.monotonic(), "body": body}) + "\n")
            out.flush()
            if kind == "Transcript" and isinstance(body, dict) and body.get("is_final"):
                finals.append(str(body["channel"]["alternatives"][0]["transcript"]).lower())
                if body.get("speech_final"):
                    speech_finals.append(True)

    def handler(kind: str):
        def on(_client, *args, **kwargs):
            # The SDK passes the parsed message by a keyword named after its kind (result, metadata, unhandled...).
            named = ("result", "metadata", "unhandled", "error", "close", "utterance_end", "speech_started")
            result = args[0] if args else next((kwargs[k] for k in named if k in kwargs), None)
            to_dict = getattr(result, "to_dict", None)
            body = to_dict() if callable(to_dict) else getattr(result, "raw", None) or str(result)
            record(kind, body)

        return on

    client = DeepgramClient("test-key", DeepgramClientOptions(url=config["url"]))
    listen = getattr(client.listen, "websocket", None) or client.listen.live
    conn = listen.v("1")
    for kind in ("Transcript", "Metadata", "Unhandled", "Error", "Close", "UtteranceEnd", "SpeechStarted"):
        conn.on(getattr(LiveTranscriptionEvents, kind), handler(kind))
    if not conn.start(LiveOptions(**config["options"])):
        record("start_failed", None)
        return
    with wave.open(config["wav"]) as w:
        pcm = w.readframes(w.getnframes())
    step = 3200  # 100 ms of 16 kHz int16
    began = time.monotonic()
    for i in range(0, len(pcm), step):
        conn.send(pcm[i : i + step])
        time.sleep(max(0.0, began + (i + step) / 32000 - time.monotonic()))
    if config.get("finalize"):
        record("finalize_sent", None)
        conn.finalize()
        time.sleep(2.0)
    if config.get("configure"):
        conn.send(json.dumps({"type": "Configure", "keyterms": ["gateway"]}))
        time.sleep(1.0)
    awaited = config.get("await_final")
    if awaited:
        # A busy machine decodes late: wait (bounded) for that final, so finish() is not racing the model.
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and not any(awaited in t for t in finals):
            time.sleep(0.05)
        record("awaited_final", None)
    if config.get("await_speech_final"):
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and not speech_finals:
            time.sleep(0.05)
        record("awaited_speech_final", None)
    record("finish_called", None)
    conn.finish()
    record("finished", None)


if __name__ == "__main__":
    main()
