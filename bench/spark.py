"""Section "spark": the Spark engine on local[2] against the local engine (docs/scale-out.md).

Per size (MovieLens-1M, synthetic 10M), in a fresh process each (``python -m bench.spark --size S``):

- equality: pop, als and itemknn (the last two fitted on the driver and broadcast) and their min-max weighted
  sum, rrf and borda, evaluated by both engines on the same split: the largest difference over every metric
  (at both sizes: the local side evaluates in user blocks, so 10M fits one machine);
- wall time: Spark's evaluate stage (the three members alone and their three fusions, every metric) against
  the local engine doing the same work (``scale.evaluate_fusion_blocked`` with 2 workers for each fusion,
  ``experiment.evaluate_scorer`` for each member) with the same fitted members (ML-1M), and the whole
  Spark pipeline with
  Spark-trained members (pop, spark-als, spark-itemknn: nothing user-sized on the driver) at both sizes;
- memory: peak resident memory of the driver's Python process, of the JVM (driver and, in local mode, the
  executors) and of the Python workers (the largest one), sampled every 0.2 s; and the driver's resident
  memory at the start of the Spark-trained run (the local data and models dropped: what is left is item-sized)
  and its peak during it, the figure that must not grow with the number of users;
- throughput: user-item scores per core-second in the evaluate stage (users x items x members / (wall x
  cores)), the figure docs/scale-out.md sizes a cluster from.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, Options, cpu_label, fmt_mib, fmt_s, load_average, load_results, machine, table

SIZES = ("ml-1m", "synthetic-10m")
# Sizes where both engines evaluate the same driver-fitted members (als and itemknn fit on one machine up to
# 10M interactions here), for equality and a like-for-like wall time.
EQUALITY_SIZES = ("ml-1m", "synthetic-10m")
WEIGHTS = {"pop": 0.2, "als": 0.4, "itemknn": 0.4}


class _Peaks:
    """Peak RSS of this process, the JVM and the Python workers (children of the JVM), sampled in a thread."""

    def __init__(self) -> None:
        self.peak = {"driver_python": 0, "jvm": 0, "worker_python": 0}
        self.phase: dict[str, int] | None = None  # the same peaks, since ``start_phase``
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return 0
        return 0

    @staticmethod
    def _children(pid: int) -> list[int]:
        """Children started by any thread of ``pid``: /proc lists each thread's own, and the JVM starts the
        Python workers' daemon from a thread other than its main one."""
        out: list[int] = []
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            return out
        for task in tasks:
            try:
                out.extend(int(x) for x in (task / "children").read_text().split())
            except OSError:
                continue
        return out

    def start_phase(self) -> dict[str, int]:
        """Peaks from now on, kept beside the whole-run ones; returns the driver's resident memory now."""
        self.phase = {"driver_python": 0, "jvm": 0, "worker_python": 0}
        return {"driver_python": self._rss(os.getpid())}

    def _note(self, key: str, rss: int) -> None:
        self.peak[key] = max(self.peak[key], rss)
        if self.phase is not None:
            self.phase[key] = max(self.phase[key], rss)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.2):
            self._note("driver_python", self._rss(me))
            for child in self._children(me):
                if "java" in Path(f"/proc/{child}/cmdline").read_text(errors="ignore"):
                    self._note("jvm", self._rss(child))
                    stack = self._children(child)
                    while stack:
                        pid = stack.pop()
                        self._note("worker_python", self._rss(pid))
                        stack.extend(self._children(pid))

    def __enter__(self) -> _Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _local_frame(size: str) -> Any:
    from reco_core import datasets

    return datasets.load(size, allow_download=False)


def measure(size: str, partial: Path | None = None) -> dict[str, Any]:
    """Everything for one size, in this process (run it in a fresh one: memory peaks are per process).

    ``partial``: the figures so far are written there after each phase, so a run stopped early keeps them.
    """
    import numpy as np

    from reco_core import config as config_mod
    from reco_core import experiment
    from reco_core.scale import evaluate_fusion_blocked
    from reco_core.spark.data import item_vocabulary, read_interactions, split_frame
    from reco_core.spark.engine import Fusion, run
    from reco_core.spark.session import spark_session

    # Each row carries when, where and under what load it was measured: a partial rerun (--sizes) keeps the
    # other rows, which must not take the new run's stamps.
    out: dict[str, Any] = {
        "size": size,
        "cores": 2,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": cpu_label(machine()),
        "load_before": load_average(),
    }

    def note(phase: str) -> None:
        print(f"[bench.spark {size}] {phase} done", file=sys.stderr, flush=True)
        if partial is not None:
            partial.write_text(json.dumps({**out, "peak_bytes": dict(peaks.peak)}, default=float))

    with _Peaks() as peaks:
        ds = _local_frame(size)
        frame = ds.interactions.to_frame()
        keep = [c for c in ("user", "item", "value", "timestamp") if c in frame.columns]
        with tempfile.TemporaryDirectory(prefix="reco-spark-bench-") as tmp:
            path = Path(tmp) / "interactions.parquet"
            frame[keep].to_parquet(path, index=False)
            del frame
            t0 = time.perf_counter()
            spark = spark_session("local[2]")
            out["session_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            data = read_interactions(spark, str(path))
            # The catalogue's items too (ML-1M lists 177 films nobody rated), as the local loader keeps them.
            items = item_vocabulary(data, [str(i) for i in ds.catalog.items.ids])
            split = split_frame(spark, data, items, "random", 0.2, 42)  # computed and kept by split_frame
            out["load_split_s"] = time.perf_counter() - t0
            note("load and split")
            out["users"], out["items"], out["interactions"] = split.n_users, len(items), ds.interactions.nnz
            cfg = config_mod.ExperimentConfig(
                members=tuple(config_mod.MemberSpec.of(n) for n in WEIGHTS), weights=tuple(WEIGHTS.values())
            )
            w = np.array(list(WEIGHTS.values()))
            if size in EQUALITY_SIZES:
                fusions = [
                    Fusion(m, w, m, "minmax", (("rrf_k", 60.0),) if m == "rrf" else ())
                    for m in ("wsum", "rrf", "borda")
                ]
                t0 = time.perf_counter()
                res = run(spark, cfg, split=split, catalog=ds.catalog, fusions=fusions, progress=None)
                out["spark_driver_members_s"] = time.perf_counter() - t0
                out["spark_evaluate_s"] = res.seconds["evaluate"]
                out["spark_driver_members_stages"] = res.seconds
                note("spark with driver-fitted members")
                # The local engine on the same data: same split function, same members, same fusion code.
                local_split = experiment.make_split(ds, cfg.protocol)
                fitted = experiment.fit_members(cfg.members, local_split, ds, 42)
                ctx = experiment.eval_context(local_split, ds, with_text=False)
                # The same work as Spark's evaluate stage: the three fusions and the three members alone, each
                # with every metric; timed one by one (local_seconds) and in all (local_same_work_s).
                worst = 0.0
                local_seconds: dict[str, float] = {}
                evs = {}
                for method in ("wsum", "rrf", "borda"):
                    params = {"rrf_k": 60.0} if method == "rrf" else None
                    t0 = time.perf_counter()
                    evs[method] = evaluate_fusion_blocked(
                        fitted.models, local_split, ctx, WEIGHTS, method, "minmax", 10, workers=2, params=params
                    )
                    local_seconds[method] = time.perf_counter() - t0
                for name, model in fitted.models.items():
                    t0 = time.perf_counter()
                    evs[name] = experiment.evaluate_scorer(model, local_split, ctx, (10,))
                    local_seconds[name] = time.perf_counter() - t0
                for label, ev in evs.items():
                    for key, value in ev.values().items():
                        if key in res.table.columns:
                            worst = max(worst, abs(value - res.value(label, key)))
                out["local_seconds"] = local_seconds
                out["local_evaluate_s"] = local_seconds["wsum"]
                out["local_same_work_s"] = sum(local_seconds.values())
                out["evaluate_ratio"] = out["spark_evaluate_s"] / out["local_same_work_s"]
                out["max_abs_difference"] = worst
                local_ev = evs["wsum"]
                out["local_wsum_ndcg"] = local_ev.value("ndcg@10")
                out["spark_wsum_ndcg"] = res.value("wsum", "ndcg@10")
                note("local engine and equality")
                del local_split, fitted, ctx, evs, local_ev, res, model, ev
            # spark-itemknn's exact DIMSUM emits sum over users of n_u^2 item pairs (about 4e8 at ML-1M): on 2 cores
            # that alone outlasted a 40-minute run, so the scale run uses the members whose cost is linear in the
            # interactions (docs/scale-out.md; a DIMSUM threshold > 0 samples pairs on a real cluster).
            members = [("pop", "pop", {}), ("spark-als", "spark-als", {})]
            # The driver's own share of a Spark-trained run: the local data and models go first (what stays is
            # item-sized: the catalogue), so the driver's growth during the run is the engine's, which must
            # not grow with the number of users.
            catalog = ds.catalog
            del ds
            gc.collect()
            out["native_driver_start_bytes"] = peaks.start_phase()["driver_python"]
            t0 = time.perf_counter()
            scaled = run(spark, cfg, split=split, members=members, weights=[0.3, 0.7], catalog=catalog, progress=None)
            out["spark_native_s"] = time.perf_counter() - t0
            out["native_peak_bytes"] = dict(peaks.phase or {})
            out["spark_native_stages"] = scaled.seconds
            out["spark_native_ndcg"] = {m: scaled.value(m, "ndcg@10") for m in scaled.table.index}
            cells = scaled.n_evaluated * len(items) * len(members)
            out["scores_per_core_s"] = cells / (scaled.seconds["evaluate"] * out["cores"])
            spark.stop()
    out["peak_bytes"] = dict(peaks.peak)
    return out


def run(opts: Options) -> dict[str, Any]:
    sizes = [s for s in (opts.sizes or SIZES) if s in SIZES] or list(SIZES)
    # A partial run (--sizes) replaces only its own rows; the other sizes' rows stay as measured.
    previous = load_results(RESULTS).get("sections", {}).get("spark", {}).get("sizes", [])
    results = [r for r in previous if r.get("size") in SIZES and r.get("size") not in sizes]
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="reco-bench-") as tmp:
            target = Path(tmp) / "out.json"
            cmd = [sys.executable, "-m", "bench.spark", "--size", size, "--out", str(target)]
            done = subprocess.run(cmd, cwd=ROOT, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"spark bench for {size} exited with code {done.returncode}")
            results.append(json.loads(target.read_text()))
    results.sort(key=lambda r: SIZES.index(r["size"]))
    rows = []
    for r in results:
        peaks = r["peak_bytes"]
        rows.append(
            [
                r["size"],
                f"{r['users']:,} x {r['items']:,}",
                fmt_s(r.get("local_same_work_s")),
                fmt_s(r.get("spark_evaluate_s")),
                "—" if "evaluate_ratio" not in r else f"{r['evaluate_ratio']:.1f}x",
                "—" if "max_abs_difference" not in r else f"{r['max_abs_difference']:.1e}",
                fmt_s(r["spark_native_s"]),
                fmt_mib(peaks["driver_python"]),
                "—"
                if "native_peak_bytes" not in r
                else f"{fmt_mib(r['native_driver_start_bytes'])} -> {fmt_mib(r['native_peak_bytes']['driver_python'])}",
                fmt_mib(peaks["jvm"]),
                fmt_mib(peaks["worker_python"]),
                f"{r['scores_per_core_s']:.3g}",
            ]
        )
    opts.log(
        table(
            "Spark local[2] against the local engine",
            [
                "data",
                "users x items",
                "local: 3 members + 3 fusions",
                "spark evaluate (same work)",
                "spark / local",
                "max |diff|",
                "spark pipeline (native members)",
                "driver Python peak",
                "driver in the Spark-trained run (start -> peak)",
                "JVM peak",
                "worker peak",
                "scores / core-s",
            ],
            rows,
        )
    )
    return {"sizes": results}


def _main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spark")
    p.add_argument("--size", required=True, choices=SIZES)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    Path(args.out).write_text(json.dumps(measure(args.size, Path(args.out + ".partial")), default=float))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
