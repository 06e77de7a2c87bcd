"""Section 3: the same top-10 rankings evaluated by our metrics, by ranx and by Microsoft Recommenders.

The rankings are the dashboard's default fusion on MovieLens-100K (als + itemknn + text, weights 0.4 /
0.4 / 0.2, wsum + minmax), top-10 for every evaluated user. Each peer gets the lists in its own native
format, built before timing (ranx: Qrels and Run objects; Recommenders: pandas frames); the scores
handed to the peers are 10, 9, ..., 1 by position, so no peer can reorder ties differently. Timed:

- accuracy (precision, recall, NDCG, MAP @10): ours ``metrics.evaluate`` with those four metrics;
  ranx ``evaluate`` (numba, JIT-compiled in the warm-up, its default threads; ``save_results_in_run=False``);
  Recommenders ``precision_at_k``, ``recall_at_k``, ``ndcg_at_k``, ``map_at_k``.
- beyond accuracy (Recommenders only: ranx has none): ours coverage, novelty and ild_text against
  Recommenders ``catalog_coverage``, ``novelty`` and ``diversity`` with ``item_sim_measure=
  "item_feature_vector"`` on our text vectors (the definition that coincides with ild_text). Its
  feature frame holds only the recommended items (the pairwise cross join of the whole catalogue
  takes about ten times longer), which favours Recommenders.

Recommenders' functions are memoised on their arguments (``lru_cache_df``); every timed repeat clears
those caches first, so each repeat does the full work. Under pandas 3, ``novelty`` and ``diversity``
end with ``Series[0]``, which pandas 3 no longer reads as a position (KeyError): we call the same
intermediate functions (``historical_item_novelty``, ``user_diversity``) and finish with the same
arithmetic (``_rec_novelty``, ``_rec_diversity`` below).

Definitions that differ (the agreement table compares after converting, and says so):
- map: ranx's AP divides by |T| (all held-out items), ours and Recommenders' ``map_at_k`` by min(|T|, k).
- catalog_coverage: Recommenders divides by the items present in training, ours by the catalogue.
- novelty: Recommenders pools all recommended slots and drops items never seen in training from the
  sum (keeping them in the count); ours averages per user and counts an unseen item as one interaction.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from bench.common import (
    Options,
    Stats,
    bench_deps_on_path,
    fitted,
    fmt_s,
    fmt_x,
    measure,
    ml100k,
    side_by_side,
    table,
)

K = 10
ACCURACY = ("precision", "recall", "ndcg", "map")
BEYOND = ("coverage", "novelty", "ild_text")
MEMBERS = ("als", "itemknn", "text")
WEIGHTS = (0.4, 0.4, 0.2)


def fused_ranking() -> tuple[Any, Any]:
    """The dashboard default's top-10 for every evaluated user, and its full evaluation."""
    from reco_core.live import LiveSession

    s = ml100k()
    session = LiveSession({n: fitted(n) for n in MEMBERS}, s.split, s.ctx)
    result = session.update(list(WEIGHTS), "wsum", "minmax", k=K)
    return result.ranking, result.evaluation


def _recommenders() -> Any:
    """Recommenders' python evaluation module from .bench-deps, or None (with the reason logged)."""
    if not bench_deps_on_path():
        return None
    try:
        from recommenders.evaluation import python_evaluation
    except ImportError:
        return None
    return python_evaluation


def _clear_caches(pe: Any) -> None:
    for value in vars(pe).values():
        clear = getattr(value, "cache_clear", None)
        if callable(clear):
            clear()


def _rec_novelty(pe: Any, train_df: pd.DataFrame, reco_df: pd.DataFrame) -> float:
    """recommenders.evaluation.python_evaluation.novelty, its final ``[0]`` read with ``.iloc[0]``."""
    item_novelty = pe.historical_item_novelty(train_df, reco_df, "userID", "itemID")
    counts = pd.DataFrame({"count": reco_df.groupby(["itemID"]).size()}).reset_index()
    merged = counts.merge(item_novelty, on="itemID")
    merged["product"] = merged["count"] * merged["item_novelty"]
    return float(merged.agg({"product": "sum"}).iloc[0] / reco_df.shape[0])


def _rec_diversity(pe: Any, train_df: pd.DataFrame, reco_df: pd.DataFrame, features: pd.DataFrame) -> float:
    """recommenders ``diversity``: mean over users of ``user_diversity`` (1 - mean pairwise cosine)."""
    per_user = pe.user_diversity(train_df, reco_df, item_feature_df=features, item_sim_measure="item_feature_vector")
    return float(per_user["user_diversity"].mean())


def _frames(ranking: Any, split: Any) -> dict[str, pd.DataFrame]:
    users = np.repeat(ranking.user_idx.astype(np.int64), K)
    items = ranking.item_idx[:, :K].ravel().astype(np.int64)
    keep = items >= 0
    pred = pd.DataFrame(
        {
            "userID": users[keep],
            "itemID": items[keep],
            "prediction": np.tile(np.arange(K, 0, -1, dtype=np.float64), len(ranking.user_idx))[keep],
        }
    )
    test = split.test.matrix.tocoo()
    true = pd.DataFrame({"userID": test.row.astype(np.int64), "itemID": test.col.astype(np.int64), "rating": 1.0})
    true = true[true["userID"].isin(ranking.user_idx)]
    train = split.train.matrix.tocoo()
    train_df = pd.DataFrame({"userID": train.row.astype(np.int64), "itemID": train.col.astype(np.int64)})
    return {"pred": pred, "true": true, "train": train_df, "reco": pred[["userID", "itemID"]]}


def _ranx_objects(ranking: Any, split: Any) -> tuple[Any, Any]:
    from ranx import Qrels, Run

    test = split.test.matrix
    qrels, run = {}, {}
    for row, u in enumerate(ranking.user_idx):
        u = int(u)
        qrels[str(u)] = {str(i): 1 for i in test[u].indices}
        run[str(u)] = {str(int(i)): float(K - j) for j, i in enumerate(ranking.item_idx[row, :K]) if i >= 0}
    return Qrels(qrels), Run(run)


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def run(opts: Options) -> dict[str, Any]:
    import ranx

    from reco_core.metrics import evaluate

    s = ml100k()
    ranking, full_eval = fused_ranking()
    test = s.split.test
    n_rel = np.diff(test.matrix.indptr)[ranking.user_idx].astype(np.float64)
    repeats = 3 if opts.quick else 9
    out: dict[str, Any] = {"users": len(ranking.user_idx), "k": K, "repeats": repeats}

    # -- accuracy: ours vs ranx (vs Recommenders below) -------------------------------------------
    qrels, ranx_run = _ranx_objects(ranking, s.split)
    ranx_metrics = [f"{m}@{K}" for m in ACCURACY]

    def ours_acc() -> Any:
        return evaluate(ranking, test, s.ctx, ks=(K,), metrics=ACCURACY)

    def ranx_acc() -> Any:
        return ranx.evaluate(qrels, ranx_run, ranx_metrics, return_mean=False, save_results_in_run=False)

    build = measure(lambda: _ranx_objects(ranking, s.split), repeats=max(1, repeats // 3), warmup=0)
    pe = _recommenders()
    frames = _frames(ranking, s.split)
    fns = {"ours": ours_acc, "ranx": ranx_acc}
    if pe is not None:

        def rec_acc() -> list[float]:
            _clear_caches(pe)
            f, t = frames["pred"], frames["true"]
            return [
                pe.precision_at_k(t, f, k=K),
                pe.recall_at_k(t, f, k=K),
                pe.ndcg_at_k(t, f, k=K),
                pe.map_at_k(t, f, k=K),
            ]

        fns["recommenders"] = rec_acc
    acc = side_by_side(fns, repeats=repeats)
    ours_ev = ours_acc()
    ranx_vals = ranx_acc()
    order = np.array([int(q) for q in ranx_run.get_query_ids()])
    if not np.array_equal(order, ranking.user_idx):
        pos = {u: i for i, u in enumerate(order)}
        ranx_vals = {m: v[[pos[int(u)] for u in ranking.user_idx]] for m, v in ranx_vals.items()}
    agreement: dict[str, Any] = {}
    for m in ACCURACY:
        ours_u = ours_ev.per_user[f"{m}@{K}"]
        ranx_u = ranx_vals[f"{m}@{K}"]
        if m == "map":  # ranx divides the AP sum by |T|, we by min(|T|, k)
            ours_u = ours_u * np.minimum(n_rel, K) / n_rel
        agreement[m] = {
            "ours": float(ours_ev.value(f"{m}@{K}")),
            "ranx": float(np.mean(ranx_vals[f"{m}@{K}"])),
            "ranx_max_abs_diff_per_user": _max_abs(ours_u, ranx_u),
            "ranx_note": "ranx AP / |T|; ours rescaled by min(|T|,k)/|T| to compare" if m == "map" else "",
        }
    if pe is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec_vals = fns["recommenders"]()
        for m, v in zip(ACCURACY, rec_vals, strict=True):
            agreement[m]["recommenders"] = float(v)
            agreement[m]["recommenders_abs_diff"] = abs(float(v) - agreement[m]["ours"])
    out["accuracy"] = {
        "metrics": list(ACCURACY),
        "times": {k: v.to_dict() for k, v in acc.items()},
        "ranx_build_qrels_run": build.to_dict(),
        "ratio_ranx": acc["ranx"].median / acc["ours"].median,
        "ratio_ranx_with_build": (acc["ranx"].median + build.median) / acc["ours"].median,
        "ratio_recommenders": acc["recommenders"].median / acc["ours"].median if "recommenders" in acc else None,
    }

    # -- beyond accuracy: ours vs Recommenders ---------------------------------------------------
    beyond: dict[str, Any] = {"metrics": list(BEYOND)}
    if pe is not None:
        reco_items = np.unique(frames["reco"]["itemID"].to_numpy())
        features = pd.DataFrame(
            {"itemID": reco_items, "features": list(s.ctx.item_vectors[reco_items].astype(np.float64))}
        )

        def ours_beyond() -> Any:
            return evaluate(ranking, test, s.ctx, ks=(K,), metrics=BEYOND)

        def rec_beyond() -> list[float]:
            _clear_caches(pe)
            return [
                float(pe.catalog_coverage(frames["train"], frames["reco"])),
                _rec_novelty(pe, frames["train"], frames["reco"]),
                _rec_diversity(pe, frames["train"], frames["reco"], features),
            ]

        def ours_all() -> Any:
            return evaluate(ranking, test, s.ctx, ks=(K,), metrics=ACCURACY + BEYOND)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 3 chained-assignment warnings inside Recommenders
            b = side_by_side({"ours": ours_beyond, "recommenders": rec_beyond}, repeats=1 if opts.quick else 3)
            rec_b = rec_beyond()
        ours_b = ours_beyond()
        ours_all_stats = measure(ours_all, repeats=repeats)
        pop = s.ctx.item_popularity
        n_train_items = int((pop > 0).sum())
        unseen_slots = int((pop[frames["reco"]["itemID"].to_numpy()] == 0).sum())
        cov = ours_b.value(f"coverage@{K}")
        beyond.update(
            {
                "times": {k: v.to_dict() for k, v in b.items()},
                "ratio_recommenders": b["recommenders"].median / b["ours"].median,
                "ours_all_seven": ours_all_stats.to_dict(),
                "recommenders_all_seven_s": acc["recommenders"].median + b["recommenders"].median,
                "ratio_recommenders_all_seven": (acc["recommenders"].median + b["recommenders"].median)
                / ours_all_stats.median,
                "agreement": {
                    "coverage": {
                        "ours": cov,
                        "ours_over_training_items": cov * s.ctx.n_items / n_train_items,
                        "recommenders": rec_b[0],
                        "note": f"Recommenders divides by the {n_train_items} items seen in training, ours by "
                        f"the {s.ctx.n_items}-item catalogue; compare ours_over_training_items",
                    },
                    "novelty": {
                        "ours": ours_b.value(f"novelty@{K}"),
                        "recommenders": rec_b[1],
                        "recommended_slots_unseen_in_training": unseen_slots,
                        "note": "equal when no recommended item is unseen in training and every list is full "
                        "(then the pooled mean equals the mean of per-user means)",
                    },
                    "diversity": {
                        "ours_ild_text": ours_b.value(f"ild_text@{K}"),
                        "recommenders": rec_b[2],
                        "abs_diff": abs(ours_b.value(f"ild_text@{K}") - rec_b[2]),
                        "note": "1 - mean pairwise cosine of the text vectors; ours in float32, theirs float64",
                    },
                },
            }
        )
    else:
        beyond["skipped"] = "Recommenders is not installed in .bench-deps: run `make bench` (it installs it)"
    out["beyond"] = beyond
    out["accuracy"]["agreement"] = agreement
    out["full_evaluation_ndcg"] = float(full_eval.value(f"ndcg@{K}"))
    _print(opts, out, acc, beyond)
    return out


def _print(opts: Options, out: dict[str, Any], acc: dict[str, Stats], beyond: dict[str, Any]) -> None:
    a = out["accuracy"]
    rows = [["ours (reco_core.metrics)", fmt_s(acc["ours"].median), fmt_s(acc["ours"].cpu_median), "1.0x"]]
    rows.append(["ranx", fmt_s(acc["ranx"].median), fmt_s(acc["ranx"].cpu_median), fmt_x(a["ratio_ranx"])])
    rows.append(
        [
            "ranx incl. building Qrels/Run",
            fmt_s(acc["ranx"].median + a["ranx_build_qrels_run"]["median_s"]),
            "-",
            fmt_x(a["ratio_ranx_with_build"]),
        ]
    )
    if "recommenders" in acc:
        rows.append(
            [
                "Recommenders",
                fmt_s(acc["recommenders"].median),
                fmt_s(acc["recommenders"].cpu_median),
                fmt_x(a["ratio_recommenders"]),
            ]
        )
    opts.log(
        table(
            f"Precision, recall, NDCG, MAP @{K} for {out['users']} users (median of {out['repeats']}; "
            "ratio = peer time / ours)",
            ["code", "wall", "CPU", "ratio"],
            rows,
        )
    )
    if "times" in beyond:
        t = beyond["times"]
        opts.log(
            table(
                "Coverage, novelty, diversity (ild_text) @10",
                ["code", "wall", "ratio"],
                [
                    ["ours", fmt_s(t["ours"]["median_s"]), "1.0x"],
                    ["Recommenders", fmt_s(t["recommenders"]["median_s"]), fmt_x(beyond["ratio_recommenders"])],
                ],
            )
        )
        opts.log(
            f"All seven metrics: ours {fmt_s(beyond['ours_all_seven']['median_s'])}, Recommenders "
            f"{fmt_s(beyond['recommenders_all_seven_s'])} ({fmt_x(beyond['ratio_recommenders_all_seven'])})"
        )
    else:
        opts.log(beyond.get("skipped", ""))
    agree = a["agreement"]
    rows = []
    for m, v in agree.items():
        rows.append(
            [
                m,
                f"{v['ours']:.6f}",
                f"{v['ranx']:.6f}",
                f"{v['ranx_max_abs_diff_per_user']:.1e}",
                f"{v['recommenders']:.6f}" if "recommenders" in v else "-",
            ]
        )
    if "agreement" in beyond:
        b = beyond["agreement"]
        rows.append(
            [
                "coverage (/train items)",
                f"{b['coverage']['ours_over_training_items']:.6f}",
                "-",
                "-",
                f"{b['coverage']['recommenders']:.6f}",
            ]
        )
        rows.append(["novelty", f"{b['novelty']['ours']:.6f}", "-", "-", f"{b['novelty']['recommenders']:.6f}"])
        rows.append(
            [
                "diversity (ild_text)",
                f"{b['diversity']['ours_ild_text']:.6f}",
                "-",
                "-",
                f"{b['diversity']['recommenders']:.6f}",
            ]
        )
    opts.log(
        table(
            "Agreement (map: ranx per-user values compared after rescaling to its |T| denominator)",
            ["metric", "ours", "ranx", "max |diff| per user", "Recommenders"],
            rows,
        )
    )
