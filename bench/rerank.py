"""Section: the live loop with a re-ranker after fusion (issue 12's budget: under 30 ms with MMR on).

Three members (the dashboard's default: als, itemknn, text), wsum + min-max fused to the top-50,
re-ranked to the top-10 for all 943 users, then every metric: ``LiveSession.apply(weights, spec, RerankSpec)``,
the call the dashboard makes on each slider move with a re-ranker on. Each timed update draws new weights (a
seeded Dirichlet), so the fusion is redone every time, as when a slider moves. Reported per re-ranker
beside the same loop without re-ranking (fused straight to the top-10), side by side in one run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.common import Options, fitted, fmt_s, ml100k, side_by_side, table

MEMBERS = ("als", "itemknn", "text")
CANDIDATES = 50
LAMBDA = 0.3
BUDGET_S = 0.030


def run(opts: Options) -> dict[str, Any]:
    from reco_core.config import FusionSpec, RerankSpec
    from reco_core.live import LiveSession
    from reco_core.rerank import RERANKERS

    s = ml100k()
    # Members list twice the re-ranked depth, so wsum's exact candidate path holds for most rows at k = 50.
    session = LiveSession({n: fitted(n) for n in MEMBERS}, s.split, s.ctx, top_n=2 * CANDIDATES, max_k=CANDIDATES)
    repeats = 20 if opts.quick else 100
    rng = np.random.default_rng(12)
    draws = iter(rng.dirichlet(np.ones(len(MEMBERS)), size=(len(RERANKERS) + 1) * (repeats + 1) + 10))

    spec = FusionSpec(method="wsum", normaliser="minmax", k=10)

    def plain() -> None:
        session.apply(next(draws), spec)

    def with_reranker(name: str) -> Any:
        # The dashboard's own call on a slider move: fuse to the top-50, re-rank to the top-10, every metric.
        reranker = RerankSpec(name, lam=LAMBDA, candidates=CANDIDATES)

        def step() -> None:
            session.apply(next(draws), spec, reranker)

        return step

    stats = side_by_side({"none": plain, **{n: with_reranker(n) for n in RERANKERS}}, repeats=repeats)
    out: dict[str, Any] = {
        "members": list(MEMBERS),
        "users": len(session.users),
        "candidates": CANDIDATES,
        "lambda": LAMBDA,
        "budget_s": BUDGET_S,
        "loops": {name: st.to_dict() for name, st in stats.items()},
        "mmr_within_budget": stats["mmr"].median < BUDGET_S,
    }
    opts.log(
        table(
            f"Live loop with a re-ranker, {len(session.users)} users, {'+'.join(MEMBERS)}, fused top-{CANDIDATES}"
            f" -> top-10, lambda {LAMBDA}, every metric (budget with MMR: {fmt_s(BUDGET_S)}:"
            f" {'met' if out['mmr_within_budget'] else 'MISSED'})",
            ["re-ranker", "median", "p95"],
            [[name, fmt_s(st.median), fmt_s(st.p95)] for name, st in stats.items()],
        )
    )
    return out
