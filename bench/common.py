"""What every section shares: timing (medians, p95, side by side), the machine, results.json, tables, ML-100K.

Timing conventions
- ``measure`` runs a function ``warmup`` times unmeasured, then ``repeats`` times, recording wall seconds
  (``time.perf_counter``) and CPU seconds of the whole process (``time.process_time``, all threads).
- ``side_by_side`` interleaves the compared functions round by round (rotating which goes first), so a
  neighbour's load on this shared machine hits all of them alike; ratios are ratios of wall medians.
- p95 is numpy's linear-interpolated 95th percentile of the wall samples.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
BENCH_DEPS = ROOT / ".bench-deps"


@dataclass
class Stats:
    """Wall and CPU seconds of repeated runs of one function."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(np.median(self.wall)) if self.wall else float("nan")

    @property
    def p95(self) -> float:
        return float(np.percentile(self.wall, 95)) if self.wall else float("nan")

    @property
    def cpu_median(self) -> float:
        return float(np.median(self.cpu)) if self.cpu else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        return {
            "median_s": self.median,
            "p95_s": self.p95,
            "min_s": float(min(self.wall)) if self.wall else float("nan"),
            "cpu_median_s": self.cpu_median,
            "n": len(self.wall),
        }


def _once(fn: Callable[[], Any], stats: Stats) -> Any:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    stats.wall.append(time.perf_counter() - t0)
    stats.cpu.append(time.process_time() - c0)
    return out


def measure(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> Stats:
    """Median-ready samples of ``fn()`` after ``warmup`` unmeasured calls."""
    for _ in range(warmup):
        fn()
    stats = Stats()
    for _ in range(repeats):
        _once(fn, stats)
    return stats


def side_by_side(fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, Stats]:
    """Each function ``repeats`` times, interleaved round by round with a rotating start."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    out = {name: Stats() for name in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            _once(fns[name], out[name])
    return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds) of one call."""
    stats = Stats()
    out = _once(fn, stats)
    return out, stats.wall[0], stats.cpu[0]


# --------------------------------------------------------------------------------------------------
# The machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return float("nan")


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM and library versions: the context every figure needs."""
    import scipy
    import torch

    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 0
    return {
        "nproc": nproc,
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # The kernels BLAS and torch picked (docs/numerics.md): forced by these variables, else the CPU's own.
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY", ""),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def cpu_label(m: Mapping[str, Any] | None = None) -> str:
    """The CPU a figure was measured on, as printed beside it: "AMD EPYC, 2 CPUs" (plus forced kernels)."""
    m = m or machine()
    names = {"openblas_coretype": "OPENBLAS_CORETYPE", "aten_cpu_capability": "ATEN_CPU_CAPABILITY"}
    forced = [f"{env}={m[key]}" for key, env in names.items() if m.get(key)]
    return f"{m['cpu_model']}, {m['nproc']} CPUs" + (f" ({', '.join(forced)})" if forced else "")


def load_average() -> list[float]:
    """1, 5 and 15-minute load averages: above nproc means neighbours were competing for the CPU."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def describe_machine(m: Mapping[str, Any]) -> str:
    return f"{m['nproc']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Python {m['python']}, torch {m['torch']}"


# --------------------------------------------------------------------------------------------------
# results.json


def load_results(path: Path = RESULTS) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None (strict JSON has neither)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_clean(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if np.isfinite(v) else None
    return value


def save_section(name: str, data: Mapping[str, Any], quick: bool, path: Path = RESULTS) -> None:
    """Replace one section of results.json (others kept), with the machine and the time; atomic write."""
    results = load_results(path)
    results["machine"] = _clean(machine())
    results.get("failures", {}).pop(name, None)  # this section ran through: an earlier failure no longer holds
    sections = results.setdefault("sections", {})
    here = machine()
    sections[name] = {
        **_clean(data),
        "quick": quick,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # Each section keeps the machine it ran on: sections run on other machines (an AMD EPYC, an Intel
        # Xeon) sit side by side in one file, and the top-level "machine" is only the latest run's.
        "machine": _clean(here),
        "cpu": cpu_label(here),
    }
    _write(results, path)


def save_failure(name: str, message: str, path: Path = RESULTS) -> None:
    """Record that section ``name`` failed (results.json "failures": the message, the time, the CPU), leaving the
    section's earlier figures, and the machine and date they carry, as they were."""
    results = load_results(path)
    here = machine()
    results.setdefault("failures", {})[name] = {
        "error": message,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": cpu_label(here),
    }
    _write(results, path)


def _write(results: Mapping[str, Any], path: Path) -> None:
    """results.json written atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# Tables


def fmt_s(seconds: float | None) -> str:
    """Seconds in a readable unit: 3.2 ms, 41 ms, 1.85 s, 2 min 5 s."""
    if seconds is None or not np.isfinite(seconds):
        return "-"
    if seconds < 0.01:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def fmt_x(ratio: float | None) -> str:
    if ratio is None or not np.isfinite(ratio):
        return "-"
    return f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


def fmt_mib(n_bytes: float | None) -> str:
    if n_bytes is None or not np.isfinite(n_bytes):
        return "-"
    return f"{n_bytes / 2**20:,.0f} MiB" if n_bytes < 2**30 else f"{n_bytes / 2**30:.2f} GiB"


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (left-aligned first column, the rest right-aligned)."""
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(cells[0]), rule, *(line(r) for r in cells[1:])])


# --------------------------------------------------------------------------------------------------
# MovieLens-100K under the default protocol, fitted once per process


@dataclass(frozen=True)
class Setup:
    dataset: Any
    split: Any
    ctx: Any
    protocol: Any


@functools.lru_cache(maxsize=1)
def ml100k() -> Setup:
    """The dashboard's default: MovieLens-100K, every rating positive, random 80/20 per user, seed 42;
    the evaluation context has genres and text vectors (from the disk cache after the first run)."""
    from reco_core import experiment

    protocol = experiment.Protocol()
    dataset = experiment.load_dataset(protocol)
    split = experiment.make_split(dataset, protocol)
    ctx = experiment.eval_context(split, dataset, with_text=True)
    return Setup(dataset, split, ctx, protocol)


_FITTED: dict[str, Any] = {}


def fitted(name: str) -> Any:
    """A registered model fitted on the ML-100K split with the protocol's seed (once per process)."""
    if name not in _FITTED:
        from reco_core import experiment

        s = ml100k()
        _FITTED[name] = experiment.fit_member(experiment.MemberSpec.of(name), s.split, s.dataset, s.protocol.seed)
    return _FITTED[name]


def bench_deps_on_path() -> bool:
    """Put .bench-deps (bench-only packages installed by `make bench`) at the END of sys.path, so the
    project's own numpy/pandas always win; True when the folder exists."""
    if not BENCH_DEPS.is_dir():
        return False
    if str(BENCH_DEPS) not in sys.path:
        sys.path.append(str(BENCH_DEPS))
    return True


@dataclass
class Options:
    """Command-line options every section may read."""

    quick: bool = False
    sessions_seconds: float = 120.0
    soak_changes: int = 500
    session_counts: tuple[int, ...] = (1, 10, 30)  # sessions at once in the sessions section
    sessions_client: str | None = None  # sessions section: "protocol", "browser" or "both" (None: both)
    sizes: tuple[str, ...] = ()
    log: Callable[[str], None] = print
