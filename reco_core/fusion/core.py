"""The entry points :func:`fuse` and :func:`fused_scores`, the :class:`FusionResult`, and the checks at the boundary.

Weights are non-negative, finite, not all zero, one per member; they are divided by their sum before
use. A member with weight 0 is dropped before fusing, exactly as if it were not there (it still gets a
column of zero contributions, so explanations keep one column per member).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from reco_core.checks import AT_LEAST, check_whole
from reco_core.errors import ConfigError, quote
from reco_core.fusion.inputs import _Inputs
from reco_core.fusion.normalisers import NormalisedScores, check_normaliser, normalise_members
from reco_core.fusion.registry import FusionMethod, check_method
from reco_core.models.base import as_indices
from reco_core.ranking import Ranking, check_k, top_k

DEFAULT_TOP_N = 100
# Normalisers that are ``(s - a_row) * b_row`` on a row's finite cells: wsum needs only each row's a and b
# and the cells it ranks, never a whole normalised block.
_ROW_AFFINE = ("none", "minmax")


@dataclass(frozen=True)
class FusionResult:
    """The fused top-k and what explanations need.

    ``contributions[u, j, m]``: member m's part of the fused score of slot j (wsum: ``w_m * norm``; vote:
    ``w_m`` if m lists the item; rrf/borda/combsum: that member's term; combmnz: the term times the list
    count, so a row sums to the fused score; interleaving: 1 for the member that placed the slot). Weights
    are the ones given divided by their sum. ``placed_by[u, j]``: the member that placed slot j
    (interleaving only; -1 for padding). ``member_rankings``: the members' top-N lists when the method
    used them (or they were given).
    """

    ranking: Ranking
    method: str
    normaliser: str
    weights: np.ndarray
    contributions: np.ndarray
    member_names: tuple[str, ...]
    placed_by: np.ndarray | None = None
    member_rankings: tuple[Ranking | None, ...] | None = None

    @property
    def n_members(self) -> int:
        return len(self.member_names)


def check_weights(weights: ArrayLike, n_members: int, names: Sequence[str] | None = None) -> np.ndarray:
    """Validate weights (one per member, finite, >= 0, not all zero); returns them as float64."""
    try:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"weights={quote(weights)} are not numbers: give one number per member") from exc
    if w.size != n_members:
        raise ConfigError(f"{w.size} weights given for {n_members} members: give exactly one weight per member")
    label = list(names) if names is not None else [f"member {i + 1}" for i in range(n_members)]
    bad = np.flatnonzero(~np.isfinite(w))
    if bad.size:
        raise ConfigError(f"weight of {label[bad[0]]!r} is {w[bad[0]]}: weights must be finite numbers")
    neg = np.flatnonzero(w < 0)
    if neg.size:
        raise ConfigError(f"weight of {label[neg[0]]!r} is {w[neg[0]]:g}: weights must be >= 0")
    if not (w > 0).any():
        raise ConfigError("all weights are zero: give at least one member a positive weight")
    return w


def share_of_sum(weights: np.ndarray) -> np.ndarray:
    """``weights / weights.sum()`` for finite weights >= 0, not all zero, without overflow.

    The weights are first divided by the largest, so the sum is at most ``len(weights)``: summing
    ``[1e308] * 3`` directly gives inf, and every share would become 0.
    """
    scaled = weights / weights.max()
    return scaled / scaled.sum()


_INT32_MAX = np.iinfo(np.int32).max


def _check_user_idx(user_idx: ArrayLike) -> np.ndarray:
    """``user_idx`` as int32 [n]: whole numbers in 0..2**31 - 1, one per row, else ConfigError naming user_idx."""
    users = as_indices(user_idx, "user_idx")
    if np.ndim(user_idx) > 1:  # as_indices flattens; a table of users would be read row after row, silently
        raise ConfigError(f"user_idx has shape {np.shape(user_idx)}: give a 1-d list of user indices, one per row")
    if users.size and (users.min() < 0 or users.max() > _INT32_MAX):
        bad = users[(users < 0) | (users > _INT32_MAX)][0]
        raise ConfigError(f"user_idx holds {int(bad)}: user indices are 0-based rows, from 0 to {_INT32_MAX}")
    return users.astype(np.int32)


def _names(member_names: Sequence[str] | None, n: int) -> tuple[str, ...]:
    if member_names is None:
        return tuple(f"member {i + 1}" for i in range(n))
    names = tuple(str(x) for x in member_names)
    if len(names) != n:
        raise ConfigError(f"{len(names)} member names for {n} members: give one name per member")
    return names


def _check_blocks(
    blocks: Sequence[np.ndarray | None], names: tuple[str, ...], n: int, n_items: int
) -> list[np.ndarray]:
    """The blocks, each checked (none missing)."""
    checked = []
    for name, b in zip(names, blocks, strict=True):
        if b is None:
            raise ConfigError(
                f"member {name!r} has no scores (it failed to fit or was not given): remove it or refit it"
            )
        if b.ndim != 2 or b.shape[0] != n:
            raise ConfigError(f"member {name!r} scores shape {b.shape}: expected ({n}, {n_items}), one row per user")
        if b.shape[1] != n_items:
            raise ConfigError(
                f"member {name!r} scores {b.shape[1]} items but the catalogue has {n_items}: "
                "fuse only members fitted on the same catalogue"
            )
        checked.append(b)
    return checked


def _check_rankings(
    rankings: Sequence[Ranking | None], names: tuple[str, ...], user_idx: np.ndarray, n_items: int
) -> tuple[Ranking, ...]:
    """The rankings, each checked (none missing)."""
    checked = []
    for name, r in zip(names, rankings, strict=True):
        if r is None:
            raise ConfigError(
                f"member {name!r} has no ranking (it failed to fit or was not given): remove it or refit it"
            )
        if len(r.user_idx) != len(user_idx) or not np.array_equal(r.user_idx, user_idx):
            raise ConfigError(f"member {name!r} ranks other users than the fusion: give rankings for the same users")
        if r.item_idx.size and r.item_idx.max() >= n_items:
            raise ConfigError(
                f"member {name!r} lists item index {int(r.item_idx.max())} but the catalogue has {n_items} items: "
                "fuse only members over the same catalogue"
            )
        checked.append(r)
    return tuple(checked)


_TOP_N_MESSAGE = AT_LEAST + " (100 is usual)"


def _method_params(spec: FusionMethod, params: Mapping[str, Any] | None, rrf_k: float) -> dict[str, Any]:
    """Every parameter the method declares, with its value: from ``params`` (checked against the declaration),
    else ``rrf_k`` for RRF's constant (the older argument), else the declared default."""
    given = dict(params or {})
    declared = {ps.name: ps for ps in spec.params}
    unknown = sorted(str(n) for n in set(given) - set(declared))
    if unknown:
        accepted = ", ".join(declared) or "none"
        raise ConfigError(f"fusion method {spec.name!r} has no parameter {', '.join(unknown)}: it takes {accepted}")
    out = {}
    for name, ps in declared.items():
        if name in given:
            out[name] = ps.check(given[name], spec.name)
        else:
            out[name] = rrf_k if name == "rrf_k" else ps.default
    return out


@dataclass(frozen=True)
class _Prepared:
    spec: FusionMethod
    inputs: _Inputs
    names: tuple[str, ...]
    rankings: tuple[Ranking | None, ...] | None


def _prepare(
    member_scores: Sequence[np.ndarray | None] | None,
    member_rankings: Sequence[Ranking | None] | None,
    weights: ArrayLike,
    method: str,
    normaliser: str,
    k: int,
    n_items: int,
    user_idx: ArrayLike,
    rrf_k: float,
    seed: int,
    top_n: int,
    member_names: Sequence[str] | None,
    normalised: NormalisedScores | None,
    cache: dict | None = None,
    params: Mapping[str, Any] | None = None,
    dense: bool = False,
) -> _Prepared:
    """Validate everything at the boundary and build the inputs of the method (positive-weight members only).

    ``dense``: the caller needs wsum's dense fused block (``fused_scores``), so wsum may not take its
    candidate path.
    """
    spec = check_method(method)
    norm_key = check_normaliser(normaliser)
    users = _check_user_idx(user_idx)
    n_items = check_whole(
        n_items, "n_items", message="{name}={value!r} is not valid: give the catalogue size (a positive whole number)"
    )
    check_k(k, n_items)
    check_whole(top_n, "top_n", message=_TOP_N_MESSAGE)
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, float, np.number)) or not np.isfinite(rrf_k) or rrf_k < 0:
        raise ConfigError(f"rrf_k={rrf_k!r} is not valid: give a number >= 0 (60 is usual)")
    method_params = _method_params(spec, params, float(rrf_k))
    sources = [x for x in (member_scores, member_rankings, normalised.values if normalised else None) if x is not None]
    if not sources or len(sources[0]) == 0:
        raise ConfigError("no members given: fuse at least one member's scores or ranking")
    n_members = len(sources[0])
    if any(len(x) != n_members for x in sources):
        raise ConfigError(
            f"members disagree in number ({', '.join(str(len(x)) for x in sources)} blocks/rankings): "
            "give one score block and/or ranking per member"
        )
    names = _names(member_names, n_members)
    w = check_weights(weights, n_members, names)
    keep = np.flatnonzero(w > 0)
    w_sub = share_of_sum(w[keep])

    blocks = _check_blocks(member_scores, names, len(users), n_items) if member_scores is not None else None
    norm_sub: NormalisedScores | None = None
    if spec.level == "score":
        if normalised is not None:
            if normalised.normaliser != norm_key:
                raise ConfigError(f"normalised scores were made with {normalised.normaliser!r}, not {norm_key!r}")
            if normalised.n_items != n_items:
                raise ConfigError(
                    f"normalised scores cover {normalised.n_items} items but the catalogue has {n_items}: "
                    "fuse only members over the same catalogue"
                )
            norm_sub = NormalisedScores(
                norm_key, tuple(normalised.values[i] for i in keep), tuple(normalised.absent[i] for i in keep)
            )
        elif blocks is not None:
            # wsum normalises only the cells it ranks when its normaliser is a per-row affine map of the raw
            # scores (score_methods._wsum); otherwise, and for vote, every cell is normalised here.
            if not (spec.name == "wsum" and not dense and norm_key in _ROW_AFFINE):
                norm_sub = normalise_members([blocks[i] for i in keep], norm_key)
        else:
            raise ConfigError(f"method {spec.name!r} fuses scores: give the members' score blocks")

    given = _check_rankings(member_rankings, names, users, n_items) if member_rankings is not None else None
    rankings_all: tuple[Ranking | None, ...] | None = given
    lists_sub: tuple[Ranking, ...] | None = None
    if spec.name != "wsum":
        if given is None:
            if blocks is None:
                raise ConfigError(f"method {spec.name!r} fuses top-N lists: give the members' rankings or scores")
            n_top = min(max(int(top_n), int(k)), n_items)
            made = {int(i): top_k(blocks[i], n_top, users) for i in keep}
            rankings_all = tuple(made.get(i) for i in range(n_members))
            lists_sub = tuple(made[int(i)] for i in keep)
        else:
            lists_sub = tuple(given[i] for i in keep)
    elif given is not None:
        # wsum's candidates: the live session's own top-N lists (made from the blocks it normalised), or
        # lists given with raw blocks, which wsum checks against the blocks before relying on them.
        lists_sub = tuple(given[i] for i in keep)
    raw_sub = None
    if spec.name == "wsum" and normalised is None and blocks is not None:
        raw_sub = tuple(blocks[i] for i in keep)
    inp = _Inputs(
        w_sub,
        keep,
        n_members,
        norm_sub,
        lists_sub,
        norm_key,
        int(k),
        n_items,
        users,
        method_params,
        int(seed),
        cache,
        blocks=raw_sub,
        dense=dense,
    )
    return _Prepared(spec, inp, names, rankings_all)


def fuse(
    member_scores: Sequence[np.ndarray | None] | None,
    member_rankings: Sequence[Ranking | None] | None,
    weights: ArrayLike,
    method: str,
    normaliser: str,
    k: int,
    n_items: int,
    user_idx: ArrayLike,
    rrf_k: float = 60,
    seed: int = 0,
    *,
    top_n: int = DEFAULT_TOP_N,
    member_names: Sequence[str] | None = None,
    normalised: NormalisedScores | None = None,
    cache: dict | None = None,
    params: Mapping[str, Any] | None = None,
) -> FusionResult:
    """Fuse members into one top-k ranking for the users ``user_idx`` (the one entry point).

    ``member_scores``: masked float32 blocks [n, n_items] (training items -inf, NaN = cannot score);
    needed by the score-level methods (wsum, vote). ``member_rankings``: each member's top-N
    (training items excluded); needed by the result-level methods and by vote. When only blocks are
    given, the top-N lists are made from them with ``top_n`` (at least k). ``normalised`` (optional) is
    the blocks already normalised with ``normaliser`` (the live loop caches it); then ``member_scores``
    may be None. ``cache`` (optional) is a dict the caller keeps between calls over the *same* member
    rankings; fuse keeps the per-user candidate sets there. ``params`` are the values of the method's
    declared parameters (``METHODS[method].params``; a missing one takes its default); ``rrf_k`` is RRF's
    constant given the older way (``params["rrf_k"]`` wins). ``seed`` drives team-draft's coin flips. The
    normaliser is used by wsum, vote (tie-break) and combsum/combmnz (on the top-N scores); rrf, borda and
    interleaving use ranks only and ignore it.
    """
    prep = _prepare(
        member_scores,
        member_rankings,
        weights,
        method,
        normaliser,
        k,
        n_items,
        user_idx,
        rrf_k,
        seed,
        top_n,
        member_names,
        normalised,
        cache,
        params,
    )
    inp = prep.inputs
    out = prep.spec.run(inp)
    keep = inp.members
    contributions = np.zeros((inp.n, inp.k, inp.n_members), dtype=np.float32)
    contributions[:, :, keep] = out.contributions
    placed_by = None
    if out.placed_by is not None:
        placed_by = np.where(out.placed_by >= 0, keep[np.maximum(out.placed_by, 0)], -1).astype(np.int16)
    w_norm = np.zeros(inp.n_members)
    w_norm[keep] = inp.weights
    return FusionResult(
        out.ranking, prep.spec.name, inp.normaliser, w_norm, contributions, prep.names, placed_by, prep.rankings
    )


def fused_scores(
    member_scores: Sequence[np.ndarray | None],
    weights: ArrayLike,
    method: str,
    normaliser: str,
    user_idx: ArrayLike,
    rrf_k: float = 60,
    seed: int = 0,
    top_n: int = DEFAULT_TOP_N,
    member_names: Sequence[str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """A dense fused block float32 [n, n_items] from masked member blocks; NaN = not rankable.

    Methods with a fused score (wsum, rrf, borda, combsum, combmnz) return it. Vote and interleaving
    have no single score: they return ``L - position`` over their fused order of all candidates
    (L = that list's length), so ``ranking.top_k`` of the block gives back the fused list for any k.
    """
    spec = check_method(method)
    check_whole(top_n, "top_n", message=_TOP_N_MESSAGE)
    blocks = list(member_scores)
    first = next((b for b in blocks if b is not None), None)
    n_items = int(np.asarray(first).shape[1]) if first is not None else 1
    # Dense methods need no particular k; the others order every candidate (at most members x top-N items).
    k = 1 if spec.dense_scores else min(n_items, max(1, len(blocks)) * min(int(top_n), n_items))
    prep = _prepare(
        blocks,
        None,
        weights,
        spec.name,
        normaliser,
        k,
        n_items,
        user_idx,
        rrf_k,
        seed,
        top_n,
        member_names,
        None,
        params=params,
        dense=True,
    )
    out = prep.spec.run(prep.inputs)
    if out.dense is not None:
        dense = np.array(out.dense, dtype=np.float32, copy=True)
    elif out.compact is not None:
        cands, values = out.compact
        dense = np.full((prep.inputs.n, n_items), np.nan, dtype=np.float32)
        rows, cols = np.nonzero(cands.valid)
        dense[rows, cands.items[rows, cols]] = values[rows, cols]
    else:
        dense = np.full((prep.inputs.n, n_items), np.nan, dtype=np.float32)
        items = out.ranking.item_idx
        rows, cols = np.nonzero(items >= 0)
        dense[rows, items[rows, cols]] = np.float32(items.shape[1]) - cols.astype(np.float32)
    dense[~np.isfinite(dense)] = np.nan
    return dense
