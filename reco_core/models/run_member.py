"""An external system's run as a fusion member, so result-level (and score-level) fusion can mix
files from other tools with our own models.

Not registered in ``MODELS``: it is built from a run file, not from a name and a config.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from reco_core.data import Interactions
from reco_core.errors import ConfigError
from reco_core.models.base import Context, ModelConfig, ModelKind, Scorer
from reco_core.ranking import Ranking


class RunMember(Scorer[ModelConfig]):
    """Scores from a run: a listed item gets the run's score (or minus its rank), every other item NaN.

    NaN means "cannot score", so in a weighted sum an unlisted item gets nothing from this member,
    and result-level methods see exactly the run's list.
    """

    name: ClassVar[str] = "run"
    label: ClassVar[str] = "External run"
    kind: ClassVar[ModelKind] = "user"
    description: ClassVar[str] = "Another system's top-k lists read from a file."

    def __init__(self, ranking: Ranking, run_name: str = "run") -> None:
        super().__init__()
        self.ranking = ranking
        self.run_name = run_name
        self._scores: sp.csr_matrix | None = None

    def _fit(self, train: Interactions, context: Context) -> None:
        r = self.ranking
        valid = r.item_idx >= 0
        if valid.any() and (r.item_idx[valid].max() >= train.n_items or r.user_idx.max() >= train.n_users):
            raise ConfigError(
                f"run {self.run_name!r} was read against another catalogue: read it with the split's users and items"
            )
        rows = np.repeat(r.user_idx.astype(np.int64), valid.sum(axis=1))
        cols = r.item_idx[valid].astype(np.int64)
        vals = r.score[valid].astype(np.float64)
        # CSR drops explicit zeros on some operations; shift scores so every stored value is non-zero.
        self._offset = float(np.nanmin(vals)) - 1.0 if len(vals) else 0.0
        self._scores = sp.csr_matrix((vals - self._offset, (rows, cols)), shape=(train.n_users, train.n_items))

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        sub = self._scores[user_idx]  # type: ignore[index]
        out = np.full(sub.shape, np.nan, dtype=np.float32)
        r = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
        out[r, sub.indices] = sub.data + self._offset
        return out

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        raise ConfigError(f"run {self.run_name!r} is a fixed file: it cannot score a new or edited profile")
