"""Section 7: many browser sessions on one dashboard server (1, 10 and 30 at once), and a soak in one session
(issues 6 and 16).

One ``streamlit run app.py`` server on loopback (a free port), driven by headless Debian Chromium through
Playwright (flags as in DESIGN.md section 9 and tests/e2e):

- Load tests: for each count in ``--sessions`` (default 1, 10, 30), that many browser contexts (separate
  cookies, so separate Streamlit sessions), half on the Fusion Lab, half on the User Explorer each with its own
  user (``?user=<id>``). For ``--sessions-seconds`` (default 120) every session moves its own weight sliders
  with the keyboard, one key press at a time, a seeded random walk. After every rerun the session reads its
  sliders (the range inputs' values) and, on the explorer, its "User id" box: any value that is not the one
  this session set is an isolation violation (another session's weights or user). The server's resident
  memory is sampled every second (psutil) throughout.
- Soak: one fresh session on the Fusion Lab makes ``--soak-changes`` (default 500) consecutive weight
  changes; the server's resident memory after a 20-change warm-up is compared with the memory after
  the last change (target: less than 50 MB of growth).

How a rerun is seen (issue 16). Rerun time = from the key's ``keydown`` to the server's ``script_finished``
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
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bench.browser import CHROMIUM, CHROMIUM_ARGS, StreamlitServer, streamlit_server
from bench.common import Options, _cpu_model, fmt_mib, fmt_s, load_average, machine, table

MEMBERS = ("als", "itemknn", "text")  # the dashboard's default members (ui.state.DEFAULT_MEMBERS)
STEP = 0.05  # the weight sliders' step (ui.state.WEIGHT_STEP)
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'
FIRST_LOAD_MS = 300_000
RERUN_TIMEOUT_MS = 30_000
READ_TIMEOUT_MS = 60_000  # reading a slider back after a rerun (30 sessions on 2 cores can take long to draw)
SOAK_WARMUP = 20
SOAK_LIMIT_BYTES = 50_000_000  # 50 MB

SESSION_COUNTS = (1, 10, 30)

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

# Resolves with {ms, dom_running} for the next keydown: ms from the keydown to the first run-finished message
# after it, once the app root no longer says "running" (plus one animation frame); dom_running: whether the
# page ever rendered "running" for it.
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
      requestAnimationFrame(() => resolve({ms: performance.now() - pressed, dom_running: sawRunning}));
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


class Session:
    """One browser context moving its own weights; records rerun times and isolation violations."""

    def __init__(self, index: int, path: str, user: str | None, seed: int) -> None:
        self.index, self.path, self.user = index, path, user
        self.rng = np.random.default_rng(seed)
        self.weights: dict[str, float] = {}
        self.times_ms: list[float] = []
        self.violations: list[str] = []
        self.timeouts = 0
        self.batched = 0  # reruns whose "running" state the page never rendered
        self.page_errors: list[str] = []
        self.read_failures = 0  # read-backs that found no slider or user box within READ_TIMEOUT_MS
        self.page: Any = None
        self.context: Any = None

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
            seen = await self.page.evaluate(
                f"() => Promise.race([window.__rerun, new Promise(r => setTimeout(() => r(null), {RERUN_TIMEOUT_MS}))])"
            )
        except Exception as exc:  # a closed page or a navigation: count it, resynchronise
            self.violations.append(f"session {self.index}: rerun wait failed: {type(exc).__name__}")
            seen = None
        if seen is None:
            self.timeouts += 1
            await self.page.wait_for_selector(READY, timeout=RERUN_TIMEOUT_MS)
        else:
            self.times_ms.append(float(seen["ms"]))
            self.batched += 0 if seen["dom_running"] else 1
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


async def _sample_memory(server: Server, stop: asyncio.Event, label: str) -> None:
    while not stop.is_set():
        server.sample(label)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


def _quantiles(times_s: np.ndarray) -> dict[str, float | None]:
    if times_s.size == 0:
        return {"p50_s": None, "p95_s": None}
    return {"p50_s": float(np.median(times_s)), "p95_s": float(np.percentile(times_s, 95))}


async def _load_test(
    browser: Any, server: Server, users: list[str], n_sessions: int, seconds: float, log: Any
) -> dict[str, Any]:
    """``n_sessions`` browser sessions (alternately Fusion Lab and User Explorer) moving weights for ``seconds``."""
    sessions = [
        Session(i, "User_Explorer" if i % 2 else "Fusion_Lab", users[i // 2] if i % 2 else None, seed=100 + i)
        for i in range(n_sessions)
    ]
    label = f"load test, {n_sessions} sessions"
    load_before = load_average()
    t_open = time.monotonic()
    for s in sessions:  # opened one by one: the lab is built already, each only renders
        await s.open(browser, server.base)
    open_s = time.monotonic() - t_open
    server.sample(f"{label}: open")
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_memory(server, stop, label))
    deadline = time.monotonic() + seconds

    async def drive(s: Session) -> None:
        while time.monotonic() < deadline:
            await s.step()

    t0, cpu0 = time.monotonic(), server.cpu_s()
    await asyncio.gather(*(drive(s) for s in sessions))
    elapsed, server_cpu = time.monotonic() - t0, server.cpu_s() - cpu0
    stop.set()
    await sampler
    for s in sessions:
        await s.close()
    times = np.array([t for s in sessions for t in s.times_ms]) / 1e3
    per_page = {}
    for page in ("Fusion_Lab", "User_Explorer"):
        t = np.array([x for s in sessions if s.path == page for x in s.times_ms]) / 1e3
        per_page[page] = {"n": int(t.size), **_quantiles(t)}
    rss = [v for _, v, lab in server.samples if lab == label]
    out = {
        "sessions": n_sessions,
        "seconds": elapsed,
        "open_s": open_s,
        "reruns": int(times.size),
        "timeouts": int(sum(s.timeouts for s in sessions)),
        "batched": int(sum(s.batched for s in sessions)),
        **_quantiles(times),
        # The server's own CPU: what a rerun costs it (the browsers' rendering is not in it), and the share of
        # the machine it took (1.0 = one core busy the whole time).
        "server_cpu_s": server_cpu,
        "server_cpu_per_rerun_s": server_cpu / times.size if times.size else None,
        "server_cores_busy": server_cpu / elapsed if elapsed > 0 else None,
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
    log(
        f"  {n_sessions} sessions: {out['reruns']} reruns in {fmt_s(elapsed)}, p50 {fmt_s(out['p50_s'])}, "
        f"p95 {fmt_s(out['p95_s'])}, {out['timeouts']} timeouts, {len(out['violations'])} violations, "
        f"{out['batched']} reruns never shown as running; server CPU {out['server_cpu_s']:.1f} s "
        f"({fmt_s(out['server_cpu_per_rerun_s'])} a rerun); load {load_before} -> {out['load_after']}"
    )
    return out


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
        **_quantiles(t),
        "violations": s.violations,
        "timeouts": s.timeouts,
        "batched": s.batched,
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


async def _main(opts: Options) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: run `make browser-deps` or set RECO_CHROMIUM")
    counts = tuple(opts.session_counts) or SESSION_COUNTS
    users = _users(max(1, (max(counts) + 1) // 2))
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
                loads = {}
                for n in counts:
                    try:
                        loads[str(n)] = await _load_test(browser, server, users, n, opts.sessions_seconds, opts.log)
                    except Exception as exc:  # one count failing (a page that never drew) keeps the others' rows
                        opts.log(f"  {n} sessions FAILED: {type(exc).__name__}: {str(exc)[:300]}")
                        loads[str(n)] = {"sessions": n, "error": f"{type(exc).__name__}: {str(exc)[:1000]}"}
                soak = None
                if opts.soak_changes > 0:
                    try:
                        soak = await _soak(browser, server, opts.soak_changes, opts.log)
                    except Exception as exc:  # keep the load tests' rows
                        opts.log(f"  soak FAILED: {type(exc).__name__}: {str(exc)[:300]}")
            finally:
                await browser.close()
    return {
        "machine": machine(),
        "lscpu_model": _cpu_model(),
        "first_load_s": first_load,
        "session_counts": list(counts),
        "rerun_timeout_s": RERUN_TIMEOUT_MS / 1000,
        "load_tests": loads,
        "soak": soak,
        "rss_curve": [(round(t, 1), v, label) for t, v, label in server.samples],
    }


def sessions_table(out: dict[str, Any]) -> str:
    """The table docs/benchmarks.md shows: one row per session count, then the soak."""
    rows = []
    for load in out["load_tests"].values():
        if "error" in load:
            rows.append([f"{load['sessions']} at once", "FAILED", "", "", "", "", "", "", ""])
            continue
        rows.append(
            [
                f"{load['sessions']} at once",
                load["reruns"],
                fmt_s(load["p50_s"]),
                fmt_s(load["p95_s"]),
                load["timeouts"],
                len(load["violations"]),
                load["batched"],
                fmt_s(load.get("server_cpu_per_rerun_s")),
                f"{load['load_before'][0] if load['load_before'] else '?'}",
            ]
        )
        for page, v in load["per_page"].items():
            if v["n"]:
                rows.append([f"  on {page}", v["n"], fmt_s(v["p50_s"]), fmt_s(v["p95_s"]), "", "", "", "", ""])
    soak = out.get("soak")
    if soak:
        rows.append(
            [
                "soak, 1 session",
                soak["changes"],
                fmt_s(soak["p50_s"]),
                fmt_s(soak["p95_s"]),
                soak["timeouts"],
                len(soak["violations"]),
                soak["batched"],
                "",
                "",
            ]
        )
    m = out["machine"]
    seconds = max((v.get("seconds", 0) for v in out["load_tests"].values()), default=0)
    return table(
        f"Dashboard reruns after a weight key press ({fmt_s(seconds)} of load per row; rerun = keydown to the "
        f"run's script_finished with the page not running; {m['nproc']} CPUs, {out['lscpu_model'] or m['cpu_model']})",
        [
            "sessions",
            "reruns",
            "p50",
            "p95",
            "timeouts (30 s)",
            "isolation violations",
            "never shown running",
            "server CPU a rerun",
            "load (1 min)",
        ],
        rows,
    )


def run(opts: Options) -> dict[str, Any]:
    out = asyncio.run(_main(opts))
    opts.log(sessions_table(out))
    for load in out["load_tests"].values():
        if "error" in load:
            opts.log(f"{load['sessions']} sessions: {load['error'][:500]}")
            continue
        for e in load["page_errors"][:5]:
            opts.log(f"  PAGE ERROR {e}")
        opts.log(
            f"Server memory, {load['sessions']} sessions: {fmt_mib(load['rss_start_bytes'])} -> max "
            f"{fmt_mib(load['rss_max_bytes'])}, end {fmt_mib(load['rss_end_bytes'])}"
        )
        for v in load["violations"][:10]:
            opts.log(f"  VIOLATION {v}")
    soak = out["soak"]
    if soak:
        opts.log(
            f"Soak: {fmt_mib(soak['rss_before_bytes'])} -> {fmt_mib(soak['rss_after_bytes'])} "
            f"({soak['growth_bytes'] / 1e6:+.1f} MB; limit +50 MB: {'met' if soak['within_limit'] else 'MISSED'})"
        )
        for v in soak["violations"][:10]:
            opts.log(f"  VIOLATION {v}")
    return out
