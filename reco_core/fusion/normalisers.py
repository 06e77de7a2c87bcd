"""Normalisers: per user row, over the row's finite cells only.

Every normaliser is a pure function over a masked score block (float32 ``[n, n_items]``, training items
``-inf``, NaN = cannot score), registered by name in ``NORMALISERS``. A non-finite cell is *absent*: it
does not enter the row's min, max, mean, std or ranks, and it comes back NaN. :func:`normalise` applies
one by name; :func:`normalise_members` normalises every member once into :class:`NormalisedScores`,
which the methods combine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats

from reco_core.errors import ConfigError, quote

Normaliser = Callable[[np.ndarray], np.ndarray]


def _finite_stats(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    finite = np.isfinite(block)
    count = finite.sum(axis=1, keepdims=True)
    x = np.where(finite, block, 0.0).astype(np.float64)
    return finite, count, x


def normalise_none(block: np.ndarray) -> np.ndarray:
    """Raw scores; absent (non-finite) cells become NaN."""
    out = np.array(block, dtype=np.float32, copy=True)
    out[~np.isfinite(out)] = np.nan
    return out


def minmax_offsets(block: np.ndarray, finite: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a float32 block, min-max's ``(lo, scale)`` as float32 [n, 1]: a finite cell s becomes
    ``(s - lo) * scale``, exactly as :func:`normalise_minmax` computes it (it calls this).

    Split out so that wsum can normalise only the cells it ranks (``score_methods._wsum``) and still get
    the same float32 values bit for bit. ``finite``: ``np.isfinite(block)`` when the caller has it.
    """
    if finite is None:
        finite = np.isfinite(block)
    # min/max with where= read the block once each and allocate nothing of its size.
    lo = np.min(block, axis=1, where=finite, initial=np.inf, keepdims=True)
    hi = np.max(block, axis=1, where=finite, initial=-np.inf, keepdims=True)
    return minmax_scale(lo, hi)


def minmax_scale(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``minmax_offsets`` from each row's min and max finite cell (float32 [n, 1]; +inf / -inf for a row
    without any)."""
    span = hi.astype(np.float64) - lo
    ok = np.isfinite(span) & (span > 0)
    scale = np.where(ok, 1.0 / np.where(ok, span, 1.0), 0.0).astype(np.float32)
    return np.where(np.isfinite(lo), lo, 0).astype(np.float32), scale


def normalise_minmax(block: np.ndarray) -> np.ndarray:
    """``(s - min) / (max - min)`` over the row's finite cells, in [0, 1]; a constant row gives 0.

    Works in float32 over the block (the span in float64): half the memory traffic of a float64 pass,
    within 6e-8 of it, and this is the hottest loop of large-scale evaluation.
    """
    block = np.asarray(block, dtype=np.float32)
    finite = np.isfinite(block)
    lo, scale = minmax_offsets(block, finite)
    # (s - lo) * 0 = 0 for constant rows; absent cells (and rows with no finite cell) get NaN below.
    with np.errstate(invalid="ignore"):  # -inf * 0 in excluded cells of constant rows; overwritten below
        out = block - lo
        out *= scale
    np.copyto(out, np.float32(np.nan), where=~finite)
    return out


def normalise_zscore(block: np.ndarray) -> np.ndarray:
    """``(s - mean) / std`` over the row's finite cells (population std, as ranx's zmuv); constant row gives 0."""
    finite, count, x = _finite_stats(block)
    safe = np.maximum(count, 1)
    mean = x.sum(axis=1, keepdims=True) / safe
    var = (np.where(finite, x - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / safe
    std = np.sqrt(var)
    ok = std > 0
    out = np.where(ok, (x - mean) / np.where(ok, std, 1.0), 0.0).astype(np.float32)
    out[~finite] = np.nan
    return out


def normalise_rank(block: np.ndarray) -> np.ndarray:
    """``rank / n`` over the row's n finite cells: the best item gets 1, the worst 1/n (ranx's rank norm,
    ``1 - i/n`` with 0-based position i). Tied scores share their average rank."""
    finite = np.isfinite(block)
    absent = (~finite).sum(axis=1, keepdims=True)
    count = block.shape[1] - absent
    # Absent cells are moved below every finite one, so they take the lowest ranks; subtracting their
    # number gives ranks 1..n among the finite cells.
    filled = np.where(finite, block, -np.inf)
    ranks = scipy.stats.rankdata(filled, method="average", axis=1) - absent
    out = (ranks / np.maximum(count, 1)).astype(np.float32)
    out[~finite] = np.nan
    return out


@dataclass(frozen=True)
class NormaliserSpec:
    """A normaliser as the registry holds it: the function, and how people read it.

    ``label`` names it in a menu ("Min-max to [0, 1]"); ``words`` finish the sentence "fused by weighted sum
    ..." ("after min-max normalisation"). Calling the record calls the function.
    """

    name: str
    label: str
    words: str
    fn: Normaliser

    def __call__(self, block: np.ndarray) -> np.ndarray:
        return self.fn(block)


NORMALISERS: dict[str, NormaliserSpec] = {
    n.name: n
    for n in (
        NormaliserSpec("none", "None (raw scores)", "of the raw scores", normalise_none),
        NormaliserSpec("minmax", "Min-max to [0, 1]", "after min-max normalisation", normalise_minmax),
        NormaliserSpec("zscore", "z-score", "after z-score normalisation", normalise_zscore),
        NormaliserSpec("rank", "Rank (best = 1)", "after rank normalisation", normalise_rank),
    )
}


def check_normaliser(name: str) -> str:
    key = str(name).strip().lower()
    if key not in NORMALISERS:
        raise ConfigError(f"unknown normaliser {quote(name)}: choose one of {', '.join(NORMALISERS)}")
    return key


def normalise(block: np.ndarray, normaliser: str) -> np.ndarray:
    """Normalise each row of a masked score block (float32 [n, n_items]); absent cells come back NaN."""
    return NORMALISERS[check_normaliser(normaliser)](np.asarray(block))


@dataclass(frozen=True)
class NormalisedScores:
    """Members' normalised blocks, ready to combine: ``values[m]`` has 0 in absent cells, ``absent[m]`` marks them.

    Normalising does not depend on the weights, so the live loop computes this once per normaliser.
    """

    normaliser: str
    values: tuple[np.ndarray, ...]
    absent: tuple[np.ndarray, ...]

    @property
    def n_items(self) -> int:
        return self.values[0].shape[1]


def normalise_members(member_scores: Sequence[np.ndarray], normaliser: str) -> NormalisedScores:
    """Normalise every member's masked block with the same normaliser."""
    key = check_normaliser(normaliser)
    values, absent = [], []
    for block in member_scores:
        norm = NORMALISERS[key](np.asarray(block))
        miss = np.isnan(norm)
        norm[miss] = 0.0
        values.append(norm)
        absent.append(miss)
    return NormalisedScores(key, tuple(values), tuple(absent))
