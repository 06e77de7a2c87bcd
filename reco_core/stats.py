"""Uncertainty for metric means: percentile bootstrap intervals and paired comparisons.

Both work on per-user values (one number per evaluated user). A paired comparison asks whether
configuration B scores differently from A *on the same users*: the per-user differences get a
paired bootstrap interval for their mean and a Wilcoxon signed-rank test (users whose two values
are equal carry no sign and are left out of the test, scipy's ``zero_method="wilcox"``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from threadpoolctl import threadpool_limits

from reco_core.errors import ConfigError
from reco_core.metric_specs import METRICS

# Resample in chunks so that n_boot x n indices stay below this many at once (memory stays bounded).
_CHUNK_CELLS = 4_000_000


def _check_boot(n_boot: int, ci: float) -> None:
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfigError(f"n_boot={n_boot!r} is not valid: give a whole number of resamples, at least 1")
    if not (isinstance(ci, (float, int)) and 0 < ci < 1):
        raise ConfigError(f"ci={ci!r} is not valid: give the interval's coverage as a fraction, e.g. 0.95")


def _as_values(values: np.ndarray, what: str, ndim: int = 1) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != ndim:
        shape = "one value per user (a 1-D array)" if ndim == 1 else "[metrics, users] (a 2-D array)"
        raise ConfigError(f"{what} must be {shape}, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ConfigError(f"{what} contain NaN or inf at position {int(np.flatnonzero(~np.isfinite(v.ravel()))[0])}")
    return v


def bootstrap_means(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``values`` over ``n_boot`` resamples of the users (``numpy.random.default_rng(seed)``).

    ``values`` is [n] (returns [n_boot]) or [m, n], m metrics of the same n users (returns
    [m, n_boot], every metric over the same resamples). A resample is a row of user counts W, so its
    mean is W @ v / n: one product for all metrics instead of m fancy-indexed copies.
    """
    v = np.asarray(values, dtype=np.float64)
    flat = v.ndim == 1
    v = _as_values(v[None, :] if flat else v, "values", ndim=2)
    n = v.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((v.shape[0], n_boot), dtype=np.float64)
    step = max(1, _CHUNK_CELLS // max(n, 1))
    # One BLAS thread: on two shared cores the threaded product was up to 100x slower when another
    # job ran beside it, while a single thread stays near 1 ms (DESIGN.md section 7).
    with threadpool_limits(1, "blas"):
        for start in range(0, n_boot, step):
            rows = min(start + step, n_boot) - start
            idx = rng.integers(0, n, (rows, n))
            counts = np.bincount((idx + n * np.arange(rows)[:, None]).ravel(), minlength=rows * n).reshape(rows, n)
            out[:, start : start + rows] = (v @ counts.T.astype(np.float64)) / n
    return out[0] if flat else out


def bootstrap_intervals(
    values: np.ndarray, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals (low[m], high[m]) for the means of the rows of ``values`` [m, n users].

    Every row uses the same user resamples, so this equals ``bootstrap_ci`` row by row.
    """
    _check_boot(n_boot, ci)
    v = _as_values(values, "values", ndim=2)
    if v.shape[1] == 0:
        nan = np.full(v.shape[0], np.nan)
        return nan, nan.copy()
    alpha = (1.0 - ci) / 2
    low, high = np.quantile(bootstrap_means(v, n_boot, seed), [alpha, 1.0 - alpha], axis=1)
    return low, high


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of ``values`` (one value per user).

    The (1 - ci)/2 and (1 + ci)/2 quantiles of ``n_boot`` resampled means. No values gives
    (NaN, NaN); one value gives (value, value). The same seed and length give the same resamples,
    so intervals of several metrics over the same users come from the same user draws.
    """
    v = _as_values(values, "values")
    low, high = bootstrap_intervals(v[None, :], n_boot, seed, ci)
    return float(low[0]), float(high[0])


def _metric_words(metric: str) -> tuple[str, bool]:
    """Display label ("ndcg@10" -> "NDCG@10") and whether higher is better (True when unknown)."""
    name, at, k = metric.partition("@")
    spec = METRICS.get(name)
    if spec is None:
        return metric, True
    return f"{spec.label}{at}{k}", spec.higher_is_better


def _fmt(x: float) -> str:
    return f"{x:.3f}" if abs(x) >= 0.0005 or x == 0 else f"{x:.2g}"


@dataclass(frozen=True)
class PairedComparison:
    """B versus A on the same users: mean difference (B - A), its bootstrap interval, Wilcoxon test."""

    metric: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    wilcoxon_statistic: float
    p_value: float
    ci_level: float = 0.95
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        """p below ``alpha`` and an interval that leaves out 0: both say the same thing."""
        return self.p_value < self.alpha and (self.ci_low > 0 or self.ci_high < 0)

    def sentence(self, name_a: str = "A", name_b: str = "B", p_adjusted: float | None = None, tests: int = 1) -> str:
        """Plain words, for example "B beats A by 0.012 NDCG@10 (95% CI 0.004 to 0.020); Wilcoxon p = 0.003
        over 943 users: a real difference".

        ``p_adjusted``: this test's p after a correction over ``tests`` tests shown together (Holm's); the sentence
        then gives both p-values and reads its verdict from the adjusted one, as the tables beside it do.
        """
        label, higher_better = _metric_words(self.metric)
        label = f" {label}" if label else ""
        users = f"over {self.n:,} user{'s' if self.n != 1 else ''}"
        if self.mean_diff == 0 and self.ci_low == 0 and self.ci_high == 0:
            return f"{name_a} and {name_b} score the same{label} on every one of {self.n:,} users: no difference"
        # The interval is stated in the leader's direction, so it reads "by 0.012 (95% CI 0.004 to 0.020)".
        sign = 1.0 if self.mean_diff >= 0 else -1.0
        lo, hi = sorted((sign * self.ci_low, sign * self.ci_high))
        interval = f"{self.ci_level:.0%} CI {_fmt(lo)} to {_fmt(hi)}"
        p_used = self.p_value
        p = p_words(self.p_value, self.alpha)
        if p_adjusted is not None and tests > 1:
            p_used = float(p_adjusted)
            users += f" ({p_words(p_used, self.alpha)} after Holm's correction over {tests} tests)"
        excludes_zero = self.ci_low > 0 or self.ci_high < 0
        significant = p_used < self.alpha and excludes_zero
        if significant:
            verdict = "a real difference"
        elif p_used >= self.alpha and not excludes_zero:
            verdict = "could be chance"
        else:
            verdict = "weak evidence (the test and the interval disagree)"
        lower = "; lower is better" if not higher_better else ""
        if self.mean_diff == 0:
            return (
                f"{name_a} and {name_b} have the same mean{label} ({interval}{lower}); Wilcoxon p = {p} {users}:"
                f" {verdict}"
            )
        b_leads = (self.mean_diff > 0) == higher_better
        winner, loser = (name_b, name_a) if b_leads else (name_a, name_b)
        size = abs(self.mean_diff)
        verb = "beats" if significant else "is ahead of"
        return (
            f"{winner} {verb} {loser} by {_fmt(size)}{label} ({interval}{lower}); Wilcoxon p = {p} {users}: {verdict}"
        )


def p_words(p: float, alpha: float = 0.05) -> str:
    """A p-value in words: 0.003, or 2.1e-05 below 0.001, "n/a" when there is none. Near ``alpha`` it never reads
    as alpha itself: 0.0497 is "0.0497" (not 0.050, next to "a real difference") and 0.04996 "just below 0.05"."""
    p = float(p)
    if not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return f"{p:.1e}"
    for text in (f"{p:.3f}", f"{p:.4f}"):
        if float(text) != alpha or p == alpha:
            return text
    return f"just below {alpha:g}" if p < alpha else f"just above {alpha:g}"


def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    metric: str = "",
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
) -> PairedComparison:
    """Compare per-user values ``b`` with ``a`` (same users, same order).

    mean_diff = mean(b - a); the interval is a percentile bootstrap of that mean over users
    (paired: a user's two values are resampled together). Wilcoxon signed-rank on b - a, two-sided;
    when every difference is zero there is nothing to rank and p = 1.0.
    """
    _check_boot(n_boot, ci)
    va, vb = _as_values(a, "values of A"), _as_values(b, "values of B")
    if va.shape != vb.shape:
        raise ConfigError(f"A has {va.size} per-user values and B has {vb.size}: compare evaluations of the same users")
    if va.size == 0:
        raise ConfigError("no users to compare: both evaluations are empty")
    diff = vb - va
    low, high = bootstrap_ci(diff, n_boot=n_boot, seed=seed, ci=ci)
    if np.all(diff == 0):
        statistic, p = 0.0, 1.0
    else:
        res = sps.wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
        statistic, p = float(res.statistic), float(res.pvalue)
    return PairedComparison(
        metric=metric,
        n=int(va.size),
        mean_a=float(va.mean()),
        mean_b=float(vb.mean()),
        mean_diff=float(diff.mean()),
        ci_low=low,
        ci_high=high,
        wilcoxon_statistic=statistic,
        p_value=p,
        ci_level=float(ci),
    )


def holm_adjust(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (Holm 1979), in the order given.

    With the m p-values sorted ascending, ``p_adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``; a
    hypothesis is rejected at family-wise level alpha when its adjusted p is below alpha. NaN (a
    comparison that could not be made) stays NaN and does not count towards m.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if ((p < 0) | (p > 1)).any():
        raise ConfigError("p-values must lie between 0 and 1: pass the tests' raw p-values")
    out = np.full(p.shape, np.nan)
    known = np.flatnonzero(~np.isnan(p))
    m = known.size
    if m == 0:
        return out
    order = known[np.argsort(p[known], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def paired_table(
    a: Mapping[str, np.ndarray],
    b: Mapping[str, np.ndarray],
    keys: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """B against A on several per-user metrics at once, with Holm-adjusted p-values.

    One row per key: means, mean difference (B - A) with its paired bootstrap interval, the raw
    Wilcoxon p and Holm's adjusted p over the keys compared (``holm_adjust``). ``verdict`` reads the
    adjusted p: "a real difference" when it is below ``alpha`` and the interval leaves out 0, "could be
    chance" when neither holds, "weak evidence" when the two disagree. Looking at many metrics and
    reporting the smallest raw p overstates the evidence; the adjusted p does not.
    """
    comparisons = {key: paired_comparison(a[key], b[key], key, n_boot=n_boot, seed=seed, ci=ci) for key in keys}
    return comparison_table(comparisons, alpha, label="metric").drop(columns="users")


def comparison_table(
    comparisons: Mapping[str, PairedComparison], alpha: float = 0.05, label: str = "comparison"
) -> pd.DataFrame:
    """Several paired comparisons (B against A each) as one table, with Holm's correction over them.

    One row per comparison (the mapping's key, in the column ``label``): users, mean of A and B, B - A with its
    paired bootstrap interval, the raw Wilcoxon p, ``p (Holm)`` and a verdict read from the adjusted p: "a real
    difference" when it is below ``alpha`` and the interval leaves out 0, "could be chance" when neither holds,
    "weak evidence" when the two disagree, "no difference" when every user's difference is 0.
    """
    cols = [label, "users", "mean A", "mean B", "B - A", "ci_low", "ci_high", "p"]
    rows = [
        [name, pc.n, pc.mean_a, pc.mean_b, pc.mean_diff, pc.ci_low, pc.ci_high, pc.p_value]
        for name, pc in comparisons.items()
    ]
    table = pd.DataFrame(rows, columns=cols)
    table["p (Holm)"] = holm_adjust(table["p"].to_numpy(dtype=np.float64)) if len(table) else []
    low, high, p_holm = (table[c].to_numpy(dtype=np.float64) for c in ("ci_low", "ci_high", "p (Holm)"))
    excludes_zero = (low > 0) | (high < 0)
    significant = p_holm < alpha
    verdict = np.where(
        significant & excludes_zero,
        "a real difference",
        np.where(~significant & ~excludes_zero, "could be chance", "weak evidence"),
    )
    table["verdict"] = np.where((low == 0) & (high == 0) & (p_holm >= 1), "no difference", verdict)
    return table
