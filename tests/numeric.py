"""How tests compare numbers computed in two different ways (docs/numerics.md has the rule and the why).

- The same call on the same shape is exact: compare with ``np.testing.assert_array_equal``.
- Results of different shapes, block sizes, batch sizes, thread counts, workers or code paths are float32
  sums taken in another order (BLAS kernels block a product by its shape and by the CPU's kernel), so they
  agree to float32 rounding: ``assert_scores_close``. Their rankings agree up to near-ties:
  ``assert_rankings_match``, and the metrics of users whose lists came out the same are exact:
  ``assert_evaluations_match``.
"""

from __future__ import annotations

import numpy as np

from reco_core.metrics import Evaluation
from reco_core.ranking import Ranking

# float32 has a 24-bit mantissa (relative step 6e-8); a dot product of a few hundred terms taken in another
# order moves by a few steps of the largest term, so 1e-5 of the block's largest magnitude is ample and
# still catches a wrong row, column or formula.
SCORE_RTOL = 1e-5


def score_tolerance(desired: np.ndarray, rtol: float = SCORE_RTOL) -> float:
    """Absolute tolerance: ``rtol`` times the largest finite magnitude in ``desired`` (at least ``rtol``)."""
    finite = np.abs(np.asarray(desired, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    return rtol * max(float(finite.max()) if finite.size else 0.0, 1.0)


def assert_scores_close(actual: np.ndarray, desired: np.ndarray, rtol: float = SCORE_RTOL, err_msg: str = "") -> None:
    """Same shape, same dtype, NaN in the same cells, finite cells equal to float32 rounding."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape, f"{err_msg} shape {actual.shape} != {desired.shape}"
    assert actual.dtype == desired.dtype, f"{err_msg} dtype {actual.dtype} != {desired.dtype}"
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(desired), err_msg=f"{err_msg} (NaN cells)")
    tol = score_tolerance(desired, rtol)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=tol, equal_nan=True, err_msg=err_msg)


def differing_rows(actual: Ranking, desired: Ranking, rtol: float = SCORE_RTOL) -> np.ndarray:
    """bool per user: the lists differ. Raises AssertionError unless every difference is a near-tie.

    Both rankings must rank the same users. Position by position the scores must agree to float32
    rounding; an item may differ only where its score is within that tolerance of a neighbouring
    position's score (or of the last one, which may tie with the first item beyond k).
    """
    np.testing.assert_array_equal(actual.user_idx, desired.user_idx, err_msg="rankings of other users")
    assert actual.item_idx.shape == desired.item_idx.shape, (actual.item_idx.shape, desired.item_idx.shape)
    tol = score_tolerance(desired.score, rtol)
    np.testing.assert_allclose(actual.score, desired.score, rtol=rtol, atol=tol, equal_nan=True, err_msg="scores")
    differ = actual.item_idx != desired.item_idx
    if not differ.any():
        return np.zeros(len(actual.user_idx), dtype=bool)
    s = np.nan_to_num(desired.score.astype(np.float64), nan=-np.inf)
    near = np.zeros_like(differ)
    near[:, 1:] |= np.abs(s[:, 1:] - s[:, :-1]) <= 2 * tol
    near[:, :-1] |= np.abs(s[:, :-1] - s[:, 1:]) <= 2 * tol
    near |= np.abs(s - s[:, -1:]) <= 2 * tol
    bad = differ & ~near
    assert not bad.any(), (
        f"{int(bad.sum())} list slots differ where no near-tie explains it, first at user"
        f" {int(desired.user_idx[np.argwhere(bad)[0][0]])}"
    )
    return differ.any(axis=1)


def assert_rankings_match(actual: Ranking, desired: Ranking, rtol: float = SCORE_RTOL, max_share: float = 0.05) -> None:
    """Equal up to near-ties, and at most ``max_share`` of the users' lists touched by one."""
    changed = differing_rows(actual, desired, rtol)
    assert changed.mean() <= max_share, f"{int(changed.sum())} of {len(changed)} lists differ (near-ties)"


def assert_evaluations_match(
    actual: Evaluation,
    desired: Evaluation,
    actual_ranking: Ranking,
    desired_ranking: Ranking,
    max_share: float = 0.05,
) -> None:
    """Metrics of two evaluations of rankings that agree up to near-ties (``differing_rows``).

    Users whose lists are the same have the same per-user values (to 1e-12); global values are exact
    when every list is the same, and otherwise checked only for presence.
    """
    changed = differing_rows(actual_ranking, desired_ranking)
    assert changed.mean() <= max_share, f"{int(changed.sum())} of {len(changed)} lists differ (near-ties)"
    np.testing.assert_array_equal(actual.user_idx, desired.user_idx)
    assert actual.per_user.keys() == desired.per_user.keys()
    assert actual.global_values.keys() == desired.global_values.keys()
    order = np.argsort(actual_ranking.user_idx)
    row_of_user = order[np.searchsorted(actual_ranking.user_idx[order], actual.user_idx)]
    same = ~changed[row_of_user]
    for key in actual.per_user:
        np.testing.assert_allclose(
            actual.per_user[key][same], desired.per_user[key][same], rtol=0, atol=1e-12, err_msg=key
        )
    if not changed.any():
        for key in actual.global_values:
            np.testing.assert_allclose(
                actual.global_values[key], desired.global_values[key], rtol=0, atol=1e-12, err_msg=key
            )
