"""Section 1: fit time of every registered model on MovieLens-100K under the default protocol.

Each model is fitted through ``experiment.fit_member`` (what the CLI and the dashboard call) on the same
split, with the protocol's seed. Text embeddings come from the disk cache (warmed once before timing):
their cold cost is section 5. Budgets (DESIGN.md section 7): every collaborative model under 3 s, the
neural ones (torch) under 60 s.
"""

from __future__ import annotations

from typing import Any

from bench.common import Options, Stats, fmt_s, measure, ml100k, table

# Repeats per model (quick, full); a model whose first fit is slow is repeated less (the section must
# stay short): in --quick a fit over SLOW_S[True] is not repeated, in the full run one over SLOW_S[False]
# is repeated once.
REPEATS = {True: 3, False: 5}
SLOW_S = {True: 0.5, False: 5.0}
NEURAL = ("mf", "neural", "hybrid")


def _budget(name: str, kind: str) -> float:
    if name in NEURAL:
        return 60.0
    if kind == "user":
        return 3.0
    return 30.0  # content models: the text model's budget is the embeddings' (30 s cold)


def run(opts: Options) -> dict[str, Any]:
    from reco_core import experiment
    from reco_core.models import MODELS

    s = ml100k()
    rows: dict[str, Any] = {}
    for name in sorted(MODELS):
        spec = MODELS[name]
        member = experiment.MemberSpec.of(name)

        def fit(member: experiment.MemberSpec = member) -> None:
            experiment.fit_member(member, s.split, s.dataset, s.protocol.seed)

        first = measure(fit, repeats=1, warmup=0)
        more = REPEATS[opts.quick] - 1 if first.median < SLOW_S[opts.quick] else (0 if opts.quick else 1)
        stats = Stats(first.wall + (rest := measure(fit, more, 0)).wall, first.cpu + rest.cpu)
        budget = _budget(name, spec.kind)
        rows[name] = {**stats.to_dict(), "kind": spec.kind, "budget_s": budget, "within_budget": stats.median < budget}
        opts.log(f"  fit {name}: {fmt_s(stats.median)} (n={len(stats.wall)})")
    opts.log(
        table(
            f"Fit time on MovieLens-100K ({s.split.train.nnz:,} training interactions), median of n fits",
            ["model", "kind", "median", "CPU", "n", "budget"],
            [
                [
                    n,
                    r["kind"],
                    fmt_s(r["median_s"]),
                    fmt_s(r["cpu_median_s"]),
                    r["n"],
                    ("ok < " if r["within_budget"] else "OVER ") + fmt_s(r["budget_s"]),
                ]
                for n, r in rows.items()
            ],
        )
    )
    return {"protocol": s.protocol.describe(), "train_interactions": int(s.split.train.nnz), "models": rows}
