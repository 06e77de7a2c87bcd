"""Evaluation: the hit matrix once, vectorised per-user metrics, a registry, and ``evaluate()``.

Definitions follow DESIGN.md section 5; docs/metrics.md repeats every formula with a worked example.
For user u, T is the set of held-out (test) items and L the top-k list; rel_i = 1 when the i-th
item of L is in T.

Conventions (each one is also in docs/metrics.md):

- Padding (item index -1, from ``top_k`` when fewer than k items could be ranked) is never a hit
  and counts as an empty slot: precision still divides by k, positions keep their discount, and
  the diversity/novelty metrics use only the valid items of a list.
- Users in the ranking without any test item are left out of the evaluation (global metrics
  included) and counted in ``Evaluation.n_users_without_test``; callers normally pass only
  ``Split.eval_users()``. A ranking in which no user has a test item raises ``ConfigError``.
- A list with fewer than two valid items has no pairs: its ILD is 0. A pair of items that both
  have no genre counts as identical (genre distance 0). An item vector of zeros has cosine 0 with
  everything (text distance 1).
- Novelty: p_i = max(c_i, 1) / sum_j c_j, so an item never seen in training counts as one
  interaction. A list with no valid items has novelty 0 and ARP 0.
- Personalisation uses all user pairs when n(n-1)/2 <= ``personalisation_pairs``, else that many
  pairs drawn with ``numpy.random.default_rng(seed)``; two empty lists count as identical. With
  fewer than two users it is NaN, and so is Gini when no list holds any item.

Speed (DESIGN.md section 7): one ``searchsorted`` builds the hit matrix, every metric is numpy over
[n, k] arrays computed once at the largest k and read at each smaller k; there is no pandas and
no Python loop over users here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reco_core.calibration import kl_divergence
from reco_core.data import Interactions
from reco_core.errors import ConfigError
from reco_core.eval_context import EvalContext as EvalContext  # re-exported: built here before
from reco_core.metric_specs import METRICS
from reco_core.metric_specs import MetricSpec as MetricSpec  # re-exported: the registry's public type
from reco_core.ranking import Ranking, check_k
from reco_core.stats import bootstrap_intervals

# --------------------------------------------------------------------------------------------------
# Registry


MetricFn = Callable[["_Workspace", int], "np.ndarray | float"]
_COMPUTE: dict[str, MetricFn] = {}


def _register(name: str) -> Callable[[MetricFn], MetricFn]:
    """Attach the compute function of a metric declared in ``metric_specs.METRICS``."""
    if name not in METRICS:
        raise RuntimeError(f"metric {name!r} has no MetricSpec: declare it in reco_core/metric_specs.py first")

    def wrap(fn: MetricFn) -> MetricFn:
        _COMPUTE[name] = fn
        return fn

    return wrap


# --------------------------------------------------------------------------------------------------
# Hit matrix


def _check_ranking(ranking: Ranking, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    user_idx = np.asarray(ranking.user_idx)
    items = np.asarray(ranking.item_idx)
    if items.ndim != 2 or user_idx.ndim != 1 or items.shape[0] != user_idx.shape[0]:
        raise ConfigError(
            f"ranking has item_idx of shape {items.shape} and user_idx of shape {user_idx.shape}:"
            " item_idx must be [n_users, k] with one user index per row"
        )
    if not np.issubdtype(items.dtype, np.integer) or not np.issubdtype(user_idx.dtype, np.integer):
        raise ConfigError("ranking indices must be integers: build rankings with ranking.top_k or runs.read_run")
    if len(user_idx) and (user_idx.min() < 0 or user_idx.max() >= n_users):
        bad = int(user_idx[(user_idx < 0) | (user_idx >= n_users)][0])
        raise ConfigError(f"ranking has user index {bad}, outside the {n_users} users of the test data: same split?")
    if items.size and (items.min() < -1 or items.max() >= n_items):
        bad = int(items[(items < -1) | (items >= n_items)][0])
        raise ConfigError(f"ranking has item index {bad}, outside the {n_items} catalogue items (-1 = padding)")
    return user_idx.astype(np.int64), items.astype(np.int64)


def _check_unique_items(items: np.ndarray) -> None:
    """A list that repeats an item would count its hit twice (precision above 1)."""
    if items.shape[1] < 2:
        return
    s = np.sort(items, axis=1)
    dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
    if dup.any():
        row = int(np.flatnonzero(dup.any(axis=1))[0])
        raise ConfigError(
            f"ranking row {row} lists item index {int(s[row, 1:][dup[row]][0])} more than once:"
            " each list must hold distinct items"
        )


def _hits(user_idx: np.ndarray, items: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    # Canonical CSR: row-major (row, item) keys are globally sorted, so one searchsorted answers every
    # (user, item) membership question at once. Only the ranked users' rows are keyed (row = their place
    # in user_idx): the work follows the ranking's size, not the whole test part's (2M cells at 10M size,
    # which cost a 2,000-user live update ~70 ms).
    n_items = test.shape[1]
    sub = test[np.asarray(user_idx, dtype=np.int64)]
    rows = np.repeat(np.arange(sub.shape[0], dtype=np.int64), np.diff(sub.indptr))
    keys = rows * n_items + sub.indices.astype(np.int64)
    if keys.size == 0:
        return np.zeros(items.shape, dtype=bool)
    query = np.arange(len(user_idx), dtype=np.int64)[:, None] * n_items + items
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return (keys[pos] == query) & (items >= 0)


def hit_matrix(ranking: Ranking, test: Interactions) -> np.ndarray:
    """bool [n, k]: ``item_idx[i, j]`` is a test item of ``user_idx[i]``; padding (-1) is never a hit."""
    user_idx, items = _check_ranking(ranking, test.n_users, test.n_items)
    return _hits(user_idx, items, test.matrix)


# --------------------------------------------------------------------------------------------------
# Workspace: intermediates shared by several metrics, each computed at most once per evaluate()


class _Workspace:
    def __init__(self, user_idx: np.ndarray, items: np.ndarray, n_rel: np.ndarray, hits: np.ndarray, ctx: EvalContext):
        self.user_idx = user_idx
        self.items = items  # int64 [n, K], -1 = padding (indexes the neutral last row of ctx lookups)
        self.n_rel = n_rel.astype(np.float64)  # |T| per user, all >= 1
        self.hits = hits
        self.ctx = ctx
        self.valid = items >= 0
        self.n_valid = np.cumsum(self.valid, axis=1, dtype=np.int64)  # valid items among the first j+1
        self._counts: dict[int, np.ndarray] = {}

    @property
    def n(self) -> int:
        return self.items.shape[0]

    @cached_property
    def padded_items(self) -> np.ndarray:
        """Items with padding mapped to the neutral last row (n_items), for sparse column indices."""
        return np.where(self.valid, self.items, self.ctx.n_items)

    @cached_property
    def n_hits(self) -> np.ndarray:
        return np.cumsum(self.hits, axis=1, dtype=np.float64)

    @cached_property
    def discount(self) -> np.ndarray:
        return 1.0 / np.log2(np.arange(2, self.items.shape[1] + 2, dtype=np.float64))

    @cached_property
    def dcg(self) -> np.ndarray:
        return np.cumsum(self.hits * self.discount, axis=1)

    @cached_property
    def ideal_dcg(self) -> np.ndarray:
        return np.cumsum(self.discount)

    @cached_property
    def ap_sum(self) -> np.ndarray:
        positions = np.arange(1, self.items.shape[1] + 1, dtype=np.float64)
        return np.cumsum(self.hits * (self.n_hits / positions), axis=1)

    @cached_property
    def first_hit_rank(self) -> np.ndarray:
        """1-based rank of the first hit; 0 when there is none."""
        any_hit = self.hits.any(axis=1)
        return np.where(any_hit, np.argmax(self.hits, axis=1) + 1, 0)

    @cached_property
    def info_sum(self) -> np.ndarray:
        return np.cumsum(self.ctx._info_pad[self.items], axis=1)

    @cached_property
    def pop_sum(self) -> np.ndarray:
        return np.cumsum(self.ctx._pop_pad[self.items], axis=1)

    @cached_property
    def genre_distance_sum(self) -> np.ndarray:
        """Sum over valid pairs i < j <= position of 1 - Jaccard(genres_i, genres_j), cumulative in j."""
        genre_bits = self.ctx._genre_bits_pad
        assert genre_bits is not None  # _select_metrics runs the genre metrics only when there are genres
        bits = genre_bits[self.items]  # [n, K, words]
        a, b = bits[:, :, None, :], bits[:, None, :, :]
        inter = np.bitwise_count(a & b).sum(axis=-1, dtype=np.int64)
        union = np.bitwise_count(a | b).sum(axis=-1, dtype=np.int64)
        # Two items without any genre have union 0: counted as identical (distance 0).
        dist = 1.0 - np.divide(inter, union, out=np.ones(inter.shape), where=union > 0)
        k = self.items.shape[1]
        pair = np.triu(np.ones((k, k), dtype=bool), 1)[None] & self.valid[:, :, None] & self.valid[:, None, :]
        return np.cumsum(np.where(pair, dist, 0.0).sum(axis=1), axis=1)

    @cached_property
    def pop_list_rank(self) -> np.ndarray:
        """[n, K] 0-based place of each listed item in the user's own popularity list (the most popular
        items the user has not consumed, ties by item index); an item is in POP_u@k when its place is < k.

        place = global popularity position - how many of the user's training items come before it: two
        searchsorted calls over the context's sorted (user, position) keys, no per-user loop.
        """
        keys, span = self.ctx.history_keys, self.ctx.n_items + 1
        pos = self.ctx._pop_rank_pad[self.items]
        users = self.user_idx.astype(np.int64)
        # Only the listed users' keys are searched (user u's keys are its indptr segment, as the keys sort by
        # user first): rekeyed by their row here, so the search runs over ~sum of their histories instead of
        # every training interaction (8M at 10M size).
        indptr = self.ctx._require_history().indptr
        start, size = indptr[users], indptr[users + 1] - indptr[users]
        row = np.repeat(np.arange(len(users), dtype=np.int64), size)
        offset = np.concatenate([[0], np.cumsum(size)])
        own = keys[np.arange(row.size, dtype=np.int64) - offset[row] + start[row]] - users[row] * span
        local = row * span + own
        query = np.arange(len(users), dtype=np.int64)[:, None] * span + pos
        before = np.searchsorted(local, query) - offset[:-1, None]
        return pos - before

    def pairs(self, k: int) -> np.ndarray:
        m = self.n_valid[:, k - 1].astype(np.float64)
        return m * (m - 1) / 2

    def counts(self, k: int) -> np.ndarray:
        """How often each catalogue item appears in the first k places of all lists."""
        if k not in self._counts:
            head = self.items[:, :k]
            self._counts[k] = np.bincount(head[head >= 0], minlength=self.ctx.n_items)
        return self._counts[k]

    @cached_property
    def user_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return user_pairs(self.n, self.ctx.personalisation_pairs, self.ctx.seed)


# --------------------------------------------------------------------------------------------------
# Global-metric formulas on their inputs alone (item counts, pairs of lists): the Spark engine
# (reco_core.spark.engine) aggregates those inputs in Spark and calls these same functions.


def user_pairs(n: int, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The user pairs personalisation compares, as positions (0..n-1) among the evaluated users in order.

    Every pair (a < b) when n(n-1)/2 <= ``budget``; else ``budget`` ordered pairs drawn with
    ``numpy.random.default_rng(seed)``. Fewer than two users give no pairs.
    """
    if n * (n - 1) // 2 <= budget:
        a, b = np.triu_indices(n, 1)
        return a, b
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, budget)
    # An offset in [1, n) makes b != a while keeping every ordered pair equally likely.
    b = (a + rng.integers(1, n, budget)) % n
    return a, b


def gini_of_counts(counts: np.ndarray) -> float:
    """Gini of how often each catalogue item is recommended (``counts``, one entry per item); NaN when all are 0."""
    c = np.sort(np.asarray(counts)).astype(np.float64)
    total = c.sum()
    if total == 0:
        return float("nan")
    n = c.size
    return float(np.dot(2 * np.arange(1, n + 1) - n - 1, c) / (n * total))


def personalisation_of_pairs(lists_a: np.ndarray, lists_b: np.ndarray) -> float:
    """1 - mean Jaccard of the lists paired row by row (int [pairs, k], -1 = padding); NaN without pairs.

    Two lists with no valid item count as identical (Jaccard 1).
    """
    lists_a, lists_b = np.asarray(lists_a), np.asarray(lists_b)
    if len(lists_a) == 0:
        return float("nan")
    va, vb = lists_a >= 0, lists_b >= 0
    # Padding is -1 in one list and -2 in the other, so two empty slots never match.
    lb = np.where(vb, lists_b, -2)
    inter = np.count_nonzero(lists_a[:, :, None] == lb[:, None, :], axis=(1, 2))
    union = np.count_nonzero(va, axis=1) + np.count_nonzero(vb, axis=1) - inter
    jaccard = np.divide(inter, union, out=np.ones(inter.shape), where=union > 0)
    return float(1.0 - jaccard.mean())


def _per_user_mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    return np.divide(total, count, out=np.zeros(total.shape), where=count > 0)


# --------------------------------------------------------------------------------------------------
# Metrics (each returns float64 [n] for scope "user", a float for scope "global")


@_register("precision")
def _precision(ws: _Workspace, k: int) -> np.ndarray:
    return ws.n_hits[:, k - 1] / k


@_register("recall")
def _recall(ws: _Workspace, k: int) -> np.ndarray:
    return ws.n_hits[:, k - 1] / ws.n_rel


@_register("hit_rate")
def _hit_rate(ws: _Workspace, k: int) -> np.ndarray:
    return (ws.n_hits[:, k - 1] > 0).astype(np.float64)


@_register("ndcg")
def _ndcg(ws: _Workspace, k: int) -> np.ndarray:
    ideal_len = np.minimum(ws.n_rel, k).astype(np.int64)
    return ws.dcg[:, k - 1] / ws.ideal_dcg[ideal_len - 1]


@_register("map")
def _map(ws: _Workspace, k: int) -> np.ndarray:
    return ws.ap_sum[:, k - 1] / np.minimum(ws.n_rel, k)


@_register("mrr")
def _mrr(ws: _Workspace, k: int) -> np.ndarray:
    r = ws.first_hit_rank
    return np.divide(1.0, r, out=np.zeros(r.shape), where=(r > 0) & (r <= k))


@_register("coverage")
def _coverage(ws: _Workspace, k: int) -> float:
    return float(np.count_nonzero(ws.counts(k)) / ws.ctx.n_items)


@_register("gini")
def _gini(ws: _Workspace, k: int) -> float:
    return gini_of_counts(ws.counts(k))


@_register("ild_genre")
def _ild_genre(ws: _Workspace, k: int) -> np.ndarray:
    return _per_user_mean(ws.genre_distance_sum[:, k - 1], ws.pairs(k))


@_register("ild_text")
def _ild_text(ws: _Workspace, k: int) -> np.ndarray:
    # sum_{i<j} x_i . x_j = (|sum_i x_i|^2 - sum_i |x_i|^2) / 2, so no [n, k, k] product is needed. The
    # per-list vector sums are one sparse (lists x items) @ dense (items x d) product: single-threaded
    # C, no [n, k, d] copy (numpy fancy indexing was 6x slower; torch's embedding_bag was faster alone
    # but slowed ~30x when another job shared the two cores). float32 sums keep ILD within ~1e-7.
    items = ws.padded_items[:, :k]
    n = items.shape[0]
    vectors, sqnorm = ws.ctx._vectors_pad, ws.ctx._sqnorm_pad
    assert vectors is not None and sqnorm is not None  # _select_metrics runs it only when there are vectors
    lists = sp.csr_matrix(
        (np.ones(n * k, dtype=np.float32), items.ravel(), np.arange(0, n * k + 1, k)), shape=(n, vectors.shape[0])
    )
    s = np.asarray(lists @ vectors, dtype=np.float64)
    cos_sum = (np.einsum("nd,nd->n", s, s) - sqnorm[items].sum(axis=1)) / 2
    pairs = ws.pairs(k)
    return np.where(pairs > 0, 1.0 - _per_user_mean(cos_sum, pairs), 0.0)


@_register("novelty")
def _novelty(ws: _Workspace, k: int) -> np.ndarray:
    return _per_user_mean(ws.info_sum[:, k - 1], ws.n_valid[:, k - 1])


@_register("arp")
def _arp(ws: _Workspace, k: int) -> np.ndarray:
    return _per_user_mean(ws.pop_sum[:, k - 1], ws.n_valid[:, k - 1])


@_register("long_tail_share")
def _long_tail_share(ws: _Workspace, k: int) -> np.ndarray:
    tail = ws.valid[:, :k] & (ws.ctx._pop_rank_pad[ws.items[:, :k]] >= ws.ctx.head_size)
    return _per_user_mean(tail.sum(axis=1).astype(np.float64), ws.n_valid[:, k - 1])


@_register("pop_gap")
def _pop_gap(ws: _Workspace, k: int) -> np.ndarray:
    consumed = ws.ctx.consumed_popularity[ws.user_idx]
    listed = _per_user_mean(ws.pop_sum[:, k - 1], ws.n_valid[:, k - 1])
    # A user with no training history has nothing to compare with: gap 0 (docs/metrics.md).
    return np.divide(listed - consumed, consumed, out=np.zeros(ws.n), where=consumed > 0)


@_register("miscalibration")
def _miscalibration(ws: _Workspace, k: int) -> np.ndarray:
    table = ws.ctx._genre_table_pad
    assert table is not None  # _select_metrics runs it only with genres
    p = ws.ctx.history_genres[ws.user_idx]
    # The lists as a sparse (lists x items) matrix: one product gives every list's genre mass, as in ild_text;
    # padding points at the table's zero row. A table row sums to 1 when the item has a genre, else 0.
    items = ws.padded_items[:, :k]
    n = items.shape[0]
    lists = sp.csr_matrix((np.ones(n * k), items.ravel(), np.arange(0, n * k + 1, k)), shape=(n, table.shape[0]))
    mass = np.asarray(lists @ table)
    with_genres = np.rint(mass.sum(axis=1, keepdims=True))
    q = np.divide(mass, with_genres, out=np.zeros(p.shape), where=with_genres > 0)
    return kl_divergence(p, q)


@_register("serendipity")
def _serendipity(ws: _Workspace, k: int) -> np.ndarray:
    unexpected = ws.pop_list_rank[:, :k] >= k
    return (ws.hits[:, :k] & unexpected).sum(axis=1) / k


@_register("personalisation")
def _personalisation(ws: _Workspace, k: int) -> float:
    if ws.n < 2:
        return float("nan")
    a, b = ws.user_pairs
    return personalisation_of_pairs(ws.items[a, :k], ws.items[b, :k])


if _COMPUTE.keys() != METRICS.keys():  # a spec without a function (or the reverse) is a programming error
    raise RuntimeError(f"metrics without a compute function: {sorted(METRICS.keys() - _COMPUTE.keys())}")


# --------------------------------------------------------------------------------------------------
# Evaluation


def _split_key(key: str) -> tuple[str, int]:
    name, _, k = key.partition("@")
    return name, int(k) if k.isdigit() else 0


def _key_order(key: str) -> tuple[int, int]:
    name, k = _split_key(key)
    order = list(METRICS)
    return (order.index(name) if name in order else len(order), k)


@dataclass(frozen=True)
class Evaluation:
    """Per-user metric values ("ndcg@10" -> float64 [n]) for ``user_idx``, plus global values.

    ``n_users_without_test`` counts ranked users left out because they had no test item; ``notes``
    say what else was skipped and why (for example ild_text without item vectors).
    """

    user_idx: np.ndarray
    per_user: dict[str, np.ndarray]
    global_values: dict[str, float]
    n_users_without_test: int = 0
    notes: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.user_idx)

    def keys(self) -> list[str]:
        """Every metric key, in METRICS order then by k."""
        return sorted([*self.per_user, *self.global_values], key=_key_order)

    def value(self, key: str) -> float:
        """Mean over users of a per-user metric, or the global value."""
        if key in self.per_user:
            values = self.per_user[key]
            return float(values.mean()) if values.size else float("nan")
        if key in self.global_values:
            return float(self.global_values[key])
        raise ConfigError(f"no metric {key!r} in this evaluation: known keys are {', '.join(self.keys())}")

    def values(self) -> dict[str, float]:
        return {key: self.value(key) for key in self.keys()}

    def summary(self, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
        """Columns metric, value, ci_low, ci_high.

        Per-user metrics: percentile bootstrap over users of the mean, every metric over the same
        user resamples (``stats.bootstrap_intervals``; equal to ``bootstrap_ci`` per metric). Global
        metrics (coverage, gini, personalisation) get NaN bounds: they describe the whole set of
        lists, and resampling users with replacement duplicates lists, which biases them, so an
        interval would mislead.
        """
        keys = self.keys()
        user_keys = [key for key in keys if key in self.per_user]
        bounds: dict[str, tuple[float, float]] = {}
        if user_keys:
            low, high = bootstrap_intervals(
                np.stack([self.per_user[key] for key in user_keys]), n_boot=n_boot, seed=seed, ci=ci
            )
            bounds = {key: (float(lo), float(hi)) for key, lo, hi in zip(user_keys, low, high, strict=True)}
        rows = [(key, self.value(key), *bounds.get(key, (float("nan"), float("nan")))) for key in keys]
        return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high"])

    def subset(self, mask: np.ndarray) -> Evaluation:
        """Per-user metrics of a user segment (a bool mask over ``user_idx``); global metrics are dropped."""
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != (self.n,):
            raise ConfigError(
                f"subset mask must be a boolean array of length {self.n} (one entry per evaluated user),"
                f" got dtype {mask.dtype} and shape {mask.shape}"
            )
        notes = self.notes
        if self.global_values:
            notes = (*notes, "global metrics (coverage, gini, personalisation) are not defined for a user segment")
        return Evaluation(
            self.user_idx[mask],
            {key: v[mask] for key, v in self.per_user.items()},
            {},
            0,
            notes,
        )


def _check_ks(ks: Sequence[int] | int, ranking_k: int, n_items: int) -> list[int]:
    # One k or a collection of them; anything else (None, 5.5, "10") is checked as a single k so the
    # error names it, instead of failing to iterate or hash it.
    given: list[Any]  # unchecked yet: check_k names whatever it is
    try:
        given = [ks] if isinstance(ks, (str, bytes, int, np.integer)) else list(ks)
    except TypeError:
        given = [ks]
    if not given:
        raise ConfigError("ks is empty: give at least one cut-off, for example ks=(10,)")
    out: list[int] = []
    for k in given:
        check_k(k, n_items)
        if k > ranking_k:
            raise ConfigError(
                f"k={k} is larger than the ranking's list length {ranking_k}: rank with k >= {k} or evaluate at k <= "
                f"{ranking_k}"
            )
        if int(k) not in out:
            out.append(int(k))
    return out


# Why a metric that needs part of the EvalContext is absent, in the user's terms (the notes of evaluate()).
MISSING_REASONS: dict[str, str] = {
    "item_genres": "no item has genres (the EvalContext has no item_genres); give an items file with genres",
    "item_vectors": (
        "no item text vectors (the EvalContext has no item_vectors): the catalogue has no titles or texts, or"
        " text metrics were turned off; give an items file with titles"
    ),
    "history": "no training histories (the EvalContext has no history); build it with EvalContext.from_train(train)",
    "genres_and_history": (
        "it needs item genres and training histories (EvalContext.from_train(train, catalog)); give an items file"
        " with genres"
    ),
}


def _select_metrics(metrics: Sequence[str] | None, ctx: EvalContext) -> tuple[list[str], list[str]]:
    has_history = ctx.history is not None
    available = {
        "item_genres": ctx._genre_bits_pad is not None,
        "item_vectors": ctx._vectors_pad is not None,
        "history": has_history,
        "genres_and_history": has_history and ctx._genre_bits_pad is not None,
    }
    if metrics is None:
        names = [m for m, spec in METRICS.items() if spec.needs is None or available[spec.needs]]
        notes = [
            f"{m} skipped: {MISSING_REASONS.get(spec.needs, f'the EvalContext has no {spec.needs}')}"
            for m, spec in METRICS.items()
            if spec.needs is not None and not available[spec.needs]
        ]
        return names, notes
    try:
        names = [metrics] if isinstance(metrics, str) else list(dict.fromkeys(metrics))
    except TypeError:  # not a collection of names (a number, a bool), or unhashable entries
        raise ConfigError(f"metrics={metrics!r} is not valid: give metric names, e.g. ['ndcg', 'recall']") from None
    for m in names:
        if m not in METRICS:
            raise ConfigError(f"unknown metric {m!r}: choose from {', '.join(METRICS)}")
        needs = METRICS[m].needs
        if needs is not None and not available[needs]:
            raise ConfigError(
                f"metric {m!r} needs {needs.replace('_and_', ' and ')} in the EvalContext: build it with"
                " EvalContext.from_train(train, catalog, item_vectors) or leave the metric out"
            )
    return names, []


def evaluate(
    ranking: Ranking,
    test: Interactions,
    ctx: EvalContext,
    ks: Sequence[int] = (10,),
    metrics: Sequence[str] | None = None,
) -> Evaluation:
    """Every requested metric at every k in ``ks``, from one hit matrix at the largest k.

    ``metrics=None`` means every metric the context can support. See the module docstring for the
    conventions (padding, users without test items, empty genre sets, sampling).
    """
    if ctx.n_items != test.n_items:
        raise ConfigError(
            f"EvalContext is for {ctx.n_items} items but the test data has {test.n_items}: build the context from"
            " the same split's train"
        )
    ks = _check_ks(ks, ranking.k, test.n_items)
    names, notes = _select_metrics(metrics, ctx)
    user_idx, items = _check_ranking(ranking, test.n_users, test.n_items)
    if len(user_idx) == 0:
        raise ConfigError("the ranking has no users: rank at least one user (Split.eval_users()) before evaluating")
    n_rel_all = np.diff(test.matrix.indptr)[user_idx]
    keep = n_rel_all > 0
    n_without = int((~keep).sum())
    if n_without == len(user_idx):
        raise ConfigError(
            f"none of the {len(user_idx)} ranked users has a test item: rank Split.eval_users() (or check that"
            " train and test come from the same split)"
        )
    if n_without:
        user_idx, items, n_rel_all = user_idx[keep], items[keep], n_rel_all[keep]
        notes.append(f"{n_without} ranked users without test items left out")
    items = items[:, : max(ks)]
    _check_unique_items(items)
    hits = _hits(user_idx, items, test.matrix)
    ws = _Workspace(user_idx, items, n_rel_all, hits, ctx)
    per_user: dict[str, np.ndarray] = {}
    global_values: dict[str, float] = {}
    for name in names:
        fn, scope = _COMPUTE[name], METRICS[name].scope
        for k in ks:
            value = fn(ws, k)
            if scope == "user":
                per_user[f"{name}@{k}"] = np.asarray(value, dtype=np.float64)
            else:
                global_values[f"{name}@{k}"] = float(value)
    return Evaluation(user_idx.astype(np.int32), per_user, global_values, n_without, tuple(notes))
