"""bench.keyterms' scoring and the prompts it compares (no model)."""

from __future__ import annotations

from bench.keyterms import MODES, PROMPT_CHARS, bias, heard


def test_a_term_counts_only_as_a_whole_word() -> None:
    assert heard("Kubernetes", "Deploy to kubernetes, now.")
    assert not heard("Kafka", "Kafkaesque queues")
    assert not heard("pgvector", "PG vector")


def test_each_mode_gives_the_decoder_what_it_says() -> None:
    previous = "x" * 300
    assert bias("none", "A, B", previous) == ("", "")
    assert bias("hotwords", "A, B", previous) == ("", "A, B")
    assert bias("context+hotwords", "A, B", previous) == ("x" * PROMPT_CHARS, "A, B")
    prompt, hot = bias("context+prompt", "A, B", previous)
    assert hot == "" and len(prompt) == PROMPT_CHARS and "A" not in prompt  # the prefix is cut away
    assert set(MODES) >= {"none", "prompt", "hotwords"}
