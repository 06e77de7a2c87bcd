"""Per-segment weights (reco_core.segments): segments by history length, one grid pass, paired test report."""

from __future__ import annotations

import numpy as np
import pytest

from reco_core.errors import ConfigError
from reco_core.live import LiveSession
from reco_core.metrics import EvalContext
from reco_core.search import search_weights
from reco_core.segments import SEGMENT_NAMES, history_segments, search_segment_weights
from reco_core.splitting import random_split, with_validation


def test_history_segments_cut_at_terciles_or_given_thresholds() -> None:
    counts = np.array([1, 2, 3, 4, 5, 6])
    # Terciles of 1..6: 2.667 and 4.333, so 1, 2 are light, 3, 4 medium, 5, 6 heavy.
    seg, cuts = history_segments(counts, np.arange(6))
    assert seg.tolist() == [0, 0, 1, 1, 2, 2] and cuts == pytest.approx((8 / 3, 13 / 3))
    seg, cuts = history_segments(counts, np.array([5, 0, 2]), thresholds=(1, 3))
    assert seg.tolist() == [2, 0, 1] and cuts == (1.0, 3.0)
    with pytest.raises(ConfigError, match="t1 <= t2"):
        history_segments(counts, np.arange(6), thresholds=(4, 2))
    with pytest.raises(ConfigError, match="no users to segment"):
        history_segments(counts, np.array([], dtype=int))


@pytest.fixture(scope="module")
def sessions(toy_interactions, toy_members):
    split = with_validation(random_split(toy_interactions, 0.25, seed=1), 0.3, seed=1)
    valid = LiveSession(toy_members(split.train), split, EvalContext.from_train(split.train), part="valid", top_n=10)
    full = random_split(toy_interactions, 0.25, seed=1)
    test = LiveSession(toy_members(full.train), full, EvalContext.from_train(full.train), top_n=10)
    return valid, test


def test_segment_search_serves_each_user_with_their_segments_weights(sessions) -> None:
    valid, test = sessions
    out = search_segment_weights(valid, test, "ndcg@5", step=0.25, thresholds=(9, 10))
    # The global weights are exactly what the ordinary search picks on the same validation session.
    assert out.global_weights == search_weights(valid, "ndcg@5", step=0.25).best_weights
    for s, name in enumerate(SEGMENT_NAMES):
        mask = out.test_segments == s
        if mask.any():
            expected = test.update(out.weights[name], k=5).evaluation.per_user["ndcg@5"][mask]
            np.testing.assert_array_equal(out.test_per_user[mask], expected)
    np.testing.assert_array_equal(
        out.test_global_per_user, test.update(out.global_weights, k=5).evaluation.per_user["ndcg@5"]
    )
    assert out.comparison.mean_diff == pytest.approx(float((out.test_per_user - out.test_global_per_user).mean()))
    assert sum(out.segment_sizes.values()) == len(test.users)
    # On validation each segment's own point is at least as good there as the global point.
    v = out.validation
    seg, glob = v["ndcg@5 (segment weights)"], v["ndcg@5 (global weights)"]
    assert ((seg >= glob - 1e-12) | (seg.isna() & glob.isna() & (v["users (validation)"] == 0))).all()
    assert list(out.table()["segment"]) == list(SEGMENT_NAMES)


def test_segment_search_refuses_swapped_sessions_and_global_metrics(sessions) -> None:
    valid, test = sessions
    with pytest.raises(ConfigError, match="part='valid'"):
        search_segment_weights(test, valid)
    with pytest.raises(ConfigError, match="per-user metric"):
        search_segment_weights(valid, test, "coverage@5", step=0.5)


def test_a_segment_without_validation_users_keeps_the_global_weights(sessions) -> None:
    valid, test = sessions
    counts = test.train.user_counts()
    # Thresholds above every history length: every user is light, medium and heavy are empty on validation.
    top = float(counts.max()) + 1
    out = search_segment_weights(valid, test, "ndcg@5", step=0.25, thresholds=(top, top + 1))
    assert out.weights["medium"] == out.global_weights and out.weights["heavy"] == out.global_weights
    v = out.validation.set_index("segment")
    assert np.isnan(v.loc["heavy", "ndcg@5 (segment weights)"]) and v.loc["light", "users (validation)"] > 0
