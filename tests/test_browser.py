"""The captioning page (gateway/static/) against the real gateway, in real headless Chromium.

Debian's /usr/bin/chromium is driven by Playwright; its fake microphone plays
a WAV synthesised with espeak-ng. The gateway runs as a subprocess with the
real tiny.en model on CPU. Screenshots, the gateway logs and the speech WAV
land in artifacts/ (git-ignored). The page's pure modules are unit-tested in
``test_browser_units.py``; the Chromium fixtures (``launch``) are in conftest.py.
"""

from __future__ import annotations

import html
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_helpers import ARTIFACTS, CHROMIUM, Gateway, Launch, make_speech_wav, running_gateway
from tests.captions_page import (
    SRT_CUE,
    VTT_CUE,
    config_of,
    final_spans,
    finals,
    open_page,
    read_download,
    seconds,
    state,
    wait_for_words,
    wait_state,
    word_list,
    words_of,
)
from tests.prefix_proxy import PrefixProxy, self_signed_cert, tls_context

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

API_KEY = "browser-test-key-4f1c"
TLS_HOST = "captions.test"


# -- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Path:
    wav = make_speech_wav(tmp_path_factory.mktemp("speech"))
    shutil.copy(wav, artifacts / "browser-speech.wav")
    return wav


@pytest.fixture(scope="module")
def open_gateway(artifacts: Path) -> Iterator[Gateway]:
    """``python -m gateway`` without keys (the real tiny.en on CPU)."""
    with running_gateway(artifacts / "browser-gateway.log") as gw:
        yield gw


@pytest.fixture(scope="module")
def keyed_gateway(artifacts: Path) -> Iterator[Gateway]:
    """``python -m gateway --api-key ...``."""
    with running_gateway(artifacts / "browser-gateway-keyed.log", api_key=API_KEY) as gw:
        yield gw


# -- the page against the real gateway ------------------------------------------------


@pytest.mark.model
def test_live_captions_from_fake_microphone(
    launch: Launch, open_gateway: Gateway, speech_wav: Path, artifacts: Path
) -> None:
    gateway = open_gateway
    config = config_of(gateway)
    context = launch(speech_wav)
    page, sockets, errors = open_page(context, gateway.url)
    assert state(page) == "idle"
    assert page.is_hidden("#key-row")  # no key asked where none is required
    engines = page.eval_on_selector_all("#engine option", "options => options.map(o => o.value)")
    assert engines == config["engines"]
    assert page.input_value("#engine") == config["default_engine"]
    assert page.is_disabled("#engine") == (len(config["engines"]) < 2)

    page.click("#start")
    wait_state(page, "listening")
    found = wait_for_words(page, minimum=4)

    # Provisional words show up and look provisional. Whether the first one comes before or
    # after the first final depends on how fast this machine decodes (a busy CPU can make
    # the first utterance's endpoint arrive before any interim): not asserted. The file
    # loops, so interims keep coming; wait for one rather than assume it came already.
    page.wait_for_function("() => window.__captionLog.firstInterim !== null", timeout=60_000)
    log = page.evaluate("window.__captionLog")
    assert log["firstFinal"] is not None, log
    assert log["interimStyle"] == "italic", log

    assert sockets
    assert sockets[0].startswith(f"ws://127.0.0.1:{gateway.port}/v1/listen?")
    assert f"engine={config['default_engine']}" in sockets[0]
    assert "encoding=linear16" in sockets[0]
    assert "sample_rate=16000" in sockets[0]
    engine_info = page.inner_text("#engine-info")
    assert config["default_engine"] in engine_info, engine_info
    assert re.fullmatch(r"\d+ ms|\d+\.\d s", page.inner_text("#latency-final")), page.inner_text("#latency-final")
    assert re.fullmatch(r"\d+ ms|\d+\.\d s", page.inner_text("#latency-interim"))
    page.screenshot(path=str(artifacts / "browser-live-captions.png"), full_page=True)
    # Best effort: a second picture while provisional words are on screen (the file loops).
    page.wait_for_function(
        "() => { const e = document.getElementById('interim'); return e && e.isConnected && e.textContent.trim(); }",
        timeout=30_000,
    )
    page.screenshot(path=str(artifacts / "browser-live-captions-interim.png"), full_page=True)

    page.click("#stop")
    wait_state(page, "stopped", timeout=20_000)
    shown = finals(page)
    assert shown
    assert page.locator("#interim").count() == 0

    # The downloads hold exactly the finals shown, in order.
    name, text = read_download(page, "#download-txt")
    assert name.startswith("transcript-")
    assert name.endswith(".txt")
    assert " ".join(text.split()) == " ".join(" ".join(shown).split())
    assert found <= words_of(text)

    name, srt = read_download(page, "#download-srt")
    assert name.endswith(".srt")
    cues = SRT_CUE.findall(srt)
    assert cues, srt
    assert [int(c[0]) for c in cues] == list(range(1, len(cues) + 1))
    starts = [c[1] for c in cues]
    assert starts == sorted(starts)
    assert all(c[1] < c[2] for c in cues)
    assert word_list(" ".join(c[3] for c in cues)) == word_list(text), srt

    name, vtt = read_download(page, "#download-vtt")
    assert name.endswith(".vtt")
    assert vtt.startswith("WEBVTT\n\n")
    vtt_cues = VTT_CUE.findall(vtt)
    assert [(c[0], c[1]) for c in vtt_cues] == [(c[1].replace(",", "."), c[2].replace(",", ".")) for c in cues], vtt
    assert word_list(html.unescape(" ".join(c[2] for c in vtt_cues))) == word_list(text), vtt
    assert errors == []


@pytest.mark.model
def test_prefix_tls_api_key_and_reconnect(
    launch: Launch, keyed_gateway: Gateway, speech_wav: Path, artifacts: Path, tmp_path: Path
) -> None:
    """Behind a TLS reverse proxy that strips /captions, with an API key, surviving a dropped stream."""
    cert, key = self_signed_cert(tmp_path, TLS_HOST)
    proxy = PrefixProxy(keyed_gateway.port, "/captions", tls_context(cert, key)).start()
    try:
        context = launch(
            speech_wav,
            ignore_https_errors=True,
            extra_args=(f"--host-resolver-rules=MAP {TLS_HOST} 127.0.0.1",),
        )
        origin = f"https://{TLS_HOST}:{proxy.port}"
        page, sockets, errors = open_page(context, f"{origin}/captions/")
        assert page.evaluate("window.isSecureContext") is True
        assert state(page) == "idle"
        assert page.is_visible("#key-row")  # /v1/config said auth_required

        page.click("#start")  # no key yet: the page asks for it instead of connecting
        assert "API key" in page.inner_text("#status-detail")
        assert state(page) == "idle"
        assert sockets == []

        page.fill("#api-key", API_KEY)
        page.click("#start")
        wait_state(page, "listening")
        wait_for_words(page, minimum=2)
        assert sockets[0].startswith(f"wss://{TLS_HOST}:{proxy.port}/captions/v1/listen?")
        upgrade = proxy.websocket_requests()[0]
        assert upgrade.upstream_target.startswith("/v1/listen?")
        assert [p.strip() for p in upgrade.headers["sec-websocket-protocol"].split(",")] == ["token", API_KEY]
        assert "authorization" not in upgrade.headers
        # Every request the page made went through the prefix.
        assert all(r.target.startswith("/captions/") for r in proxy.seen)
        page.screenshot(path=str(artifacts / "browser-tls-prefix.png"), full_page=True)

        # The network drops the stream: the page says so, reconnects, and captions go on.
        assert proxy.drop_websockets() == 1
        wait_state(page, "reconnecting", timeout=10_000)
        assert "lost" in page.inner_text("#status-detail")
        # The first stream is closed: all it gave is on screen (one final per span; a
        # sentence may span several finals, so spans are not cues).
        first = final_spans(page)
        assert first
        first_end = max(end for _, _, end in first)
        wait_state(page, "listening", timeout=30_000)
        assert len(sockets) == 2
        assert sockets[1].startswith(f"wss://{TLS_HOST}:{proxy.port}/captions/v1/listen?")
        found = wait_for_words(page, minimum=2, baseline=len(first))
        page.click("#stop")
        wait_state(page, "stopped", timeout=20_000)

        shown = final_spans(page)
        assert shown[: len(first)] == first, shown
        later = shown[len(first) :]
        # One session clock across both streams: the second stream's finals come after the first's.
        assert later and all(start >= first_end for _, start, _ in later), (first_end, shown)

        # The downloads hold every final shown, from both streams, in order.
        _, text = read_download(page, "#download-txt")
        assert " ".join(text.split()) == " ".join(" ".join(t for t, _, _ in shown).split())
        _, srt = read_download(page, "#download-srt")
        cues = SRT_CUE.findall(srt)
        assert [int(c[0]) for c in cues] == list(range(1, len(cues) + 1)), srt
        starts = [c[1] for c in cues]
        assert starts == sorted(starts), srt
        assert word_list(" ".join(c[3] for c in cues)) == word_list(text), srt
        after = " ".join(c[3] for c in cues if seconds(c[1]) >= first_end)
        assert found <= words_of(after), (first_end, srt)
        assert errors == []
    finally:
        proxy.stop()


@pytest.mark.model
def test_wrong_api_key_is_refused(launch: Launch, keyed_gateway: Gateway, speech_wav: Path, artifacts: Path) -> None:
    context = launch(speech_wav)
    page, sockets, errors = open_page(context, keyed_gateway.url)
    page.fill("#api-key", "not-the-key")
    page.click("#start")
    wait_state(page, "refused", timeout=20_000)
    detail = page.inner_text("#status-detail")
    # The browser hides the 401 of the refused upgrade; the page learns it from a plain GET of the same URL.
    assert "invalid or missing API key" in detail, detail
    assert len(sockets) == 1  # refused, not retried
    time.sleep(1.5)
    assert state(page) == "refused"
    assert len(sockets) == 1
    assert page.is_enabled("#start")
    assert page.is_disabled("#stop")
    page.screenshot(path=str(artifacts / "browser-refused.png"), full_page=True)
    assert errors == []


@pytest.mark.model
def test_denied_microphone(launch: Launch, open_gateway: Gateway, speech_wav: Path, artifacts: Path) -> None:
    gateway = open_gateway
    # No fake UI: headless Chromium dismisses the permission prompt, getUserMedia fails with NotAllowedError.
    context = launch(speech_wav, fake_ui=False, permissions=None)
    page, sockets, errors = open_page(context, gateway.url)
    assert state(page) == "idle"
    page.click("#start")
    wait_state(page, "mic-denied", timeout=10_000)
    assert "Microphone access is blocked" in page.inner_text("#status-detail")
    assert page.inner_text("#status-label") == "Microphone blocked"
    assert sockets == []  # nothing streams without a microphone
    assert page.is_enabled("#start")
    page.screenshot(path=str(artifacts / "browser-mic-denied.png"), full_page=True)

    # The site's permission already denied: the page says so before anyone presses Start.
    context = launch(speech_wav, fake_ui=False, permissions=[])
    page, sockets, errors2 = open_page(context, gateway.url)
    assert state(page) == "mic-denied"
    page.click("#start")
    wait_state(page, "mic-denied")
    assert sockets == []
    assert errors == []
    assert errors2 == []


@pytest.mark.model
def test_plain_http_page_explains_https(launch: Launch, open_gateway: Gateway, speech_wav: Path) -> None:
    """Served over plain http from a non-local name, browsers give no microphone: the page says why."""
    context = launch(speech_wav, extra_args=(f"--host-resolver-rules=MAP {TLS_HOST} 127.0.0.1",))
    page, sockets, errors = open_page(context, f"http://{TLS_HOST}:{open_gateway.port}/")
    assert page.evaluate("window.isSecureContext") is False
    page.click("#start")
    wait_state(page, "mic-error")
    assert "https://" in page.inner_text("#status-detail")
    assert sockets == []
    assert errors == []


@pytest.mark.model
def test_engine_picker(launch: Launch, open_gateway: Gateway, speech_wav: Path) -> None:
    """Where /v1/config offers several engines (and models) the user picks; a switch restarts the stream.

    The real gateway serves one engine, so /v1/config is rewritten here to offer a second one,
    which the gateway then refuses with a 400: the page must say so and stop.
    """
    gateway = open_gateway
    real = config_of(gateway)
    offered = {
        **real,
        "engines": [real["default_engine"], "elsewhere"],
        "models": [real["default_model"], "other-model"],
        "default_model": real["default_model"],
    }
    context = launch(speech_wav)
    context.route("**/v1/config", lambda route: route.fulfill(json=offered))
    page, sockets, errors = open_page(context, gateway.url)
    assert page.is_enabled("#engine")
    assert page.eval_on_selector_all("#engine option", "os => os.map(o => o.value)") == offered["engines"]
    assert page.is_visible("#model-row")
    assert page.input_value("#model") == real["default_model"]

    page.click("#start")
    wait_state(page, "listening")
    assert f"engine={real['default_engine']}" in sockets[0]
    assert f"model={real['default_model']}" in sockets[0]
    wait_for_words(page, minimum=1)
    page.select_option("#engine", "elsewhere")
    wait_state(page, "refused", timeout=20_000)
    assert len(sockets) == 2
    assert "engine=elsewhere" in sockets[1]
    detail = page.inner_text("#status-detail")
    assert "parameters" in detail, detail
    assert "elsewhere" in detail, detail

    page.select_option("#engine", real["default_engine"])
    page.click("#start")
    wait_state(page, "listening")
    assert f"engine={real['default_engine']}" in sockets[-1]
    page.click("#stop")
    wait_state(page, "stopped", timeout=20_000)
    assert errors == []
