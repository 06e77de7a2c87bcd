"""Learned fusion: a LightGBM LambdaRank meta-ranker over the members' candidates.

Hand-set and searched weights give every user the same mix. A meta-ranker learns, from the validation
part, when to trust which member: for a user with a short history it may lean on popularity, for an
item two members agree on it may rank higher. The protocol mirrors the weight search (``search``):

1. Members fitted on train minus validation score the validation users (a ``LiveSession`` with
   ``part="valid"``); the candidates of a user are the union of the members' top-N lists (N =
   ``top_n``, default 50); a candidate's label is 1 when it is one of the user's validation items.
2. LightGBM's ``lambdarank`` objective is fitted on 80% of the validation users (those with at least
   one validation item among their candidates), with early stopping on NDCG@10 of the other 20% (so
   the number of trees is chosen without touching test). The trees start from the best validation
   member's normalised score (``init_score``, scaled by ``ANCHOR_SCALE``) and learn corrections to it:
   with no useful tree the ranking is that member's, so the meta-ranker cannot do worse than the best
   member on validation by more than early stopping's noise. Without the anchor, on MovieLens-100K it
   stopped after 16 trees at NDCG@10 0.424, well below EASE's 0.454 (docs/learned.md).
3. Members fitted on the whole train score the test users the same way; the model ranks their
   candidates once and the top-k is evaluated on test, with the paired test against the best member.

``run_learned`` runs all of it as ``fuse --method learned`` and the dashboard's Learned fusion tab do: fit,
the weight search it is compared with (validation, grid step ``SEARCH_STEP``), the test report, and Holm's
correction over its paired comparisons, so both report the same adjusted p-values.

Features of a (user, candidate) pair, all computed the same way on validation and on test:

- per member: its score min-max normalised over the user's candidates (``<m>_score``), and the
  candidate's 1-based rank in the member's top-N (N + 1 when the member does not list it, ``<m>_rank``);
- ``agreement``: how many members list the candidate in their top-N;
- ``history_length`` (training interactions of the user) and ``genre_entropy`` (Shannon entropy, in
  bits, of the genre mix of the user's history, 0 without genres);
- ``log_popularity`` (log(1 + training count) of the item) and ``item_age`` (the catalogue's latest
  year minus the item's year; missing, which LightGBM handles natively, when the year is unknown).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reco_core.checks import check_whole
from reco_core.errors import ConfigError
from reco_core.live import LiveSession
from reco_core.metrics import Evaluation, evaluate
from reco_core.models.base import Scorer
from reco_core.ranking import Ranking
from reco_core.search import optimise
from reco_core.stats import PairedComparison, holm_adjust, paired_comparison

Progress = Callable[[float, str], None]

DEFAULT_TOP_N = 50
ANCHOR_SCALE = 5.0
EARLY_STOPPING_SHARE = 0.2
LGBM_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "n_estimators": 400,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "colsample_bytree": 0.9,
    "lambdarank_truncation_level": 20,
    "deterministic": True,
    "force_row_wise": True,
    "n_jobs": 2,
    "verbose": -1,
}
"""LightGBM settings, fixed before looking at any result (the number of trees is early-stopped on validation)."""


@dataclass(frozen=True)
class Candidates:
    """The union of the members' top-N per user: ``items[n, C]`` (-1 = padding) and features ``X[n, C, F]``."""

    users: np.ndarray
    items: np.ndarray
    features: np.ndarray
    feature_names: tuple[str, ...]

    @property
    def valid(self) -> np.ndarray:
        return self.items >= 0


def _union(lists: list[np.ndarray]) -> np.ndarray:
    """Per row, the distinct items of all lists, first-seen order (member order, then rank); -1 padded."""
    stacked = np.concatenate(lists, axis=1).astype(np.int64)
    n, width = stacked.shape
    # Mark the first occurrence of each item in a row: sort by (row, item, position), keep the first.
    order = np.lexsort((np.arange(width)[None, :].repeat(n, 0), stacked))
    srt = np.take_along_axis(stacked, order, axis=1)
    first = np.ones_like(srt, dtype=bool)
    first[:, 1:] = srt[:, 1:] != srt[:, :-1]
    keep = np.zeros_like(stacked, dtype=bool)
    np.put_along_axis(keep, order, first & (srt >= 0), axis=1)
    counts = keep.sum(axis=1)
    out = np.full((n, max(int(counts.max(initial=0)), 1)), -1, dtype=np.int64)
    rows, cols = np.nonzero(keep)
    slot = np.arange(len(rows)) - np.repeat(np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    out[rows, slot] = stacked[rows, cols]
    return out


def _gather_scores(model: Scorer, users: np.ndarray, items: np.ndarray, block: int) -> np.ndarray:
    """The member's raw scores of each candidate (NaN for padding), scored in user blocks."""
    out = np.full(items.shape, np.nan, dtype=np.float64)
    for start in range(0, len(users), block):
        rows = users[start : start + block]
        scores = np.asarray(model.score(rows), dtype=np.float64)
        cand = items[start : start + block]
        got = np.take_along_axis(scores, np.maximum(cand, 0), axis=1)
        out[start : start + block] = np.where(cand >= 0, got, np.nan)
    return out


def _minmax_rows(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        lo = np.nanmin(x, axis=1, keepdims=True)
        hi = np.nanmax(x, axis=1, keepdims=True)
        span = hi - lo
        out = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 1.0)
    return np.where(np.isnan(x), np.nan, out)


def candidates(
    session: LiveSession,
    members: Mapping[str, Scorer],
    year: np.ndarray | None = None,
    top_n: int = DEFAULT_TOP_N,
) -> Candidates:
    """Candidates and features for the session's users (module docstring); ``members`` are the session's
    fitted models, in the session's member order, and ``year`` the catalogue's item years (NaN unknown)."""
    names = tuple(session.members)
    if tuple(members) != names:
        raise ConfigError(
            f"learned fusion needs the session's own fitted members ({', '.join(names)}), got {', '.join(members)}"
        )
    top_n = check_whole(top_n, "top_n")
    if top_n > session.top_n:
        raise ConfigError(
            f"learned fusion top_n={top_n} is larger than the session's lists ({session.top_n}): build the session"
            f" with top_n >= {top_n}"
        )
    lists = [session.member_ranking(n).item_idx[:, :top_n] for n in names]
    items = _union(lists)
    users = session.users
    n, width = items.shape
    cols: list[np.ndarray] = []
    feature_names: list[str] = []
    listed = np.zeros(items.shape)
    for name, lst in zip(names, lists, strict=True):
        raw = _gather_scores(members[name], users, items, session.block_size)
        cols.append(_minmax_rows(raw))
        # rank of each candidate in this member's list: compare against the list (top_n is small).
        match = (items[:, :, None] == lst[:, None, :]) & (items[:, :, None] >= 0)
        found = match.any(axis=2)
        rank = np.where(found, match.argmax(axis=2) + 1, top_n + 1).astype(np.float64)
        cols.append(rank)
        listed += found
        feature_names += [f"{name}_score", f"{name}_rank"]
    cols.append(listed)
    feature_names.append("agreement")
    ctx = session.ctx
    history = session.train.user_counts()[users].astype(np.float64)
    cols.append(np.repeat(history[:, None], width, axis=1))
    if ctx.item_genres is not None and ctx.history is not None:
        p = ctx.history_genres[users]
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
    else:
        entropy = np.zeros(n)
    cols.append(np.repeat(entropy[:, None], width, axis=1))
    feature_names += ["history_length", "genre_entropy"]
    pop = np.log1p(np.append(ctx.item_popularity.astype(np.float64), 0.0))
    cols.append(pop[np.where(items >= 0, items, -1)])
    age = np.full(session.n_items + 1, np.nan)
    if year is not None and np.isfinite(year).any():
        yr = np.asarray(year, dtype=np.float64)
        age[:-1] = np.nanmax(yr) - yr
    cols.append(age[np.where(items >= 0, items, -1)])
    feature_names += ["log_popularity", "item_age"]
    features = np.stack(cols, axis=2)
    features[items < 0] = np.nan
    return Candidates(users, items, features, tuple(feature_names))


def _labels(cand: Candidates, session: LiveSession) -> np.ndarray:
    target = session.target.matrix.tocsr()
    rows = target[cand.users]
    lab = np.zeros(cand.items.shape, dtype=np.int32)
    for r in range(len(cand.users)):  # one searchsorted per user; the candidate set is small
        held = rows.indices[rows.indptr[r] : rows.indptr[r + 1]]
        if held.size:
            lab[r] = np.isin(cand.items[r], held)
    return lab


@dataclass(frozen=True)
class LearnedFusion:
    """A fitted meta-ranker: apply it with :meth:`rank`; :meth:`importances` says what it relies on."""

    booster: Any
    member_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    top_n: int
    anchor: str
    best_iteration: int
    train_users: int
    stop_users: int
    users_without_positive: int

    def importances(self) -> pd.DataFrame:
        """Total gain and split count per feature, largest gain first (gain shares sum to 1)."""
        gain = np.asarray(self.booster.feature_importance(importance_type="gain"), dtype=np.float64)
        split = np.asarray(self.booster.feature_importance(importance_type="split"), dtype=np.int64)
        total = gain.sum() or 1.0
        df = pd.DataFrame({"feature": self.feature_names, "gain_share": gain / total, "splits": split})
        return df.sort_values(["gain_share", "feature"], ascending=[False, True]).reset_index(drop=True)

    def rank(self, cand: Candidates, k: int) -> Ranking:
        """Top-k of each user's candidates by predicted score; ties by item index; padding last."""
        if cand.feature_names != self.feature_names:
            raise ConfigError("these candidates were built for other members: use the same members in the same order")
        n, width, f = cand.features.shape
        flat = cand.features.reshape(n * width, f)
        score = self.booster.predict(flat, num_iteration=self.best_iteration)
        # The trees correct the anchor member's score; the prediction is the sum, as in training (init_score).
        score = score + ANCHOR_SCALE * np.nan_to_num(flat[:, self.feature_names.index(f"{self.anchor}_score")])
        score = np.where(cand.valid, np.asarray(score).reshape(n, width), -np.inf)
        # Sort by (score desc, item asc): lexsort's last key is primary.
        order = np.lexsort((cand.items, -score), axis=1)[:, :k]
        items = np.take_along_axis(cand.items, order, axis=1)
        top = np.take_along_axis(score, order, axis=1)
        keep = items >= 0
        out_items = np.where(keep, items, -1).astype(np.int32)
        out_score = np.where(keep, top, np.nan).astype(np.float32)
        if out_items.shape[1] < k:  # fewer candidates than k: pad
            pad = k - out_items.shape[1]
            out_items = np.pad(out_items, ((0, 0), (0, pad)), constant_values=-1)
            out_score = np.pad(out_score, ((0, 0), (0, pad)), constant_values=np.nan)
        return Ranking(cand.users.astype(np.int32), out_items, out_score)


def fit_learned(
    valid_session: LiveSession,
    members: Mapping[str, Scorer],
    year: np.ndarray | None = None,
    top_n: int = DEFAULT_TOP_N,
    seed: int = 42,
    progress: Progress | None = None,
) -> LearnedFusion:
    """Fit the meta-ranker on the validation part (members fitted on train minus validation)."""
    import lightgbm as lgb  # imported here: only learned fusion needs it

    if valid_session.part != "valid":
        raise ConfigError("learned fusion trains on the validation part only: build the session with part='valid'")
    if progress:
        progress(0.05, "building validation candidates")
    cand = candidates(valid_session, members, year, top_n)
    labels = _labels(cand, valid_session)
    has_pos = labels.sum(axis=1) > 0
    rng = np.random.default_rng(seed)
    users_with = np.flatnonzero(has_pos)
    if len(users_with) < 10:
        raise ConfigError(
            f"only {len(users_with)} validation users have a validation item among the candidates: learned fusion"
            " needs more (raise top_n or the validation share)"
        )
    stop = np.zeros(len(has_pos), dtype=bool)
    stop[rng.choice(users_with, size=max(1, round(EARLY_STOPPING_SHARE * len(users_with))), replace=False)] = True
    fit_rows = has_pos & ~stop

    def flat(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        v = cand.valid[rows]
        x = cand.features[rows][v]
        y = labels[rows][v]
        return x, y, v.sum(axis=1)

    x_fit, y_fit, g_fit = flat(fit_rows)
    x_stop, y_stop, g_stop = flat(stop)
    anchor = valid_session.best_member(10)
    col = cand.feature_names.index(f"{anchor}_score")
    base_fit, base_stop = ANCHOR_SCALE * np.nan_to_num(x_fit[:, col]), ANCHOR_SCALE * np.nan_to_num(x_stop[:, col])
    if progress:
        progress(0.2, f"training LightGBM LambdaRank on {int(fit_rows.sum()):,} validation users")
    model = lgb.LGBMRanker(random_state=seed, **LGBM_PARAMS)
    model.fit(
        x_fit,
        y_fit,
        group=g_fit,
        init_score=base_fit,
        eval_X=(x_stop,),
        eval_y=(y_stop,),
        eval_group=[g_stop],
        eval_init_score=[base_stop],
        eval_at=[10],
        feature_name=list(cand.feature_names),
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    if progress:
        progress(1.0, f"trained: {model.best_iteration_ or LGBM_PARAMS['n_estimators']} trees")
    return LearnedFusion(
        booster=model.booster_,
        member_names=tuple(valid_session.members),
        feature_names=cand.feature_names,
        top_n=int(top_n),
        anchor=anchor,
        best_iteration=int(model.best_iteration_ or LGBM_PARAMS["n_estimators"]),
        train_users=int(fit_rows.sum()),
        stop_users=int(stop.sum()),
        users_without_positive=int((~has_pos).sum()),
    )


@dataclass(frozen=True)
class LearnedReport:
    """Learned fusion on test: its evaluation and paired comparisons (fused - other, per user)."""

    model: LearnedFusion
    ranking: Ranking
    evaluation: Evaluation
    best_member: str
    versus_best_member: PairedComparison
    versus_searched: PairedComparison | None


def report_learned(
    model: LearnedFusion,
    test_session: LiveSession,
    members: Mapping[str, Scorer],
    year: np.ndarray | None = None,
    k: int = 10,
    searched: Evaluation | None = None,
    metric: str | None = None,
) -> LearnedReport:
    """Rank the test users once with ``model`` and compare with the best member (and searched weights)."""
    if test_session.part != "test":
        raise ConfigError("the learned fusion report runs on the test part: build the session with part='test'")
    cand = candidates(test_session, members, year, model.top_n)
    ranking = model.rank(cand, k)
    ev = evaluate(ranking, test_session.target, test_session.ctx, ks=(k,))
    key = metric or f"ndcg@{k}"
    best = test_session.best_member(k)
    best_ev = test_session.member_evaluation(best, k)
    vs_best = paired_comparison(best_ev.per_user[key], ev.per_user[key], key)
    vs_searched = None
    if searched is not None:
        vs_searched = paired_comparison(searched.per_user[key], ev.per_user[key], key)
    return LearnedReport(model, ranking, ev, best, vs_best, vs_searched)


# ------------------------------------------------------------------------------------------ one whole run

SEARCH_STEP = 0.1
"""Grid step of the weight search learned fusion is compared with (weighted sum of min-max scores)."""
# Where each phase of :func:`run_learned` sits on its one progress scale.
FIT_SHARE, SEARCH_SHARE = 0.6, 0.35
BEST_MEMBER = "best member"
SEARCHED = "searched weights"


@dataclass(frozen=True)
class HolmComparison:
    """One paired comparison of learned fusion's run (learned minus ``name``, per test user), with its
    Holm-adjusted p-value over the run's ``tests`` comparisons."""

    against: str  # BEST_MEMBER or SEARCHED
    name: str  # the other list in sentences: the best member's name, or "searched"
    comparison: PairedComparison
    p_holm: float
    tests: int

    def sentence(self, learned: str = "learned") -> str:
        """The comparison's sentence with both p-values, its verdict read from the Holm-adjusted one, for example
        "learned beats ease by 0.012 NDCG@10 (95% CI ...); Wilcoxon p = 0.003 over 943 users (0.006 after Holm's
        correction over 2 tests): a real difference"."""
        return self.comparison.sentence(self.name, learned, self.p_holm, self.tests)


@dataclass(frozen=True)
class LearnedRun:
    """What :func:`run_learned` produced: the model, its test report, the weight search it is compared with,
    and the paired comparisons with Holm-adjusted p-values (the same for the CLI and the dashboard)."""

    report: LearnedReport
    searched_weights: dict[str, float] | None  # chosen on validation (None: no feasible point)
    searched_evaluation: Evaluation | None  # those weights' fusion on test at k
    search_message: str  # the search's own summary (search.OptimiseResult.message)
    best_evaluation: Evaluation  # the best test member's evaluation at k
    comparisons: tuple[HolmComparison, ...]  # versus the best member, then versus searched weights (if found)
    k: int
    top_n: int
    seed: int
    search_step: float

    @property
    def model(self) -> LearnedFusion:
        return self.report.model

    @property
    def evaluation(self) -> Evaluation:
        return self.report.evaluation

    @property
    def best_member(self) -> str:
        return self.report.best_member

    def comparison(self, against: str) -> HolmComparison | None:
        """The comparison against BEST_MEMBER or SEARCHED (None: the search chose no weights)."""
        return next((c for c in self.comparisons if c.against == against), None)

    def sentences(self, learned: str = "learned") -> dict[str, str]:
        """Report lines, label -> sentence with the Holm-adjusted p: "versus best member" and, when the search
        chose weights, "versus searched weights (ease=0.80, itemknn=0.20)"."""
        out: dict[str, str] = {}
        for c in self.comparisons:
            if c.against == SEARCHED and self.searched_weights:
                chosen = ", ".join(f"{n}={w:.2f}" for n, w in self.searched_weights.items())
                out[f"versus {SEARCHED} ({chosen})"] = c.sentence(learned)
            else:
                out[f"versus {c.against}"] = c.sentence(learned)
        return out


def _scaled(progress: Progress | None, start: float, share: float) -> Progress | None:
    if progress is None:
        return None
    return lambda fraction, text: progress(start + share * min(max(float(fraction), 0.0), 1.0), text)


def run_learned(
    valid_session: LiveSession,
    test_session: LiveSession,
    valid_models: Mapping[str, Scorer],
    test_models: Mapping[str, Scorer],
    year: np.ndarray | None = None,
    top_n: int = DEFAULT_TOP_N,
    k: int = 10,
    seed: int = 42,
    progress: Progress | None = None,
    search_step: float = SEARCH_STEP,
    model: LearnedFusion | None = None,
    valid_lock: AbstractContextManager | None = None,
    test_lock: AbstractContextManager | None = None,
) -> LearnedRun:
    """Learned fusion's whole protocol, as ``fuse --method learned`` and the dashboard run it.

    1. :func:`fit_learned` on ``valid_session`` (members fitted on train minus validation), unless ``model``
       (trained earlier for the same sessions and ``top_n``) is given;
    2. weights searched on validation for the comparison: ``search.optimise(valid, test, metric="ndcg@k",
       step=search_step, seed=seed)`` (weighted sum of min-max scores);
    3. :func:`report_learned` on ``test_session`` at ``k`` against the best member and the searched weights,
       with Holm's correction (``stats.holm_adjust``) over those comparisons.

    ``progress(fraction, text)`` sees one 0..1 scale over the three steps. ``valid_lock`` / ``test_lock`` (any
    context managers) are held around each use of that session, for sessions other threads use too; both are
    taken, valid first, for the search.
    """
    valid_lock = valid_lock if valid_lock is not None else nullcontext()
    test_lock = test_lock if test_lock is not None else nullcontext()
    k = check_whole(k, "k")
    if model is None:
        with valid_lock:
            model = fit_learned(
                valid_session, valid_models, year, top_n, seed=seed, progress=_scaled(progress, 0.0, FIT_SHARE)
            )
    elif model.top_n != int(top_n) or model.member_names != tuple(valid_session.members):
        raise ConfigError("the given learned model was trained for other members or another top_n: train it again")
    if progress:
        progress(FIT_SHARE, f"searching weights on validation for the comparison (grid step {search_step:g})")
    with valid_lock, test_lock:
        found = optimise(
            valid_session,
            test_session,
            metric=f"ndcg@{k}",
            step=search_step,
            seed=seed,
            progress=_scaled(progress, FIT_SHARE, SEARCH_SHARE),
        )
    if progress:
        progress(FIT_SHARE + SEARCH_SHARE, "ranking the test users once with the learned model")
    searched = found.test.evaluation if found.test is not None else None
    with test_lock:
        report = report_learned(model, test_session, test_models, year, k=k, searched=searched)
        best_ev = test_session.member_evaluation(report.best_member, k)
    pairs = [(BEST_MEMBER, report.best_member, report.versus_best_member)]
    if report.versus_searched is not None:
        pairs.append((SEARCHED, "searched", report.versus_searched))
    adjusted = holm_adjust([c.p_value for _, _, c in pairs])
    tests = int(np.isfinite([c.p_value for _, _, c in pairs]).sum())
    comparisons = tuple(
        HolmComparison(against, name, c, float(p), tests) for (against, name, c), p in zip(pairs, adjusted, strict=True)
    )
    if progress:
        progress(1.0, f"learned fusion ready: {model.best_iteration} trees")
    # Only the small parts of the search are kept (a run is cached by the dashboard): not its grid or fused lists.
    return LearnedRun(
        report,
        found.weights,
        searched,
        found.message,
        best_ev,
        comparisons,
        k,
        int(top_n),
        int(seed),
        float(search_step),
    )
