"""How every replay client ends a session: wait for the server's goodbye, then stop listening."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bench.timeline import Timeline


async def await_end(task: asyncio.Task[Any], wait_s: float, timeline: Timeline, missing: str) -> None:
    """Give the receiving ``task`` ``wait_s`` to see the session end; record ``missing`` if it does not."""
    try:
        await asyncio.wait_for(asyncio.shield(task), wait_s)
    except TimeoutError:
        timeline.error = timeline.error or missing


async def stop_receiving(task: asyncio.Task[Any]) -> None:
    """Cancel the receiving ``task`` and wait until it is gone."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
