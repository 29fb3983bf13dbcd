"""``python -m gateway.pool``: deploy the Whisper pool on a Ray cluster, then keep it up.

Connects to the cluster at ``--address`` (``auto``: the one ``ray start`` ran on
this machine), starts Serve without its HTTP proxy (gateways call the pool
through Ray, not HTTP), deploys :func:`gateway.pool.replica.build` under
``--app`` and waits until the replicas are up. With ``--detach`` it exits
once deployed; otherwise it stays until interrupted and then deletes the app.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from dataclasses import fields
from typing import Any

from gateway.engines.ray_pool import DEFAULT_APP
from gateway.pool.config import PoolConfig


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gateway.pool", description=__doc__.split("\n\n")[0])
    p.add_argument("--address", default="auto", help="Ray cluster address (auto, HOST:PORT or ray://HOST:PORT)")
    p.add_argument("--app", default=DEFAULT_APP, help="Serve application name the gateways look up")
    p.add_argument("--detach", action="store_true", help="exit once deployed (the app keeps running)")
    defaults = PoolConfig()
    for f in fields(PoolConfig):
        value = getattr(defaults, f.name)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(value), default=value, dest=f.name)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import ray
    from ray import serve

    from gateway.pool.replica import build

    ray.init(address=args.address, namespace="gateway", log_to_driver=False)
    serve.start(proxy_location="Disabled")
    pool: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(PoolConfig)}
    serve.run(build(pool), name=args.app, route_prefix=None, blocking=False)
    logging.getLogger("gateway.pool").info("pool %r deployed: %s", args.app, pool)
    print(f"pool {args.app} ready", flush=True)
    if args.detach:
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    serve.delete(args.app)


if __name__ == "__main__":
    main()
