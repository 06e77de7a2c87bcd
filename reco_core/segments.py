"""Per-segment weights: the weight search run separately for light, medium and heavy users.

One global set of weights serves every user the same mix; a user with five ratings may be better
served by content and popularity, a user with five hundred by the collaborative members. Here users
are cut into segments by training history length (``history_segments``: terciles of the evaluated
users' counts by default), and the grid of weight vectors is evaluated once on the validation session:
each segment takes the point with the best mean of the metric over its own users (ties to the earlier
point, as in ``search.search_weights``). On test each user is served by the weights of their segment,
and the per-user values are compared, paired, with the one global set of weights chosen on the same
validation run.

A user's segment comes from the full training history (the test protocol's), so a user is in the same
segment on validation and on test; the validation members still never see validation items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reco_core.errors import ConfigError
from reco_core.live import LiveSession
from reco_core.search import DEFAULT_MAX_POINTS, Progress, plan_points
from reco_core.stats import PairedComparison, paired_comparison

SEGMENT_NAMES = ("light", "medium", "heavy")


def history_segments(
    counts: np.ndarray, users: np.ndarray, thresholds: Sequence[float] | None = None
) -> tuple[np.ndarray, tuple[float, float]]:
    """Segment index (0 light, 1 medium, 2 heavy) of each of ``users`` by ``counts[user]``, and the cuts.

    light: count <= t1; medium: t1 < count <= t2; heavy: count > t2. Default cuts: the 1/3 and 2/3
    quantiles of the counts of ``users`` (numpy's linear interpolation).
    """
    c = np.asarray(counts, dtype=np.float64)[np.asarray(users)]
    if c.size == 0:
        raise ConfigError("no users to segment: evaluate at least one user")
    if thresholds is None:
        t1, t2 = (float(x) for x in np.quantile(c, [1 / 3, 2 / 3]))
    else:
        if len(thresholds) != 2:
            raise ConfigError(f"segment thresholds {list(thresholds)!r} are not valid: give two numbers t1 <= t2")
        t1, t2 = (float(x) for x in thresholds)
        if not (np.isfinite([t1, t2]).all() and t1 <= t2):
            raise ConfigError(f"segment thresholds {t1:g}, {t2:g} are not valid: give two numbers t1 <= t2")
    seg = np.where(c <= t1, 0, np.where(c <= t2, 1, 2))
    return seg, (t1, t2)


@dataclass(frozen=True)
class SegmentWeights:
    """What the per-segment search chose on validation and what it gives on test."""

    metric: str
    thresholds: tuple[float, float]
    segment_sizes: dict[str, int]
    weights: dict[str, dict[str, float]]  # segment -> member -> weight
    global_weights: dict[str, float]
    validation: pd.DataFrame  # per segment: its own best point's and the global point's validation mean
    test_segments: np.ndarray  # segment index (0 light, 1 medium, 2 heavy) of each test user
    test_per_user: np.ndarray  # the metric per test user, each served by their segment's weights
    test_global_per_user: np.ndarray
    comparison: PairedComparison  # per-segment (B) against global (A), on test

    def table(self) -> pd.DataFrame:
        """One row per segment: users, the chosen weights, test means with the segment and the global weights."""
        rows = []
        for s, name in enumerate(SEGMENT_NAMES):
            mask = self.test_segments == s
            rows.append(
                {
                    "segment": name,
                    "users (test)": int(mask.sum()),
                    **{f"w:{m}": w for m, w in self.weights[name].items()},
                    f"{self.metric} (segment weights)": float(self.test_per_user[mask].mean())
                    if mask.any()
                    else np.nan,
                    f"{self.metric} (global weights)": float(self.test_global_per_user[mask].mean())
                    if mask.any()
                    else np.nan,
                }
            )
        return pd.DataFrame(rows)

    def tests(self) -> dict[str, PairedComparison]:
        """Per-segment (B) against global (A) weights, paired on test: over all users, then on each non-empty
        segment's own users; one family, reported with Holm's correction over all of them (CLI and dashboard)."""
        out: dict[str, PairedComparison] = {"all users": self.comparison}
        for s, name in enumerate(SEGMENT_NAMES):
            mask = self.test_segments == s
            if mask.any():
                out[f"{name} users"] = paired_comparison(
                    self.test_global_per_user[mask], self.test_per_user[mask], metric=self.metric
                )
        return out


def _per_user(session: LiveSession, w: np.ndarray, metric: str, kw: Mapping[str, Any]) -> np.ndarray:
    k = metric.partition("@")[2]
    result = session.update(w.tolist(), kw["method"], kw["normaliser"], int(k), seed=kw["seed"], params=kw["params"])
    if metric not in result.evaluation.per_user:
        raise ConfigError(f"{metric!r} is not a per-user metric: choose one such as ndcg@10 or recall@10")
    return result.evaluation.per_user[metric]


def search_segment_weights(
    valid_session: LiveSession,
    test_session: LiveSession,
    metric: str = "ndcg@10",
    step: float = 0.1,
    method: str = "wsum",
    normaliser: str = "minmax",
    thresholds: Sequence[float] | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> SegmentWeights:
    """Choose weights per history segment on validation; report them on test against one global set."""
    if valid_session.part != "valid" or test_session.part != "test":
        raise ConfigError("per-segment search needs a validation session (part='valid') and a test session")
    if tuple(valid_session.members) != tuple(test_session.members):
        raise ConfigError("validation and test sessions must have the same members in the same order")
    if "@" not in metric:
        raise ConfigError(f"metric {metric!r} has no cut-off: write it as name@k, such as ndcg@10")
    names = list(valid_session.members)
    kw = {"method": method, "normaliser": normaliser, "seed": seed, "params": params}
    counts = test_session.train.user_counts()
    seg_test, cuts = history_segments(counts, test_session.users, thresholds)
    seg_valid, _ = history_segments(counts, valid_session.users, cuts)
    points, _ = plan_points(len(names), step, max_points, seed)
    means = np.full((len(points), 4), -np.inf)  # three segments, then all users
    for i, w in enumerate(points):
        values = _per_user(valid_session, w, metric, kw)
        for s in range(3):
            mask = seg_valid == s
            if mask.any():
                means[i, s] = values[mask].mean()
        means[i, 3] = values.mean()
        if progress is not None:
            progress((i + 1) / len(points), f"weights {i + 1}/{len(points)}")
    best = np.argmax(means, axis=0)  # first maximum: ties go to the earlier point
    # A segment with no validation user has nothing to choose from (every mean -inf): it keeps the global weights.
    empty = [s for s in range(3) if not (seg_valid == s).any()]
    best[empty] = best[3]
    chosen = {SEGMENT_NAMES[s]: points[best[s]] for s in range(3)}
    global_w = points[best[3]]
    test_global = _per_user(test_session, global_w, metric, kw)
    test_seg = np.empty_like(test_global)
    for s, name in enumerate(SEGMENT_NAMES):
        mask = seg_test == s
        if mask.any():
            test_seg[mask] = _per_user(test_session, chosen[name], metric, kw)[mask]
    validation = pd.DataFrame(
        {
            "segment": SEGMENT_NAMES,
            "users (validation)": [int((seg_valid == s).sum()) for s in range(3)],
            f"{metric} (segment weights)": [means[best[s], s] if s not in empty else np.nan for s in range(3)],
            f"{metric} (global weights)": [means[best[3], s] if s not in empty else np.nan for s in range(3)],
        }
    )
    return SegmentWeights(
        metric=metric,
        thresholds=cuts,
        segment_sizes={n: int((seg_test == s).sum()) for s, n in enumerate(SEGMENT_NAMES)},
        weights={n: dict(zip(names, (float(x) for x in w), strict=True)) for n, w in chosen.items()},
        global_weights=dict(zip(names, (float(x) for x in global_w), strict=True)),
        validation=validation,
        test_segments=seg_test,
        test_per_user=test_seg,
        test_global_per_user=test_global,
        comparison=paired_comparison(test_global, test_seg, metric),
    )
