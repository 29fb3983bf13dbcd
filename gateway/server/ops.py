"""Running the gateway as a service: serve until SIGTERM, then drain.

A drain is what a rolling restart needs: the gateway stops taking streams
(HTTP 503 before the upgrade, 1013 after it, ``/readyz`` 503 so a load
balancer stops sending), lets the open ones go on for ``--drain-timeout``
seconds, then ends each like a client's CloseStream (finals flushed, then
Metadata) but with close code 1012, and exits 0. A second SIGTERM exits at
once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

from gateway.server.app import LISTEN_PATH, Gateway
from gateway.server.config import ServerConfig

log = logging.getLogger(__name__)

FLUSH_LIMIT_S = 60.0
"""After the drain timeout, how long flushing the last streams may take before they are cut."""
POLL_S = 0.05


async def _until_empty(gateway: Gateway, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    # Polling (a drain happens once): the sessions have no "all ended" event to wait on.
    while gateway.sessions() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(POLL_S)


async def drain(gateway: Gateway, timeout_s: float) -> None:
    """Refuse new streams, let open ones go on for ``timeout_s``, then flush them and close with 1012."""
    gateway.draining = True
    log.info("draining: %d open streams, %.1f s to finish", len(gateway.sessions()), timeout_s)
    await _until_empty(gateway, timeout_s)
    left = gateway.sessions()
    if left:
        log.info("drain timeout: flushing %d streams and closing them with 1012", len(left))
    for session in left:
        session.drain()
    await _until_empty(gateway, FLUSH_LIMIT_S)
    if gateway.sessions():
        log.warning("drain: %d streams did not finish flushing in %.0f s; cutting them", len(left), FLUSH_LIMIT_S)


async def run(config: ServerConfig) -> None:
    """Serve until cancelled (Ctrl-C) or SIGTERM (drain, then return); a second SIGTERM exits at once."""
    loop = asyncio.get_running_loop()
    term = asyncio.Event()

    def on_term() -> None:
        if term.is_set():
            log.warning("second SIGTERM: exiting now")
            logging.shutdown()
            os._exit(128 + signal.SIGTERM)  # at once: no flush, no waiting on a decode in progress
        log.info("SIGTERM: draining (a second SIGTERM exits at once)")
        term.set()

    async with Gateway(config) as gateway:
        loop.add_signal_handler(signal.SIGTERM, on_term)
        log.info("gateway listening on ws://%s:%d%s", config.host, gateway.port, LISTEN_PATH)
        await term.wait()
        await drain(gateway, config.drain_timeout_s)
    log.info("drained; exiting")
