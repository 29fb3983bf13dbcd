"""Does ``keyterm`` help? Term recall and WER with and without keyterms (espeak-ng, rare names).

``python -m bench.keyterms`` speaks :data:`SENTENCES` (names and jargon Whisper
tiny.en rarely writes right) with espeak-ng and decodes each one as a live
window would be (:meth:`WhisperBackend.decode`, a ``DecodeRequest``) in every
mode (:data:`MODES`): no bias, the terms as the initial prompt, as faster-whisper
``hotwords``, and each of those behind a prompt that already holds the text before
the window (as a live stream's does). It prints term recall (a term counts when the transcript holds it as
a word, case and punctuation aside) WER (Whisper's normalizer), and WER on plain sentences without the terms (the cost
of a bias that does not apply), per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.synth import espeak
from bench.wer import score

SENTENCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Deploy the service to Kubernetes before Friday.", ("Kubernetes",)),
    ("Doctor Nguyen will review the scans this afternoon.", ("Nguyen",)),
    ("We store the embeddings in pgvector on Postgres.", ("pgvector", "Postgres")),
    ("Ask Siobhan to send the contract to Tomasz.", ("Siobhan", "Tomasz")),
    ("The Grafana dashboard shows the Prometheus alerts.", ("Grafana", "Prometheus")),
    ("The patient was prescribed atorvastatin last week.", ("atorvastatin",)),
    ("Run the Terraform plan against the staging account.", ("Terraform",)),
    ("The invoice from Zendesk was paid by Anjali.", ("Zendesk", "Anjali")),
    ("We moved the queue from RabbitMQ to Kafka.", ("RabbitMQ", "Kafka")),
    ("Mister Przybylski called about the Nvidia order.", ("Przybylski", "Nvidia")),
)

_WORD = re.compile(r"[\w']+")


def heard(term: str, transcript: str) -> bool:
    """Whether ``term`` is a word of ``transcript`` (case and punctuation aside)."""
    return term.lower() in {w.lower() for w in _WORD.findall(transcript)}


PROMPT_CHARS = 200
"""What the live transcriber keeps of its prompt (``TranscriberConfig.prompt_chars``): the end."""

MODES = ("none", "prompt", "hotwords", "context", "context+prompt", "context+hotwords")
"""How the terms reach the decoder. ``context``: the prompt holds the sentences before (its last 200
characters), as a live stream's prompt holds the text finalised before the window; ``context+prompt``:
the terms are put before that text and the whole cut to its last 200 characters, as a prompt prefix
would be (so they are cut away once the stream has said 200 characters)."""


@dataclass(frozen=True, slots=True)
class ModeScore:
    mode: str
    recall: float
    terms_heard: int
    terms: int
    wer: float
    plain_wer: float
    """WER on sentences without any of the terms, decoded with the same bias (does it hurt?)."""
    seconds: float
    transcripts: tuple[str, ...]


def bias(mode: str, terms: str, previous: str) -> tuple[str, str]:
    """(prompt, hotwords) of a window in ``mode``; ``previous`` is the text finalised before it."""
    context = previous[-PROMPT_CHARS:] if mode.startswith("context") else ""
    if mode in ("prompt", "context+prompt"):
        return (terms + " " + context).strip()[-PROMPT_CHARS:], ""
    if mode in ("hotwords", "context+hotwords"):
        return context, terms
    return context, ""


def run(modes: Sequence[str], threads: int = 0) -> list[ModeScore]:
    from bench.synth import SENTENCES as PLAIN
    from gateway.core.types import DecodeRequest
    from gateway.engines import models
    from gateway.engines.whisper import WhisperBackend, WhisperOptions

    backend = WhisperBackend(WhisperOptions(model_path=str(models.tiny_en()), name="tiny.en", cpu_threads=threads))
    pad = np.zeros(8000, np.float32)

    def spoken(text: str) -> npt.NDArray[np.float32]:
        return np.concatenate([pad, espeak(text), pad, pad])

    rare = [(text, spoken(text)) for text, _ in SENTENCES]
    plain = [(text, spoken(text)) for text in PLAIN]
    all_terms = [t for _, terms in SENTENCES for t in terms]
    joined = ", ".join(all_terms)

    def decode(mode: str, clips: list[tuple[str, npt.NDArray[np.float32]]]) -> list[str]:
        texts = []
        for i, (_, audio) in enumerate(clips):
            previous = " ".join(text for text, _ in clips[:i])  # all said before, as a live stream's finals
            prompt, hotwords = bias(mode, joined, previous)
            request = DecodeRequest(audio, 0.0, prompt=prompt, hotwords=hotwords, final=True)
            texts.append(" ".join(w.text for w in backend.decode(request).words))
        return texts

    out = []
    for mode in modes:
        started = time.perf_counter()
        texts = decode(mode, rare)
        elapsed = time.perf_counter() - started
        plain_texts = decode(mode, plain)
        hits = sum(heard(t, text) for (_, terms), text in zip(SENTENCES, texts, strict=True) for t in terms)
        wer = score((ref, hyp) for (ref, _), hyp in zip(SENTENCES, texts, strict=True))
        plain_wer = score(zip(PLAIN, plain_texts, strict=True))
        out.append(
            ModeScore(
                mode,
                hits / len(all_terms),
                hits,
                len(all_terms),
                wer.wer if wer else 0.0,
                plain_wer.wer if plain_wer else 0.0,
                elapsed,
                tuple(texts),
            )
        )
    return out


async def _live_finals(port: int, query: str, pcm: bytes) -> str:
    from websockets.asyncio.client import connect

    finals: list[str] = []
    async with connect(f"ws://127.0.0.1:{port}/v1/listen?{query}") as ws:

        async def read() -> None:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "Results" and message["is_final"]:
                    finals.append(message["channel"]["alternatives"][0]["transcript"])

        reader = asyncio.create_task(read())
        step = 3200  # 100 ms, sent at real time
        for i in range(0, len(pcm), step):
            await ws.send(pcm[i : i + step])
            await asyncio.sleep(0.1)
        await ws.send(json.dumps({"type": "CloseStream"}))
        await reader
    return " ".join(finals)


def run_live(threads: int = 0) -> list[tuple[str, float, float]]:
    """The sentences as one live stream through an in-process gateway at real time, without and with
    ``keyterm``: (mode, term recall, WER) each."""
    from bench.synth import compose
    from gateway.engines import models
    from gateway.engines.whisper import WhisperBackend, WhisperOptions
    from gateway.server.app import Gateway
    from gateway.server.config import ServerConfig

    backend = WhisperBackend(WhisperOptions(model_path=str(models.tiny_en()), name="tiny.en", cpu_threads=threads))
    audio = compose([espeak(text) for text, _ in SENTENCES])
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    terms = [t for _, ts in SENTENCES for t in ts]
    reference = " ".join(text for text, _ in SENTENCES)
    base = "encoding=linear16&sample_rate=16000&punctuate=true&interim_results=true"

    async def go() -> list[tuple[str, float, float]]:
        out = []
        config = ServerConfig(host="127.0.0.1", port=0, store_path=None)
        async with Gateway(config, backends={"tiny.en": backend}) as gw:
            for mode, query in (("live none", base), ("live keyterm", base + "".join(f"&keyterm={t}" for t in terms))):
                heard_text = await _live_finals(gw.port, query, pcm)
                wer = score([(reference, heard_text)])
                out.append((mode, sum(heard(t, heard_text) for t in terms) / len(terms), wer.wer if wer else 0.0))
        return out

    return asyncio.run(go())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print every transcript as JSON")
    parser.add_argument("--live", action="store_true", help="also stream them live through a gateway")
    args = parser.parse_args(argv)
    for result in run(args.modes.split(","), args.threads):
        print(
            f"{result.mode:9s} term recall {result.terms_heard}/{result.terms} ({result.recall:.0%})"
            f"  WER {result.wer:.1%}  plain-sentence WER {result.plain_wer:.1%}  decode {result.seconds:.1f} s"
        )
        if args.json:
            print(json.dumps(result.transcripts, indent=1))
    if args.live:
        for mode, recall, wer in run_live(args.threads):
            print(f"{mode:16s} term recall {recall:.0%}  WER {wer:.1%}")


if __name__ == "__main__":
    main()
