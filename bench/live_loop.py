"""Section 2: the live loop on MovieLens-100K: a weight moves, every user's fused top-10 and every metric follow.

``LiveSession.update`` re-combines the members' normalised blocks, re-ranks all 943 users and evaluates
every metric the context supports (accuracy, coverage, gini, ILD on genres and text, novelty, ARP,
personalisation). Each timed update gets new weights (a seeded Dirichlet draw), so nothing is reused
between updates except what the session keeps on purpose (member blocks, normalised blocks, top-N lists).
The session is built once per member set (its build time is reported: scoring every member once).
Budgets (DESIGN.md section 7): median under 30 ms with 3 members; evaluation alone under 20 ms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.common import Options, Stats, fitted, fmt_s, measure, ml100k, table, timed

MEMBER_SETS: dict[int, tuple[str, ...]] = {
    2: ("als", "itemknn"),
    3: ("als", "itemknn", "text"),  # the dashboard's default members
    5: ("als", "itemknn", "text", "bpr", "pop"),
}
BUDGET_3_S = 0.030
BUDGET_EVAL_S = 0.020


def _updates(session: Any, n: int, method: str, seed: int) -> Stats:
    rng = np.random.default_rng(seed)
    m = len(session.members)
    draws = iter(rng.dirichlet(np.ones(m), size=n + 1))

    def step() -> None:
        session.update(next(draws), method, "minmax", k=10)

    return measure(step, repeats=n, warmup=1)


def run(opts: Options) -> dict[str, Any]:
    from reco_core.fusion import METHODS
    from reco_core.live import LiveSession
    from reco_core.metrics import evaluate

    s = ml100k()
    n_updates = 20 if opts.quick else 100
    out: dict[str, Any] = {"users": len(s.split.eval_users()), "k": 10, "updates": n_updates, "sets": {}}
    rows = []
    session3 = None
    for m, names in MEMBER_SETS.items():
        members = {n: fitted(n) for n in names}
        session, build_s, _ = timed(lambda members=members: LiveSession(members, s.split, s.ctx))
        stats = _updates(session, n_updates, "wsum", seed=m)
        out["sets"][str(m)] = {"members": list(names), "build_s": build_s, "update": stats.to_dict()}
        rows.append([m, "+".join(names), fmt_s(stats.median), fmt_s(stats.p95), fmt_s(build_s)])
        if m == 3:
            session3 = session
    assert session3 is not None
    within = out["sets"]["3"]["update"]["median_s"] < BUDGET_3_S
    out["budget_3_members_s"] = BUDGET_3_S
    out["within_budget_3_members"] = within

    # Every metric alone, on the fused ranking of the 3-member session.
    result = session3.update([0.4, 0.4, 0.2], "wsum", "minmax", k=10)
    eval_stats = measure(lambda: evaluate(result.ranking, s.split.test, s.ctx, ks=(10,)), repeats=n_updates)
    out["evaluate_all_metrics"] = {
        **eval_stats.to_dict(),
        "metrics": len(result.evaluation.keys()),
        "budget_s": BUDGET_EVAL_S,
        "within_budget": eval_stats.median < BUDGET_EVAL_S,
    }

    # Every fusion method with the 3 members (fewer updates each).
    per_method = {}
    for method in METHODS:
        st = _updates(session3, max(5, n_updates // 5), method, seed=7)
        per_method[method] = st.to_dict()
    out["methods_3_members"] = per_method

    opts.log(
        table(
            f"Live loop, MovieLens-100K, all {out['users']} users, k=10, wsum + minmax, {n_updates} updates "
            f"(budget: median < {fmt_s(BUDGET_3_S)} with 3 members: {'met' if within else 'MISSED'})",
            ["members", "models", "median", "p95", "session build"],
            rows,
        )
    )
    opts.log(
        f"Every metric alone ({out['evaluate_all_metrics']['metrics']} values, 943 users): median "
        f"{fmt_s(eval_stats.median)}, p95 {fmt_s(eval_stats.p95)} (budget {fmt_s(BUDGET_EVAL_S)}: "
        f"{'met' if eval_stats.median < BUDGET_EVAL_S else 'MISSED'})"
    )
    opts.log(
        table(
            "Live loop per fusion method, 3 members",
            ["method", "median", "p95"],
            [[k, fmt_s(v["median_s"]), fmt_s(v["p95_s"])] for k, v in per_method.items()],
        )
    )
    return out
