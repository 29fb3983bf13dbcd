"""Driving the captions page (gateway/static/) from Playwright: what it shows and downloads.

The page's DOM is its contract with these tests: ``#status`` carries the state
(``data-state``), finals are ``#captions .final`` spans titled with their
session times, provisional words are ``#interim``. :data:`CAPTION_OBSERVER`
records, from inside the page, when each first appears.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.browser_helpers import EXPECTED_WORDS, Gateway

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
    with urllib.request.urlopen(gw.url + "v1/config", timeout=5) as response:
        return dict(json.load(response))
