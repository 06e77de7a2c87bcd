"""One row of the scale table, in its own process: ``python -m bench.scale_worker --size NAME --out FILE``.

Phases, each timed (wall and CPU) with its own peak resident memory: load or generate, split, fit als /
itemknn / pop (side by side with ``--workers 2``), EASE (fitted on small catalogues, its ScaleError at
20M), the exact full evaluation of the three-member fusion (wsum + minmax, weights 0.4 / 0.4 / 0.2,
k = 10, every evaluated user, ``scale.evaluate_fusion_blocked`` with ``--workers`` blocks at once),
optionally the same with ``candidates=100``, and the live loop (``LiveSession``) on a seeded 2,000-user
sample. With ``--candidates-study`` it also compares candidates = 25..200 with the exact answer.

Peak memory per phase is Linux's resident high-water mark (VmHWM in /proc/self/status), reset at the start
of each phase by writing 5 to /proc/self/clear_refs; where that reset is refused, a 10 ms sampling thread
gives the phase peak instead. The process's whole-life peak is the largest high-water mark read before each
reset and at the end (imports included). It is measured here rather than with ``getrusage(RUSAGE_CHILDREN)``
in the parent because Linux's ru_maxrss of a child also counts the parent's memory at fork time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

SIZES: dict[str, str] = {
    "ml-100k": "MovieLens-100K",
    "ml-1m": "MovieLens-1M",
    "synthetic-10m": "synthetic 10M (69,878 x 10,677)",
    "synthetic-20m": "synthetic 20M (138,493 x 26,744)",
}
WEIGHTS = {"als": 0.4, "itemknn": 0.4, "pop": 0.2}
K = 10
CANDIDATES = 100
LIVE_USERS = 2000
STUDY_N = (25, 50, 100, 200)
EASE_MAX_FIT_ITEMS = 4000  # a larger dense inverse is affordable in memory but too slow for the bench


def _status_kib(field: str) -> int | None:
    try:
        m = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return None
    return int(m.group(1)) if m else None


def _rss() -> int:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    import psutil

    return int(psutil.Process().memory_info().rss)


class Phases:
    """Times phases and records each one's peak resident memory."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._sampled = 0
        self._stop = threading.Event()
        self.process_peak = max(_rss(), (_status_kib("VmHWM") or 0) * 1024)  # imports included
        self._can_reset = self._reset_hwm()
        if not self._can_reset:
            threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return False
        return _status_kib("VmHWM") is not None

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self._sampled = max(self._sampled, _rss())
            self.process_peak = max(self.process_peak, self._sampled)

    def _fold_hwm(self) -> None:
        """Fold the high-water mark since the last reset (phases and the gaps between them) into the
        process's peak, so the reset per phase never loses the whole-life peak."""
        hwm = _status_kib("VmHWM") if self._can_reset else None
        if hwm is not None:
            self.process_peak = max(self.process_peak, hwm * 1024)

    def finish(self) -> int:
        self._fold_hwm()
        self._stop.set()
        return max(self.process_peak, _rss())

    @contextlib.contextmanager
    def phase(self, name: str, log: bool = True) -> Iterator[dict[str, Any]]:
        start_rss = _rss()
        if self._can_reset:
            self._fold_hwm()
            self._reset_hwm()
        self._sampled = start_rss
        row: dict[str, Any] = {"phase": name, "rss_start_bytes": start_rss}
        c0, t0 = time.process_time(), time.perf_counter()
        try:
            yield row
        finally:
            row["wall_s"] = time.perf_counter() - t0
            row["cpu_s"] = time.process_time() - c0
            hwm = _status_kib("VmHWM") if self._can_reset else None
            row["peak_rss_bytes"] = max(hwm * 1024 if hwm is not None else self._sampled, _rss())
            self.process_peak = max(self.process_peak, row["peak_rss_bytes"])
            row["peak_method"] = "VmHWM reset per phase" if self._can_reset else "10 ms sampling"
            self.rows.append(row)
            if log:
                print(
                    f"  [{name}] {row['wall_s']:.2f} s wall, {row['cpu_s']:.2f} s CPU, "
                    f"peak {row['peak_rss_bytes'] / 2**20:,.0f} MiB",
                    flush=True,
                )


def _load(size: str) -> Any:
    from reco_core import datasets

    return datasets.load(size)


def _fit(name: str, split: Any, catalog: Any) -> Any:
    from reco_core.models import Context, make_model

    return make_model(name, seed=42).fit(split.train, Context(catalog=catalog))


def _fit_members(split: Any, catalog: Any, workers: int, phases: Phases) -> tuple[dict, dict[str, float]]:
    """Fit als, itemknn and pop; with workers >= 2 side by side in threads (implicit's ALS and scipy's
    sparse products release the GIL), so the phase takes about the longest fit, not the sum."""
    from concurrent.futures import ThreadPoolExecutor

    def fit(name: str) -> tuple[Any, float]:
        t0 = time.perf_counter()
        model = _fit(name, split, catalog)
        return model, time.perf_counter() - t0

    label = "fit als + itemknn + pop" + (" (in parallel)" if workers > 1 else "")
    with phases.phase(label):
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                done = dict(zip(WEIGHTS, pool.map(fit, WEIGHTS), strict=True))
        else:
            done = {name: fit(name) for name in WEIGHTS}
    return {n: m for n, (m, _) in done.items()}, {n: s for n, (_, s) in done.items()}


def _ease(split: Any, catalog: Any, phases: Phases) -> dict[str, Any]:
    from reco_core.errors import ScaleError
    from reco_core.models.ease import EASEConfig

    n_items = split.train.n_items
    if n_items > EASEConfig().max_items:
        with phases.phase("fit ease") as row:
            try:
                _fit("ease", split, catalog)
                row["outcome"] = "fitted (expected a ScaleError)"
            except ScaleError as exc:
                row["outcome"] = "refused (ScaleError)"
                row["message"] = str(exc)
        return {"outcome": row["outcome"], "message": row.get("message", ""), "seconds": row["wall_s"]}
    if n_items > EASE_MAX_FIT_ITEMS:
        return {
            "outcome": "not run",
            "message": f"{n_items:,} items: the dense inverse fits in memory but takes minutes on one thread",
        }
    with phases.phase("fit ease") as row:
        _fit("ease", split, catalog)
    return {"outcome": "fitted", "seconds": row["wall_s"], "cpu_s": row["cpu_s"]}


def _summary(ev: Any) -> dict[str, float]:
    return {k: float(v) for k, v in ev.values().items()}


def _study(
    members: dict, split: Any, ctx: Any, exact_ranking: Any, exact_ev: Any, phases: Phases, workers: int
) -> list[dict]:
    """How close fusing over the union of the members' top-N is to the exact answer, for several N."""
    from reco_core.metrics import evaluate
    from reco_core.scale import overlap_at_k, rank_fusion_blocked

    rows = []
    for n in STUDY_N:
        with phases.phase(f"candidates={n}", log=False) as ph:
            r = rank_fusion_blocked(members, split, WEIGHTS, "wsum", "minmax", K, candidates=n, workers=workers)
        ev = evaluate(r, split.test, ctx, ks=(K,))
        overlap = overlap_at_k(exact_ranking, r)
        keys = exact_ev.keys()
        diffs = {key: float(ev.value(key) - exact_ev.value(key)) for key in keys}
        rows.append(
            {
                "candidates": n,
                "seconds": ph["wall_s"],
                "mean_overlap_at_10": float(overlap.mean()),
                "identical_lists_share": float(np.mean(np.all(r.item_idx == exact_ranking.item_idx, axis=1))),
                "metric_diff": diffs,
                "ndcg_rel_diff": diffs[f"ndcg@{K}"] / exact_ev.value(f"ndcg@{K}"),
            }
        )
        print(
            f"  candidates={n}: overlap@10 {overlap.mean():.4f}, ndcg diff {diffs[f'ndcg@{K}']:+.5f}, "
            f"{ph['wall_s']:.2f} s",
            flush=True,
        )
    return rows


def run(size: str, study: bool, candidates_eval: bool, live_updates: int, workers: int) -> dict[str, Any]:
    from reco_core import splitting
    from reco_core.live import LiveSession, sample_users
    from reco_core.metrics import EvalContext
    from reco_core.scale import auto_block_size, evaluate_fusion_blocked, rank_fusion_blocked

    phases = Phases()
    out: dict[str, Any] = {"size": size, "label": SIZES.get(size, size)}
    with phases.phase("load" if size.startswith("ml-") else "generate"):
        ds = _load(size)
    inter = ds.interactions
    out.update(users=inter.n_users, items=inter.n_items, interactions=int(inter.nnz))
    with phases.phase("split"):
        split = splitting.make_split(inter, "random", test_frac=0.2, seed=42)
    members, fit_seconds = _fit_members(split, ds.catalog, workers, phases)
    out["fit_seconds"] = fit_seconds
    out["ease"] = _ease(split, ds.catalog, phases)
    ctx = EvalContext.from_train(split.train, ds.catalog)  # genres; no text vectors at scale (see docs)
    out["eval_users"] = len(split.eval_users())
    out["block_size"] = auto_block_size(inter.n_items)
    out["workers"] = workers
    profile: dict[str, float] = {}
    with phases.phase("evaluate exact") as row:
        exact_ev = evaluate_fusion_blocked(
            members, split, ctx, WEIGHTS, "wsum", "minmax", K, workers=workers, profile=profile
        )
    row["profile"] = profile
    out["metrics"] = exact_ev.keys()
    out["exact"] = _summary(exact_ev)
    if candidates_eval:
        profile_c: dict[str, float] = {}
        with phases.phase(f"evaluate candidates={CANDIDATES}") as row:
            cand_ev = evaluate_fusion_blocked(
                members,
                split,
                ctx,
                WEIGHTS,
                "wsum",
                "minmax",
                K,
                candidates=CANDIDATES,
                workers=workers,
                profile=profile_c,
            )
        row["profile"] = profile_c
        out["candidates"] = {"n": CANDIDATES, **_summary(cand_ev)}
    if study:
        exact_ranking = rank_fusion_blocked(members, split, WEIGHTS, "wsum", "minmax", K, workers=workers)
        out["candidates_study"] = _study(members, split, ctx, exact_ranking, exact_ev, phases, workers)

    sample = sample_users(split, LIVE_USERS, seed=0)
    with phases.phase(f"live build ({len(sample):,} users)"):
        # 3 members x 2,000 users x 26,744 items is estimated at just over the session's default 2 GiB
        # (live.session_bytes); the bench's machine has 23.5 GiB and measures the process peak itself.
        session = LiveSession(members, split, ctx, users=sample, max_bytes=3 * 2**30)
    rng = np.random.default_rng(0)
    draws = rng.dirichlet(np.ones(len(WEIGHTS)), size=live_updates + 1)
    session.update(draws[0], "wsum", "minmax", K)  # first update normalises the blocks once
    times = []
    with phases.phase(f"live updates (x{live_updates})"):
        for w in draws[1:]:
            t0 = time.perf_counter()
            res = session.update(w, "wsum", "minmax", K)
            times.append(time.perf_counter() - t0)
    summ = res.evaluation.summary(n_boot=200, seed=0)
    ndcg = summ[summ["metric"] == f"ndcg@{K}"].iloc[0]
    out["live"] = {
        "users": len(sample),
        "updates": live_updates,
        "median_s": float(np.median(times)),
        "p95_s": float(np.percentile(times, 95)),
        "sample_ndcg": float(ndcg["value"]),
        "sample_ndcg_ci": [float(ndcg["ci_low"]), float(ndcg["ci_high"])],
    }
    out["phases"] = phases.rows
    out["process_peak_bytes"] = phases.finish()
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scale_worker")
    p.add_argument("--size", required=True, choices=list(SIZES))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--candidates-study", action="store_true", help="compare candidates=25..200 with exact")
    p.add_argument("--candidates-eval", action="store_true", help=f"also time a candidates={CANDIDATES} evaluation")
    p.add_argument("--live-updates", type=int, default=20)
    p.add_argument("--workers", type=int, default=1, help="blocks evaluated at once (threads); fits side by side")
    args = p.parse_args()
    result = run(args.size, args.candidates_study, args.candidates_eval, args.live_updates, args.workers)
    args.out.write_text(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
