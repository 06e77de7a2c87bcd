"""Popularity: every user gets the same ranking, by training interaction count.

score(u, i) = number of training users who interacted with item i (the stored cells of column i),
whatever the rating. The ranking is profile-independent; ties are broken by the ranker (lower item
index first), so models need not perturb scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reco_core.data import Interactions
from reco_core.models.base import Context, ModelConfig, Scorer, register


@dataclass(frozen=True)
class PopularityConfig(ModelConfig):
    """Popularity has no hyperparameters besides the (unused) seed."""


@register
class Popularity(Scorer[PopularityConfig]):
    """Most popular items first: score = training interaction count of the item."""

    name = "pop"
    label = "Popularity"
    kind = "user"
    config_cls = PopularityConfig
    description = "Recommends the items with the most training interactions, the same list for everyone."

    def _fit(self, train: Interactions, context: Context) -> None:
        self._counts = train.item_counts().astype(np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._counts, (len(user_idx), len(self._counts))).copy()

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        # The profile does not change a popularity ranking; an empty profile is scored the same way.
        return self._counts.copy()
