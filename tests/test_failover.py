"""Failover and routing with a relay: refusals, drops and stalls move streams to Whisper without loss.

Budgets move streams too; a private tenant is never relayed.
"""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.core.types import Backend
from gateway.server.app import Gateway
from gateway.server.routing import TenantPolicy
from tests import speech
from tests.client import pcm16, wer
from tests.conftest import make_config
from tests.relay_fixtures import (
    QUERY,
    FakeUpstream,
    Spoken,
    assert_no_loss_no_duplicates,
    final_words,
    get_json,
    relaying,
    talk,
)


@pytest.mark.model
async def test_upstream_refusal_fails_over_when_the_route_allows(backend: Backend) -> None:
    sentence = "Please call me back tomorrow morning about the invoice."
    async with FakeUpstream(status=401, error="Invalid credentials.") as fake, relaying(backend, fake.url) as gateway:
        received = await talk(gateway.port, pcm16(speech.utterances((sentence,))), f"{QUERY}&engine=deepgram,whisper")
    switch = received.of("EngineInfo")
    assert len(switch) == 1
    assert switch[0]["engine"] == "whisper"
    assert switch[0]["previous_engine"] == "deepgram"
    assert switch[0]["variant"] == "UPSTREAM-REJECTED"
    assert switch[0]["start"] == 0.0
    assert wer(sentence, received.final_text()) < 0.5, received.final_text()
    assert received.close_code == 1000
    usage = received.of("Metadata")[0]["usage"]
    assert usage["failovers"] == 1
    assert usage["billed_seconds"] == 0.0, "a refused stream bills nothing"


@pytest.mark.model
async def test_upstream_drop_mid_utterance_fails_over_without_loss_or_duplicates(
    backend: Backend, spoken: Spoken
) -> None:
    async with Gateway(make_config(), backends={"tiny.en": backend}) as upstream:
        inner = f"ws://127.0.0.1:{upstream.port}"
        async with (
            FakeUpstream("proxy", inner=inner, drop_when=spoken.in_speech) as proxy,
            relaying(backend, proxy.url) as gateway,
        ):
            received = await talk(gateway.port, spoken.pcm, f"{QUERY}&engine=deepgram,whisper", speed=1.5)
            stats = gateway.router.stats()
    assert proxy.dropped_at is not None, "the proxy dropped the connection"
    assert spoken.in_speech(proxy.dropped_at), "mid-utterance"
    switch = received.of("EngineInfo")
    assert len(switch) == 1
    assert switch[0]["variant"] == "UPSTREAM-DROPPED"
    at = received.messages.index(switch[0])
    upstream_words = final_words(received.messages[:at])
    local_words = final_words(received.messages[at:])
    assert upstream_words, "the upstream finalized something before the drop"
    assert local_words, "the local engine carried on"
    assert switch[0]["start"] <= proxy.dropped_at
    assert min(w["start"] for w in local_words) >= switch[0]["start"] - 0.05, "local words start where finals stopped"
    assert_no_loss_no_duplicates(received)
    assert received.close_code == 1000
    usage = received.of("Metadata")[0]["usage"]
    assert [e["engine"] for e in usage["engines"]] == ["deepgram", "whisper"]
    assert usage["failovers"] == 1
    assert stats["failovers"] == 1
    assert stats["failures"] == {"UPSTREAM-DROPPED": 1}


@pytest.mark.model
async def test_upstream_stall_fails_over(backend: Backend) -> None:
    sentence = "We will meet at the station at seven o'clock."
    async with (
        FakeUpstream("silent") as fake,
        relaying(backend, fake.url, stall_s=1.0) as gateway,
    ):
        received = await talk(gateway.port, pcm16(speech.utterances((sentence,))), f"{QUERY}&engine=deepgram,whisper")
    switch = received.of("EngineInfo")
    assert [s["variant"] for s in switch] == ["UPSTREAM-STALLED"]
    assert "station" in received.final_text().lower()
    assert received.close_code == 1000


@pytest.mark.model
async def test_private_tenant_is_never_relayed(backend: Backend) -> None:
    keys = {"key-acme": "acme", "key-globex": "globex"}
    tenants = {"acme": TenantPolicy(private=True)}
    async with (
        FakeUpstream("record") as fake,
        relaying(backend, fake.url, tenants=tenants, api_keys=keys) as gateway,
    ):
        acme = {"Authorization": "Token key-acme"}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"ws://127.0.0.1:{gateway.port}/v1/listen?{QUERY}&engine=deepgram", additional_headers=acme
            ):
                pass
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["err_code"] == "INSUFFICIENT_PERMISSIONS"
        silence = pcm16(speech.silence(1.0))
        local = await talk(gateway.port, silence, f"{QUERY}&engine=deepgram,whisper", headers=acme)
        default = await talk(gateway.port, silence, QUERY, headers=acme)
        assert fake.connections == 0, "nothing of acme's reached the upstream"
        globex = await talk(gateway.port, silence, QUERY, headers={"Authorization": "Token key-globex"})
        assert fake.connections == 1, "another tenant's stream is relayed by the same policy"
        config_acme = await get_json(gateway.port, "/v1/config", acme)
    assert local.of("Metadata")[0]["usage"]["engine"] == "whisper"
    assert default.of("Metadata")[0]["usage"]["engine"] == "whisper"
    assert globex.of("Metadata")[0]["usage"]["engine"] == "deepgram"
    assert config_acme["engines"] == ["whisper"]
    assert config_acme["default_engine"] == "whisper"


@pytest.mark.model
async def test_budget_exhaustion_moves_streams_to_the_local_engine(backend: Backend) -> None:
    sentence = "The quick brown fox jumps over the lazy dog."
    pcm = pcm16(speech.utterances((sentence,)))
    tenants = {"anonymous": TenantPolicy(relay_budget_min=1.5 / 60)}
    async with (
        FakeUpstream("record") as fake,
        relaying(backend, fake.url, tenants=tenants, budget_check_s=0.5) as gateway,
    ):
        first = await talk(gateway.port, pcm, f"{QUERY}&engine=deepgram,whisper", speed=4.0)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{gateway.port}/v1/listen?{QUERY}&engine=deepgram"):
                pass
        second = await talk(gateway.port, pcm16(speech.silence(1.0)), QUERY)
        usage = await get_json(gateway.port, "/v1/usage")
    switch = first.of("EngineInfo")
    assert [s["variant"] for s in switch] == ["BUDGET-0001"]
    billed = first.of("Metadata")[0]["usage"]["billed_seconds"]
    assert 1.5 <= billed <= 2.0, "relay audio stops within one budget check of the cap"
    assert fake.audio_bytes / 32000 == pytest.approx(billed)
    assert wer(sentence, first.final_text()) < 0.5, first.final_text()
    assert refused.value.response.status_code == 402
    assert second.of("Metadata")[0]["usage"]["engine"] == "whisper", "the default route falls back locally"
    assert not second.of("EngineInfo")
    tenant = usage["tenants"]["anonymous"]
    assert tenant["relay_minutes_left"] == 0
    assert tenant["streams"] == 2
    assert tenant["engines"]["deepgram"]["billed_seconds"] == pytest.approx(billed)


@pytest.mark.model
async def test_budget_exhaustion_without_failover_ends_the_stream(backend: Backend) -> None:
    tenants = {"anonymous": TenantPolicy(relay_budget_min=0.5 / 60)}
    async with (
        FakeUpstream("record") as fake,
        relaying(backend, fake.url, tenants=tenants, budget_check_s=0.25) as gateway,
    ):
        received = await talk(gateway.port, pcm16(speech.silence(2.0)), f"{QUERY}&engine=deepgram", speed=4.0)
    assert received.close_code == 1008
    assert "BUDGET-0001" in received.close_reason
    assert fake.audio_bytes / 32000 <= 0.75
