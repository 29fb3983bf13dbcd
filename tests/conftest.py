"""Shared fixtures: one real tiny.en model per test session, gateways on port 0."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest

from gateway.core.types import Backend
from gateway.server.config import ServerConfig
from tests import speech


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
