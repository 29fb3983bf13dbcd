"""The captioning page's pure ES modules and its AudioWorklet, unit-tested in real headless Chromium.

No gateway: Playwright routes the page's origin (the modules' own view of
https://captions.test/captions/), and a loopback static server serves the
worklet. The page against a real gateway is ``test_browser.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser_helpers import CHROMIUM, ROOT, Launch, StaticServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
]

STATIC = ROOT / "gateway" / "static"
TLS_HOST = "captions.test"


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
