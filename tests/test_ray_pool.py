"""The Ray Serve pool for real: a local Ray cluster, CPU replicas of tiny.en, two gateway processes.

Both gateways stream speech through one pool while a replica is killed
mid-stream: every stream ends normally with its words, no final is lost or
said twice, and the gateways report that their decodes went to the pool.
The resend rule itself (:class:`~gateway.engines.ray_pool.Resubmitter`) is
tested without Ray.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from gateway.core.types import DecodeRequest, DecodeResult, Word
from gateway.engines.ray_pool import Resubmitter
from gateway.pool.config import PoolConfig
from tests import client, speech
from tests.browser_helpers import ROOT, free_port, running_gateway

RAY = Path(sys.executable).parent / "ray"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
KILL_ONE_REPLICA = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "SERVE_REPLICA" in a["name"])
assert names, "no replica to kill"
ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)
print("killed", names[0])
"""


# -- the resend rule, without Ray ---------------------------------------------


class Died(Exception):
    pass


class Answer:
    def __init__(self, value: DecodeResult | BaseException) -> None:
        self.value = value

    def result(self, *, timeout_s: float | None = None) -> Any:
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


def request(offset: float) -> DecodeRequest:
    return DecodeRequest(np.zeros(1600, np.float32), offset=offset)


def result(text: str) -> DecodeResult:
    return DecodeResult((Word(text, 0.0, 0.1, 0.9),))


def test_a_decode_lost_with_its_replica_is_sent_once_more() -> None:
    answers = {0.0: [Answer(result("a"))], 1.0: [Answer(Died()), Answer(result("b"))]}
    sent: list[float] = []

    def submit(r: DecodeRequest) -> Answer:
        sent.append(r.offset)
        return answers[r.offset].pop(0)

    pool = Resubmitter(submit, retryable=(Died,))
    out = pool.run([request(0.0), request(1.0)])
    assert [r.words[0].text for r in out] == ["a", "b"]
    assert sent == [0.0, 1.0, 1.0]  # both submitted before any wait; only the lost one again
    assert pool.stats.as_dict() == {"pool_requests": 2, "pool_retried": 1, "pool_failed": 0}


def test_a_second_loss_fails_the_decode_and_other_errors_are_not_retried() -> None:
    pool = Resubmitter(lambda r: Answer(Died()), retryable=(Died,))
    with pytest.raises(Died):
        pool.run([request(0.0)])
    assert pool.stats.failed == 1
    strict = Resubmitter(lambda r: Answer(ValueError("bad audio")), retryable=(Died,))
    with pytest.raises(ValueError, match="bad audio"):
        strict.run([request(0.0)])
    assert strict.stats.retried == 0


def test_pool_options_from_serve_run_args() -> None:
    config = PoolConfig.from_args({"model": "tiny.en", "replicas": "2", "num_cpus": "0.5"})
    assert (config.replicas, config.num_cpus) == (2, 0.5)
    with pytest.raises(ValueError, match="unknown pool options"):
        PoolConfig.from_args({"replica": 2})
    # the shipped Serve config names only options the pool knows
    serve_yaml = yaml.safe_load((ROOT / "deploy" / "serve.yaml").read_text())
    [app] = serve_yaml["applications"]
    assert app["import_path"] == "gateway.pool.replica:build"
    assert PoolConfig.from_args(app["args"]).max_replicas == 8


# -- the real cluster ---------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A one-node Ray cluster (2 CPUs) with the pool deployed: two tiny.en replicas on CPU."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    head = [str(RAY), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
    subprocess.run([*head, "--disable-usage-stats", f"--temp-dir={temp}"], check=True, env=ENV, capture_output=True)
    address = f"127.0.0.1:{port}"
    try:
        deploy = [sys.executable, "-m", "gateway.pool", "--address", address, "--replicas", "2", "--num-cpus", "0.5"]
        done = subprocess.run([*deploy, "--detach"], env=ENV, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        yield address
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=ENV, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/stats", timeout=10) as response:
        data: dict[str, Any] = json.load(response)
    return data


def check_finals(received: client.Received) -> None:
    """Finals are in order and never overlap: nothing was said twice."""
    spans = [
        (m["start"], m["start"] + m["duration"]) for m in received.finals if m["channel"]["alternatives"][0]["words"]
    ]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.01, spans
    words = [w for m in received.finals for w in m["channel"]["alternatives"][0]["words"]]
    times = [w["start"] for w in words]
    assert times == sorted(times) and len(set(times)) == len(times), words


@pytest.mark.model
async def test_two_gateways_share_one_pool_and_survive_a_replica_kill(ray_cluster: str, tmp_path: Path) -> None:
    pcm = client.pcm16(speech.utterances())
    extra = ("--inference", "ray", "--ray-address", ray_cluster)
    with (
        running_gateway(tmp_path / "a.log", extra=extra) as gw_a,
        running_gateway(tmp_path / "b.log", extra=extra) as gw_b,
    ):

        async def kill_mid_stream() -> str:
            await asyncio.sleep(len(pcm) / 32000 / 2)  # halfway through the audio
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", KILL_ONE_REPLICA, ray_cluster, env=ENV, stdout=asyncio.subprocess.PIPE
            )
            out, _ = await proc.communicate()
            assert proc.returncode == 0
            return out.decode()

        got_a, got_b, killed = await asyncio.gather(
            client.stream(client.url(gw_a.port), pcm),
            client.stream(client.url(gw_b.port), pcm),
            kill_mid_stream(),
        )
        assert "killed SERVE_REPLICA" in killed
        for got, gw in ((got_a, gw_a), (got_b, gw_b)):
            assert got.close_code == 1000, (got.close_code, got.close_reason, gw.log_tail())
            assert got.of("Metadata"), "the stream ended normally"
            text = got.final_text()
            assert client.wer(" ".join(speech.SENTENCES), text) < 0.5, text
            check_finals(got)
            [model] = stats(gw.port)["models"].values()
            assert model["pool_requests"] > 0 and model["pool_failed"] == 0, model
