"""Shared fixtures: one real tiny.en model per test session, gateways on port 0, headless Chromium."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.core.types import Backend
from gateway.server.config import ServerConfig
from tests import speech
from tests.browser_helpers import CHROMIUM, Launch, chromium_args


@pytest.fixture(scope="session")
def backend() -> Iterator[Backend]:
    """The real default model (Whisper tiny.en, int8 on CPU), loaded once."""
    from gateway.engines import models
    from gateway.engines.whisper import WhisperBackend, WhisperOptions

    threads = int(os.environ.get("GATEWAY_TEST_THREADS", "0"))
    return WhisperBackend(WhisperOptions(model_path=str(models.tiny_en()), name="tiny.en", cpu_threads=threads))


@pytest.fixture(scope="session")
def speech_pcm() -> speech.Int16:
    """Three espeak sentences with pauses, 16 kHz int16."""
    return speech.utterances()


@pytest.fixture
def server_config() -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0)


@pytest.fixture
async def gateway(backend: Backend, server_config: ServerConfig) -> AsyncIterator[Any]:
    """A real gateway on a free loopback port, sharing the session's model."""
    from gateway.server.app import Gateway

    async with Gateway(server_config, backends={"tiny.en": backend}) as gw:
        yield gw


def make_config(**changes: Any) -> ServerConfig:
    return replace(ServerConfig(host="127.0.0.1", port=0), **changes)


@pytest.fixture(scope="module")
def spoken() -> Any:
    """The three test sentences with silence around them (relay and failover tests)."""
    from tests.relay_fixtures import make_spoken

    return make_spoken()


# -- headless Chromium (the browser tests) ----------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright's sync API runs its own event loop in this thread: module scope ends it
    before the asyncio tests of later modules run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def launch(playwright: Any, tmp_path: Path) -> Iterator[Launch]:
    """Start Chromium with a fresh profile; every context is closed after the test."""
    contexts: list[Any] = []

    def _launch(wav: Path | None, *, fake_ui: bool = True, extra_args: tuple[str, ...] = (), **options: Any) -> Any:
        profile = tmp_path / f"profile{len(contexts)}"
        options.setdefault("permissions", ["microphone"] if fake_ui else [])
        options.setdefault("viewport", {"width": 1100, "height": 760})
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=chromium_args(wav, fake_ui=fake_ui, extra=extra_args),
            accept_downloads=True,
            **options,
        )
        contexts.append(context)
        context.set_default_timeout(30_000)
        return context

    yield _launch
    for context in contexts:
        context.close()
