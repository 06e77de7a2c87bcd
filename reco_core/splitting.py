"""Splits: per-user random holdout, global temporal cut, per-user leave-last-n, user-supplied files.

Every split keeps the full users/items IdMaps in train, valid and test, so indices line up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reco_core.data import Interactions


@dataclass(frozen=True)
class Split:
    """train / optional valid / test over the same IdMaps; ``description`` says how it was made."""

    train: Interactions
    test: Interactions
    valid: Interactions | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for part in (self.test, self.valid):
            if part is not None and (part.users is not self.train.users or part.items is not self.train.items):
                if list(part.users.ids) != list(self.train.users.ids) or list(part.items.ids) != list(self.train.items.ids):
                    raise ValueError("train, valid and test must share the same IdMaps")

    def eval_users(self, part: str = "test") -> np.ndarray:
        """Indices (int32) of users with at least one held-out item in ``part`` ("test" or "valid")."""
        target = self.test if part == "test" else self.valid
        if target is None:
            return np.zeros(0, dtype=np.int32)
        return np.flatnonzero(target.user_counts() > 0).astype(np.int32)

    def n_users_without(self, part: str = "test") -> int:
        """Users left out of evaluation because they have nothing held out (reported, never silent)."""
        return self.train.n_users - len(self.eval_users(part))
