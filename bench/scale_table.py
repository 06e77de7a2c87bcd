"""Section 6: the same pipeline at MovieLens-100K, MovieLens-1M, synthetic 10M and synthetic 20M.

Each size runs in its own process (``bench.scale_worker``), so one size's memory never inflates the next
one's peak. The worker reports every phase's wall and CPU time, each phase's peak resident memory and
its whole-life peak (see its docstring). The synthetic sizes come from
``datasets.load("synthetic-10m" | "synthetic-20m")`` (seed 42; MovieLens-10M/20M's user, item and
interaction counts). Evaluation and fitting use ``nproc`` workers: on a shared machine the CPU column
shows the work itself, the wall column what a user waits.

Targets at 20M (issue 5): full evaluation under 60 s with peak memory under 3 GiB, the whole pipeline
(generate, split, fit, evaluate) under 5 minutes, the live loop on 2,000 sampled users under 300 ms.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, Options, cpu_label, fmt_mib, fmt_s, fmt_x, load_results, machine, table

ORDER = ("ml-100k", "ml-1m", "synthetic-10m", "synthetic-20m")
TARGETS = {"evaluate_s": 60.0, "evaluate_peak_bytes": 3 * 2**30, "pipeline_s": 300.0, "live_s": 0.300}


def _worker_args(size: str, quick: bool, workers: int) -> list[str]:
    args = ["--workers", str(workers), "--live-updates", "10" if quick else "20"]
    if size in ("ml-100k", "ml-1m"):
        args.append("--candidates-eval")
    if size == "ml-1m":
        args.append("--candidates-study")
    return args


def run_size(size: str, quick: bool, workers: int, log: Any) -> dict[str, Any]:
    """One size in a fresh process; its result plus the process's peak resident memory."""
    with tempfile.TemporaryDirectory(prefix="reco-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "bench.scale_worker", "--size", size, "--out", str(out)]
        cmd += _worker_args(size, quick, workers)
        proc = subprocess.Popen(cmd, cwd=ROOT)
        # wait4 (not Popen.wait) returns this child's own CPU time. (Its ru_maxrss would also count this
        # parent's memory at fork time, so the worker measures its own peak instead.)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"scale worker for {size} exited with code {proc.returncode}")
        result = json.loads(out.read_text())
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def _phase(result: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next((p for p in result["phases"] if p["phase"].startswith(prefix)), {})


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The table row: the phases that make the pipeline, the evaluation, memory and the live loop."""
    load = _phase(result, "load") or _phase(result, "generate")
    split = _phase(result, "split")
    fit = _phase(result, "fit als")
    ev = _phase(result, "evaluate exact")
    pipeline = sum(p.get("wall_s", 0.0) for p in (load, split, fit, ev))
    return {
        "load_s": load.get("wall_s"),
        "split_s": split.get("wall_s"),
        "fit_s": fit.get("wall_s"),
        "fit_cpu_s": fit.get("cpu_s"),
        "evaluate_s": ev.get("wall_s"),
        "evaluate_cpu_s": ev.get("cpu_s"),
        "evaluate_peak_bytes": ev.get("peak_rss_bytes"),
        "evaluate_start_bytes": ev.get("rss_start_bytes"),
        "pipeline_s": pipeline,
        "process_peak_bytes": result.get("process_peak_bytes"),
        "live_s": result["live"]["median_s"],
        "live_p95_s": result["live"]["p95_s"],
    }


def _targets(row: dict[str, Any]) -> dict[str, bool]:
    return {key: row[key] is not None and row[key] < limit for key, limit in TARGETS.items()}


def run(opts: Options) -> dict[str, Any]:
    sizes = list(opts.sizes) or (["ml-100k"] if opts.quick else list(ORDER))
    unknown = [s for s in sizes if s not in ORDER]
    if unknown:
        raise ValueError(f"unknown size {unknown[0]!r}: choose from {', '.join(ORDER)}")
    workers = max(1, len(os.sched_getaffinity(0)))
    out: dict[str, Any] = {"workers": workers, "targets": TARGETS, "sizes": {}}
    if opts.sizes:
        # A partial run (--sizes) replaces only its own rows: the other sizes' rows stay, each with the
        # machine and time it was measured on.
        previous = load_results(RESULTS).get("sections", {}).get("scale", {}).get("sizes", {})
        out["sizes"] = {s: previous[s] for s in ORDER if s in previous and s not in sizes}
    here = machine()
    for size in sizes:
        opts.log(f"  {size}:")
        result = run_size(size, opts.quick, workers, opts.log)
        row = summarise(result)
        out["sizes"][size] = {"result": result, "row": row, "cpu": cpu_label(here), "measured": time.strftime("%F %T")}
    out["sizes"] = {s: out["sizes"][s] for s in ORDER if s in out["sizes"]}
    if "synthetic-20m" in out["sizes"]:
        out["targets_20m"] = _targets(out["sizes"]["synthetic-20m"]["row"])
    _print(opts, out)
    return out


def _print(opts: Options, out: dict[str, Any]) -> None:
    rows, growth = [], []
    previous = None
    for entry in out["sizes"].values():
        r, res = entry["row"], entry["result"]
        ease = res["ease"]["outcome"]
        if ease == "fitted":
            ease = fmt_s(res["ease"]["seconds"])
        rows.append(
            [
                res["label"],
                f"{res['users']:,} x {res['items']:,}",
                f"{res['interactions']:,}",
                fmt_s(r["load_s"]),
                fmt_s(r["split_s"]),
                fmt_s(r["fit_s"]),
                ease,
                f"{fmt_s(r['evaluate_s'])} ({fmt_s(r['evaluate_cpu_s'])} CPU)",
                fmt_mib(r["evaluate_peak_bytes"]),
                fmt_mib(r["process_peak_bytes"]),
                fmt_s(r["pipeline_s"]),
                fmt_s(r["live_s"]),
                entry.get("cpu", "?"),
            ]
        )
        if previous is not None:
            p_res, p_row = previous
            growth.append(
                [
                    f"{p_res['label'].split(' (')[0]} -> {res['label'].split(' (')[0]}",
                    fmt_x(res["interactions"] / p_res["interactions"]),
                    fmt_x(res["users"] * res["items"] / (p_res["users"] * p_res["items"])),
                    fmt_x(r["fit_s"] / p_row["fit_s"]),
                    fmt_x(r["evaluate_s"] / p_row["evaluate_s"]),
                    fmt_x(r["evaluate_peak_bytes"] / p_row["evaluate_peak_bytes"]),
                    fmt_x(r["live_s"] / p_row["live_s"]),
                ]
            )
        previous = (res, r)
    opts.log(
        table(
            f"Scale: fusion of als + itemknn + pop (wsum, minmax), all evaluated users, k=10, {out['workers']} workers",
            [
                "data",
                "users x items",
                "interactions",
                "load/gen",
                "split",
                "fit (3, parallel)",
                "EASE",
                "full evaluation",
                "eval peak",
                "process peak",
                "pipeline",
                "live 2k users",
                "CPU",
            ],
            rows,
        )
    )
    if growth:
        opts.log(
            table(
                "Growth from one size to the next",
                ["step", "interactions", "users x items", "fit", "evaluation", "eval peak", "live"],
                growth,
            )
        )
    if "targets_20m" in out:
        t, r = out["targets_20m"], out["sizes"]["synthetic-20m"]["row"]
        opts.log(
            "Targets at 20M: "
            + "; ".join(
                [
                    f"evaluation {fmt_s(r['evaluate_s'])} < 60 s {'met' if t['evaluate_s'] else 'MISSED'}",
                    f"its peak {fmt_mib(r['evaluate_peak_bytes'])} < 3 GiB "
                    f"{'met' if t['evaluate_peak_bytes'] else 'MISSED'}",
                    f"pipeline {fmt_s(r['pipeline_s'])} < 5 min {'met' if t['pipeline_s'] else 'MISSED'}",
                    f"live {fmt_s(r['live_s'])} < 300 ms {'met' if t['live_s'] else 'MISSED'}",
                ]
            )
        )
    study = out["sizes"].get("ml-1m", {}).get("result", {}).get("candidates_study")
    if study:
        exact = out["sizes"]["ml-1m"]["result"]["exact"]
        opts.log(
            table(
                "MovieLens-1M: fusing over the union of the members' top-N instead of the whole catalogue",
                ["N", "mean overlap@10", "identical lists", "ndcg@10 diff", "coverage diff", "time"],
                [
                    [
                        s["candidates"],
                        f"{s['mean_overlap_at_10']:.4f}",
                        f"{s['identical_lists_share']:.1%}",
                        f"{s['metric_diff']['ndcg@10']:+.5f} ({s['ndcg_rel_diff']:+.2%})",
                        f"{s['metric_diff']['coverage@10']:+.4f}",
                        fmt_s(s["seconds"]),
                    ]
                    for s in study
                ],
            )
            + f"\n(exact: ndcg@10 {exact['ndcg@10']:.5f}, coverage@10 {exact['coverage@10']:.4f})"
        )
