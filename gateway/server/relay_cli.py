"""Command-line options of the Deepgram relay and the routing policy.

Kept apart from ``gateway.__main__`` so the relay's options live in one
place: :func:`add_arguments` declares them, :func:`relay_config` and
:func:`routing_policy` turn them into configuration. The Deepgram key comes
from ``--deepgram-api-key`` or ``DEEPGRAM_API_KEY`` and is never printed (not
even as a --help default).
"""

from __future__ import annotations

import argparse
import os

from gateway.core.errors import BadRequest
from gateway.engines.relay_config import DEEPGRAM_URL, NOVA3_STREAMING_USD_PER_MIN, RelayConfig
from gateway.server.routing import EngineKind, RoutingPolicy, TenantPolicy, parse_preferences


def _preferences(value: str) -> tuple[EngineKind, ...]:
    try:
        return parse_preferences(value)
    except BadRequest as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _tenant_preferences(value: str) -> tuple[str, tuple[EngineKind, ...]]:
    tenant, sep, prefs = value.partition("=")
    if not sep or not tenant:
        raise argparse.ArgumentTypeError(f"expected TENANT=ENGINES, got {value!r}")
    return tenant, _preferences(prefs)


def _minutes(value: str) -> float:
    try:
        minutes = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected minutes, got {value!r}") from None
    if minutes < 0:
        raise argparse.ArgumentTypeError("a budget cannot be negative")
    return minutes


def _tenant_minutes(value: str) -> tuple[str, float]:
    tenant, sep, minutes = value.partition("=")
    if not sep or not tenant:
        raise argparse.ArgumentTypeError(f"expected TENANT=MINUTES, got {value!r}")
    return tenant, _minutes(minutes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    r = parser.add_argument_group("Deepgram relay and routing")
    r.add_argument(
        "--deepgram-api-key",
        help="key for the upstream (also DEEPGRAM_API_KEY); without one there is no relay. Never logged",
    )
    r.add_argument(
        "--relay-url",
        default=env("GATEWAY_RELAY_URL", DEEPGRAM_URL),
        help="upstream speaking Deepgram's live protocol (another gateway works too)",
    )
    r.add_argument("--relay-model", default="nova-3", help="model asked upstream when a client names none")
    r.add_argument(
        "--relay-price-per-minute",
        type=float,
        default=NOVA3_STREAMING_USD_PER_MIN,
        help="USD per relayed audio minute, for cost accounting (Nova-3 streaming, pay as you go)",
    )
    r.add_argument(
        "--relay-stall-timeout",
        type=float,
        default=15.0,
        help="seconds of audio sent with no upstream message before failing over (0: never)",
    )
    r.add_argument(
        "--engine",
        type=_preferences,
        default=env("GATEWAY_ENGINE", "whisper"),
        metavar="ENGINES",
        help="engines streams use unless they ask (?engine=): whisper, deepgram or an order such as deepgram,whisper",
    )
    r.add_argument(
        "--tenant-engine",
        action="append",
        type=_tenant_preferences,
        default=[],
        metavar="TENANT=ENGINES",
        help="a tenant's own default engines (repeatable)",
    )
    r.add_argument(
        "--private-tenant",
        action="append",
        default=[],
        metavar="TENANT",
        help="a tenant whose audio never leaves this machine, whatever its streams ask (repeatable)",
    )
    r.add_argument(
        "--relay-budget-minutes",
        type=_minutes,
        help="relay minutes all tenants together may use while the server runs (None: no cap)",
    )
    r.add_argument(
        "--tenant-relay-budget",
        action="append",
        type=_tenant_minutes,
        default=[],
        metavar="TENANT=MINUTES",
        help="relay minutes one tenant may use while the server runs (repeatable)",
    )


def relay_config(args: argparse.Namespace) -> RelayConfig:
    return RelayConfig(
        url=args.relay_url,
        api_key=args.deepgram_api_key or os.environ.get("DEEPGRAM_API_KEY") or None,
        model=args.relay_model,
        price_per_minute=args.relay_price_per_minute,
        stall_s=args.relay_stall_timeout,
    )


def routing_policy(args: argparse.Namespace) -> RoutingPolicy:
    engines: dict[str, tuple[EngineKind, ...]] = dict(args.tenant_engine)
    budgets: dict[str, float] = dict(args.tenant_relay_budget)
    private = set(args.private_tenant)
    tenants = {
        name: TenantPolicy(engines=engines.get(name), private=name in private, relay_budget_min=budgets.get(name))
        for name in sorted(set(engines) | set(budgets) | private)
    }
    return RoutingPolicy(engines=args.engine, tenants=tenants, relay_budget_min=args.relay_budget_minutes)
