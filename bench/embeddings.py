"""Section 5: text embeddings of the MovieLens-100K catalogue (all-MiniLM-L6-v2, packaged, CPU).

Runs in a fresh process (``python -m bench.embeddings --worker FILE``) so that "cold" really starts
without the model in memory, with ``RECO_CACHE_DIR`` pointing at an empty temporary folder:

- cold: the first ``encode_texts`` call, which loads the model and encodes every item text;
- encode only: the same texts into a second empty cache folder (model already loaded);
- from the disk cache: ``clear_memory_cache()`` then ``encode_texts`` again, which reads the .npy file and
  checks its sha256 (median of 5).

Budgets (DESIGN.md section 7): all items under 30 s cold, under 1 s from the disk cache.
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

from bench.common import ROOT, Options, Stats, fmt_s, measure, table

BUDGET_COLD_S = 30.0
BUDGET_DISK_S = 1.0


def worker(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="reco-emb-") as tmp:
        os.environ["RECO_CACHE_DIR"] = tmp  # read by paths.cache_dir() at every call
        from reco_core import datasets, embeddings

        texts = list(datasets.load("ml-100k").catalog.text)
        t0 = time.perf_counter()
        c0 = time.process_time()
        vectors = embeddings.encode_texts(texts)
        cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
        with tempfile.TemporaryDirectory(prefix="reco-emb2-") as tmp2:
            embeddings.clear_memory_cache()
            t0 = time.perf_counter()
            embeddings.encode_texts(texts, cache_dir=Path(tmp2))
            encode_only = time.perf_counter() - t0

        def from_disk() -> None:
            embeddings.clear_memory_cache()
            embeddings.encode_texts(texts)

        disk: Stats = measure(from_disk, repeats=5, warmup=0)
        result = {
            "items": len(texts),
            "unique_texts": len(set(texts)),
            "dimension": int(vectors.shape[1]),
            "cold_s": cold,
            "cold_cpu_s": cold_cpu,
            "cold_items_per_s": len(texts) / cold,
            "encode_only_s": encode_only,
            "encode_only_items_per_s": len(texts) / encode_only,
            "model_load_s": max(cold - encode_only, 0.0),
            "disk_cache": disk.to_dict(),
        }
    out.write_text(json.dumps(result))


def run(opts: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="reco-bench-") as tmp:
        out = Path(tmp) / "embeddings.json"
        subprocess.run([sys.executable, "-m", "bench.embeddings", "--worker", str(out)], cwd=ROOT, check=True)
        r = json.loads(out.read_text())
    r["budget_cold_s"], r["budget_disk_s"] = BUDGET_COLD_S, BUDGET_DISK_S
    r["within_budget_cold"] = r["cold_s"] < BUDGET_COLD_S
    r["within_budget_disk"] = r["disk_cache"]["median_s"] < BUDGET_DISK_S
    opts.log(
        table(
            f"Text embeddings, MovieLens-100K ({r['items']:,} item texts, {r['unique_texts']:,} unique, "
            f"{r['dimension']} dimensions)",
            ["step", "time", "items/s", "budget"],
            [
                [
                    "cold (load model + encode)",
                    fmt_s(r["cold_s"]),
                    f"{r['cold_items_per_s']:,.0f}",
                    f"{'ok' if r['within_budget_cold'] else 'OVER'} < {fmt_s(BUDGET_COLD_S)}",
                ],
                ["encode only (model loaded)", fmt_s(r["encode_only_s"]), f"{r['encode_only_items_per_s']:,.0f}", ""],
                [
                    "from the disk cache (median of 5)",
                    fmt_s(r["disk_cache"]["median_s"]),
                    "",
                    f"{'ok' if r['within_budget_disk'] else 'OVER'} < {fmt_s(BUDGET_DISK_S)}",
                ],
            ],
        )
    )
    return r


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]))
    else:
        raise SystemExit("usage: python -m bench.embeddings --worker OUTPUT.json (run by python -m bench)")
