"""The routing policy, the usage ledger and the relay's CLI options: pure, no server."""

from __future__ import annotations

import pytest

from gateway.__main__ import build_parser, config_from_args
from gateway.core.errors import BadRequest, Forbidden, PaymentRequired
from gateway.engines.base import StreamUsage, Usage
from gateway.server import relay_cli
from gateway.server.accounting import Ledger
from gateway.server.routing import (
    EngineKind,
    RelayUse,
    RoutingPolicy,
    TenantPolicy,
    offered,
    parse_preferences,
    relay_left_s,
    route,
)

W, D = EngineKind.WHISPER, EngineKind.DEEPGRAM
POLICY = RoutingPolicy(
    engines=(D, W),
    tenants={
        "acme": TenantPolicy(private=True),
        "globex": TenantPolicy(engines=(W,), relay_budget_min=1.0),
    },
    relay_budget_min=10.0,
)


def test_preferences_parse_in_order_and_refuse_unknown_engines() -> None:
    assert parse_preferences("deepgram, Whisper") == (D, W)
    assert parse_preferences("whisper,whisper") == (W,)
    with pytest.raises(BadRequest, match="unknown engine 'openai'"):
        parse_preferences("deepgram,openai")
    with pytest.raises(BadRequest):
        parse_preferences("")


def test_stream_override_wins_over_tenant_and_server() -> None:
    assert route(POLICY, "initech", None, relay_enabled=True).engines == (D, W), "server default"
    assert route(POLICY, "globex", None, relay_enabled=True).engines == (W,), "tenant default"
    assert route(POLICY, "globex", "deepgram", relay_enabled=True).engines == (D,), "the stream's own choice"
    chosen = route(POLICY, "initech", "deepgram,whisper", relay_enabled=True)
    assert chosen.primary is D
    assert chosen.fallback is W


def test_private_tenant_never_relays() -> None:
    with pytest.raises(Forbidden, match="private"):
        route(POLICY, "acme", "deepgram", relay_enabled=True)
    served = route(POLICY, "acme", "deepgram,whisper", relay_enabled=True)
    assert served.engines == (W,)
    assert "private" in served.skipped[0]
    assert route(POLICY, "acme", None, relay_enabled=True).engines == (W,), "a policy default routes locally"
    assert offered(POLICY, "acme", relay_enabled=True) == ["whisper"]


def test_relay_needs_configuring() -> None:
    with pytest.raises(BadRequest, match="no Deepgram relay"):
        route(POLICY, "initech", "deepgram", relay_enabled=False)
    assert route(POLICY, "initech", None, relay_enabled=False).engines == (W,)
    assert offered(POLICY, "initech", relay_enabled=False) == ["whisper"]
    assert offered(POLICY, "initech", relay_enabled=True) == ["whisper", "deepgram", "deepgram,whisper"]


def test_budgets_cap_relay_minutes_per_tenant_and_server() -> None:
    assert relay_left_s(POLICY, "initech", RelayUse(0, 0)) == 600.0
    assert relay_left_s(POLICY, "globex", RelayUse(45, 100)) == 15.0, "the tenant cap is the tighter"
    assert relay_left_s(POLICY, "globex", RelayUse(0, 590)) == 10.0, "the server cap is the tighter"
    assert relay_left_s(RoutingPolicy(), "x", RelayUse(1e9, 1e9)) is None, "no caps, no limit"
    spent = RelayUse(60, 60)
    with pytest.raises(PaymentRequired, match="budget"):
        route(POLICY, "globex", "deepgram", relay_enabled=True, used=spent)
    assert route(POLICY, "globex", "deepgram,whisper", relay_enabled=True, used=spent).engines == (W,)
    assert route(POLICY, "initech", None, relay_enabled=True, used=RelayUse(0, 600)).engines == (W,)


def test_ledger_sums_finished_and_live_streams_per_tenant() -> None:
    ledger = Ledger()
    done = Usage("deepgram", audio_s=30, billed_s=30, cost_usd=0.0024)
    ledger.start("a", "acme", done)
    ledger.finish("a")
    live = StreamUsage([Usage("deepgram", audio_s=10, billed_s=10, cost_usd=0.0008), Usage("whisper", audio_s=12)])
    ledger.start("b", "acme", live)
    ledger.start("c", "globex", Usage("deepgram", billed_s=5))
    assert ledger.billed_s("deepgram", "acme") == 40
    assert ledger.billed_s("deepgram") == 45
    live.parts[0].billed_s += 2  # the ledger reads live usage as it grows
    assert ledger.billed_s("deepgram", "acme") == 42
    ledger.failover("acme")
    ledger.finish("b")
    totals = ledger.totals("acme").as_dict()
    assert totals["streams"] == 2
    assert totals["failovers"] == 1
    assert totals["engines"]["whisper"]["audio_seconds"] == 12
    assert totals["cost_usd"] == pytest.approx(0.0032)
    assert ledger.tenants() == ["acme", "globex"]
    assert ledger.failovers == 1


def test_stream_usage_reports_every_engine() -> None:
    usage = StreamUsage([Usage("deepgram", 4.0, 0.0, 4.0, 0.0003), Usage("whisper", 3.0, 0.5)], audio_s=6.0)
    usage.failovers = 1
    body = usage.as_dict()
    assert body["engine"] == "whisper", "the engine serving at the end"
    assert body["audio_seconds"] == 6.0, "the stream's audio, not the engines' sum"
    assert body["billed_seconds"] == 4.0
    assert [e["engine"] for e in body["engines"]] == ["deepgram", "whisper"]
    assert body["failovers"] == 1


def test_cli_builds_relay_and_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-secret-from-env")
    args = build_parser().parse_args(
        [
            "--engine",
            "deepgram,whisper",
            "--private-tenant",
            "acme",
            "--tenant-engine",
            "globex=whisper",
            "--tenant-relay-budget",
            "globex=2.5",
            "--relay-budget-minutes",
            "100",
            "--relay-url",
            "ws://127.0.0.1:9",
        ]
    )
    config = config_from_args(args)
    assert config.relay.api_key == "dg-secret-from-env"
    assert "dg-secret-from-env" not in repr(config), "the key stays out of every repr (and so of logs)"
    assert config.routing.engines == (D, W)
    assert config.routing.tenant("acme").private
    assert config.routing.tenant("globex") == TenantPolicy(engines=(W,), relay_budget_min=2.5)
    assert config.routing.relay_budget_min == 100
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--engine", "deepgram,openai"])
    assert relay_cli.relay_config(build_parser().parse_args(["--deepgram-api-key", "k"])).enabled
