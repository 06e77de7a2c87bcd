"""Section "feel": how live the dashboard feels in a real browser (issue 14), against its budgets.

Headless Debian Chromium (Playwright, flags as in DESIGN.md section 9) on a ``streamlit run app.py`` server
started for this section (``bench.browser.streamlit_server``), one window 1440 x 1000:

- **Fresh server, first full view**: a new session opens the Overview on the server that has just started
  (nothing fitted in memory; the text embeddings come from the disk cache as on any restarted server), from
  the navigation to the last tile of "The current fusion at a glance" drawn and the script idle.
- **Warm server, first full view**: the same for new sessions (new browser contexts) once the lab is built;
  the median of ``VIEWS``.
- **Key press to new tile value**: on the Fusion Lab, one Left or Right key on the item-kNN weight slider
  (0.40 <-> 0.35); from the ``keydown`` to the NDCG@10 tile showing its new text, measured inside the page
  (``performance.now()`` and a MutationObserver, so the benchmark's own round trips do not count); the median
  of ``PRESSES``.
- **Three quick presses**: three keys ``QUICK_GAP_MS`` apart (0.40 -> 0.55 and back); from the first
  ``keydown`` to the tile showing the value of the third press's weight (known from a slow pass first);
  the median of ``QUICK_ROUNDS`` in each direction.

During every key press the page is sampled at each animation frame for visible elements Streamlit marks stale
(``data-stale="true"``, height above 0 and visible by ``checkVisibility``: the page's invisible style element and
widgets inside a closed expander do not count) whose computed opacity is below 1: "greyed out" counts how many of
the presses showed any (and the report names them), and the running-indicator column
how many showed Streamlit's running indicator for longer than a frame.
Budgets (issue 14): key press under 150 ms, three presses under 400 ms, first view under 2 s warm and 8 s
fresh. Figures are medians on a shared 2-core machine; the load average is printed beside them.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.browser import CHROMIUM, CHROMIUM_ARGS, streamlit_server
from bench.common import Options, fmt_s, load_average, table

BUDGETS_S = {"key_press": 0.150, "three_presses": 0.400, "first_view_warm": 2.0, "first_view_fresh": 8.0}
PRESSES = 20
QUICK_ROUNDS = 5
QUICK_GAP_MS = 60
VIEWS = 5
VIEWPORT = {"width": 1440, "height": 1000}
TILE = "NDCG@10"
SLIDER = "Weight of itemknn"
FIRST_VIEW_TIMEOUT_MS = 300_000
STEP_TIMEOUT_MS = 20_000

_TILE_JS = """(label) => {
  const tiles = Array.from(document.querySelectorAll('[data-testid="stMetric"]'));
  const tile = tiles.find(t => t.querySelector('[data-testid="stMetricLabel"]')?.innerText.trim() === label);
  return tile?.querySelector('[data-testid="stMetricValue"]')?.innerText.trim() ?? null;
}"""

# Arms a probe: resolves with {ms, grey, running} once the tile shows `target` (or any other text than
# `before` when target is null) and the script is idle; ms counts from the first keydown after arming.
_ARM_JS = (
    """([label, before, target]) => {
  const tileValue = """
    + _TILE_JS
    + """;
  const app = document.querySelector('[data-testid="stApp"]');
  window.__probe = new Promise((resolve) => {
    let t0 = null, shown = null, grey = 0, runningFrames = 0, finished = false; const what = new Set();
    const keys = [];
    document.addEventListener('keydown', () => {
      const now = performance.now(); if (t0 === null) t0 = now; keys.push(now - t0);
    }, {capture: true});
    const done = () => {
      if (finished || shown === null || app.getAttribute('data-test-script-state') !== 'notRunning') return;
      finished = true; obs.disconnect();
      resolve({ms: shown - t0, grey: grey, running: runningFrames, what: Array.from(what), keys: keys});
    };
    const check = () => {
      if (t0 === null) return;
      const v = tileValue(label);
      const ok = target === null ? (v !== null && v !== before) : v === target;
      if (ok && shown === null) shown = performance.now();
      if (!ok) shown = null;
      done();
    };
    const obs = new MutationObserver(check);
    obs.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
    const frame = () => {
      if (finished) return;
      if (t0 !== null) {
        // Only what a person can see: inside a closed expander or an unselected tab nothing shows.
        const dim = Array.from(document.querySelectorAll('[data-stale="true"]'))
          // Opacity first: it needs no layout, and most stale elements are not dimmed (the probe's own cost
          // counts in what it measures).
          .filter(e => parseFloat(getComputedStyle(e).opacity) < 0.99 && e.getBoundingClientRect().height > 0
                       && e.checkVisibility({visibilityProperty: true}));
        grey = Math.max(grey, dim.length);
        // What was dimmed: the element's first test id inside, and the start of its text.
        for (const e of dim) {
          const inner = e.querySelector('[data-testid]');
          const id = inner ? inner.getAttribute('data-testid') : e.getAttribute('data-testid');
          what.add(`${id}: ${e.innerText.trim().slice(0, 40)}`);
        }
        if (document.querySelector('[data-testid="stStatusWidget"]')) runningFrames += 1;
        check();
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
}"""
)


def _wait_full_view(page: Any, timeout_ms: int) -> None:
    """The Overview is fully drawn: its fusion tiles are there, every chart is drawn, no skeleton is left, and the
    script is idle."""
    page.wait_for_function(
        """(label) => {
          const app = document.querySelector('[data-testid="stApp"]');
          if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
          if (document.querySelector('[data-testid="stSkeleton"]')) return false;
          // Every chart drawn, not only mounted: Vega-Lite's canvas (or svg), Plotly's main svg.
          const charts = document.querySelectorAll('[data-testid="stVegaLiteChart"], [data-testid="stPlotlyChart"]');
          if (Array.from(charts).some(c => !c.querySelector('canvas, svg.marks, svg.main-svg'))) return false;
          return Array.from(document.querySelectorAll('[data-testid="stMetricLabel"]'))
            .some(l => l.innerText.trim() === label);
        }""",
        arg=TILE,
        timeout=timeout_ms,
        polling="raf",
    )


def first_view(browser: Any, base: str, timeout_ms: int = 60_000) -> float:
    """Seconds from a new session's navigation to the Overview's full view."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(f"{base}/", wait_until="commit", timeout=timeout_ms)
        _wait_full_view(page, timeout_ms)
        return time.perf_counter() - t0
    finally:
        context.close()


def _idle(page: Any) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=STEP_TIMEOUT_MS)


def _tile(page: Any) -> str | None:
    return page.evaluate(_TILE_JS, TILE)


def _press(page: Any, keys: list[str], target: str | None, gap_ms: int = 0) -> dict[str, float]:
    before = _tile(page)
    page.get_by_role("slider", name=SLIDER).focus()  # before the probe is armed: not timed
    page.evaluate(_ARM_JS, [TILE, before, target])
    start = time.perf_counter()
    for i, key in enumerate(keys):
        # Key i goes down gap_ms x i after the first, on the clock: a fixed sleep after each press would add the
        # press's own round trip (about 50 ms here) to every gap.
        wait_s = i * gap_ms / 1e3 - (time.perf_counter() - start)
        if wait_s > 0:
            time.sleep(wait_s)
        # To the focused slider, as a person's keys go: a locator's press would first wait for the slider to be
        # stable over two animation frames, which holds the next key back until the page has drawn the last run.
        page.keyboard.press(key)
    result: dict[str, float] = page.evaluate(
        f"() => Promise.race([window.__probe, new Promise(r => setTimeout(() => r(null), {STEP_TIMEOUT_MS}))])"
    )
    if result is None:
        raise RuntimeError(f"the {TILE} tile did not reach {target or 'a new value'} within {STEP_TIMEOUT_MS} ms")
    _idle(page)
    return result


def key_presses(browser: Any, base: str) -> dict[str, Any]:
    """One key at a time, then three quick keys, on the Fusion Lab's item-kNN weight."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{base}/Fusion_Lab", wait_until="domcontentloaded", timeout=FIRST_VIEW_TIMEOUT_MS)
        page.wait_for_function(_TILE_JS + "", arg=TILE, timeout=FIRST_VIEW_TIMEOUT_MS)
        _idle(page)
        page.get_by_role("slider", name=SLIDER).focus()
        singles = []
        for i in range(PRESSES + 2):  # two unmeasured presses first: the browser's own first-use costs
            r = _press(page, ["ArrowLeft" if i % 2 == 0 else "ArrowRight"], None)
            if i >= 2:
                singles.append(r)
        at_040 = _tile(page)
        for _ in range(3):  # a slow pass learns the tile's text at 0.55
            _press(page, ["ArrowRight"], None)
        at_055 = _tile(page)
        up, down = [], []
        for _ in range(QUICK_ROUNDS):
            down.append(_press(page, ["ArrowLeft"] * 3, at_040, QUICK_GAP_MS))
            up.append(_press(page, ["ArrowRight"] * 3, at_055, QUICK_GAP_MS))
        for _ in range(3):
            _press(page, ["ArrowLeft"], None)
        return {"single": singles, "quick": down + up}
    finally:
        context.close()


def _summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    ms = [s["ms"] for s in samples]
    return {
        "median_s": statistics.median(ms) / 1e3,
        "max_s": max(ms) / 1e3,
        "n": len(ms),
        "greyed_out": sum(1 for s in samples if s["grey"] > 0),
        "running_indicator": sum(1 for s in samples if s["running"] > 1),
        "greyed_elements": sorted({w for s in samples for w in s.get("what", [])}),
        "samples_ms": [round(x, 1) for x in ms],
        # When the last key went down, from the first: that the keys were as quick as the bench says.
        "last_key_ms": statistics.median(s["keys"][-1] for s in samples),
    }


def run(opts: Options) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: run `make browser-deps` or set RECO_CHROMIUM")
    with (
        tempfile.TemporaryDirectory(prefix="reco-feel-") as tmp,
        streamlit_server(Path(tmp) / "server.log", start_timeout=90) as server,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            fresh = first_view(browser, server.base, FIRST_VIEW_TIMEOUT_MS)
            opts.log(f"  first full view on a fresh server: {fmt_s(fresh)} (load {load_average()})")
            warm = [first_view(browser, server.base) for _ in range(VIEWS)]
            presses = key_presses(browser, server.base)
        finally:
            browser.close()
    single, quick = _summary(presses["single"]), _summary(presses["quick"])
    out = {
        "first_view_fresh_s": fresh,
        "first_view_warm": {"median_s": statistics.median(warm), "n": len(warm), "samples_s": warm},
        "key_press": single,
        "three_presses": quick,
        "budgets_s": BUDGETS_S,
        "load_average": load_average(),
    }
    rows = [
        ["key press -> new tile value", fmt_s(single["median_s"]), fmt_s(BUDGETS_S["key_press"]),
         f"{single['greyed_out']} of {single['n']}", f"{single['running_indicator']} of {single['n']}"],
        ["three quick presses", fmt_s(quick["median_s"]), fmt_s(BUDGETS_S["three_presses"]),
         f"{quick['greyed_out']} of {quick['n']}", f"{quick['running_indicator']} of {quick['n']}"],
        ["first full view, warm server", fmt_s(out["first_view_warm"]["median_s"]),
         fmt_s(BUDGETS_S["first_view_warm"]), "", ""],
        ["first full view, fresh server", fmt_s(fresh), fmt_s(BUDGETS_S["first_view_fresh"]), "", ""],
    ]  # fmt: skip
    opts.log(
        table(
            f"How live the dashboard feels (headless Chromium, medians; load average {out['load_average']})",
            ["what", "median", "budget", "greyed out", "running indicator"],
            rows,
        )
    )
    opts.log(f"the three quick keys went down within {quick['last_key_ms']:.0f} ms (median)")
    dimmed = sorted(set(single["greyed_elements"]) | set(quick["greyed_elements"]))
    if dimmed:
        opts.log("dimmed during a press (first test id inside: text): " + " | ".join(dimmed))
    return out
