"""FusedScorer: a fusion that is itself a model, so ranking, metrics, explanations and the UI need no special case."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from reco_core.data import Interactions
from reco_core.errors import ConfigError, FitError, RecoError
from reco_core.fusion.core import DEFAULT_TOP_N, _names, check_weights, fused_scores
from reco_core.fusion.normalisers import NORMALISERS, check_normaliser
from reco_core.fusion.registry import METHODS, check_method
from reco_core.models.base import Context, ModelConfig, Scorer, param
from reco_core.ranking import mask_rows


@dataclass(frozen=True)
class FusedConfig(ModelConfig):
    """How a FusedScorer combines its members (the members and weights are given to the constructor)."""

    method: str = param("wsum", choices=tuple(METHODS), help="Fusion method.")
    normaliser: str = param("minmax", choices=tuple(NORMALISERS), help="Per-user score normaliser.")
    top_n: int = param(DEFAULT_TOP_N, low=1, high=100_000, step=1, help="Length of each member's list.")
    rrf_k: float = param(60.0, low=0.0, high=10_000.0, step=1.0, help="RRF constant.")


class FusedScorer(Scorer):
    """A weighted fusion of fitted members, itself a Scorer (kept out of ``MODELS``: it is built from members).

    ``score(user_idx)`` masks each member's block with the training matrix (so training items do not enter
    the normalisation), fuses with :func:`fused_scores` and returns the dense fused block: training items
    and items the fusion cannot rank are NaN. ``score_profile`` fuses the members' ``score_profile`` and
    treats the profile's items as the history (masked the same way). ``fit`` refits every member.
    """

    name = "fused"
    label = "Fused"
    kind = "hybrid"
    config_cls = FusedConfig
    description = "Weighted fusion of several members."

    def __init__(
        self,
        members: Sequence[tuple[Scorer, float]],
        config: FusedConfig | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(config)
        members = list(members)
        if not members:
            raise ConfigError("FusedScorer needs at least one member: give [(model, weight), ...]")
        self.member_names = _names(
            names if names is not None else [getattr(m, "name", "?") for m, _ in members], len(members)
        )
        for label, item in zip(self.member_names, members, strict=True):
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Scorer)):
                raise ConfigError(f"member {label!r} is not a (model, weight) pair: give [(model, weight), ...]")
        self.members = [m for m, _ in members]
        self.weights = check_weights([w for _, w in members], len(members), self.member_names)
        check_method(self.config.method)
        check_normaliser(self.config.normaliser)
        if all(m.fitted for m in self.members):
            self._check_same_train()
            self.train = self.members[0].train

    def _check_same_train(self) -> None:
        first = self.members[0].train
        assert first is not None
        for label, m in zip(self.member_names, self.members, strict=True):
            t = m.train
            assert t is not None
            if t.items != first.items:
                raise ConfigError(
                    f"member {label!r} has {t.n_items} items but {self.member_names[0]!r} has {first.n_items}: "
                    "fuse only members fitted on the same catalogue"
                )
            if t is not first and (t.matrix.shape != first.matrix.shape or t.nnz != first.nnz):
                raise ConfigError(
                    f"member {label!r} was fitted on other training data than {self.member_names[0]!r}: "
                    "fit every member on the same split"
                )

    def _fit(self, train: Interactions, context: Context) -> None:
        for label, m in zip(self.member_names, self.members, strict=True):
            try:
                m.fit(train, context)
            except RecoError:
                raise
            except Exception as exc:  # a member's own failure: name it
                raise FitError(f"member {label!r} failed to fit: {type(exc).__name__}: {exc}") from exc

    def _fuse_blocks(self, blocks: list[np.ndarray], user_idx: np.ndarray) -> np.ndarray:
        c = self.config
        return fused_scores(
            blocks, self.weights, c.method, c.normaliser, user_idx, c.rrf_k, c.seed, c.top_n, self.member_names
        )

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        assert self.train is not None
        exclude: sp.csr_matrix = self.train.matrix
        blocks = []
        for m in self.members:
            b = np.array(m.score(user_idx), dtype=np.float32, copy=True)
            blocks.append(mask_rows(b, exclude, user_idx))
        return self._fuse_blocks(blocks, user_idx)

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        blocks = []
        for m in self.members:
            b = np.array(m.score_profile(item_idx, values), dtype=np.float32, copy=True)[None, :]
            b[0, item_idx] = -np.inf
            blocks.append(b)
        return self._fuse_blocks(blocks, np.zeros(1, dtype=np.int32))[0]
