"""Section 4: fusing the same runs with ``reco_core.fusion.fuse`` and with ``ranx.fuse``.

The runs are the top-100 lists (training items excluded) of als, itemknn and text for every evaluated
MovieLens-100K user, taken from a ``LiveSession``. Both sides fuse those lists and nothing else, with
equal weights, and we keep the top 10:

- wsum: min-max per user over each run's 100 scores, then the weighted sum (ranx ``wsum`` with weights
  1/3 each). Ours is a score-level method: it gets the runs as score blocks that are NaN outside the
  listed items, so its normaliser sees exactly the run's scores.
- rrf (k = 60), combmnz (min-max), borda (ranx ``bordafuse``): result-level, ours from the rankings.

ranx's methods other than wsum take no weights and sum over runs; ours divides the weights by their
sum, so our fused scores are ranx's divided by the number of runs (3). The agreement check compares
ours x 3 with ranx on the fused top-10 scores, and the share of users whose top-10 lists are identical.
ranx returns every candidate's fused score; we time only its ``fuse`` call (no sorting or cutting to
10), which favours ranx. Ties: for the rank-only methods (rrf, borda) ranx's runs carry N - position as
scores, so its members' lists keep our order among tied scores; ranx's fused runs are cut to the top-10
by (score desc, item index), our ranker's tie rule, before comparing lists.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from bench.common import Options, fitted, fmt_s, fmt_x, ml100k, side_by_side, table

MEMBERS = ("als", "itemknn", "text")
METHODS = {  # ours -> (ranx method, ranx norm, ours normaliser)
    "wsum": ("wsum", "min-max", "minmax"),
    "rrf": ("rrf", None, "minmax"),
    "combmnz": ("mnz", "min-max", "minmax"),
    "borda": ("bordafuse", None, "minmax"),
}
TOP_N = 100
K = 10


def _runs(rankings: list[Any], by_position: bool) -> list[Any]:
    """ranx Runs of the members' lists: their scores, or (``by_position``) N - position, which keeps our
    order among tied scores for the rank-only methods (ranx does not define an order among ties)."""
    from ranx import Run

    runs = []
    for name, r in zip(MEMBERS, rankings, strict=True):
        d = {}
        for row, u in enumerate(r.user_idx):
            ok = r.item_idx[row] >= 0
            values = np.arange(r.k, 0, -1, dtype=np.float64)[ok] if by_position else r.score[row][ok]
            d[str(int(u))] = {str(int(i)): float(v) for i, v in zip(r.item_idx[row][ok], values, strict=True)}
        runs.append(Run(d, name=name))
    return runs


def _blocks(rankings: list[Any], n_items: int) -> list[np.ndarray]:
    """Each run as a score block: its listed scores, NaN (absent) everywhere else."""
    out = []
    for r in rankings:
        b = np.full((len(r.user_idx), n_items), np.nan, dtype=np.float32)
        rows, cols = np.nonzero(r.item_idx >= 0)
        b[rows, r.item_idx[rows, cols]] = r.score[rows, cols]
        out.append(b)
    return out


def _ranx_top(fused: Any, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    items = np.full((len(users), K), -1, dtype=np.int64)
    scores = np.full((len(users), K), np.nan)
    d = fused.to_dict()
    for row, u in enumerate(users):
        pairs = sorted(((-v, int(i)) for i, v in d.get(str(int(u)), {}).items()))[:K]
        for j, (neg, i) in enumerate(pairs):
            items[row, j] = i
            scores[row, j] = -neg
    return items, scores


def run(opts: Options) -> dict[str, Any]:
    import ranx

    from reco_core.fusion import fuse
    from reco_core.live import LiveSession

    s = ml100k()
    session = LiveSession({n: fitted(n) for n in MEMBERS}, s.split, s.ctx, top_n=TOP_N)
    users = session.users
    rankings = [session.member_ranking(n) for n in MEMBERS]
    n_items = s.split.train.n_items
    runs = {True: _runs(rankings, True), False: _runs(rankings, False)}
    blocks = _blocks(rankings, n_items)
    m = len(MEMBERS)
    weights = np.full(m, 1.0 / m)
    repeats = 1 if opts.quick else 5
    out: dict[str, Any] = {"users": len(users), "runs": list(MEMBERS), "top_n": TOP_N, "k": K, "methods": {}}
    rows = []
    for method, (ranx_method, ranx_norm, ours_norm) in METHODS.items():
        params = {"weights": list(weights)} if ranx_method == "wsum" else ({"k": 60} if ranx_method == "rrf" else {})
        scores_in = blocks if method == "wsum" else None
        ranx_runs = runs[ranx_norm is None]  # rank-only methods get position scores (see _runs)
        last: dict[str, Any] = {}

        def ours(
            method: str = method, scores_in: Any = scores_in, ours_norm: str = ours_norm, last: dict = last
        ) -> None:
            last["ours"] = fuse(scores_in, rankings, weights, method, ours_norm, K, n_items, users, 60)

        def theirs(
            ranx_method: str = ranx_method,
            ranx_norm: str | None = ranx_norm,
            params: dict = params,
            r: Any = ranx_runs,
            last: dict = last,
        ) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numba type-safety warnings inside ranx
                last["ranx"] = ranx.fuse(r, norm=ranx_norm, method=ranx_method, params=params)

        st = side_by_side({"ours": ours, "ranx": theirs}, repeats=repeats)
        mine = last["ours"]
        r_items, r_scores = _ranx_top(last["ranx"], users)
        scale = 1.0 if method == "wsum" else float(m)  # ours divides the weights by their sum
        ours_scores = mine.ranking.score.astype(np.float64) * scale
        finite = np.isfinite(ours_scores) & np.isfinite(r_scores)
        identical = float(np.mean((mine.ranking.item_idx == r_items).all(axis=1)))
        diff = float(np.max(np.abs(ours_scores[finite] - r_scores[finite]))) if finite.any() else float("nan")
        ratio = st["ranx"].median / st["ours"].median
        out["methods"][method] = {
            "ranx_method": ranx_method,
            "ranx_norm": ranx_norm,
            "ours": st["ours"].to_dict(),
            "ranx": st["ranx"].to_dict(),
            "ratio": ratio,
            "identical_top10_share": identical,
            "max_abs_score_diff": diff,
            "score_scale": scale,
        }
        rows.append(
            [
                method,
                fmt_s(st["ours"].median),
                fmt_s(st["ranx"].median),
                fmt_x(ratio),
                f"{identical:.1%}",
                f"{diff:.1e}",
            ]
        )
    opts.log(
        table(
            f"Fusing 3 runs of top-{TOP_N} for {len(users)} users into a top-{K} (median of {repeats}; "
            "ratio = ranx / ours)",
            ["method", "ours", "ranx", "ratio", "same top-10", "max |score diff|"],
            rows,
        )
    )
    return out
