"""Re-rankers after fusion: each user's fused top-N becomes a top-k that trades some relevance for
diversity (MMR), for calibration to the user's history (Steck 2018), or for less popularity bias.

Every re-ranker works on the fused list only (``Ranking`` with N >= k columns), so it never brings in
an item fusion did not propose, and ``lam = 0`` returns the fused head unchanged. Relevance is the
fused score min-max normalised per user over the user's valid candidates (1 for the best, 0 for the
worst; 1 for all when the scores are equal), so one lambda means the same trade for every method.
Ties are broken by fused position (earlier wins), which is itself broken by item index (DESIGN §10).

- ``mmr`` (Carbonell & Goldstein 1998): pick greedily
  ``argmax_c (1 - lam) rel(c) - lam max_{s in S} sim(c, s)``; sim is the genre Jaccard of
  ``ild_genre`` (two items without genres count as identical, as there) or the cosine of the text
  embeddings of ``ild_text``. The first slot is the most relevant item.
- ``calibrated`` (Steck 2018, RecSys, eq. 5): pick greedily
  ``argmax_c (1 - lam) sum_{i in S+c} rel(i) - lam KL(p || q~(S+c))`` where p is the genre distribution
  of the user's training history, q that of the list, each item spreading weight 1 evenly over its
  genres, and ``q~ = (1 - alpha) q + alpha p`` with alpha = 0.01 (Steck's smoothing).
- ``popularity``: sort by ``(1 - lam) rel(c) - lam pop(c)`` with
  ``pop(c) = log(1 + count_c) / log(1 + max count)`` over training counts (a popularity penalty in the
  spirit of Abdollahpouri et al. 2017's long-tail re-ranking, as one sortable score).

``lam`` here is the weight of the beyond-accuracy goal in all three (MMR papers often write the
relevance weight instead: ours is ``1 - lambda`` of theirs). Everything is vectorised over users, one
step per output slot, so 943 users x 50 candidates x k = 10 stays within the live loop's budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reco_core.calibration import CALIBRATION_ALPHA, genre_distribution, history_genre_distribution
from reco_core.errors import ConfigError
from reco_core.eval_context import EvalContext
from reco_core.ranking import Ranking

SIMILARITIES = ("genre", "text")
"""MMR's item similarities: genre Jaccard (as ``ild_genre``) or text-embedding cosine (as ``ild_text``)."""


@dataclass(frozen=True)
class RerankInputs:
    """What a re-ranker may read: the catalogue context and the users' training histories (CSR)."""

    ctx: EvalContext
    history: sp.csr_matrix | None = None
    similarity: str = "genre"


@dataclass(frozen=True)
class Reranker:
    name: str
    label: str
    help: str
    run: Callable[[np.ndarray, np.ndarray, np.ndarray, int, float, RerankInputs], np.ndarray]


# ---------------------------------------------------------------------------------------------- shared


def relevance(score: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-user min-max of the fused scores over valid candidates: [n, N] in [0, 1], -inf for padding."""
    s = np.where(valid, score.astype(np.float64), np.nan)
    with np.errstate(all="ignore"):
        lo = np.nanmin(np.where(valid.any(axis=1, keepdims=True), s, 0.0), axis=1, keepdims=True)
        hi = np.nanmax(np.where(valid.any(axis=1, keepdims=True), s, 0.0), axis=1, keepdims=True)
        span = hi - lo
        rel = np.where(span > 0, (s - lo) / np.where(span > 0, span, 1.0), 1.0)
    return np.where(valid, rel, -np.inf)


def _pick(objective: np.ndarray, free: np.ndarray) -> np.ndarray:
    """First position of the best free candidate per user; -1 where none is free."""
    masked = np.where(free, objective, -np.inf)
    best = np.argmax(masked, axis=1)
    return np.where(free.any(axis=1), best, -1)


# ---------------------------------------------------------------------------------------------- methods


def _item_similarity_rows(cand: np.ndarray, chosen: np.ndarray, inputs: RerankInputs) -> np.ndarray:
    """sim(candidate, chosen item) [n, N] for one newly chosen item per user (chosen -1: zeros)."""
    ctx = inputs.ctx
    if inputs.similarity == "text":
        vec = ctx._vectors_pad
        if vec is None:
            raise ConfigError(
                "the MMR re-ranker's text similarity needs item text embeddings, which this data has none of (no"
                " titles or texts, or text metrics turned off): give an items file with titles, or use genre similarity"
            )
        pad = vec.shape[0] - 1
        cv = vec[np.where(cand >= 0, cand, pad)]
        sv = vec[np.where(chosen >= 0, chosen, pad)]
        return np.einsum("und,ud->un", cv, sv).astype(np.float64)
    bits = ctx._genre_bits_pad
    if bits is None:
        raise ConfigError(
            "the MMR re-ranker's genre similarity needs item genres: load a dataset with genres or use text"
        )
    pad = bits.shape[0] - 1
    cb = bits[np.where(cand >= 0, cand, pad)]
    sb = bits[np.where(chosen >= 0, chosen, pad)][:, None, :]
    inter = np.bitwise_count(cb & sb).sum(axis=-1)
    union = np.bitwise_count(cb | sb).sum(axis=-1)
    sim = np.divide(inter, union, out=np.ones(inter.shape), where=union > 0)
    return np.where((chosen >= 0)[:, None], sim, 0.0)


def _mmr(cand: np.ndarray, rel: np.ndarray, users: np.ndarray, k: int, lam: float, inputs: RerankInputs) -> np.ndarray:
    n, width = cand.shape
    free = cand >= 0
    max_sim = np.zeros((n, width))
    out = np.full((n, k), -1, dtype=np.int64)
    rows = np.arange(n)
    for slot in range(k):
        pos = _pick((1.0 - lam) * rel - lam * max_sim, free)
        ok = pos >= 0
        out[ok, slot] = pos[ok]
        free[rows[ok], pos[ok]] = False
        chosen = np.where(ok, cand[rows, np.maximum(pos, 0)], -1)
        max_sim = np.maximum(max_sim, _item_similarity_rows(cand, chosen, inputs))
    return out


def _calibrated(
    cand: np.ndarray, rel: np.ndarray, users: np.ndarray, k: int, lam: float, inputs: RerankInputs
) -> np.ndarray:
    ctx = inputs.ctx
    if ctx.item_genres is None:
        raise ConfigError("the calibrated re-ranker needs item genres: load a dataset with genres or use mmr")
    if inputs.history is None:
        raise ConfigError("the calibrated re-ranker needs the users' training histories: pass history=train.matrix")
    p = history_genre_distribution(ctx.item_genres, inputs.history, users)  # [n, G]
    cand_dist = genre_distribution(ctx.item_genres, cand)  # [n, N, G]
    n = cand.shape[0]
    free = cand >= 0
    mass = np.zeros_like(p)  # sum of the chosen items' genre rows
    rel_sum = np.zeros(n)
    with_genres = np.zeros(n)  # chosen items that have at least one genre (q's normaliser)
    has_genre = cand_dist.sum(axis=-1) > 0
    out = np.full((n, k), -1, dtype=np.int64)
    rows = np.arange(n)
    # KL(p || q~) = sum p log p - sum p log q~; the first term is the user's constant. Where p = 0 the
    # term is 0 whatever q~ is, so adding 1 to q~ there keeps log finite without a masked log.
    p_log_p = (p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)
    p32 = p.astype(np.float32)
    fill = ((p == 0).astype(np.float32) + CALIBRATION_ALPHA * p32)[:, None, :]
    cand_dist = cand_dist.astype(np.float32)
    for slot in range(k):
        count = np.maximum(with_genres[:, None] + has_genre, 1.0).astype(np.float32)
        q = (mass.astype(np.float32)[:, None, :] + cand_dist) / count[..., None]
        # einsum rather than (p * log q~).sum(-1): numpy's reduction over a short last axis was ~5x slower.
        kl = p_log_p[:, None] - np.einsum("ung,ug->un", np.log((1.0 - CALIBRATION_ALPHA) * q + fill), p32)
        objective = (1.0 - lam) * (rel_sum[:, None] + np.where(free, rel, 0.0)) - lam * kl
        pos = _pick(objective, free)
        ok = pos >= 0
        out[ok, slot] = pos[ok]
        r, c = rows[ok], pos[ok]
        free[r, c] = False
        mass[r] += cand_dist[r, c]
        rel_sum[r] += rel[r, c]
        with_genres[r] += has_genre[r, c]
    return out


def _popularity(
    cand: np.ndarray, rel: np.ndarray, users: np.ndarray, k: int, lam: float, inputs: RerankInputs
) -> np.ndarray:
    counts = inputs.ctx.item_popularity.astype(np.float64)
    top = np.log1p(counts.max()) if counts.size and counts.max() > 0 else 1.0
    pop = np.log1p(np.append(counts, 0.0)) / top
    objective = (1.0 - lam) * rel - lam * pop[np.where(cand >= 0, cand, len(counts))]
    objective = np.where(cand >= 0, objective, -np.inf)
    # A stable sort of the negated objective keeps the fused order among equal values.
    order = np.argsort(-objective, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(cand, order, axis=1) >= 0, order, -1)


RERANKERS: dict[str, Reranker] = {
    r.name: r
    for r in (
        Reranker("mmr", "MMR (diversity)", "maximal marginal relevance: penalise similarity to items above", _mmr),
        Reranker(
            "calibrated",
            "Calibrated (Steck)",
            "match the genre mix of the user's history (KL with alpha = 0.01)",
            _calibrated,
        ),
        Reranker("popularity", "Popularity penalty", "push down popular items by log popularity", _popularity),
    )
}
"""Re-rankers by name, in display order."""


def check_reranker(name: str) -> Reranker:
    spec = RERANKERS.get(str(name).strip().lower())
    if spec is None:
        raise ConfigError(f"re-ranker {name!r} is unknown; choose one of {', '.join(RERANKERS)} (or none)")
    return spec


def check_lambda(lam: float) -> float:
    try:
        value = float(lam)
    except (TypeError, ValueError):
        value = float("nan")
    if not (0.0 <= value <= 1.0):
        raise ConfigError(f"re-rank lambda={lam!r} is out of range: give a number from 0 (no re-ranking) to 1")
    return value


def rerank(ranking: Ranking, k: int, method: str, lam: float, inputs: RerankInputs) -> Ranking:
    """The top-k of each user's fused list re-ordered by ``method`` with weight ``lam`` (module docstring).

    ``ranking`` is the fused top-N (N >= k); the result keeps the fused scores of the chosen items, so a
    list can be read against the fused one. ``lam = 0`` returns ``ranking.head(k)``.
    """
    spec = check_reranker(method)
    lam = check_lambda(lam)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"re-rank k={k!r} is not valid: give a whole number >= 1")
    if ranking.k < k:
        raise ConfigError(
            f"re-ranking needs at least k={k} fused candidates per user but the fused lists hold {ranking.k}:"
            " fuse to a longer list (top-N) first"
        )
    if inputs.similarity not in SIMILARITIES:
        raise ConfigError(f"re-rank similarity {inputs.similarity!r} is unknown; choose genre or text")
    cand = ranking.item_idx.astype(np.int64)
    valid = cand >= 0
    if lam == 0.0 or len(ranking) == 0:
        return ranking.head(k)
    rel = relevance(ranking.score, valid)
    pos = spec.run(cand, rel, ranking.user_idx, k, lam, inputs)
    rows = np.arange(len(ranking))[:, None]
    ok = pos >= 0
    safe = np.maximum(pos, 0)
    items = np.where(ok, cand[rows, safe], -1).astype(ranking.item_idx.dtype)
    score = np.where(ok, ranking.score[rows, safe], np.nan).astype(ranking.score.dtype)
    return Ranking(ranking.user_idx, items, score)


# ------------------------------------------------------------------------------------- how far it moved


def rank_biased_overlap(a: Ranking, b: Ranking, p: float = 0.9) -> np.ndarray:
    """Extrapolated rank-biased overlap per user (Webber, Moffat & Zobel 2010, eq. 32) at depth k.

    ``RBO_ext = (X_k / k) p^k + (1 - p) / p * sum_{d=1..k} (X_d / d) p^d`` with X_d the overlap of the two
    top-d prefixes; 1 for identical lists, 0 for disjoint ones. Both rankings must list the same users
    in the same order and have the same k; padding (-1) never matches.
    """
    if not 0.0 < p < 1.0:
        raise ConfigError(f"RBO persistence p={p!r} is out of range: give 0 < p < 1, such as 0.9")
    if a.item_idx.shape != b.item_idx.shape or not np.array_equal(a.user_idx, b.user_idx):
        raise ConfigError("RBO compares two rankings of the same users at the same k: align them first")
    x, y = a.item_idx, np.where(b.item_idx >= 0, b.item_idx, -2)
    k = x.shape[1]
    if k == 0:
        return np.ones(len(a))
    # X_d = |x[:d] & y[:d]|: an item at positions i (in x) and j (in y) counts from depth max(i, j) + 1 on.
    match = (x[:, :, None] == y[:, None, :]) & (x[:, :, None] >= 0)
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    depth = np.maximum(i, j)
    new_at = np.zeros((len(a), k))
    for d in range(k):
        new_at[:, d] = (match & (depth == d)).sum(axis=(1, 2))
    overlap = np.cumsum(new_at, axis=1)
    depths = np.arange(1, k + 1, dtype=np.float64)
    return overlap[:, -1] / k * p**k + (1 - p) / p * (overlap / depths * p**depths).sum(axis=1)


def movement(reranked: Ranking, others: dict[str, Ranking], p: float = 0.9) -> pd.DataFrame:
    """How far ``reranked`` is from each of ``others`` (same users, same k): one row per name with the mean share
    of slots changed and the mean rank-biased overlap (persistence ``p``) over the users."""
    rows = [
        {
            "from": name,
            "slots changed": float(slots_changed(other, reranked).mean()) if len(reranked) else 0.0,
            "RBO": float(rank_biased_overlap(other, reranked, p).mean()) if len(reranked) else 1.0,
        }
        for name, other in others.items()
    ]
    return pd.DataFrame(rows, columns=["from", "slots changed", "RBO"]).set_index("from")


def slots_changed(a: Ranking, b: Ranking) -> np.ndarray:
    """Share of the k slots whose item differs between two rankings of the same users (padding equal)."""
    if a.item_idx.shape != b.item_idx.shape or not np.array_equal(a.user_idx, b.user_idx):
        raise ConfigError("slots_changed compares two rankings of the same users at the same k: align them first")
    if a.k == 0:
        return np.zeros(len(a))
    return (a.item_idx != b.item_idx).mean(axis=1)
