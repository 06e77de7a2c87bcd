"""The live loop: move a weight, see every user's fused list and every metric change at once.

A :class:`LiveSession` scores each member once for the evaluated users (training items masked to -inf),
keeps each member's top-N list and, lazily, each normaliser's normalised blocks (normalising does not
depend on the weights). :meth:`LiveSession.update` then only re-combines, re-ranks and re-evaluates.

Memory grows with users x items ("cells"), so it is estimated before anything is scored
(:func:`session_bytes`): per member, its raw block (4 bytes a cell) and one normaliser's block (values and
an absent mask, 5 bytes a cell); the fused block, its ranking copy and the fusion's masks while an update
runs (``_WORK_BYTES_PER_CELL``); the members' top-N lists and the fusion's candidate tables; one user
block's scratch (64 MB). 3 members x 943 users x 1,682 items (MovieLens-100K) is about 145 MB; 2 members
x 10,000 users x 100,000 items is 28 GiB. Scoring, top-N lists and normalising go in user blocks of about
``DEFAULT_BLOCK_CELLS`` cells (``reco_core.scale.auto_block_size``), so their temporaries stay one block's
size at any catalogue width. A session over ``max_bytes`` is refused with a one-line ScaleError that gives
the figure and the fixes: a user sample (``users=sample_users(split, n)``, with the largest n that fits),
a k-core filter, or ``reco_core.scale.evaluate_fusion_blocked``, which evaluates every user in blocks. A
second normaliser's blocks are kept only while the session stays within ``max_bytes`` (else the older ones
are dropped and recomputed when asked for again).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reco_core.checks import check_whole
from reco_core.data import Interactions
from reco_core.errors import ConfigError, ScaleError, quote
from reco_core.fusion import (
    DEFAULT_TOP_N,
    FusionResult,
    NormalisedScores,
    check_method,
    check_normaliser,
    check_weights,
    fuse,
    normalise_members,
)
from reco_core.metrics import EvalContext, Evaluation, evaluate
from reco_core.models.base import Scorer
from reco_core.ranking import Ranking, check_k, mask_rows, top_k
from reco_core.scale import DEFAULT_BLOCK_CELLS, auto_block_size
from reco_core.splitting import Split, check_part
from reco_core.stats import PairedComparison, paired_comparison

if TYPE_CHECKING:
    from reco_core.config import FusionSpec, RerankSpec
    from reco_core.rerank import RerankInputs

__all__ = ["LiveResult", "LiveSession", "Overlap", "check_session_size", "sample_users", "session_bytes"]

DEFAULT_MAX_BYTES = 2 * 1024**3
# Bytes per users x items cell that a session keeps per member: the raw float32 block, and per normaliser
# used its float32 values and bool absent mask.
_RAW_BYTES_PER_CELL = 4
_NORMALISED_BYTES_PER_CELL = 4 + 1
# Bytes per cell, whatever the number of members, while an update runs: wsum's fused float32 block (4), the
# ranker's float32 copy of it (4), the "no member scores it" masks the fusion keeps per set of weighted
# members (bool, trimmed to 1 by ``_trim_fusion_cache``: wsum now fuses over the members' candidates and
# needs them only when it falls back to the whole catalogue) and numpy's temporaries.
_WORK_BYTES_PER_CELL = 4 + 4 + 1 + 2
# Bytes per listed item per member: the top-N list (int32 item, float32 score), the result-level
# methods' cached candidate tables, and what the fusion keeps per candidate column between updates (the
# members' union holds about 2.5 columns per listed slot with 3 members): the list methods' weight-free
# points (8-16 bytes a column, ``list_methods._pieces``) and wsum's normalised cells (5 bytes a column,
# ``score_methods._candidate_values``).
_LIST_BYTES_PER_SLOT = 8 + 24 + 64


def session_bytes(n_members: int, n_users: int, n_items: int, top_n: int = DEFAULT_TOP_N, normalisers: int = 1) -> int:
    """Estimated peak bytes of a LiveSession (module docstring): what it keeps and what one update needs.

    ``normalisers``: how many normalisers' blocks are kept at once (1 for a session that uses one).
    """
    cells = int(n_users) * int(n_items)
    slots = int(n_users) * min(int(top_n), int(n_items))
    per_cell = _RAW_BYTES_PER_CELL + _NORMALISED_BYTES_PER_CELL * int(normalisers)
    per_member = per_cell * cells + _LIST_BYTES_PER_SLOT * slots
    # Scoring, listing and normalising one user block: up to 64 bytes a cell (the rank normaliser's float64
    # ranks and sort order) over DEFAULT_BLOCK_CELLS cells.
    scratch = 64 * DEFAULT_BLOCK_CELLS
    return int(n_members) * per_member + _WORK_BYTES_PER_CELL * cells + scratch


def check_session_size(
    n_members: int, n_users: int, n_items: int, top_n: int = DEFAULT_TOP_N, max_bytes: int = DEFAULT_MAX_BYTES
) -> int:
    """The session's estimated bytes (``session_bytes``); a ScaleError, before anything is fitted or scored,
    when they exceed ``max_bytes``. The CLI and the dashboard can call it as soon as the split is known."""
    need = session_bytes(n_members, n_users, n_items, top_n)
    if need <= max_bytes:
        return need
    per_user = max(1, session_bytes(n_members, 1, n_items, top_n) - session_bytes(n_members, 0, n_items, top_n))
    fits = max(0, (int(max_bytes) - session_bytes(n_members, 0, n_items, top_n)) // per_user)
    sample = (
        f"pass a user sample of at most {fits:,} users (users=sample_users(split, {fits}))"
        if fits
        else "pass a user sample (users=sample_users(split, n)) and raise max_bytes, which not even one user fits in"
    )
    raise ScaleError(
        f"a live session over {n_members} members x {n_users:,} users x {n_items:,} items needs about "
        f"{_gib(need)} of memory (limit {_gib(max_bytes)}): {sample}, drop rare items and users with a k-core "
        "filter (--kcore 5), or evaluate every user in bounded blocks with reco_core.scale.evaluate_fusion_blocked"
    )


def _gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB" if n >= 0.1 * 1024**3 else f"{n / 1024**2:.0f} MB"


@dataclass(frozen=True)
class LiveResult:
    """One update: the fused ranking, its evaluation, the fusion details and the best single member.

    ``comparison`` (fused versus the best member on ``ndcg@k``, per-user paired Wilcoxon and bootstrap
    interval of the mean difference, ``mean_diff = fused - best``) is computed on first access: the
    bootstrap costs more than the whole update, and a slider move does not always need it.

    With a re-ranker (``rerank``), ``ranking`` and ``evaluation`` are the re-ranked top-k's, ``fusion`` the fused
    top-N it re-ordered, and ``fused_ranking`` the fused top-k the list would have been without it.
    """

    ranking: Ranking
    evaluation: Evaluation
    fusion: FusionResult
    best_member: str
    best_evaluation: Evaluation
    metric: str
    seconds: float
    rerank: RerankSpec | None = None
    fused_ranking: Ranking | None = None
    _lazy: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def comparison(self) -> PairedComparison:
        return self.compare(self.metric)

    def compare(self, key: str) -> PairedComparison:
        """Fused versus the best member on any per-user metric key (computed once per key)."""
        if key not in self._lazy:
            if key not in self.evaluation.per_user or key not in self.best_evaluation.per_user:
                raise ConfigError(
                    f"{key!r} is not a per-user metric of this evaluation: choose one of "
                    f"{', '.join(self.evaluation.per_user)}"
                )
            self._lazy[key] = paired_comparison(
                self.best_evaluation.per_user[key], self.evaluation.per_user[key], metric=key
            )
        return self._lazy[key]

    def comparison_sentence(self, key: str | None = None) -> str:
        return self.compare(key or self.metric).sentence(self.best_member, "fused")


@dataclass(frozen=True)
class Overlap:
    """``jaccard``: members x members mean Jaccard of their top-k lists over users (diagonal 1).

    ``share`` (when a fused list is given): per member, ``in_list`` = fraction of the fused slots whose
    item is in that member's top-k; ``only_in_list`` = in that member's top-k and no other's. The row
    ``(none)`` holds the slots whose item is in no member's top-k (result-level fusion can promote items
    from deeper in the lists).
    """

    k: int
    jaccard: pd.DataFrame
    share: pd.DataFrame | None


def sample_users(split: Split, n: int, part: str = "test", seed: int = 0) -> np.ndarray:
    """A seeded sample of ``n`` evaluated users (sorted), for sessions over large catalogues."""
    users = split.eval_users(part)
    check_whole(n, "n")
    if n >= len(users):
        return users
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(users, size=int(n), replace=False)).astype(np.int32)


def _same_matrix(a: Interactions, b: Interactions) -> bool:
    if a is b:
        return True
    ma, mb = a.matrix, b.matrix
    return (
        ma.shape == mb.shape
        and ma.nnz == mb.nnz
        and np.array_equal(ma.indptr, mb.indptr)
        and np.array_equal(ma.indices, mb.indices)
    )


class LiveSession:
    """Members' scores for the evaluated users, computed once; ``update`` fuses and evaluates.

    ``top_n`` is the length of each member's list (result-level methods and vote see only these);
    ``max_k`` the largest k ``update`` accepts (default min(50, top_n)); both are capped at the
    catalogue size.

    ``part="test"`` evaluates on ``split.test``; ``part="valid"`` on ``split.valid``, and then
    ``split.train`` is train minus validation: the members must have been fitted on exactly that
    matrix (checked), so weights searched here never see the validation items.
    """

    def __init__(
        self,
        members: Mapping[str, Scorer | None],
        split: Split,
        ctx: EvalContext,
        part: str = "test",
        users: np.ndarray | None = None,
        top_n: int = DEFAULT_TOP_N,
        max_k: int | None = None,
        block_size: int | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if not members:
            raise ConfigError("a live session needs at least one member: give {name: fitted model}")
        self.split = split
        self.ctx = ctx
        self.part = check_part(part, split)
        self.target: Interactions = split.test if self.part == "test" else split.valid  # type: ignore[assignment]
        self.train = split.train
        self.n_items = split.train.n_items
        if ctx.n_items != self.n_items:
            raise ConfigError(
                f"EvalContext is for {ctx.n_items} items but the split has {self.n_items}: "
                "build it with EvalContext.from_train(split.train)"
            )
        self._names = tuple(str(n) for n in members)
        for name, model in members.items():
            self._check_member(str(name), model)
        self.users = self._check_users(users)
        check_whole(top_n, "top_n")
        # Users per scoring block: about DEFAULT_BLOCK_CELLS cells whatever the catalogue's width.
        self.block_size = auto_block_size(self.n_items) if block_size is None else check_whole(block_size, "block_size")
        self.max_bytes = check_whole(max_bytes, "max_bytes")
        max_k = check_whole(min(50, int(top_n)) if max_k is None else max_k, "max_k")
        # Both are capped at the catalogue size: a 40-item catalogue cannot hold a list of 50.
        self.top_n = int(min(top_n, self.n_items))
        max_k = int(min(max_k, self.n_items))
        if max_k > self.top_n:
            raise ConfigError(
                f"max_k={max_k} is larger than top_n={self.top_n}: the members' lists must hold max_k items"
            )
        self.max_k = int(max_k)
        check_session_size(len(self._names), len(self.users), self.n_items, self.top_n, self.max_bytes)
        self._row = np.full(self.train.n_users, -1, dtype=np.int64)
        self._row[self.users] = np.arange(len(self.users))
        self._blocks: dict[str, np.ndarray] = {}
        self._rankings: dict[str, Ranking] = {}
        for name in self._names:
            model = members[name]
            assert model is not None
            block = np.empty((len(self.users), self.n_items), dtype=np.float32)
            lists = []
            for start in range(0, len(self.users), self.block_size):
                rows = self.users[start : start + self.block_size]
                part_block = np.array(model.score(rows), dtype=np.float32, copy=True)
                block[start : start + len(rows)] = mask_rows(part_block, self.train.matrix, rows)
                # Ranked per block (row by row, as on the whole block) so the ranker's copy stays one block.
                lists.append(top_k(block[start : start + len(rows)], self.top_n, rows))
            self._blocks[name] = block
            self._rankings[name] = Ranking.concat(lists)
        self._normalised: dict[str, NormalisedScores] = {}
        self._member_evals: dict[tuple[str, int], Evaluation] = {}
        self._fusion_cache: dict = {}

    # -- validation ------------------------------------------------------------------------------
    def _check_member(self, name: str, model: Scorer | None) -> None:
        if model is None:
            raise ConfigError(f"member {name!r} is missing (it failed to fit): remove it or fix its fit")
        if not isinstance(model, Scorer):
            raise ConfigError(f"member {name!r} is a {type(model).__name__}, not a model: give fitted Scorers")
        if not model.fitted:
            raise ConfigError(f"member {name!r} is not fitted: fit it on split.train first")
        assert model.train is not None
        if model.train.n_items != self.n_items:
            raise ConfigError(
                f"member {name!r} scores {model.train.n_items} items but the split has {self.n_items}: "
                "fuse only members fitted on this dataset's catalogue"
            )
        if not _same_matrix(model.train, self.train):
            fix = (
                "for part='valid' fit it on train minus validation (this split's train), so search never sees "
                "validation items"
                if self.part == "valid"
                else "fit it on this split's train"
            )
            raise ConfigError(
                f"member {name!r} was fitted on {model.train.nnz:,} interactions but the split's train has "
                f"{self.train.nnz:,}: {fix}"
            )

    def _check_users(self, users: np.ndarray | None) -> np.ndarray:
        evaluated = self.split.eval_users(self.part)
        if users is None:
            if len(evaluated) == 0:
                raise ConfigError(f"no user has held-out items in {self.part}: use a larger held-out fraction")
            return evaluated
        arr = np.asarray(users)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError("users must be a non-empty 1-d array of user indices")
        if arr.min() < 0 or arr.max() >= self.train.n_users:
            raise ConfigError(f"user indices must be in 0..{self.train.n_users - 1}")
        if len(np.unique(arr)) != len(arr):
            raise ConfigError("users holds an index twice: give each user once")
        without = int((~np.isin(arr, evaluated)).sum())
        if without:
            raise ConfigError(
                f"{without} of the {len(arr)} users have nothing held out in {self.part}: "
                "pick users from split.eval_users(part)"
            )
        return arr.astype(np.int32)

    def _weights(self, weights: Sequence[float] | Mapping[str, float]) -> np.ndarray:
        if isinstance(weights, Mapping):
            unknown = [str(n) for n in weights if n not in self._names]
            if unknown:
                raise ConfigError(f"weights name unknown member {unknown[0]!r}: members are {', '.join(self._names)}")
            missing = [n for n in self._names if n not in weights]
            if missing:
                raise ConfigError(f"no weight for member {missing[0]!r}: give every member a weight (0 leaves it out)")
            weights = [weights[n] for n in self._names]
        return check_weights(weights, len(self._names), self._names)

    def _check_k(self, k: int) -> int:
        check_k(k, self.n_items)
        if k > self.max_k:
            raise ConfigError(f"k={k} is larger than this session's max_k={self.max_k}: choose k <= {self.max_k}")
        return int(k)

    # -- what the dashboard reads -----------------------------------------------------------------
    @property
    def members(self) -> tuple[str, ...]:
        return self._names

    @property
    def n_users(self) -> int:
        return len(self.users)

    def member_ranking(self, name: str) -> Ranking:
        """A member's top-N list (training items excluded) for the session's users."""
        return self._rankings[self._check_name(name)]

    def _check_name(self, name: str) -> str:
        # isinstance first: a list or an array is unhashable, and ``in`` on the dict would raise TypeError.
        if not isinstance(name, str) or name not in self._rankings:
            raise ConfigError(f"unknown member {_clip(name)}: members are {', '.join(self._names)}")
        return name

    def member_evaluation(self, name: str, k: int = 10) -> Evaluation:
        """A member's own evaluation at k (all metrics), computed once per (member, k)."""
        key = (self._check_name(name), self._check_k(k))
        if key not in self._member_evals:
            self._member_evals[key] = evaluate(self._rankings[name].head(k), self.target, self.ctx, ks=(k,))
        return self._member_evals[key]

    def best_member(self, k: int = 10, metric: str | None = None) -> str:
        """The member with the highest mean ``metric`` (default ndcg@k); ties go to the earlier member."""
        if metric is not None and not isinstance(metric, str):
            raise ConfigError(f"metric={_clip(metric)} is not a metric key: write name@k, e.g. ndcg@{k}")
        key = metric or f"ndcg@{k}"
        values = [self.member_evaluation(n, k).value(key) for n in self._names]
        return self._names[int(np.argmax(values))]

    def normalised(self, normaliser: str) -> NormalisedScores:
        """Every member's normalised block, computed once per normaliser."""
        key = check_normaliser(normaliser)
        if key not in self._normalised:
            kept = session_bytes(len(self._names), len(self.users), self.n_items, self.top_n, len(self._normalised) + 1)
            if kept > self.max_bytes and self._normalised:
                # Another normaliser's blocks would pass max_bytes: drop the older ones (recomputed when
                # asked for again) and the fusion's masks keyed by their arrays.
                self._normalised.clear()
                self._fusion_cache.clear()
            self._normalised[key] = self._normalise(key)
        return self._normalised[key]

    def _normalise(self, key: str) -> NormalisedScores:
        """``normalise_members`` over the whole blocks, computed in user blocks: every normaliser works row
        by row, so the result is the same and its temporaries stay one block's size."""
        n = len(self.users)
        values = [np.empty((n, self.n_items), dtype=np.float32) for _ in self._names]
        absent = [np.empty((n, self.n_items), dtype=bool) for _ in self._names]
        for start in range(0, n, self.block_size):
            stop = min(n, start + self.block_size)
            part = normalise_members([self._blocks[name][start:stop] for name in self._names], key)
            for j in range(len(self._names)):
                values[j][start:stop] = part.values[j]
                absent[j][start:stop] = part.absent[j]
        return NormalisedScores(key, tuple(values), tuple(absent))

    def _trim_fusion_cache(self) -> None:
        """Keep the fusion's per-weighted-set masks ("nobody": bool, a cell each) under one byte a cell.

        Each set of two or more weighted members gets its own mask (4 with 3 members, 57 with 6); past the
        budget they are dropped and recomputed on the next update that needs them.
        """
        masks = [key for key in self._fusion_cache if isinstance(key, tuple) and key and key[0] == "nobody"]
        held = sum(self._fusion_cache[key].nbytes for key in masks if len(key) > 2)
        if held > len(self.users) * self.n_items:
            for key in masks:
                del self._fusion_cache[key]

    def has_user(self, user_index: int) -> bool:
        """Whether the session holds rows for this user (one of its evaluated, or sampled, users).

        False for anything that is not a whole number (None, text, NaN, 1.5): no exception as a membership test.
        """
        u = _whole_number(user_index)
        return u is not None and 0 <= u < len(self._row) and bool(self._row[u] >= 0)

    def _row_of(self, user_index: int) -> int:
        u = _whole_number(user_index)
        if u is None:
            raise ConfigError(
                f"user index {_clip(user_index)} is not a whole number: give a 0-based user index "
                "(IdMap.index_of turns an external user id into one)"
            )
        if not self.has_user(u):
            raise ConfigError(f"user index {u} is not in this session: choose one of its evaluated users")
        return int(self._row[u])

    def user_scores(self, user_index: int) -> dict[str, np.ndarray]:
        """Each member's raw score row for one user (float32 [n_items]; training items -inf, NaN = cannot score)."""
        row = self._row_of(user_index)
        return {n: self._blocks[n][row].copy() for n in self._names}

    def user_normalised_scores(self, user_index: int, normaliser: str) -> dict[str, np.ndarray]:
        """Each member's normalised row for one user; training items and unscorable items are NaN."""
        row = self._row_of(user_index)
        norm = self.normalised(normaliser)
        out = {}
        for name, values, absent in zip(self._names, norm.values, norm.absent, strict=True):
            r = values[row].copy()
            r[absent[row]] = np.nan
            out[name] = r
        return out

    # -- the loop --------------------------------------------------------------------------------
    def fuse(
        self,
        weights: Sequence[float] | Mapping[str, float],
        method: str = "wsum",
        normaliser: str = "minmax",
        k: int = 10,
        rrf_k: float = 60,
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> FusionResult:
        """Only the fusion (no evaluation): the fused top-k and its contributions.

        ``params``: values of the method's declared parameters (``METHODS[method].params``); ``rrf_k`` is
        the same as ``params={"rrf_k": ...}`` for rrf.
        """
        w = self._weights(weights)
        k = self._check_k(k)
        spec = check_method(method)
        norm = self.normalised(normaliser) if spec.level == "score" else None
        self._trim_fusion_cache()
        return fuse(
            None,
            [self._rankings[n] for n in self._names],
            w,
            spec.name,
            normaliser,
            k,
            self.n_items,
            self.users,
            rrf_k,
            seed,
            top_n=self.top_n,
            member_names=self._names,
            normalised=norm,
            cache=self._fusion_cache,
            params=params,
        )

    def apply(
        self, weights: Sequence[float] | Mapping[str, float], spec: FusionSpec, rerank: RerankSpec | None = None
    ) -> LiveResult:
        """``update`` with the fusion given as one FusionSpec (method, normaliser, k, seed, method parameters),
        and, with ``rerank``, the fused top-N re-ranked to the top-k (``reco_core.rerank``) before evaluation.

        The session's own ``top_n`` (the members' list length) is used; ``spec.top_n`` describes it. The re-ranker
        reaches ``min(rerank.candidates, max_k)`` fused items deep.
        """
        if rerank is None:
            return self.update(weights, spec.method, spec.normaliser, spec.k, seed=spec.seed, params=spec.param_map)
        from reco_core.rerank import rerank as rerank_lists

        start = time.perf_counter()
        k = self._check_k(spec.k)
        depth = self.rerank_depth(rerank, k)
        fused = self.fuse(weights, spec.method, spec.normaliser, depth, seed=spec.seed, params=spec.param_map)
        ranking = rerank_lists(fused.ranking, k, rerank.method, rerank.lam, self.rerank_inputs(rerank.similarity))
        evaluation = evaluate(ranking, self.target, self.ctx, ks=(k,))
        best = self.best_member(k)
        seconds = time.perf_counter() - start
        return LiveResult(
            ranking,
            evaluation,
            fused,
            best,
            self.member_evaluation(best, k),
            f"ndcg@{k}",
            seconds,
            rerank=rerank,
            fused_ranking=fused.ranking.head(k),
        )

    def rerank_depth(self, rerank: RerankSpec, k: int) -> int:
        """How deep into the fused list ``rerank`` reaches here: its ``candidates``, capped at the session's
        ``max_k``; ConfigError when that is less than k."""
        depth = min(rerank.candidates, self.max_k)
        if depth < k:
            raise ConfigError(
                f"re-ranking needs at least k={k} fused candidates but this session lists {depth}: lower k"
            )
        return depth

    def rerank_inputs(self, similarity: str = "genre") -> RerankInputs:
        """What a re-ranker reads: this session's catalogue context and training histories."""
        from reco_core.rerank import RerankInputs

        return RerankInputs(self.ctx, self.train.matrix, similarity)

    def fused_evaluation(self, result: LiveResult) -> Evaluation:
        """Every metric of the fused top-k the re-ranker started from (the result's own evaluation when it was not
        re-ranked); computed once per result."""
        if result.fused_ranking is None:
            return result.evaluation
        if "fused_evaluation" not in result._lazy:
            k = result.ranking.k
            result._lazy["fused_evaluation"] = evaluate(result.fused_ranking, self.target, self.ctx, ks=(k,))
        return result._lazy["fused_evaluation"]

    def movement(self, result: LiveResult) -> pd.DataFrame:
        """How far a re-ranked result moved (``reco_core.rerank.movement``): from the fused list and from each
        member's own top-k, mean share of slots changed and mean rank-biased overlap over the users."""
        from reco_core.rerank import movement

        if result.fused_ranking is None:
            raise ConfigError("this result was not re-ranked: choose a re-ranker to see how far it moved")
        if "movement" not in result._lazy:
            k = result.ranking.k
            members = {name: self.member_ranking(name).head(k) for name in self._names}
            result._lazy["movement"] = movement(result.ranking, {"fused list": result.fused_ranking, **members})
        return result._lazy["movement"].copy()

    def update(
        self,
        weights: Sequence[float] | Mapping[str, float],
        method: str = "wsum",
        normaliser: str = "minmax",
        k: int = 10,
        rrf_k: float = 60,
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> LiveResult:
        """Re-combine, re-rank and re-evaluate (every metric at k) with new weights or method."""
        start = time.perf_counter()
        result = self.fuse(weights, method, normaliser, k, rrf_k, seed, params)
        evaluation = evaluate(result.ranking, self.target, self.ctx, ks=(k,))
        best = self.best_member(k)
        seconds = time.perf_counter() - start
        return LiveResult(
            result.ranking, evaluation, result, best, self.member_evaluation(best, k), f"ndcg@{k}", seconds
        )

    def ablation(
        self,
        weights: Sequence[float] | Mapping[str, float],
        method: str = "wsum",
        normaliser: str = "minmax",
        k: int = 10,
        rrf_k: float = 60,
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Evaluation | None]:
        """Evaluation of the fusion with each member removed (its weight set to 0, which fusion treats as
        absent). None where the remaining members all have weight 0, so nothing is left to fuse."""
        w = self._weights(weights)
        out: dict[str, Evaluation | None] = {}
        for i, name in enumerate(self._names):
            rest = w.copy()
            rest[i] = 0.0
            if not (rest > 0).any():
                out[name] = None
                continue
            result = self.fuse(rest.tolist(), method, normaliser, k, rrf_k, seed, params)
            out[name] = evaluate(result.ranking, self.target, self.ctx, ks=(k,))
        return out

    def overlap(self, k: int = 10, fused: LiveResult | FusionResult | Ranking | None = None) -> Overlap:
        """Pairwise mean Jaccard of the members' top-k lists, and where a fused list's items come from."""
        k = self._check_k(k)
        lists = [self._rankings[n].item_idx[:, :k] for n in self._names]
        m = len(lists)
        jac = np.eye(m)
        for a in range(m):
            for b in range(a + 1, m):
                jac[a, b] = jac[b, a] = _mean_jaccard(lists[a], lists[b])
        jaccard = pd.DataFrame(jac, index=list(self._names), columns=list(self._names))
        share = None
        if fused is not None:
            ranking = fused if isinstance(fused, Ranking) else fused.ranking
            if not np.array_equal(ranking.user_idx, self.users):
                raise ConfigError("the fused ranking is for other users than this session: fuse with this session")
            items = ranking.item_idx[:, :k]
            valid = items >= 0
            inside = np.stack([_contains(items, x) for x in lists], axis=-1)  # [n, k, m]
            n_slots = max(int(valid.sum()), 1)
            only = inside & (inside.sum(axis=-1, keepdims=True) == 1)
            share = pd.DataFrame(
                {
                    "in_list": [float(inside[..., j].sum()) / n_slots for j in range(m)],
                    "only_in_list": [float(only[..., j].sum()) / n_slots for j in range(m)],
                },
                index=list(self._names),
            )
            nowhere = float((valid & ~inside.any(axis=-1)).sum()) / n_slots
            share.loc["(none)"] = [nowhere, nowhere]
        return Overlap(k, jaccard, share)


def _whole_number(value: object) -> int | None:
    """``value`` as an int when it is a whole number (int, numpy integer, or a float such as 3.0), else None.

    Booleans, text, None, NaN, infinities and fractions are not user indices; a silent cast would pick a user.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


_clip = quote  # the one clip helper: reco_core.errors.quote


def _contains(items: np.ndarray, lists: np.ndarray) -> np.ndarray:
    """[n, k] bool: items[u, j] is in lists[u] (padding never matches)."""
    return ((items[:, :, None] == lists[:, None, :]) & (items[:, :, None] >= 0)).any(axis=2)


def _mean_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = _contains(a, b).sum(axis=1)
    union = (a >= 0).sum(axis=1) + (b >= 0).sum(axis=1) - inter
    ok = union > 0
    return float((inter[ok] / union[ok]).mean()) if ok.any() else float("nan")
