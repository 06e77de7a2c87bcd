"""Section 7: many sessions on one dashboard server (1, 10 and 30 at once), and a soak in one session
(issues 6 and 16).

One ``streamlit run app.py`` server on loopback (a free port), loaded by one of two kinds of client
(``--sessions-client``; "both", the default, runs the protocol clients first, then the browsers, and reports
them side by side):

- protocol (``bench.ws_client``): simulated students that speak Streamlit's WebSocket protocol, the same
  ``rerun_script`` requests a browser sends, without rendering anything. In a class every student's browser runs
  on the student's own laptop, so this is the server's load as a class sees it: the figures a teacher's
  machine can promise. Their CPU on this machine is reported (``clients_cores_busy``): a few per cent of a core.
- browser: headless Debian Chromium tabs through Playwright (flags as in DESIGN.md section 9 and tests/e2e), on
  this machine. Each tab renders every plotly chart and data grid on the cores the server needs (one tab keeps
  about one core busy), so with 10 or 30 tabs the figures measure the tabs' rendering as much as the server.
  They are kept: they are what one person on a shared machine sees, and the end-to-end check that a key press
  reaches the server.

- Load tests: for each count in ``--sessions`` (default 1, 10, 30), that many sessions (browser contexts with
  separate cookies, or separate WebSocket connections: separate Streamlit sessions either way), half on the
  Fusion Lab, half on the User Explorer each with its own user (``?user=<id>``). For ``--sessions-seconds``
  (default 120) every session moves its own weight sliders one step (0.05, a key press) at a time, a seeded
  random walk (the same walk for both kinds). After every rerun the session reads back what it shows: a
  browser its sliders (the range inputs' values) and, on the explorer, its "User id" box; a protocol client the
  sliders, the link to this view, the Spark command and the NDCG tile (compared with every other session's
  tile for the same weights) or, on the explorer, its user (``ProtocolSession``). Any value that is not the one
  this session set is an isolation violation (another session's weights or user). The server's resident
  memory is sampled every second (psutil) throughout, and the CPU of the server and of the clients counted.
- Soak: one fresh session on the Fusion Lab (a browser when browsers run, else a protocol client) makes
  ``--soak-changes`` (default 500) consecutive weight changes; the server's resident memory after a 20-change
  warm-up is compared with the memory after the last change (target: less than 50 MB of growth).

How a rerun is timed. Protocol: from sending the ``rerun_script`` BackMsg to receiving the ``script_finished``
ForwardMsg that ends the run it caused (status 0, or 3 for the fragment run a weight move becomes), then a think
time (``THINK_S``) before the next step; a timeout is a request with no end within 30 s, and a finished run that
did not redraw the new weights (or drew the previous ones) counts as ``stale``, a rerun lost all the same.

Browser (issue 16): from the key's ``keydown`` to the server's ``script_finished``
message for the run it caused, once the app root's ``data-test-script-state`` is no longer "running" (and
the next animation frame), all measured inside the page (``performance.now()``), so the benchmark's own
event loop does not count. The messages are seen by a small WebSocket wrapper installed before the app's
code (``_PROBE``), which reads the one top-level field of each ForwardMsg that says a run finished. Watching
the attribute alone, as this benchmark did before, misses a rerun when React renders "running" and
"notRunning" in one go (the whole run's messages handled before the next render: a fast rerun, or a busy
browser): the attribute never changes and the press was counted as "no rerun within 30 s" although the
server had rerun within a second. Each rerun records whether "running" was ever rendered; ``batched`` counts
those that were not. A timeout is now a press after which no run finished within 30 s.

The first page load builds the lab (fits the members); it is done once, before anything is timed.

Run alone with ``python -m bench.sessions [--sessions 1,10,30] [--sessions-seconds S] [--soak-changes N]
[--sessions-client both|protocol|browser] [--results PATH]``, or ``python -m bench --only sessions
[--sessions-client ...]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bench.browser import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, streamlit_server
from bench.common import Options, _cpu_model, fmt_mib, fmt_s, load_average, machine, table
from bench.ws_client import ProtocolError, Run, StreamlitClient

MEMBERS = ("als", "itemknn", "text")  # the dashboard's default members (ui.state.DEFAULT_MEMBERS)
STEP = 0.05  # the weight sliders' step (ui.state.WEIGHT_STEP)
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
FIRST_LOAD_MS = 300_000
RERUN_TIMEOUT_MS = 30_000
READ_TIMEOUT_MS = 60_000  # reading a slider back after a rerun (30 sessions on 2 cores can take long to draw)
SOAK_WARMUP = 20
SOAK_LIMIT_BYTES = 50_000_000  # 50 MB

SESSION_COUNTS = (1, 10, 30)

# The two kinds of client (--sessions-client; "both" runs them in this order). The protocol clients
# (bench.ws_client) are what a class costs the server: every student's browser renders on the student's own
# laptop. The browsers are headless Chromium tabs on this machine, rendering every chart and grid on the cores
# the server needs.
CLIENT_KINDS = ("protocol", "browser")
NDCG_TILE = "NDCG@10"  # the Fusion Lab's tile the protocol sessions compare across sessions
# A protocol session's think time after each run, drawn uniformly from this range (seconds): about what a browser
# session spends between a rerun's end and its next key press with one session (reading the sliders back, arming
# the probe, pressing: a median of about 80 ms, ``think_p50_s`` in the browser rows). A student who presses again
# a tenth of a second after the numbers change is a fast one, so the protocol rows are a demanding class.
THINK_S = (0.05, 0.15)

# Installed in every page before the app's own code: records when each run-finished message arrives. A
# ForwardMsg's ``script_finished`` is top-level field 6 (an enum; 0 = the whole script, 3 = a fragment
# finished; 2 = stopped early for a rerun, which is not the end of the rerun we wait for).
_PROBE = """(() => {
  const Native = window.WebSocket;
  window.__finished = [];
  window.__onFinished = null;
  const finishedStatus = (b) => {
    let i = 0;
    const varint = () => {
      let v = 0, m = 1, c;
      do { c = b[i++]; v += (c & 127) * m; m *= 128; } while (c & 128 && i < b.length);
      return v;
    };
    while (i < b.length) {
      const key = varint(), field = Math.floor(key / 8), wire = key % 8;
      if (wire === 0) { const v = varint(); if (field === 6) return v; }
      else if (wire === 2) { const n = varint(); i += n; }  // not i += varint(): i is read first
      else if (wire === 1) { i += 8; }
      else if (wire === 5) { i += 4; }
      else return -1;
    }
    return -1;
  };
  const note = (t, bytes) => {
    const status = finishedStatus(bytes);
    if (status === 0 || status === 3) { window.__finished.push(t); if (window.__onFinished) window.__onFinished(); }
  };
  class ProbedSocket extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        const t = performance.now();
        if (ev.data instanceof ArrayBuffer) note(t, new Uint8Array(ev.data));
        else if (ev.data instanceof Blob) ev.data.arrayBuffer().then((a) => note(t, new Uint8Array(a)));
      });
    }
  }
  window.WebSocket = ProbedSocket;
})();"""

# Resolves with {ms, dom_running, pressed, done} for the next keydown: ms from the keydown to the first
# run-finished message after it, once the app root no longer says "running" (plus one animation frame);
# dom_running: whether the page ever rendered "running" for it; pressed and done: the keydown and the end on the
# page's clock (the time from one rerun's end to the next keydown is the session's think time).
_ARM = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.__rerun = new Promise((resolve) => {
    let pressed = null, mark = 0, sawRunning = false, done = false;
    const check = () => {
      if (done || pressed === null || window.__finished.length <= mark) return;
      if (app.getAttribute('data-test-script-state') === 'running') return;
      done = true;
      obs.disconnect();
      window.__onFinished = null;
      requestAnimationFrame(() => {
        const now = performance.now();
        resolve({ms: now - pressed, dom_running: sawRunning, pressed: pressed, done: now});
      });
    };
    const onKey = () => { if (pressed === null) { pressed = performance.now(); mark = window.__finished.length; } };
    document.addEventListener('keydown', onKey, {capture: true, once: true});
    const obs = new MutationObserver(() => {
      if (pressed !== null && app.getAttribute('data-test-script-state') === 'running') sawRunning = true;
      check();
    });
    obs.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
    window.__onFinished = check;
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

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far (user + system, all its threads)."""
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def sample(self, label: str) -> int:
        value = self.rss()
        self.samples.append((time.monotonic() - self.t0, value, label))
        return value


class _Walk:
    """What both kinds of session share: a seeded random walk over the weights, one step at a time, and the
    counts every load test reports."""

    def __init__(self, index: int, path: str, user: str | None, seed: int) -> None:
        self.index, self.path, self.user = index, path, user
        self.rng = np.random.default_rng(seed)
        self.weights: dict[str, float] = {}
        self.times_ms: list[float] = []
        self.think_ms: list[float] = []  # from one rerun's end to the next key press (or request)
        self.violations: list[str] = []
        self.timeouts = 0
        self.batched = 0  # browser: reruns whose "running" state the page never rendered
        self.stale = 0  # protocol: finished runs that did not redraw this session's new weights
        self.page_errors: list[str] = []
        self.read_failures = 0  # read-backs that found no slider or user box (browser: within READ_TIMEOUT_MS)

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
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class Session(_Walk):
    """One browser context moving its own weights; records rerun times and isolation violations."""

    def __init__(self, index: int, path: str, user: str | None, seed: int) -> None:
        super().__init__(index, path, user, seed)
        self.page: Any = None
        self.context: Any = None
        self._last_done: float | None = None  # the page's clock at the end of the previous rerun

    async def open(self, browser: Any, base: str) -> None:
        self.context = await browser.new_context(viewport={"width": 1440, "height": 1000})
        await self.context.add_init_script(_PROBE)
        self.page = await self.context.new_page()
        # A page error (an exception in the app's JavaScript) blanks the page: count it, it is not a slow rerun.
        self.page.on("pageerror", lambda exc: self.page_errors.append(f"session {self.index}: {exc}"[:300]))
        query = f"?user={self.user}" if self.user is not None else ""
        await self.page.goto(f"{base}/{self.path}{query}", wait_until="domcontentloaded", timeout=FIRST_LOAD_MS)
        await self.page.wait_for_selector(READY, timeout=FIRST_LOAD_MS)
        # Under load the sidebar can come after the app says "notRunning" for the first time.
        await self.page.get_by_role("slider", name=f"Weight of {MEMBERS[-1]}").wait_for(timeout=FIRST_LOAD_MS)
        self.weights = await self.shown_weights()

    async def shown_weights(self) -> dict[str, float]:
        out = {}
        for m in MEMBERS:
            # Streamlit's slider is an <input type="range">: its value is the weight shown.
            value = await self.page.get_by_role("slider", name=f"Weight of {m}").input_value(timeout=READ_TIMEOUT_MS)
            out[m] = round(float(value), 2)
        return out

    async def step(self) -> None:
        member, key = self._next_move()
        await self.page.evaluate(_ARM)
        await self.page.get_by_role("slider", name=f"Weight of {member}").press(key)
        try:
            seen = await self.page.evaluate(
                f"() => Promise.race([window.__rerun, new Promise(r => setTimeout(() => r(null), {RERUN_TIMEOUT_MS}))])"
            )
        except Exception as exc:  # a closed page or a navigation: count it, resynchronise
            self.violations.append(f"session {self.index}: rerun wait failed: {type(exc).__name__}")
            seen = None
        if seen is None:
            self.timeouts += 1
            self._last_done = None
            await self.page.wait_for_selector(READY, timeout=RERUN_TIMEOUT_MS)
        else:
            self.times_ms.append(float(seen["ms"]))
            self.batched += 0 if seen["dom_running"] else 1
            if self._last_done is not None:
                self.think_ms.append(float(seen["pressed"]) - self._last_done)
            self._last_done = float(seen["done"])
        delta = STEP if key == "ArrowRight" else -STEP
        self.weights[member] = round(min(1.0, max(0.0, self.weights[member] + delta)), 2)
        await self.check()

    async def check(self) -> None:
        try:
            await self._check()
        except PlaywrightTimeout:  # the page is slow to show its sidebar, or broken: counted, then resynchronised
            self.read_failures += 1
            with contextlib.suppress(PlaywrightTimeout):
                self.weights = await self.shown_weights()

    async def _check(self) -> None:
        shown = await self.shown_weights()
        if shown != self.weights:
            self.violations.append(f"session {self.index}: weights shown {shown}, this session set {self.weights}")
            self.weights = shown  # resynchronise so one violation is not counted at every later step
        if self.user is not None:
            value = await self.page.get_by_role("textbox", name="User id", exact=True).input_value(
                timeout=READ_TIMEOUT_MS
            )
            if value.strip() != self.user:
                self.violations.append(f"session {self.index}: user shown {value!r}, this session chose {self.user!r}")

    async def close(self) -> None:
        if self.context is not None:
            await self.context.close()


class ProtocolSession(_Walk):
    """One simulated student without a browser (``bench.ws_client.StreamlitClient``): the same random walk as a
    browser session, each step one weight change of STEP sent as the browser sends it, then a think time.

    After every run it reads back what the server drew for this session and checks it against the weights it
    set (and, on the explorer, its user):
    - the sliders' values (the server overrides a browser's value with ``set_value``: another session's weights
      would arrive that way);
    - the sidebar's "Link to this view" (redrawn by every weight move on both pages; its query holds every weight
      that differs from the default) and, on the Fusion Lab, the Spark command (``--weights``, all of them): both
      are drawn only while their expander is open, so each session opens them after its first load;
    - on the explorer, the "User id" box and the "Fused top-10 for user ..." heading;
    - on the Fusion Lab, the NDCG tile against every other session's tile for the same weights (``ndcg_seen``,
      shared: the engine is deterministic, so one configuration has one value).
    A value that is neither the new weights nor the previous ones is an isolation violation. A finished run that
    did not redraw the link (or the NDCG tile), or drew the previous weights, counts as ``stale``: a rerun
    lost although the server said it finished.
    """

    def __init__(
        self, index: int, path: str, user: str | None, seed: int, ndcg_seen: dict[tuple[float, ...], tuple[str, int]]
    ) -> None:
        super().__init__(index, path, user, seed)
        self.think_rng = np.random.default_rng(10_000 + seed)  # its own stream: the walk stays the browser's
        self.ndcg_seen = ndcg_seen
        self.client: StreamlitClient | None = None
        self.defaults: dict[str, float] = {}
        self.bytes = 0

    async def open(self, base: str) -> None:
        self.client = StreamlitClient(base, self.path, f"user={self.user}" if self.user is not None else "")
        run = await self.client.open(timeout=FIRST_LOAD_MS / 1000)
        self.page_errors.extend(f"session {self.index}: {e}" for e in run.exceptions)
        for m in MEMBERS:
            el = self.client.widget(f"Weight of {m}", "slider")
            self.defaults[m] = round(float(el.proto.default[0]), 2)
        # Opened as a person would, to read them after every run: both are drawn only while open.
        await self.client.open_expander("Link to this view")
        if self.user is None:
            await self.client.open_expander("Run this at scale")
        self.weights = self.shown_weights()
        self.check(None, dict(self.weights))

    def shown_weights(self) -> dict[str, float]:
        assert self.client is not None
        return {m: round(float(self.client.value(f"Weight of {m}", "slider")), 2) for m in MEMBERS}

    async def step(self) -> None:
        assert self.client is not None
        member, key = self._next_move()
        before = dict(self.weights)
        delta = STEP if key == "ArrowRight" else -STEP
        self.weights[member] = round(min(1.0, max(0.0, self.weights[member] + delta)), 2)
        run = await self.client.set_widget(
            f"Weight of {member}", self.weights[member], "slider", timeout=RERUN_TIMEOUT_MS / 1000
        )
        if run.seconds is None:
            self.timeouts += 1
            await self.client.settle(RERUN_TIMEOUT_MS / 1000)
        else:
            self.times_ms.append(run.seconds * 1e3)
            self.bytes += run.bytes
            self.page_errors.extend(f"session {self.index}: {e}" for e in run.exceptions)
            self.check(run, before)
        think = float(self.think_rng.uniform(*THINK_S))
        self.think_ms.append(think * 1e3)
        await asyncio.sleep(think)

    def _judge(self, what: str, shown: Any, before: Any, expected: Any) -> bool:
        """False (and counted) when ``shown`` is not ``expected``: stale when it is ``before``, else a violation."""
        if shown == expected:
            return True
        if shown == before and before != expected:
            self.stale += 1
        else:
            self.violations.append(f"session {self.index}: {what}: {shown}, this session set {expected}")
        return False

    def check(self, run: Run | None, before: dict[str, float]) -> None:
        """Read back what the run drew for this session (see the class docstring); ``run`` None: the first load.
        Something missing from the page (a slider, the link, the tile) or unreadable counts as a read failure."""
        try:
            self._check(run, before)
        except (ProtocolError, ValueError, IndexError):
            self.read_failures += 1

    def _check(self, run: Run | None, before: dict[str, float]) -> None:
        assert self.client is not None
        c, expected = self.client, dict(self.weights)
        shown = self.shown_weights()
        if not self._judge("the sliders", shown, before, expected):
            self.weights = shown  # resynchronise, so one violation is not counted at every later step
            return
        links = [el for el in c.find("code") if str(el.proto.code_text).startswith(c.base)]
        if not links:
            self.read_failures += 1
            return
        if run is not None and links[0].path not in run.drawn:
            self.stale += 1
            return
        params = dict(parse_qsl(str(links[0].proto.code_text).partition("?")[2]))
        linked = {m: round(float(params.get(f"w.{m}", self.defaults[m])), 2) for m in MEMBERS}
        if not self._judge("the link to this view", linked, before, expected):
            return
        if self.user is not None:
            box = c.value("User id", "text_input")
            heads = [t for t in c.texts() if t.startswith("**Fused top-")]
            if str(box).strip() != self.user or not heads or f" for user {self.user}**" not in heads[0]:
                self.violations.append(f"session {self.index}: user shown {box!r} / {heads[:1]}, chose {self.user!r}")
            return
        commands = [t for t in c.texts("code") if " --weights " in t]
        if commands:
            args = commands[0].split()
            models = args[args.index("--models") + 1].split(",")
            values = [round(float(x), 2) for x in args[args.index("--weights") + 1].split(",")]
            command = {m: values[models.index(m)] for m in MEMBERS if m in models}
            if not self._judge("the Spark command", command, before, expected):
                return
        tiles = c.find("metric", NDCG_TILE)
        if not tiles:
            self.read_failures += 1
            return
        if run is not None and tiles[0].path not in run.drawn:
            self.stale += 1
            return
        key = tuple(expected[m] for m in MEMBERS)
        value = str(tiles[0].proto.body)
        seen = self.ndcg_seen.setdefault(key, (value, self.index))
        if seen[0] != value:
            self.violations.append(
                f"session {self.index}: {NDCG_TILE} {value} for weights {expected}; session {seen[1]} saw {seen[0]}"
            )

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


async def _sample_memory(server: Server, stop: asyncio.Event, label: str) -> None:
    while not stop.is_set():
        server.sample(label)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


def _quantiles(times_s: np.ndarray) -> dict[str, float | None]:
    if times_s.size == 0:
        return {"p50_s": None, "p95_s": None}
    return {"p50_s": float(np.median(times_s)), "p95_s": float(np.percentile(times_s, 95))}


def _clients_cpu_s(server_pid: int) -> float:
    """CPU seconds used so far by this process and its children other than the server: the clients' cost to the
    machine (the protocol clients run in this process; Playwright's driver and Chromium are its children)."""
    import psutil

    me = psutil.Process()
    server = {server_pid}
    with contextlib.suppress(psutil.Error):
        server |= {c.pid for c in psutil.Process(server_pid).children(recursive=True)}
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        if proc.pid in server:
            continue
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += float(t.user + t.system)
    return total


def _new_sessions(
    kind: str, users: list[str], n: int, ndcg_seen: dict[tuple[float, ...], tuple[str, int]]
) -> list[_Walk]:
    """``n`` sessions of ``kind``, alternately on the Fusion Lab and on the User Explorer (each its own user)."""
    out: list[_Walk] = []
    for i in range(n):
        path, user = ("User_Explorer", users[i // 2]) if i % 2 else ("Fusion_Lab", None)
        if kind == "browser":
            out.append(Session(i, path, user, seed=100 + i))
        else:
            out.append(ProtocolSession(i, path, user, seed=100 + i, ndcg_seen=ndcg_seen))
    return out


async def _open(s: _Walk, browser: Any, base: str) -> None:
    if isinstance(s, Session):
        await s.open(browser, base)
    elif isinstance(s, ProtocolSession):
        await s.open(base)


async def _load_test(
    kind: str, browser: Any, server: Server, users: list[str], n_sessions: int, seconds: float, log: Any
) -> dict[str, Any]:
    """``n_sessions`` sessions of ``kind`` (alternately Fusion Lab and User Explorer) moving weights for
    ``seconds``."""
    ndcg_seen: dict[tuple[float, ...], tuple[str, int]] = {}
    sessions = _new_sessions(kind, users, n_sessions, ndcg_seen)
    label = f"load test, {n_sessions} {kind} sessions"
    load_before = load_average()
    t_open = time.monotonic()
    stop = asyncio.Event()
    sampler: asyncio.Task | None = None
    try:
        for s in sessions:  # opened one by one: the lab is built already, each only renders
            await _open(s, browser, server.base)
        open_s = time.monotonic() - t_open
        server.sample(f"{label}: open")
        sampler = asyncio.create_task(_sample_memory(server, stop, label))
        deadline = time.monotonic() + seconds

        async def drive(s: _Walk) -> None:
            while time.monotonic() < deadline:
                await s.step()

        t0, cpu0, clients0 = time.monotonic(), server.cpu_s(), _clients_cpu_s(server.ps.pid)
        await asyncio.gather(*(drive(s) for s in sessions))
        elapsed, server_cpu = time.monotonic() - t0, server.cpu_s() - cpu0
        clients_cpu = _clients_cpu_s(server.ps.pid) - clients0
    finally:
        stop.set()  # also when a step raised: the sampler must not go on labelling samples with this row
        if sampler is not None:
            await sampler
        for s in sessions:
            with contextlib.suppress(Exception):
                await s.close()
    times = np.array([t for s in sessions for t in s.times_ms]) / 1e3
    think = np.array([t for s in sessions for t in s.think_ms]) / 1e3
    per_page = {}
    for page in ("Fusion_Lab", "User_Explorer"):
        t = np.array([x for s in sessions if s.path == page for x in s.times_ms]) / 1e3
        per_page[page] = {"n": int(t.size), **_quantiles(t)}
    rss = [v for _, v, lab in server.samples if lab == label]
    out = {
        "client": kind,
        "sessions": n_sessions,
        "seconds": elapsed,
        "open_s": open_s,
        "reruns": int(times.size),
        "timeouts": int(sum(s.timeouts for s in sessions)),
        "batched": int(sum(s.batched for s in sessions)) if kind == "browser" else None,
        "stale": int(sum(s.stale for s in sessions)) if kind == "protocol" else None,
        # A cached message the server referred to that this client did not hold: a stale or unreadable run may
        # come from it, so it is counted beside them (0 in every run so far).
        "cache_misses": int(sum(s.client.cache_misses for s in sessions if getattr(s, "client", None)))
        if kind == "protocol"
        else None,
        **_quantiles(times),
        # From one rerun's end to the session's next key press (browser: Playwright's read-back and press, slower
        # on a loaded machine) or request (protocol: the drawn think time).
        "think_p50_s": float(np.median(think)) if think.size else None,
        # The server's own CPU: what a rerun costs it (the browsers' rendering is not in it), and the share of
        # the machine it took (1.0 = one core busy the whole time).
        "server_cpu_s": server_cpu,
        "server_cpu_per_rerun_s": server_cpu / times.size if times.size else None,
        "server_cores_busy": server_cpu / elapsed if elapsed > 0 else None,
        # The clients' CPU on this machine (browser: Chromium and Playwright; protocol: this process).
        "clients_cpu_s": clients_cpu,
        "clients_cores_busy": clients_cpu / elapsed if elapsed > 0 else None,
        "per_page": per_page,
        "violations": [v for s in sessions for v in s.violations],
        "page_errors": [e for s in sessions for e in s.page_errors],
        "read_failures": int(sum(s.read_failures for s in sessions)),
        "rss_start_bytes": rss[0] if rss else None,
        "rss_max_bytes": max(rss) if rss else None,
        "rss_end_bytes": rss[-1] if rss else None,
        "load_before": load_before,
        "load_after": load_average(),
    }
    if kind == "protocol":
        out["bytes_per_rerun"] = sum(s.bytes for s in sessions if isinstance(s, ProtocolSession)) / max(times.size, 1)
    lost = f"{out['batched']} reruns never shown as running" if kind == "browser" else f"{out['stale']} stale"
    log(
        f"  {n_sessions} {kind} sessions: {out['reruns']} reruns in {fmt_s(elapsed)}, p50 {fmt_s(out['p50_s'])}, "
        f"p95 {fmt_s(out['p95_s'])}, {out['timeouts']} timeouts, {len(out['violations'])} violations, {lost}; "
        f"server CPU {out['server_cpu_s']:.1f} s ({fmt_s(out['server_cpu_per_rerun_s'])} a rerun), clients CPU "
        f"{clients_cpu:.1f} s; load {load_before} -> {out['load_after']}"
    )
    return out


async def _soak(kind: str, browser: Any, server: Server, changes: int, log: Any) -> dict[str, Any]:
    s: _Walk
    if kind == "browser":
        s = Session(99, "Fusion_Lab", None, seed=99)
    else:
        s = ProtocolSession(99, "Fusion_Lab", None, seed=99, ndcg_seen={})
    await _open(s, browser, server.base)
    step = s.step
    try:
        for _ in range(SOAK_WARMUP):
            await step()
        before = server.sample("soak start")
        curve = [(0, before)]
        for i in range(1, changes + 1):
            await step()
            if i % 50 == 0 or i == changes:
                curve.append((i, server.sample("soak")))
                log(f"    soak: {i} changes, server RSS {fmt_mib(curve[-1][1])}")
    finally:
        await s.close()
    after = curve[-1][1]
    t = np.array(s.times_ms) / 1e3
    return {
        "client": kind,
        "changes": changes,
        "warmup_changes": SOAK_WARMUP,
        "rss_before_bytes": before,
        "rss_after_bytes": after,
        "growth_bytes": after - before,
        "limit_bytes": SOAK_LIMIT_BYTES,
        "within_limit": after - before < SOAK_LIMIT_BYTES,
        "curve": curve,
        **_quantiles(t),
        "violations": s.violations,
        "timeouts": s.timeouts,
        "batched": s.batched if kind == "browser" else None,
        "stale": s.stale if kind == "protocol" else None,
        "page_errors": s.page_errors,
        "read_failures": s.read_failures,
    }


def _users(n: int) -> list[str]:
    """Ids of the first n evaluated MovieLens-100K users under the default protocol (distinct per session)."""
    from reco_core import experiment

    protocol = experiment.Protocol()
    split = experiment.make_split(experiment.load_dataset(protocol), protocol)
    ids = split.train.users.ids_of(split.eval_users()[:n])
    return [str(x) for x in ids]


def client_kinds(choice: str | None) -> tuple[str, ...]:
    """The client kinds a ``--sessions-client`` value asks for: "both" (the default) runs the protocol clients
    first, then the browsers."""
    choice = (choice or "both").strip().lower()
    if choice == "both":
        return CLIENT_KINDS
    if choice not in CLIENT_KINDS:
        raise ValueError(f"--sessions-client {choice!r}: choose browser, protocol or both")
    return (choice,)


async def _main(opts: Options, kinds: tuple[str, ...]) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    if "browser" in kinds and not CHROMIUM.exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: run `make browser-deps` or set RECO_CHROMIUM")
    counts = tuple(opts.session_counts) or SESSION_COUNTS
    users = _users(max(1, (max(counts) + 1) // 2))
    soak_kind = "browser" if "browser" in kinds else "protocol"  # the browser soak, as before, when it runs
    loads: dict[str, dict[str, Any]] = {}
    soak = None
    with (
        tempfile.TemporaryDirectory(prefix="reco-sessions-") as tmp,
        streamlit_server(Path(tmp) / "server.log", start_timeout=90) as handle,
    ):
        server = Server(handle)
        server.sample("healthy")
        async with contextlib.AsyncExitStack() as astack:
            browser = None
            if "browser" in kinds:
                p = await astack.enter_async_context(async_playwright())
                browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
                astack.push_async_callback(browser.close)
            warm: _Walk
            if kinds[0] == "browser":
                warm = Session(-1, "Fusion_Lab", None, seed=0)
            else:
                warm = ProtocolSession(-1, "Fusion_Lab", None, seed=0, ndcg_seen={})
            t0 = time.monotonic()
            await _open(warm, browser, server.base)  # builds the lab once
            first_load = time.monotonic() - t0
            await warm.close()
            server.sample("lab built")
            opts.log(f"  first page load (builds the lab, {kinds[0]} client): {fmt_s(first_load)}")
            for kind in kinds:
                opts.log(f"  {kind}: {client_label(kind)}")
                loads[kind] = {}
                for n in counts:
                    try:
                        loads[kind][str(n)] = await _load_test(
                            kind, browser, server, users, n, opts.sessions_seconds, opts.log
                        )
                    except Exception as exc:  # one count failing (a page that never drew) keeps the others' rows
                        opts.log(f"  {n} {kind} sessions FAILED: {type(exc).__name__}: {str(exc)[:300]}")
                        loads[kind][str(n)] = {
                            "client": kind,
                            "sessions": n,
                            "error": f"{type(exc).__name__}: {str(exc)[:1000]}",
                        }
            if opts.soak_changes > 0:
                try:
                    soak = await _soak(soak_kind, browser, server, opts.soak_changes, opts.log)
                except Exception as exc:  # keep the load tests' rows
                    opts.log(f"  soak FAILED: {type(exc).__name__}: {str(exc)[:300]}")
    return {
        "machine": machine(),
        "lscpu_model": _cpu_model(),
        "first_load_s": first_load,
        "session_counts": list(counts),
        "rerun_timeout_s": RERUN_TIMEOUT_MS / 1000,
        "clients": list(kinds),
        "client_labels": {kind: client_label(kind) for kind in kinds},
        "protocol_think_s": list(THINK_S),
        # One dict per client kind ("protocol", "browser"), each keyed by the number of sessions.
        "load_tests": loads,
        "soak": soak,
        "rss_curve": [(round(t, 1), v, label) for t, v, label in server.samples],
    }


def client_label(kind: str) -> str:
    """What a client kind's figures measure, as the tables and docs/benchmarks.md name them."""
    if kind == "protocol":
        return "protocol clients: the server's load as a class sees it, browsers elsewhere"
    return f"browsers on this machine: the server and N Chromium tabs share the {len(os.sched_getaffinity(0))} cores"


def sessions_table(out: dict[str, Any], kind: str) -> str:
    """The table docs/benchmarks.md shows for one client kind: one row per session count (and, for the kind the
    soak ran with, the soak)."""
    rows = []
    loads = out["load_tests"].get(kind, {})
    blank = [""] * 9
    for load in loads.values():
        if "error" in load:
            rows.append([f"{load['sessions']} at once", "FAILED", *blank[2:]])
            continue
        lost = load["batched"] if kind == "browser" else load["stale"]
        rows.append(
            [
                f"{load['sessions']} at once",
                load["reruns"],
                fmt_s(load["p50_s"]),
                fmt_s(load["p95_s"]),
                load["timeouts"],
                len(load["violations"]),
                lost,
                fmt_s(load.get("server_cpu_per_rerun_s")),
                f"{load.get('server_cores_busy') or 0:.2f} / {load.get('clients_cores_busy') or 0:.2f}",
                f"{load['load_before'][0] if load['load_before'] else '?'}",
            ]
        )
        for page, v in load["per_page"].items():
            if v["n"]:
                rows.append([f"  on {page}", v["n"], fmt_s(v["p50_s"]), fmt_s(v["p95_s"]), *blank[3:]])
    soak = out.get("soak")
    if soak and soak.get("client", "browser") == kind:
        rows.append(
            [
                "soak, 1 session",
                soak["changes"],
                fmt_s(soak["p50_s"]),
                fmt_s(soak["p95_s"]),
                soak["timeouts"],
                len(soak["violations"]),
                soak["batched"] if kind == "browser" else soak["stale"],
                "",
                "",
                "",
            ]
        )
    m = out["machine"]
    seconds = max((v.get("seconds", 0) for v in loads.values()), default=0)
    rerun = (
        "keydown to the run's script_finished with the page not running"
        if kind == "browser"
        else "rerun_script sent to the run's script_finished received"
    )
    return table(
        f"{out['client_labels'].get(kind, kind)}\nDashboard reruns after a weight step ({fmt_s(seconds)} of load "
        f"per row; rerun = {rerun}; {m['nproc']} CPUs, {out['lscpu_model'] or m['cpu_model']})",
        [
            "sessions",
            "reruns",
            "p50",
            "p95",
            "timeouts (30 s)",
            "isolation violations",
            "never shown running" if kind == "browser" else "stale runs",
            "server CPU a rerun",
            "cores busy: server / clients",
            "load (1 min)",
        ],
        rows,
    )


def run(opts: Options, client: str | None = None) -> dict[str, Any]:
    """The sessions section. ``client`` (else ``opts.sessions_client``, else "both"): which clients load the server,
    "protocol", "browser" or "both"."""
    choice = client or opts.sessions_client
    kinds = client_kinds(choice)
    out = asyncio.run(_main(opts, kinds))
    for kind in kinds:
        opts.log("")
        opts.log(sessions_table(out, kind))
        for load in out["load_tests"].get(kind, {}).values():
            if "error" in load:
                opts.log(f"{load['sessions']} {kind} sessions: {load['error'][:500]}")
                continue
            for e in load["page_errors"][:5]:
                opts.log(f"  PAGE ERROR {e}")
            opts.log(
                f"Server memory, {load['sessions']} {kind} sessions: {fmt_mib(load['rss_start_bytes'])} -> max "
                f"{fmt_mib(load['rss_max_bytes'])}, end {fmt_mib(load['rss_end_bytes'])}"
            )
            for v in load["violations"][:10]:
                opts.log(f"  VIOLATION {v}")
    soak = out["soak"]
    if soak:
        opts.log(
            f"Soak ({soak['client']}): {fmt_mib(soak['rss_before_bytes'])} -> {fmt_mib(soak['rss_after_bytes'])} "
            f"({soak['growth_bytes'] / 1e6:+.1f} MB; limit +50 MB: {'met' if soak['within_limit'] else 'MISSED'})"
        )
        for v in soak["violations"][:10]:
            opts.log(f"  VIOLATION {v}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.sessions``: this section alone, saved into bench/results.json like ``python -m bench --only
    sessions`` (or into ``--results``)."""
    import argparse

    from bench.common import RESULTS, save_section

    p = argparse.ArgumentParser(prog="python -m bench.sessions", description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", default="1,10,30", help="comma-separated numbers of sessions at once")
    p.add_argument("--sessions-seconds", type=float, default=120.0, help="how long each load test runs")
    p.add_argument("--soak-changes", type=int, default=500, help="weight changes in the one-session soak (0: none)")
    p.add_argument(
        "--sessions-client",
        choices=("both", *CLIENT_KINDS),
        default="both",
        help="protocol: simulated students over the WebSocket (the server's load as a class sees it); browser: "
        "headless Chromium tabs on this machine; both (default): one after the other, reported side by side",
    )
    p.add_argument("--results", type=Path, default=RESULTS, help="the results file to write the section into")
    args = p.parse_args(argv)
    opts = Options(
        sessions_seconds=args.sessions_seconds,
        soak_changes=args.soak_changes,
        session_counts=tuple(int(n) for n in args.sessions.split(",") if n.strip()),
        log=lambda text: print(text, flush=True),
    )
    load_before, t0 = load_average(), time.perf_counter()
    data = run(opts, args.sessions_client)
    extra = {"section_s": time.perf_counter() - t0, "load_before": load_before, "load_after": load_average()}
    save_section("sessions", {**data, **extra}, False, path=args.results)
    print(f"results in {args.results}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
