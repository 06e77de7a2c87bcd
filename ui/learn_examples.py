"""Worked examples for the Learn page, as pure numpy/pandas functions (no streamlit, tested directly).

Each function takes plain arrays from the current lab (one user's member scores, one ranked list, the
fused ranking) and returns the intermediate numbers a person can check by hand, in a frame ready to show.
The conventions are the engine's own, so the example's final numbers equal what the Fusion Lab shows:

- Member lists come from ``reco_core.ranking.top_k`` (training items excluded, NaN never ranked, ties
  broken by the lower item index).
- RRF: ``score(i) = sum_m w_m / (k_rrf + rank_m(i))`` with ``rank_m(i)`` the 1-based position of item i in
  member m's top-``depth`` list; an item outside that list gets nothing from m (Cormack et al. 2009, with
  weights). Weights are divided by their sum first, as ``reco_core.fusion`` does. Ties in the fused score
  go to the lower item index, like every ranking here.
- NDCG@k: ``DCG = sum_i rel_i / log2(i+1)`` over the first k positions, ``IDCG`` the same for
  ``min(|T|, k)`` hits at the top (DESIGN.md section 5).
- Conventions that libraries disagree on are computed both ways so the page can show how far apart they
  are: precision over k (ours) or over ``min(k, |T|)`` (the "R-precision-like" variant some toolkits
  use); novelty from training popularity (ours) or from how often the recommendations themselves list
  each item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reco_core.data import Interactions
from reco_core.errors import ConfigError
from reco_core.experiment import evaluate_scorer
from reco_core.metrics import EvalContext, hit_matrix
from reco_core.models import Scorer
from reco_core.ranking import Ranking, top_k
from reco_core.splitting import Split

EMPTY_SLOT = "(empty slot)"

# LaTeX for each fusion method and normaliser (keys as in reco_core.fusion's registries); the Learn page
# falls back to the registry's own description for a method added later without a formula here.
METHOD_FORMULAS: dict[str, str] = {
    "wsum": r"s(u,i) = \sum_m w_m \, \mathrm{norm}\big(s_m(u,i)\big)",
    "vote": r"v(u,i) = \sum_m w_m \, \mathbb{1}\left[i \in L_m^{N}(u)\right]",
    "rrf": r"s(u,i) = \sum_{m:\, i \in L_m^{N}(u)} \frac{w_m}{k_{\mathrm{rrf}} + \mathrm{rank}_m(u,i)}",
    "borda": r"s(u,i) = \sum_m w_m \, p_m(i),\quad p_m(i) = \begin{cases} |C| - \mathrm{rank}_m(u,i) + 1 &"
    r" i \in L_m^{N}(u) \\ \left(|C| - |L_m^{N}(u)| + 1\right)/2 & \text{otherwise} \end{cases}",
    "combsum": r"s(u,i) = \sum_{m:\, i \in L_m^{N}(u)} w_m \, \mathrm{norm}\big(s_m(u,i)\big)",
    "combmnz": r"s(u,i) = \big|\{m : i \in L_m^{N}(u)\}\big| \cdot \sum_{m:\, i \in L_m^{N}(u)} w_m \,"
    r" \mathrm{norm}\big(s_m(u,i)\big)",
    "interleave": r"\text{slot } j \text{ goes to the member furthest below its share: }"
    r" \arg\max_m \big(j\, w_m - \mathrm{slots}_m(j-1)\big)",
    "team_draft": r"\text{as interleaving; members tied for a slot are ordered by a seeded coin flip}",
}
NORMALISER_FORMULAS: dict[str, str] = {
    "none": r"\mathrm{norm}(s) = s",
    "minmax": r"\mathrm{norm}(s_i) = \frac{s_i - \min_j s_j}{\max_j s_j - \min_j s_j}",
    "zscore": r"\mathrm{norm}(s_i) = \frac{s_i - \mu}{\sigma}",
    "rank": r"\mathrm{norm}(s_i) = \frac{\mathrm{rank}(s_i)}{n} \quad (\text{best} = 1)",
}


def _labels(item_labels: Sequence[str] | None, idx: np.ndarray) -> list[str]:
    if item_labels is None:
        return [EMPTY_SLOT if i < 0 else f"item #{i}" for i in idx]
    return [EMPTY_SLOT if i < 0 else str(item_labels[i]) for i in idx]


def member_list(scores: np.ndarray, exclude: Sequence[int] | np.ndarray, depth: int) -> np.ndarray:
    """One member's top-``depth`` items (int64, padding -1 dropped) for one user, ranked by ``top_k``."""
    row = np.asarray(scores, dtype=np.float32).reshape(1, -1)
    n_items = row.shape[1]
    excl = np.unique(np.asarray(exclude, dtype=np.int64))
    if excl.size and (excl.min() < 0 or excl.max() >= n_items):
        raise ConfigError(f"excluded item indices must be in 0..{n_items - 1}")
    mask = sp.csr_matrix((np.ones(excl.size, np.float32), (np.zeros(excl.size, np.int64), excl)), shape=(1, n_items))
    ranked = top_k(row, min(depth, n_items), np.zeros(1, np.int32), exclude=mask).item_idx[0]
    return ranked[ranked >= 0].astype(np.int64)


@dataclass(frozen=True)
class RRFExample:
    """Reciprocal rank fusion for one user, step by step.

    ``table`` has one row per candidate item, in final order, with columns ``final rank``, ``item``,
    ``item_idx``, then per member ``rank · m`` (missing when not in m's list), ``1/(k+rank) · m``,
    ``weighted · m``, and ``fused score``.
    """

    table: pd.DataFrame
    members: tuple[str, ...]
    weights: dict[str, float]
    rrf_k: float
    depth: int
    fused_top: np.ndarray  # the fused top-n item indices (what the Fusion Lab lists for this user)


def rrf_example(
    member_scores: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    exclude: Sequence[int] | np.ndarray,
    rrf_k: float = 60,
    depth: int = 100,
    show: int = 10,
    per_member: int = 3,
    item_labels: Sequence[str] | None = None,
) -> RRFExample:
    """RRF of the members' lists for one user.

    Candidates shown: the fused top ``show`` plus each member's own top ``per_member`` (so a member's
    favourite that the fusion pushed down is visible too). ``weights`` are divided by their sum (the order
    does not depend on their scale); members with weight 0 are still listed, contributing 0.
    """
    if not member_scores:
        raise ConfigError("no members to fuse: pick at least one model in the sidebar")
    if not np.isfinite(rrf_k) or rrf_k < 0:
        raise ConfigError(f"rrf_k={rrf_k!r} is not valid: give a number >= 0 (60 is the usual choice)")
    if depth < 1 or show < 1:
        raise ConfigError(f"depth={depth} and show={show} must both be at least 1")
    members = tuple(member_scores)
    w = {}
    for m in members:
        v = float(weights.get(m, 0.0))
        if not np.isfinite(v) or v < 0:
            raise ConfigError(f"weight of {m} is {v!r}: give a finite number >= 0")
        w[m] = v
    total = sum(w.values())
    if total <= 0:
        raise ConfigError("all weights are zero: give at least one member a positive weight")
    w = {m: v / total for m, v in w.items()}
    n_items = {np.asarray(s).reshape(-1).shape[0] for s in member_scores.values()}
    if len(n_items) != 1:
        raise ConfigError(f"members score different catalogue sizes {sorted(n_items)}: fit them on the same split")
    n = n_items.pop()

    ranks = {}
    lists = {}
    fused = np.zeros(n, dtype=np.float64)
    for m in members:
        lst = member_list(member_scores[m], exclude, depth)
        lists[m] = lst
        r = np.zeros(n, dtype=np.int64)  # 0 = not in m's list
        r[lst] = np.arange(1, len(lst) + 1)
        ranks[m] = r
        fused[lst] += w[m] / (rrf_k + r[lst])

    in_any = fused > 0
    # Final order: fused score descending, ties by lower item index (as ranking.top_k).
    order = np.lexsort((np.arange(n), -fused))
    order = order[in_any[order]]
    final_rank = np.zeros(n, dtype=np.int64)
    final_rank[order] = np.arange(1, len(order) + 1)

    cand = set(order[:show].tolist())
    for m in members:
        if w[m] > 0:
            cand.update(lists[m][:per_member].tolist())
    cand_idx = np.array(sorted(cand, key=lambda i: final_rank[i]), dtype=np.int64)

    table: dict[str, object] = {
        "final rank": final_rank[cand_idx],
        "item": _labels(item_labels, cand_idx),
        "item_idx": cand_idx,
    }
    for m in members:
        r = ranks[m][cand_idx]
        table[f"rank · {m}"] = pd.Series(r, dtype="Int64").mask(r == 0)  # <NA>: not in the list
        recip = np.where(r > 0, 1.0 / (rrf_k + np.maximum(r, 1)), 0.0)
        table[f"1/(k+rank) · {m}"] = recip
        table[f"weighted · {m}"] = w[m] * recip
    table["fused score"] = fused[cand_idx]
    return RRFExample(pd.DataFrame(table), members, w, float(rrf_k), int(depth), order[:show].astype(np.int64))


@dataclass(frozen=True)
class NDCGExample:
    """NDCG@k for one list: ``table`` has position i, item, rel_i, discount 1/log2(i+1), gain rel_i * discount."""

    table: pd.DataFrame
    k: int
    n_relevant: int
    ideal_hits: int
    dcg: float
    idcg: float

    @property
    def ndcg(self) -> float:
        return self.dcg / self.idcg if self.idcg > 0 else 0.0


def ndcg_example(
    items: Sequence[int] | np.ndarray,
    relevant: Iterable[int],
    k: int,
    item_labels: Sequence[str] | None = None,
) -> NDCGExample:
    """The NDCG of the first ``k`` entries of ``items`` (-1 = empty slot, never relevant) against ``relevant``."""
    if int(k) != k or k < 1:
        raise ConfigError(f"k={k!r} is not valid: give a whole number of at least 1")
    rel_set = {int(i) for i in relevant}
    if not rel_set:
        raise ConfigError("this user has no held-out items, so NDCG is undefined: pick a user with test items")
    lst = np.asarray(items, dtype=np.int64).reshape(-1)[:k]
    lst = np.concatenate([lst, np.full(k - len(lst), -1, dtype=np.int64)])
    pos = np.arange(1, k + 1)
    rel = np.array([1 if (i >= 0 and int(i) in rel_set) else 0 for i in lst], dtype=np.int64)
    discount = 1.0 / np.log2(pos + 1)
    gain = rel * discount
    ideal = min(len(rel_set), k)
    table = pd.DataFrame(
        {
            "position i": pos,
            "item": _labels(item_labels, lst),
            "rel_i": rel,
            "discount 1/log2(i+1)": discount,
            "gain rel_i/log2(i+1)": gain,
        }
    )
    return NDCGExample(table, int(k), len(rel_set), ideal, float(gain.sum()), float(discount[:ideal].sum()))


# -- conventions that libraries disagree on ------------------------------------------------------------------


PRECISION_CONVENTIONS = ("over k", "over min(k, |T|)")
NOVELTY_CONVENTIONS = ("training popularity", "recommendation popularity")


def precision_conventions(ranking: Ranking, test: Interactions, k: int) -> dict[str, np.ndarray]:
    """Per-user precision@k two ways: hits / k (ours, DESIGN.md section 5) and hits / min(k, |T|).

    The second never penalises a user with fewer than k held-out items for the slots no list could
    fill, so it is always >= the first, and equal for users with at least k test items.
    """
    if k < 1 or k > ranking.k:
        raise ConfigError(f"k={k} is not valid for lists of length {ranking.k}: choose 1..{ranking.k}")
    hits = hit_matrix(ranking, test)[:, :k].sum(axis=1).astype(np.float64)
    n_rel = np.diff(test.matrix.indptr)[np.asarray(ranking.user_idx, dtype=np.int64)].astype(np.float64)
    if (n_rel == 0).any():
        raise ConfigError("the ranking includes users without test items: pass only the split's evaluated users")
    return {PRECISION_CONVENTIONS[0]: hits / k, PRECISION_CONVENTIONS[1]: hits / np.minimum(k, n_rel)}


def novelty_conventions(ranking: Ranking, train_counts: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user novelty@k (mean self-information in bits of the listed items) with two popularity models.

    - training popularity (ours): ``p_i = max(c_i, 1) / sum_j c_j`` with ``c`` the training counts.
    - recommendation popularity: ``p_i = r_i / sum_j r_j`` with ``r_i`` how many of the k-lists contain i,
      so "novel" means rare among the recommendations rather than rare in the data.

    Empty slots are ignored; a list with no items has novelty 0 under both.
    """
    if k < 1 or k > ranking.k:
        raise ConfigError(f"k={k} is not valid for lists of length {ranking.k}: choose 1..{ranking.k}")
    items = np.asarray(ranking.item_idx, dtype=np.int64)[:, :k]
    counts = np.asarray(train_counts, dtype=np.float64)
    valid = items >= 0
    safe = np.where(valid, items, 0)
    n_valid = valid.sum(axis=1)

    def mean_info(p: np.ndarray) -> np.ndarray:
        info = np.where(valid, -np.log2(p[safe]), 0.0)
        return np.divide(info.sum(axis=1), n_valid, out=np.zeros(len(items)), where=n_valid > 0)

    p_train = np.maximum(counts, 1.0) / max(counts.sum(), 1.0)
    rec = np.bincount(items[valid], minlength=len(counts)).astype(np.float64)
    p_rec = rec / max(rec.sum(), 1.0)
    with np.errstate(divide="ignore"):  # p_rec is 0 only for items in no list, which are never looked up
        return {NOVELTY_CONVENTIONS[0]: mean_info(p_train), NOVELTY_CONVENTIONS[1]: mean_info(p_rec)}


def conventions_table(
    rankings: Mapping[str, Ranking], test: Interactions, train_counts: np.ndarray, k: int
) -> pd.DataFrame:
    """One row per list source (the fusion, each member): both conventions' means and how far they differ.

    Columns: ``precision (over k)``, ``precision (over min(k, |T|))``, ``precision change %``,
    ``novelty (training popularity)``, ``novelty (recommendation popularity)``, ``novelty change %``;
    a change is relative to our convention (the first of each pair).
    """
    rows = []
    for name, ranking in rankings.items():
        p = precision_conventions(ranking, test, k)
        nv = novelty_conventions(ranking, train_counts, k)
        p0, p1 = (float(p[c].mean()) for c in PRECISION_CONVENTIONS)
        n0, n1 = (float(nv[c].mean()) for c in NOVELTY_CONVENTIONS)
        rows.append(
            {
                "list": name,
                f"precision ({PRECISION_CONVENTIONS[0]})": p0,
                f"precision ({PRECISION_CONVENTIONS[1]})": p1,
                "precision change %": _change(p0, p1),
                f"novelty ({NOVELTY_CONVENTIONS[0]})": n0,
                f"novelty ({NOVELTY_CONVENTIONS[1]})": n1,
                "novelty change %": _change(n0, n1),
            }
        )
    return pd.DataFrame(rows).set_index("list")


# Item-kNN's two neighbour-pruning rules (``reco_core.models.knn.PRUNE_RULES``), in words.
PRUNE_WORDS = {
    "target": "K per candidate item (ours, the default)",
    "source": "K per liked item, counting itself (implicit's CosineRecommender)",
}


def pruning_table(models: Mapping[str, Scorer], split: Split, ctx: EvalContext, k: int) -> pd.DataFrame:
    """One row per pruning rule (``models``: rule -> fitted item-kNN): accuracy and coverage at ``k`` on test.

    The same cosines, only which K neighbours survive differs, so the gap is the convention alone.
    """
    rows = []
    for rule, model in models.items():
        ev = evaluate_scorer(model, split, ctx, ks=(k,))
        rows.append(
            {
                "neighbours kept": PRUNE_WORDS.get(rule, rule),
                f"NDCG@{k}": ev.value(f"ndcg@{k}"),
                f"precision@{k}": ev.value(f"precision@{k}"),
                f"recall@{k}": ev.value(f"recall@{k}"),
                f"coverage@{k}": ev.value(f"coverage@{k}"),
            }
        )
    return pd.DataFrame(rows).set_index("neighbours kept")


def _change(base: float, other: float) -> float:
    return float("nan") if base == 0 else 100.0 * (other - base) / abs(base)


def pick_example_user(n_test: np.ndarray, n_train: np.ndarray, seed: int = 0) -> int:
    """A position (into the evaluated users) of a typical user for the worked examples.

    Prefers a user with between 3 and 20 held-out items and a median-sized history, so the NDCG example
    has both hits and misses to show; deterministic for a seed.
    """
    n_test = np.asarray(n_test)
    n_train = np.asarray(n_train)
    if len(n_test) == 0:
        raise ConfigError("no evaluated users: the split has no user with held-out items")
    ok = np.flatnonzero((n_test >= 3) & (n_test <= 20))
    pool = ok if ok.size else np.arange(len(n_test))
    med = np.median(n_train[pool])
    dist = np.abs(n_train[pool] - med)
    best = pool[dist == dist.min()]
    return int(np.random.default_rng(seed).choice(best))
