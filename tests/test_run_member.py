"""RunMember: an external run's lists, as a Scorer, give back exactly those lists."""

import numpy as np
import pandas as pd
import pytest

from reco_core.data import Interactions
from reco_core.errors import ConfigError
from reco_core.models.run_member import RunMember
from reco_core.ranking import Ranking, top_k


def _train():
    frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "z"], "value": [1.0, 1.0, 1.0]})
    inter = Interactions.from_frame(frame)
    return inter


def test_scores_are_the_run_scores_and_nan_elsewhere():
    train = _train()  # items x, y, z (indices 0, 1, 2); users a, b
    ranking = Ranking(
        np.array([0, 1], np.int32),
        np.array([[2, -1], [0, 1]], np.int32),
        np.array([[0.0, np.nan], [5.0, 4.0]], np.float32),
    )
    member = RunMember(ranking, "r").fit(train)
    scores = member.score([0, 1])
    assert np.isnan(scores[0, [0, 1]]).all() and scores[0, 2] == 0.0  # a zero score survives the sparse store
    assert scores[1].tolist()[:2] == [5.0, 4.0] and np.isnan(scores[1, 2])
    again = top_k(scores, 2, np.array([0, 1]))
    assert again.item_idx.tolist() == [[2, -1], [0, 1]]


def test_a_run_cannot_score_a_new_profile_or_another_catalogue():
    train = _train()
    ranking = Ranking(np.array([0], np.int32), np.array([[7]], np.int32), np.array([[1.0]], np.float32))
    with pytest.raises(ConfigError, match="another catalogue"):
        RunMember(ranking, "r").fit(train)
    ok = RunMember(Ranking(np.array([0], np.int32), np.array([[1]], np.int32), np.array([[1.0]], np.float32)), "r")
    with pytest.raises(ConfigError, match="new or edited profile"):
        ok.fit(train).score_profile([0])
