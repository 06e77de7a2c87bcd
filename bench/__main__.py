"""``python -m bench [--quick] [--only SECTION[,SECTION]]``: run the benchmark sections, write results.json.

``--quick`` runs the MovieLens-100K rows only (fewer repeats, the scale table's first row, no browser
sessions) and should finish in under two minutes; the full run in under twenty.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import Options, describe_machine, fmt_s, load_average, machine, save_failure, save_section

# name -> (module, in --quick, one line); run in this order.
SECTIONS: dict[str, tuple[str, bool, str]] = {
    "fit": ("bench.fit_times", True, "fit time of every model on MovieLens-100K"),
    "live": ("bench.live_loop", True, "the live loop for 2, 3 and 5 members"),
    "rerank": ("bench.rerank", True, "the live loop with MMR, calibrated and popularity re-ranking"),
    "metrics": ("bench.metrics_peers", True, "metrics: ours vs ranx vs Microsoft Recommenders"),
    "fusion": ("bench.fusion_peers", True, "fusion: ours vs ranx.fuse"),
    "embeddings": ("bench.embeddings", True, "text embeddings: cold and from the disk cache"),
    "scale": ("bench.scale_table", True, "100K, 1M, 10M, 20M: time and peak memory"),
    "spark": ("bench.spark", False, "Spark local[2] vs the local engine: equality, wall time, memory, throughput"),
    "tuning": ("bench.tuning", False, "hyperparameters chosen on the validation split, test NDCG@10 once"),
    "sessions": ("bench.sessions", False, "1, 10 and 30 browser sessions on one server, and the soak"),
    "feel": ("bench.feel", False, "the dashboard in a browser: key press to new numbers, first view"),
}


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="MovieLens-100K rows only, fewer repeats (< 2 minutes)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SECTION",
        help=f"run only these sections (repeat or comma-separate): {', '.join(SECTIONS)}",
    )
    p.add_argument(
        "--sessions-seconds", type=float, default=120.0, help="how long each browser session moves its weights"
    )
    p.add_argument("--soak-changes", type=int, default=500, help="weight changes in the one-session soak")
    p.add_argument(
        "--sessions",
        default="1,10,30",
        help="sessions section: comma-separated numbers of browser sessions at once (one load test each)",
    )
    p.add_argument(
        "--sessions-client",
        choices=("both", "protocol", "browser"),
        default=None,
        help="sessions section: protocol clients (the server's load as a class sees it, browsers elsewhere), headless"
        " Chromium tabs on this machine, or both (default)",
    )
    p.add_argument(
        "--sizes",
        default="",
        help="scale section: comma-separated subset of ml-100k, ml-1m, synthetic-10m, synthetic-20m",
    )
    return p.parse_args(argv)


def _selected(args: argparse.Namespace) -> list[str]:
    wanted = [s.strip() for item in args.only for s in item.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section {unknown[0]!r}: choose from {', '.join(SECTIONS)}")
    if wanted:
        return [s for s in SECTIONS if s in wanted]
    return [s for s, (_, in_quick, _) in SECTIONS.items() if in_quick or not args.quick]


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    names = _selected(args)
    sizes = tuple(s.strip() for s in args.sizes.split(",") if s.strip())
    opts = Options(
        quick=args.quick,
        sessions_seconds=args.sessions_seconds,
        soak_changes=args.soak_changes,
        session_counts=tuple(int(n) for n in args.sessions.split(",") if n.strip()),
        sessions_client=args.sessions_client,
        sizes=sizes,
        log=lambda text: print(text, flush=True),
    )
    print(f"Machine: {describe_machine(machine())}; load average {load_average()}", flush=True)
    start = time.perf_counter()
    failed = []
    for name in names:
        module, _, what = SECTIONS[name]
        print(f"\n== {name}: {what}", flush=True)
        load_before = load_average()
        t0 = time.perf_counter()
        try:
            run: Callable[[Options], dict[str, Any]] = importlib.import_module(module).run
            data = run(opts)
        except Exception as exc:  # one section failing must not hide the others' figures
            failed.append(name)
            print(f"section {name} FAILED: {type(exc).__name__}: {exc}", flush=True)
            # The section's earlier figures stay as they were, with their own machine and date; the failure is
            # recorded beside them (results.json "failures"), so a failed rerun never erases or relabels them.
            save_failure(name, f"{type(exc).__name__}: {exc}")
            print(f"-- {name} took {fmt_s(time.perf_counter() - t0)}", flush=True)
            continue
        seconds = time.perf_counter() - t0
        save_section(
            name, {**data, "section_s": seconds, "load_before": load_before, "load_after": load_average()}, args.quick
        )
        print(f"-- {name} took {fmt_s(seconds)}", flush=True)
    print(f"\nbench finished in {fmt_s(time.perf_counter() - start)}; results in bench/results.json", flush=True)
    if failed:
        print(f"failed sections: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
