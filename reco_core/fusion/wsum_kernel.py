"""wsum's exact top-k from raw masked blocks in one compiled pass per user row (the blocked evaluation's path).

The dense path (``score_methods._wsum_whole``) normalises every member's block, sums the weighted blocks
and ranks the sum; the candidate path takes each member's top 50 to bound the unlisted items. At
ML-20M size (26,744 items, 37-user blocks) both spend most of their time in whole-catalogue passes made
by separate numpy and torch calls: each member's top-50 (``torch.topk``) alone was 60% of the fusion's
time. This kernel reads each member's row twice (its min and max, then the fused value of every item),
keeping the running top-k in a small sorted array, and writes nothing of the catalogue's size.

The answer is the dense path's (equal values; a zero may differ in its sign, as -0.0 and 0.0 compare equal and the
integer min below prefers -0.0 where numpy's takes either): the same float32 operations in the same order (min-max's
``lo`` and ``scale`` as ``normalisers.minmax_scale`` makes them, ``(s - lo) * scale``, NaN treated as
absent, ``w0 * v0`` then ``+= w_m * v_m``), an item no member can score left out, and ``ranking.top_k``'s
rules (NaN and -inf never ranked, +inf as the largest float32, ties to the lower item index). numba is
optional (installed with the requirements); without it the caller keeps the numpy paths.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from reco_core.ranking import Ranking

__all__ = ["wsum_top_k"]

# Normalisers the kernel computes: min-max ("minmax"), and the raw scores ("none", lo 0 and scale 1,
# which leave a finite score unchanged).
KERNEL_NORMALISERS = ("none", "minmax")


@functools.cache
def _kernel() -> Callable[..., None] | None:
    """The compiled kernel (numba, compiled on first use and cached on disk), or None without numba."""
    try:
        import numba
    except ImportError:  # optional: the numpy paths give the same answer
        return None

    @numba.njit(nogil=True, cache=True)
    def kernel(blocks, w32, minmax, k, out_items, out_scores, out_values):  # pragma: no cover - compiled
        m = len(blocks)
        n, n_items = blocks[0].shape
        lo = np.zeros(m, np.float32)
        scale = np.ones(m, np.float32)
        top_v = np.empty(k, np.float32)
        top_i = np.empty(k, np.int64)
        row = np.empty(n_items, np.float32)
        present = np.empty(n_items, np.bool_)
        big = np.float32(np.finfo(np.float32).max)
        zero = np.float32(0.0)
        magnitude, exponent = np.int32(0x7FFFFFFF), np.int32(0x7F800000)
        key_max, key_min = np.int32(2**31 - 1), np.int32(-(2**31))
        pair = np.empty(2, np.int32)
        pair_f = pair.view(np.float32)
        for r in range(n):
            if minmax:
                for j in range(m):
                    # The row's min and max finite cell, as integers: a float32's bits x map to the key
                    # x ^ ((x >> 31) & 0x7fffffff), which orders finite floats as their values (-0.0 just
                    # below 0.0), and integer min/max vectorise where float ones with a finiteness test
                    # do not (about 8x faster here). The key is its own inverse.
                    bits = blocks[j][r].view(np.int32)
                    lo_key, hi_key = key_max, key_min
                    for c in range(n_items):
                        x = bits[c]
                        key = x ^ ((x >> 31) & magnitude)
                        finite = (x & exponent) != exponent
                        lo_key = min(lo_key, key if finite else key_max)
                        hi_key = max(hi_key, key if finite else key_min)
                    # No finite cell leaves a sentinel, which decodes to a NaN: +inf / -inf as numpy's initial.
                    pair[0] = lo_key ^ ((lo_key >> 31) & magnitude)
                    pair[1] = hi_key ^ ((hi_key >> 31) & magnitude)
                    mn = pair_f[0] if lo_key != key_max else np.float32(np.inf)
                    mx = pair_f[1] if hi_key != key_min else np.float32(-np.inf)
                    # normalisers.minmax_scale: the span in float64, its inverse rounded to float32.
                    span = np.float64(mx) - np.float64(mn)
                    if np.isfinite(span) and span > 0:
                        scale[j] = np.float32(1.0 / span)
                    else:
                        scale[j] = np.float32(0.0)
                    lo[j] = mn if np.isfinite(mn) else np.float32(0.0)
            # _wsum_dense's order: w0 * v0, then += w_m * v_m. NaN: inf * 0 in an overflowing row, absent.
            # Finiteness from the bits and NaN as v != v, with & (no branch): these loops vectorise too.
            values = blocks[0][r]
            bits = values.view(np.int32)
            lo_j, scale_j, w_j = lo[0], scale[0], w32[0]
            for c in range(n_items):
                v = (values[c] - lo_j) * scale_j
                ok = ((bits[c] & exponent) != exponent) & (v == v)
                row[c] = (v if ok else zero) * w_j
                present[c] = ok
            for j in range(1, m):
                values = blocks[j][r]
                bits = values.view(np.int32)
                lo_j, scale_j, w_j = lo[j], scale[j], w32[j]
                for c in range(n_items):
                    v = (values[c] - lo_j) * scale_j
                    ok = ((bits[c] & exponent) != exponent) & (v == v)
                    row[c] = row[c] + w_j * (v if ok else zero)
                    present[c] = present[c] | ok
            filled = 0
            for c in range(n_items):
                fused = row[c]
                if not present[c] or np.isnan(fused) or fused == -np.inf:
                    continue
                if fused == np.inf:
                    fused = big
                if filled == k and not fused > top_v[k - 1]:
                    continue
                # Insert after every kept item with a score >= fused: equal scores keep the lower item first.
                p = filled if filled < k else k - 1
                while p > 0 and top_v[p - 1] < fused:
                    if p < k:
                        top_v[p] = top_v[p - 1]
                        top_i[p] = top_i[p - 1]
                    p -= 1
                top_v[p] = fused
                top_i[p] = c
                if filled < k:
                    filled += 1
            for p in range(filled):
                c = top_i[p]
                out_items[r, p] = c
                out_scores[r, p] = top_v[p]
                for j in range(m):
                    s = blocks[j][r, c]
                    v = np.float32(0.0)
                    if np.isfinite(s):
                        v = (s - lo[j]) * scale[j]
                        if np.isnan(v):
                            v = np.float32(0.0)
                    out_values[r, p, j] = v

    return kernel


def available() -> bool:
    """Whether the compiled kernel can run here (numba importable)."""
    return _kernel() is not None


def _read_only(block: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 read-only view (a copy only when the layout or type differs): numba types a tuple by
    its arrays' flags, so blocks are made alike, or a writable block beside a read-only one would not compile."""
    view = np.ascontiguousarray(block, dtype=np.float32).view()
    view.flags.writeable = False
    return view


def wsum_top_k(
    blocks: Sequence[np.ndarray], weights: np.ndarray, normaliser: str, k: int, user_idx: np.ndarray
) -> tuple[Ranking, np.ndarray] | None:
    """The dense path's wsum ranking and contributions ``[n, k, m]`` from raw masked float32 blocks, or None
    when the kernel cannot run (no numba, another normaliser). ``weights``: float64, positive, summing to 1."""
    kernel = _kernel()
    if kernel is None or normaliser not in KERNEL_NORMALISERS:
        return None
    arrays = tuple(_read_only(b) for b in blocks)
    n = arrays[0].shape[0]
    m = len(arrays)
    items = np.full((n, k), -1, dtype=np.int32)
    scores = np.full((n, k), np.nan, dtype=np.float32)
    values = np.zeros((n, k, m), dtype=np.float32)
    w32 = np.asarray(weights, dtype=np.float64).astype(np.float32)
    kernel(arrays, w32, normaliser == "minmax", int(k), items, scores, values)
    # score_methods._wsum_whole: w_m (float64) times the gathered float32 value, rounded to float32.
    contrib = (np.asarray(weights, dtype=np.float64) * values).astype(np.float32)
    return Ranking(np.asarray(user_idx, dtype=np.int32), items, scores), contrib
