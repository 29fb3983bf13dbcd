"""Drive deepgram-sdk 7.x (the gateway's own dependency), unmodified, against a gateway.

Usage: python dg_v7.py CONFIG_JSON. Same contract as ``dg_legacy.py``: streams a WAV at
real time through ``client.listen.v1.connect(**options)``, optionally sends Finalize and
Configure, optionally waits (at most 60 s) for a ``speech_final`` result
(``await_speech_final``), then CloseStream; writes each message the SDK parsed (its type name and fields)
to ``config["out"]``.
"""

import json
import sys
import threading
import time
import wave

from deepgram import DeepgramClient, DeepgramClientEnvironment
from deepgram.listen.v1.types import ListenV1Configure


def main() -> None:
    config = json.loads(sys.argv[1])
    base = config["url"]
    ws = base.replace("http://", "ws://")
    env = DeepgramClientEnvironment(base=base, production=ws, agent=ws, agent_rest=base)
    client = DeepgramClient(api_key="test-key", environment=env)
    with open(config["out"], "w") as out:

        def record(kind: str, body: object) -> None:
            out.write(json.dumps({"event": kind, "t": time.monotonic(), "body": body}) + "\n")
            out.flush()

        endpointed = threading.Event()

        with client.listen.v1.connect(**config["options"]) as conn:
            with open(config["wav"], "rb") as f, wave.open(f) as w:
                pcm = w.readframes(w.getnframes())

            def send() -> None:
                step = 3200
                began = time.monotonic()
                for i in range(0, len(pcm), step):
                    conn.send_media(pcm[i : i + step])
                    time.sleep(max(0.0, began + (i + step) / 32000 - time.monotonic()))
                if config.get("finalize"):
                    conn.send_finalize()
                    time.sleep(2.0)
                if config.get("configure"):
                    conn.send_configure(ListenV1Configure(keyterms=["gateway"]))
                    time.sleep(1.0)
                if config.get("await_speech_final"):
                    endpointed.wait(60.0)
                conn.send_close_stream()

            sender = threading.Thread(target=send)
            sender.start()
            for message in conn:
                dump = getattr(message, "model_dump", None)
                record(type(message).__name__, dump(mode="json") if callable(dump) else str(message))
                if getattr(message, "speech_final", False):
                    endpointed.set()
            sender.join()
        record("finished", None)


if __name__ == "__main__":
    main()
