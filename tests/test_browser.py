"""The captioning page (gateway/static/) in real headless Chromium.

Debian's /usr/bin/chromium is driven by Playwright; its fake microphone plays
a WAV synthesised with espeak-ng. The gateway runs as a subprocess with the
real tiny.en model on CPU. Screenshots, the gateway logs and the speech WAV
land in artifacts/ (git-ignored).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_helpers import (
    ARTIFACTS,
    CHROMIUM,
    EXPECTED_WORDS,
    ROOT,
    Gateway,
    StaticServer,
    chromium_args,
    make_speech_wav,
    running_gateway,
)
from tests.prefix_proxy import PrefixProxy, self_signed_cert, tls_context

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

STATIC = ROOT / "gateway" / "static"
API_KEY = "browser-test-key-4f1c"
TLS_HOST = "captions.test"

# Records, from the page's own DOM, when provisional (#interim) and final (.final) words first show.
CAPTION_OBSERVER = """
(() => {
  const log = { firstInterim: null, firstFinal: null, interims: 0, interimStyle: null };
  window.__captionLog = log;
  const check = () => {
    const interim = document.getElementById('interim');
    if (interim && interim.isConnected && interim.textContent.trim()) {
      log.interims += 1;
      if (log.firstInterim === null) {
        log.firstInterim = performance.now();
        log.interimStyle = getComputedStyle(interim).fontStyle;
      }
    }
    if (log.firstFinal === null && document.querySelector('#captions .final')) log.firstFinal = performance.now();
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true });
})();
"""


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
def playwright() -> Iterator[Any]:
    """Playwright's sync API runs its own event loop in this thread: module scope ends it
    before the asyncio tests of later modules run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


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


Launch = Callable[..., Any]


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


# -- helpers ------------------------------------------------------------------


def open_page(context: Any, url: str) -> tuple[Any, list[str], list[str]]:
    """Open ``url``; returns the page, the WebSocket URLs it opens, and its script errors."""
    context.add_init_script(CAPTION_OBSERVER)
    page = context.pages[0] if context.pages else context.new_page()
    sockets: list[str] = []
    errors: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function("document.querySelector('#status').dataset.state !== 'loading'")
    return page, sockets, errors


def state(page: Any) -> str:
    return str(page.get_attribute("#status", "data-state"))


def wait_state(page: Any, *states: str, timeout: float = 30_000) -> str:
    page.wait_for_function(
        "states => states.includes(document.querySelector('#status').dataset.state)",
        arg=list(states),
        timeout=timeout,
    )
    return state(page)


def finals(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#captions .final").all_inner_texts()]


def word_list(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def words_of(text: str) -> set[str]:
    return set(word_list(text))


def seconds(stamp: str) -> float:
    """``HH:MM:SS.mmm`` or ``HH:MM:SS,mmm`` as seconds."""
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def final_spans(page: Any) -> list[tuple[str, float, float]]:
    """The finals on screen, in order, with the session times their titles give (seconds)."""
    titled = page.eval_on_selector_all("#captions .final", "spans => spans.map(s => [s.textContent, s.title])")
    out: list[tuple[str, float, float]] = []
    for text, title in titled:
        start, end = (seconds(t.strip()) for t in title.split("\u2013"))
        out.append((text.strip(), start, end))
    return out


SRT_CUE = re.compile(r"(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+?)(?:\n\n|\n?$)", re.S)
VTT_CUE = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.+?)(?:\n\n|\n?$)", re.S)


def wait_for_words(page: Any, minimum: int, timeout: float = 120.0, baseline: int = 0) -> set[str]:
    """Wait until the finals after the first ``baseline`` ones hold ``minimum`` expected words."""
    deadline = time.monotonic() + timeout
    found: set[str] = set()
    while time.monotonic() < deadline:
        found = words_of(" ".join(finals(page)[baseline:])) & EXPECTED_WORDS
        if len(found) >= minimum:
            return found
        assert state(page) in ("connecting", "listening", "reconnecting"), page.inner_text("#status-detail")
        time.sleep(0.5)
    raise AssertionError(f"captions lacked {minimum} expected words after {timeout} s; finals: {finals(page)}")


def read_download(page: Any, button: str) -> tuple[str, str]:
    with page.expect_download() as info:
        page.click(button)
    download = info.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


def config_of(gw: Gateway) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(gw.url + "v1/config", timeout=5) as response:
        return dict(json.load(response))


# -- the pure modules, in the browser -----------------------------------------------

UNIT_PAGE = "<!doctype html><meta charset=utf-8><title>unit</title><p>unit tests</p>"

UNIT_JS = """
async () => {
  const ep = await import('./static/endpoints.js');
  const tr = await import('./static/transcript.js');
  const rs = await import('./static/resampler.js');
  const lat = await import('./static/latency.js');
  const pol = await import('./static/policy.js');
  const out = {};

  out.here = ep.endpointsFor(document.baseURI);
  out.prefixed = ep.endpointsFor('https://host.example/captions/');
  out.prefixedIndex = ep.endpointsFor('https://host.example/a/b/index.html?x=1#frag');
  out.plain = ep.endpointsFor('http://127.0.0.1:8000/');
  const listenUrl = ep.withParams(out.prefixed.listen, { engine: 'whisper', model: '' });
  out.params = Object.fromEntries(new URL(listenUrl).searchParams);
  out.protocols = ep.authProtocols('abc-123');
  out.noProtocols = ep.authProtocols('') === undefined;
  try { ep.authProtocols('has space'); out.badKey = 'accepted'; } catch (e) { out.badKey = e.message; }

  const t = new tr.Transcript();
  const res = (start, duration, text, words, isFinal, speechFinal = false) => ({
    type: 'Results', start, duration, is_final: isFinal, speech_final: speechFinal,
    channel: { alternatives: [{ transcript: text, words: words.map(([w, s, e]) => ({
      word: w.toLowerCase().replace(/[.,]/g, ''), punctuated_word: w, start: s, end: e,
    })) }] },
  });
  out.k1 = t.apply(res(0, 1, 'hello', [['hello', 0.1, 0.5]], false)).kind;
  out.interim1 = t.interim && t.interim.text;
  out.k2 = t.apply(res(0, 2, 'Hello world.', [['Hello', 0.1, 0.5], ['world.', 0.6, 1.1]], true, true)).kind;
  out.interimAfterFinal = t.interim;
  t.apply(res(2, 3, 'Second line, a bit longer & more.', [
    ['Second', 2.2, 2.6], ['line,', 2.6, 3.0], ['a', 3.1, 3.2], ['bit', 3.2, 3.4],
    ['longer', 3.4, 3.8], ['&', 3.8, 3.9], ['more.', 3.9, 4.3]], true));
  t.apply(res(5, 1, '', [], true, true));
  // A second stream (reconnect) 10 s into the session: its times start at 0.
  t.apply(res(0, 1.5, 'After reconnect.', [['After', 0.2, 0.6], ['reconnect.', 0.6, 1.2]], true, true), 10);
  out.text = t.toText();
  out.srt = t.toSRT();
  out.vtt = t.toVTT();
  out.none = t.apply({ type: 'Metadata' }).kind;
  out.stamp = [tr.formatTimestamp(3723.4567, ','), tr.formatTimestamp(-1, '.')];
  out.wrapped = tr.wrapCueText('one two three four five six seven eight nine ten eleven', 42);

  const sine = (rate, freq, n, amp = 0.5) =>
    Float32Array.from({ length: n }, (_, i) => amp * Math.sin(2 * Math.PI * freq * i / rate));
  const run = (inRate, freq, seconds) => {
    const r = new rs.Resampler(inRate, 16000);
    const input = sine(inRate, freq, inRate * seconds);
    const parts = [];
    for (let i = 0; i < input.length; i += 128) parts.push(r.process(input.subarray(i, i + 128)));
    const total = parts.reduce((n, p) => n + p.length, 0);
    const all = new Float32Array(total);
    let o = 0;
    for (const p of parts) { all.set(p, o); o += p.length; }
    const mid = all.subarray(1600, total - 1600);
    const rms = Math.sqrt(mid.reduce((s, v) => s + v * v, 0) / mid.length);
    return { total, rms };
  };
  out.r48 = run(48000, 440, 2);
  out.r44 = run(44100, 1000, 2);
  out.alias = run(48000, 12000, 2);
  out.pass = run(16000, 440, 1);
  out.pcm = Array.from(new Int16Array(rs.toLinear16(Float32Array.from([0, 1, -1, 0.5, 2]))));
  out.pcmBytes = Array.from(new Uint8Array(rs.toLinear16(Float32Array.from([0.5]))));

  const m = new lat.LatencyMeter();
  m.markSent(0.1, 1000); m.markSent(0.2, 1100); m.markSent(0.3, 1200);
  out.lat = [m.measure(0.15, 1500), m.measure(0.3, 1600), m.measure(0.5, 2000), m.measure(0, 2000)];
  const stats = new lat.LatencyStats(3);
  [100, 400, 200, 300].forEach((v) => stats.add('final', v));
  out.median = stats.median('final');
  out.fmt = [lat.formatLatency(840.4), lat.formatLatency(1640), lat.formatLatency(null)];

  out.close = [
    pol.classifyClose({ code: 1000, opened: true, stopping: true }),
    pol.classifyClose({ code: 1008, opened: true, stopping: false }),
    pol.classifyClose({ code: 4001, opened: true, stopping: false }),
    pol.classifyClose({ code: 1006, opened: false, stopping: false }),
    pol.classifyClose({ code: 1006, opened: true, stopping: false }),
    pol.classifyClose({ code: 1011, opened: true, stopping: false }),
    pol.classifyClose({ code: 1013, opened: true, stopping: false }),
  ];
  out.http = [401, 403, 400, 404, 426, 503, null].map(pol.classifyHttpStatus);
  out.backoff = [1, 2, 3, 10].map((a) => pol.backoffDelay(a, () => 0.5));
  out.backoffJitter = [pol.backoffDelay(3, () => 0), pol.backoffDelay(3, () => 0.999)];
  out.refusal = [
    pol.refusalText({ status: 401, body: { err_msg: 'invalid credentials' } }),
    pol.refusalText({ status: 400, body: { err_msg: 'unknown engine' } }),
    pol.refusalText({ status: 404, body: {} }),
    pol.refusalText({ code: 4001, reason: 'quota exhausted' }),
  ];
  return out;
}
"""

# The AudioWorklet itself: an OfflineAudioContext renders a 48 kHz tone through it.
WORKLET_JS = """
async () => {
  const ctx = new OfflineAudioContext(1, 48000 * 2, 48000);
  await ctx.audioWorklet.addModule('./static/worklet.js');
  const osc = new OscillatorNode(ctx, { frequency: 440 });
  const gain = new GainNode(ctx, { gain: 0.5 });
  const node = new AudioWorkletNode(ctx, 'linear16-capture', { processorOptions: { targetRate: 16000, chunkMs: 100 } });
  const chunks = [];
  node.port.onmessage = (e) => chunks.push(e.data);
  osc.connect(gain).connect(node).connect(ctx.destination);
  osc.start();
  await ctx.startRendering();
  await new Promise((r) => setTimeout(r, 300));
  const samples = chunks.map((c) => new Int16Array(c.pcm));
  const peak = Math.max(...samples.map((s) => s.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  return { count: chunks.length, sizes: [...new Set(chunks.map((c) => c.samples))],
           bytes: [...new Set(chunks.map((c) => c.pcm.byteLength))], peak, rms: chunks[5] && chunks[5].rms };
}
"""


def test_pure_modules_in_chromium(launch: Launch) -> None:
    """Unit tests of the ES modules, run in Chromium on an https page under a path prefix.

    The page's origin is routed by Playwright (no server, no network): this is
    the page's own view of https://captions.test/captions/, so endpointsFor()
    has to choose wss: and keep the prefix.
    """
    context = launch(None)

    def serve(route: Any) -> None:
        path = route.request.url.split("captions.test/captions/", 1)[1].split("?", 1)[0]
        if path == "unit.html":
            route.fulfill(status=200, content_type="text/html", body=UNIT_PAGE)
        elif path.startswith("static/") and (STATIC / path[len("static/") :]).is_file():
            ctype = "text/javascript" if path.endswith(".js") else "text/plain"
            route.fulfill(status=200, content_type=ctype, body=(STATIC / path[len("static/") :]).read_bytes())
        else:
            route.fulfill(status=404, body="not found")

    context.route(f"https://{TLS_HOST}/captions/**", serve)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"https://{TLS_HOST}/captions/unit.html")
    r = page.evaluate(UNIT_JS)

    assert r["here"]["listen"] == f"wss://{TLS_HOST}/captions/v1/listen"
    assert r["here"]["config"] == f"https://{TLS_HOST}/captions/v1/config"
    assert r["prefixed"] == {
        "base": "https://host.example/captions/",
        "config": "https://host.example/captions/v1/config",
        "listen": "wss://host.example/captions/v1/listen",
        "listenHttp": "https://host.example/captions/v1/listen",
    }
    assert r["prefixedIndex"]["listen"] == "wss://host.example/a/b/v1/listen"
    assert r["plain"]["listen"] == "ws://127.0.0.1:8000/v1/listen"
    assert r["plain"]["config"] == "http://127.0.0.1:8000/v1/config"
    assert r["params"]["engine"] == "whisper"
    assert "model" not in r["params"]
    assert r["params"]["encoding"] == "linear16"
    assert r["params"]["sample_rate"] == "16000"
    assert r["params"]["interim_results"] == "true"
    assert r["protocols"] == ["token", "abc-123"]
    assert r["noProtocols"] is True
    assert "cannot be sent" in r["badKey"]

    assert r["k1"] == "interim"
    assert r["interim1"] == "hello"
    assert r["k2"] == "final"
    assert r["interimAfterFinal"] is None
    assert r["text"] == "Hello world.\nSecond line, a bit longer & more.\nAfter reconnect.\n"
    assert r["srt"] == (
        "1\n00:00:00,100 --> 00:00:01,100\nHello world.\n\n"
        "2\n00:00:02,200 --> 00:00:04,300\nSecond line, a bit longer & more.\n\n"
        "3\n00:00:10,200 --> 00:00:11,200\nAfter reconnect.\n"
    )
    assert r["vtt"] == (
        "WEBVTT\n\n"
        "00:00:00.100 --> 00:00:01.100\nHello world.\n\n"
        "00:00:02.200 --> 00:00:04.300\nSecond line, a bit longer &amp; more.\n\n"
        "00:00:10.200 --> 00:00:11.200\nAfter reconnect.\n"
    )
    assert r["none"] == "none"
    assert r["stamp"] == ["01:02:03,457", "00:00:00.000"]
    assert r["wrapped"] == "one two three four five six\nseven eight nine ten eleven"

    # 2 s in, 2 s * 16 kHz out (less the kernel's half-width still buffered), level kept.
    assert 31_900 <= r["r48"]["total"] <= 32_000
    assert 31_900 <= r["r44"]["total"] <= 32_000
    assert abs(r["r48"]["rms"] - 0.5 / 2**0.5) < 0.01
    assert abs(r["r44"]["rms"] - 0.5 / 2**0.5) < 0.01
    assert r["alias"]["rms"] < 0.0035  # 12 kHz would alias to 4 kHz: >= 40 dB down
    assert r["pass"]["total"] == 16_000
    assert r["pcm"] == [0, 32767, -32768, 16384, 32767]
    assert r["pcmBytes"] == [0x00, 0x40]  # little-endian 16384

    assert r["lat"] == [400, 400, 800, None]
    assert r["median"] == 300
    assert r["fmt"] == ["840 ms", "1.6 s", "\u2013"]

    assert r["close"] == ["done", "refused", "refused", "handshake", "retry", "retry", "retry"]
    assert r["http"] == ["refused", "refused", "refused", "refused", "retry", "retry", "retry"]
    assert r["backoff"] == [500, 1000, 2000, 15000]
    assert r["backoffJitter"][0] == 1500
    assert 2490 <= r["backoffJitter"][1] <= 2500
    assert r["refusal"] == [
        "invalid or missing API key (invalid credentials)",
        "the server rejected the stream parameters: unknown engine",
        "no streaming endpoint at this address",
        "quota exhausted (close code 4001)",
    ]

    assert errors == []


def test_worklet_in_chromium(launch: Launch) -> None:
    """The AudioWorklet converts a 48 kHz tone into 100 ms linear16 chunks at 16 kHz.

    (Playwright's routing does not see worklet module requests: a loopback
    static server serves the files.)
    """
    context = launch(None)
    with StaticServer(STATIC) as server:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "unit.html")
        w = page.evaluate(WORKLET_JS)
    assert w["sizes"] == [1600]
    assert w["bytes"] == [3200]
    assert 19 <= w["count"] <= 20  # 2 s of 100 ms chunks
    assert 15_000 < w["peak"] <= 16_500  # a 0.5 tone as linear16
    assert 0.3 < w["rms"] < 0.4
    assert errors == []


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
