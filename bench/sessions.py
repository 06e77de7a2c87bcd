"""Section 7: many browser sessions on one dashboard server, and a soak in one session (issue 6).

One ``streamlit run app.py`` server on loopback (a free port), driven by headless Debian Chromium through
Playwright (flags as in DESIGN.md section 9 and tests/e2e):

- Load test: ``SESSIONS`` browser contexts (separate cookies, so separate Streamlit sessions), half on the
  Fusion Lab, half on the User Explorer each with its own user (``?user=<id>``). For ``--sessions-seconds``
  (default 120) every session moves its own weight sliders with the keyboard, one key press at a time, a
  seeded random walk. Rerun time = from the key's ``keydown`` to the app root's
  ``data-test-script-state`` leaving "running" for "notRunning", measured inside the page
  (``performance.now()``), so the benchmark's own event loop does not count. After every rerun the
  session reads its sliders (the range inputs' values) and, on the explorer, its "User id" box: any value that
  is not the one this session set is an isolation violation (another session's weights or user).
  The server's resident memory is sampled every second (psutil) throughout.
- Soak: one fresh session on the Fusion Lab makes ``--soak-changes`` (default 500) consecutive weight
  changes; the server's resident memory after a 20-change warm-up is compared with the memory after
  the last change (target: less than 50 MB of growth).

The first page load builds the lab (fits the members); it is done once, before anything is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.browser import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, streamlit_server
from bench.common import Options, fmt_mib, fmt_s, table

SESSIONS = 10
MEMBERS = ("als", "itemknn", "text")  # the dashboard's default members (ui.state.DEFAULT_MEMBERS)
STEP = 0.05  # the weight sliders' step (ui.state.WEIGHT_STEP)
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
FIRST_LOAD_MS = 300_000
RERUN_TIMEOUT_MS = 30_000
SOAK_WARMUP = 20
SOAK_LIMIT_BYTES = 50_000_000  # 50 MB

# Resolves with the milliseconds from the next keydown to the script state leaving "running".
_ARM = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.__rerun = new Promise((resolve) => {
    let pressed = null;
    const onKey = () => { if (pressed === null) pressed = performance.now(); };
    document.addEventListener('keydown', onKey, {capture: true, once: true});
    const obs = new MutationObserver((records) => {
      for (const r of records) {
        const now = app.getAttribute('data-test-script-state');
        if (pressed !== null && r.oldValue === 'running' && now === 'notRunning') {
          obs.disconnect();
          resolve(performance.now() - pressed);
          return;
        }
      }
    });
    obs.observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
  });
}"""


class Server:
    """The dashboard server (``bench.browser.streamlit_server``) with its resident memory sampled by ``sample()``."""

    def __init__(self, handle: StreamlitServer) -> None:
        import psutil

        self.base = handle.base
        self.ps = psutil.Process(handle.proc.pid)
        self.samples: list[tuple[float, int, str]] = []
        self.t0 = handle.started

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def sample(self, label: str) -> int:
        value = self.rss()
        self.samples.append((time.monotonic() - self.t0, value, label))
        return value


class Session:
    """One browser context moving its own weights; records rerun times and isolation violations."""

    def __init__(self, index: int, path: str, user: str | None, seed: int) -> None:
        self.index, self.path, self.user = index, path, user
        self.rng = np.random.default_rng(seed)
        self.weights: dict[str, float] = {}
        self.times_ms: list[float] = []
        self.violations: list[str] = []
        self.timeouts = 0
        self.page: Any = None
        self.context: Any = None

    async def open(self, browser: Any, base: str) -> None:
        self.context = await browser.new_context(viewport={"width": 1440, "height": 1000})
        self.page = await self.context.new_page()
        query = f"?user={self.user}" if self.user is not None else ""
        await self.page.goto(f"{base}/{self.path}{query}", wait_until="domcontentloaded", timeout=FIRST_LOAD_MS)
        await self.page.wait_for_selector(READY, timeout=FIRST_LOAD_MS)
        self.weights = await self.shown_weights()

    async def shown_weights(self) -> dict[str, float]:
        out = {}
        for m in MEMBERS:
            # Streamlit's slider is an <input type="range">: its value is the weight shown.
            value = await self.page.get_by_role("slider", name=f"Weight of {m}").input_value()
            out[m] = round(float(value), 2)
        return out

    def _next_move(self) -> tuple[str, str]:
        member = str(self.rng.choice(MEMBERS))
        w = self.weights[member]
        if w >= 1.0 - 1e-9:
            key = "ArrowLeft"
        elif w <= 1e-9:
            key = "ArrowRight"
        else:
            key = "ArrowRight" if self.rng.random() < 0.5 else "ArrowLeft"
        others = sum(v for m, v in self.weights.items() if m != member)
        if key == "ArrowLeft" and others <= 1e-9 and w <= STEP + 1e-9:
            key = "ArrowRight"  # keep one positive weight: all-zero weights only show a warning
        return member, key

    async def step(self) -> None:
        member, key = self._next_move()
        await self.page.evaluate(_ARM)
        await self.page.get_by_role("slider", name=f"Weight of {member}").press(key)
        try:
            ms = await self.page.evaluate(
                f"() => Promise.race([window.__rerun, new Promise(r => setTimeout(() => r(-1), {RERUN_TIMEOUT_MS}))])"
            )
        except Exception as exc:  # a closed page or a navigation: count it, resynchronise
            self.violations.append(f"session {self.index}: rerun wait failed: {type(exc).__name__}")
            ms = -1
        if ms < 0:
            self.timeouts += 1
            await self.page.wait_for_selector(READY, timeout=RERUN_TIMEOUT_MS)
        else:
            self.times_ms.append(float(ms))
        delta = STEP if key == "ArrowRight" else -STEP
        self.weights[member] = round(min(1.0, max(0.0, self.weights[member] + delta)), 2)
        await self.check()

    async def check(self) -> None:
        shown = await self.shown_weights()
        if shown != self.weights:
            self.violations.append(f"session {self.index}: weights shown {shown}, this session set {self.weights}")
            self.weights = shown  # resynchronise so one violation is not counted at every later step
        if self.user is not None:
            value = await self.page.get_by_role("textbox", name="User id", exact=True).input_value()
            if value.strip() != self.user:
                self.violations.append(f"session {self.index}: user shown {value!r}, this session chose {self.user!r}")

    async def close(self) -> None:
        if self.context is not None:
            await self.context.close()


async def _sample_memory(server: Server, stop: asyncio.Event, label: str) -> None:
    while not stop.is_set():
        server.sample(label)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def _load_test(browser: Any, server: Server, users: list[str], seconds: float, log: Any) -> dict[str, Any]:
    sessions = [
        Session(i, "User_Explorer" if i % 2 else "Fusion_Lab", users[i // 2] if i % 2 else None, seed=100 + i)
        for i in range(SESSIONS)
    ]
    for s in sessions:  # opened one by one: the first builds the lab, the rest only render
        await s.open(browser, server.base)
    server.sample("sessions open")
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_memory(server, stop, "load test"))
    deadline = time.monotonic() + seconds

    async def drive(s: Session) -> None:
        while time.monotonic() < deadline:
            await s.step()

    t0 = time.monotonic()
    await asyncio.gather(*(drive(s) for s in sessions))
    elapsed = time.monotonic() - t0
    stop.set()
    await sampler
    for s in sessions:
        await s.close()
    times = np.array([t for s in sessions for t in s.times_ms]) / 1e3
    per_page = {}
    for page in ("Fusion_Lab", "User_Explorer"):
        t = np.array([x for s in sessions if s.path == page for x in s.times_ms]) / 1e3
        per_page[page] = {"n": int(t.size), "p50_s": float(np.median(t)), "p95_s": float(np.percentile(t, 95))}
    rss = [v for _, v, label in server.samples if label == "load test"]
    return {
        "sessions": SESSIONS,
        "seconds": elapsed,
        "reruns": int(times.size),
        "timeouts": int(sum(s.timeouts for s in sessions)),
        "p50_s": float(np.median(times)),
        "p95_s": float(np.percentile(times, 95)),
        "per_page": per_page,
        "violations": [v for s in sessions for v in s.violations],
        "rss_start_bytes": rss[0] if rss else None,
        "rss_max_bytes": max(rss) if rss else None,
        "rss_end_bytes": rss[-1] if rss else None,
    }


async def _soak(browser: Any, server: Server, changes: int, log: Any) -> dict[str, Any]:
    s = Session(99, "Fusion_Lab", None, seed=99)
    await s.open(browser, server.base)
    for _ in range(SOAK_WARMUP):
        await s.step()
    before = server.sample("soak start")
    curve = [(0, before)]
    for i in range(1, changes + 1):
        await s.step()
        if i % 50 == 0 or i == changes:
            curve.append((i, server.sample("soak")))
            log(f"    soak: {i} changes, server RSS {fmt_mib(curve[-1][1])}")
    await s.close()
    after = curve[-1][1]
    t = np.array(s.times_ms) / 1e3
    return {
        "changes": changes,
        "warmup_changes": SOAK_WARMUP,
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "growth_bytes": after - before,
        "limit_bytes": SOAK_LIMIT_BYTES,
        "within_limit": after - before < SOAK_LIMIT_BYTES,
        "curve": curve,
        "p50_s": float(np.median(t)) if t.size else None,
        "violations": s.violations,
        "timeouts": s.timeouts,
    }


def _users(n: int) -> list[str]:
    """Ids of the first n evaluated MovieLens-100K users under the default protocol (distinct per session)."""
    from reco_core import experiment

    protocol = experiment.Protocol()
    split = experiment.make_split(experiment.load_dataset(protocol), protocol)
    ids = split.train.users.ids_of(split.eval_users()[:n])
    return [str(x) for x in ids]


async def _main(opts: Options) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: run `make browser-deps` or set RECO_CHROMIUM")
    users = _users(SESSIONS // 2)
    with (
        tempfile.TemporaryDirectory(prefix="reco-sessions-") as tmp,
        streamlit_server(Path(tmp) / "server.log", start_timeout=90) as handle,
    ):
        server = Server(handle)
        server.sample("healthy")
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                warm = Session(-1, "Fusion_Lab", None, seed=0)
                t0 = time.monotonic()
                await warm.open(browser, server.base)  # builds the lab once
                first_load = time.monotonic() - t0
                await warm.close()
                server.sample("lab built")
                opts.log(f"  first page load (builds the lab): {fmt_s(first_load)}")
                load = await _load_test(browser, server, users, opts.sessions_seconds, opts.log)
                opts.log(f"  load test: {load['reruns']} reruns, p50 {fmt_s(load['p50_s'])}")
                soak = await _soak(browser, server, opts.soak_changes, opts.log)
            finally:
                await browser.close()
    return {
        "first_load_s": first_load,
        "load_test": load,
        "soak": soak,
        "rss_curve": [(round(t, 1), v, label) for t, v, label in server.samples],
    }


def run(opts: Options) -> dict[str, Any]:
    out = asyncio.run(_main(opts))
    load, soak = out["load_test"], out["soak"]
    rows = [
        [
            f"{load['sessions']} sessions, all pages",
            load["reruns"],
            fmt_s(load["p50_s"]),
            fmt_s(load["p95_s"]),
            load["timeouts"],
            len(load["violations"]),
        ]
    ]
    for page, v in load["per_page"].items():
        rows.append([f"  on {page}", v["n"], fmt_s(v["p50_s"]), fmt_s(v["p95_s"]), "", ""])
    rows.append(
        ["soak, 1 session", soak["changes"], fmt_s(soak["p50_s"]), "-", soak["timeouts"], len(soak["violations"])]
    )
    opts.log(
        table(
            f"Dashboard reruns after a weight key press, {fmt_s(load['seconds'])} of load (rerun = keydown to "
            "script state notRunning)",
            ["sessions", "reruns", "p50", "p95", "timeouts", "isolation violations"],
            rows,
        )
    )
    opts.log(
        f"Server memory during the load test: {fmt_mib(load['rss_start_bytes'])} -> max "
        f"{fmt_mib(load['rss_max_bytes'])}, end {fmt_mib(load['rss_end_bytes'])}. Soak: "
        f"{fmt_mib(soak['rss_before_bytes'])} -> {fmt_mib(soak['rss_after_bytes'])} "
        f"({soak['growth_bytes'] / 1e6:+.1f} MB; limit +50 MB: {'met' if soak['within_limit'] else 'MISSED'})"
    )
    for v in load["violations"][:10] + soak["violations"][:10]:
        opts.log(f"  VIOLATION {v}")
    return out
