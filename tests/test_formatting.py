"""numerals, redact, profanity_filter and Configure: pure transforms, no model."""

from __future__ import annotations

import pytest

from gateway.core import configure
from gateway.core.errors import BadRequest
from gateway.core.formatting import Formatting, apply
from gateway.core.messages import transcript_text
from gateway.core.params import MAX_KEYTERM_CHARS, parse_params
from gateway.core.types import Word


def words(text: str) -> tuple[Word, ...]:
    return tuple(Word(t, i * 0.5, i * 0.5 + 0.4, 0.9) for i, t in enumerate(text.split()))


def text(found: tuple[Word, ...]) -> str:
    return " ".join(w.text for w in found)


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("I paid twenty five dollars.", "I paid 25 dollars."),
        ("nine hundred and ninety nine apples", "999 apples"),
        ("Forty-two.", "42."),
        ("one apple and two pears", "one apple and two pears"),  # isolated small numbers stay words
        ("Call four one five, then", "Call 4 1 5, then"),
        ("I already wrote 25 here", "I already wrote 25 here"),
    ],
)
def test_numerals(spoken: str, written: str) -> None:
    assert text(apply(words(spoken), Formatting(numerals=True))) == written


def test_numerals_keep_times_of_a_merged_run() -> None:
    out = apply(words("it costs twenty five"), Formatting(numerals=True))
    assert [(w.text, w.start, w.end) for w in out] == [("it", 0.0, 0.4), ("costs", 0.5, 0.9), ("25", 1.0, 1.9)]


def test_nothing_asked_is_the_same_tuple() -> None:
    given = words("four one one one")
    assert apply(given, Formatting()) is given


CARD = "My card is four one one one one one one one one one one one one one one one, thanks."


@pytest.mark.parametrize(
    ("spoken", "style", "written"),
    [
        (CARD, Formatting(redact=("pci",)), "My card is " + " ".join(["*"] * 16) + ", thanks."),
        ("card 4111 1111 1111 1111.", Formatting(redact=("pci",)), "card **** **** **** ****."),
        ("the CVV is 123 and room 12", Formatting(redact=("pci",)), "the CVV is *** and room 12"),
        ("room 123 please", Formatting(redact=("pci",)), "room 123 please"),  # not card data
        ("room 123 please", Formatting(redact=("numbers",)), "room *** please"),
        ("room 12 please", Formatting(redact=("numbers",)), "room 12 please"),  # under 3 digits
        ("SSN one two three four five six seven eight nine.", Formatting(redact=("ssn",)), "SSN * * * * * * * * *."),
        ("SSN 123-45-6789.", Formatting(redact=("ssn",)), "SSN *********."),
        ("it is twenty five", Formatting(numerals=True, redact=("numbers",)), "it is 25"),
        ("pin nine hundred and ninety nine", Formatting(numerals=True, redact=("numbers",)), "pin ***"),
    ],
)
def test_redact(spoken: str, style: Formatting, written: str) -> None:
    assert text(apply(words(spoken), style)) == written


def test_profanity_filter_keeps_first_letter_and_punctuation() -> None:
    out = apply(words("Oh shit, that Fucking hurts. Damn."), Formatting(profanity_filter=True))
    assert text(out) == "Oh s***, that F****** hurts. Damn."
    assert transcript_text(out, formatted=False) == "oh s*** that f****** hurts damn"


def test_params_of_the_text_options() -> None:
    p = parse_params(
        "numerals=true&profanity_filter=true&redact=pci&redact=ssn&redact=true&no_delay=true"
        "&keyterm=Kubernetes&keyterm=pg%20vector&keywords=Nguyen:2&keywords=um:-3&keywords=Grafana"
    )
    assert p.numerals and p.profanity_filter and p.no_delay
    assert p.redact == ("pci", "ssn", "numbers")
    assert p.keyterms == ("Kubernetes", "pg vector", "Nguyen", "Grafana")  # a suppressed keyword is dropped
    assert parse_params("redact=false").redact == ()


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("redact=pii", "redact"),
        ("keywords=Nguyen:lots", "keywords"),
        ("keyterm=" + "x" * (MAX_KEYTERM_CHARS + 1), "keyterm"),
        ("callback=ftp://example.com/x", "callback"),
        ("callback=not-a-url", "callback"),
        ("callback=http://127.0.0.1/x&callback_method=get", "callback_method"),
    ],
)
def test_bad_text_options_are_refused_by_name(query: str, named: str) -> None:
    with pytest.raises(BadRequest, match=named):
        parse_params(query)


def test_callback_params() -> None:
    p = parse_params("callback=https://hooks.example.com/dg&callback_method=put")
    assert (p.callback, p.callback_method) == ("https://hooks.example.com/dg", "PUT")
    assert parse_params("diarize=true").diarize and parse_params("diarize_model=latest").diarize


def test_configure_keyterms_and_features() -> None:
    change = configure.parse_configure({"type": "Configure", "keyterms": [" Siobhan ", "Tomasz", "Siobhan", ""]})
    assert change.keyterms == ("Siobhan", "Tomasz")
    assert configure.success("r1", change) == {
        "type": "ConfigureSuccess",
        "request_id": "r1",
        "keyterms": ["Siobhan", "Tomasz"],
    }
    cleared = configure.parse_configure({"type": "Configure", "keyterms": []})
    assert cleared.keyterms == ()
    kept = configure.parse_configure({"type": "Configure", "features": {"numerals": True}})
    assert kept.keyterms is None and kept.features == {"numerals": True}
    assert "keyterms" not in configure.success("r1", kept)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"keyterms": "Kubernetes"}, configure.INTERNAL_ERROR),
        ({"keyterms": [1, 2]}, configure.INTERNAL_ERROR),
        ({"keyterms": ["x" * (MAX_KEYTERM_CHARS + 1)]}, configure.KEYTERM_LIMIT_EXCEEDED),
        ({"features": {"diarize": True}}, configure.INTERNAL_ERROR),
        ({"features": {"numerals": "yes"}}, configure.INTERNAL_ERROR),
        ({"language": "fr"}, configure.INTERNAL_ERROR),
    ],
)
def test_configure_refusals_have_documented_codes(body: dict[str, object], code: str) -> None:
    with pytest.raises(configure.ConfigureRejected) as caught:
        configure.parse_configure({"type": "Configure", **body})
    assert caught.value.code == code
    assert caught.value.description


def test_batched_prompt_keeps_hotwords_whole() -> None:
    from gateway.engines.batched import PROMPT_STEP, aligned_prompt

    hot, previous = list(range(100, 105)), list(range(20))
    tokens = aligned_prompt(hot, previous)
    assert len(tokens) % PROMPT_STEP == 0 and tokens[:5] == hot and tokens[5:] == previous[-len(tokens) + 5 :]
    assert aligned_prompt(hot, []) == hot  # never cut, even when that leaves the row unaligned
    assert aligned_prompt([], previous) == previous[len(previous) % PROMPT_STEP :]


def test_relay_keeps_the_callback_to_the_gateway() -> None:
    from gateway.engines.relay import DeepgramRelayEngine
    from gateway.engines.relay_config import RelayConfig

    relay = DeepgramRelayEngine(RelayConfig(url="ws://127.0.0.1:9", api_key="k"))
    params = parse_params("callback=http://127.0.0.1:9/x&callback_method=put&keyterm=Nguyen&redact=pci&engine=deepgram")
    _model, rest = relay.upstream_query(params)
    assert rest == {"keyterm": ["Nguyen"], "redact": ["pci"]}
