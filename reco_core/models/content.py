"""Genre profile (an item/content model), and the profile helpers the text model shares.

Genre model. ``G`` is the items x genres multi-hot matrix of the catalogue; with ``center`` (the
default) each column's catalogue mean is subtracted first, X = G - mean_i(G_i), else X = G. A user's
profile is the mean of the rows of the items in their training history, optionally weighted by the
rating:

    p_u = sum_j w_uj X_j / sum_j |w_uj|        (w_uj = rating if ``rating_weighted`` else 1)
    score(u, i) = cos(p_u, X_i) = p_u . X_i / (|p_u| |X_i|)

Centering removes what every item shares (most films are dramas or comedies), so a profile is
compared on what sets it apart; on ML-100K (80/20 split, seed 42) it raised NDCG@10 from 0.049 to
0.091 (rating-weighted). See docs/models.md.

Conventions
- Without centering, an item with no genres has ``|G_i| = 0``; it scores 0 (no overlap, still
  rankable, below any item sharing a genre with the profile) rather than NaN.
- A user with an empty history (or a zero profile) cannot be scored: the whole row is NaN.
- The model is kept pure: no popularity tie-breaker. Many items share the same genre set, so ties
  are common; the ranker breaks them by the lower item index.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from reco_core.data import Interactions, ItemCatalog
from reco_core.errors import ConfigError, DataError
from reco_core.models._profiles import profile_row
from reco_core.models.base import Context, ModelConfig, Scorer, param, register


def catalog_for(train: Interactions, context: Context, model: str) -> ItemCatalog:
    """The context's catalogue with rows in ``train.items`` order.

    Items of ``train`` missing from the catalogue get no genres and their id as text; they are
    counted in a warning, never dropped. Extra catalogue items are ignored.
    """
    cat = context.catalog
    if cat is None:
        raise ConfigError(f"model {model!r} needs an item catalogue: pass Context(catalog=dataset.catalog) to fit")
    if cat.items == train.items:
        return cat
    pos = cat.items.index_of(train.items.ids, missing="mask", what="item")
    missing = int((pos < 0).sum())
    if missing:
        warnings.warn(
            f"{missing:,} of {train.n_items:,} items have no catalogue entry: model {model!r} treats them as"
            " items without genres whose text is their id",
            UserWarning,
            stacklevel=3,
        )
    bare = ItemCatalog.bare(train.items)
    take = np.where(pos >= 0, pos, 0)
    ok = pos >= 0
    return ItemCatalog(
        train.items,
        np.where(ok, cat.title[take], bare.title),
        np.where(ok, np.asarray(cat.year, dtype=float)[take], np.nan),
        tuple(cat.genres[p] if p >= 0 else () for p in pos),
        np.where(ok, cat.text[take], bare.text),
    )


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (float32); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def mean_profiles(matrix: sp.csr_matrix, vectors: np.ndarray, weighted: bool) -> np.ndarray:
    """Per row of ``matrix``: sum_j w_j v_j / sum_j |w_j| (w = stored value if weighted, else 1).

    float32 [n_rows, dim]; a row with no stored items (or all-zero weights) gives a zero profile.
    """
    w = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    if not weighted:
        w.data[:] = 1.0
    denom = np.asarray(abs(w).sum(axis=1), dtype=np.float32).reshape(-1, 1)
    prof = np.asarray(w @ vectors, dtype=np.float32)
    return np.divide(prof, denom, out=np.zeros_like(prof), where=denom > 0)


def profile_of(item_idx: np.ndarray, values: np.ndarray, vectors: np.ndarray, weighted: bool) -> np.ndarray:
    """``mean_profiles`` for one unseen profile: float32 [dim]."""
    # A profile listing an item twice counts it (and its weights) twice; ``weighted`` decides in mean_profiles.
    row = profile_row(item_idx, values, vectors.shape[0], use_ratings=True)
    return mean_profiles(row, vectors, weighted)[0]


def cosine_scores(profiles: np.ndarray, item_unit: np.ndarray) -> np.ndarray:
    """cos(profile, item) for unit-normalised item rows; NaN rows where the profile is zero."""
    p = np.atleast_2d(np.asarray(profiles, dtype=np.float32))
    norms = np.linalg.norm(p, axis=1)
    out = unit_rows(p) @ item_unit.T
    out[norms == 0] = np.nan
    return out.astype(np.float32, copy=False)


@dataclass(frozen=True)
class GenreConfig(ModelConfig):
    rating_weighted: bool = param(
        True, help="Weight each history item's genres by its rating (otherwise every item counts once)."
    )
    center: bool = param(True, help="Subtract the catalogue's mean genre vector before the cosine.")


@register
class GenreProfile(Scorer[GenreConfig]):
    """Cosine between the user's mean genre vector and each item's genre multi-hot."""

    name = "genre"
    label = "Genre profile"
    kind = "item"
    config_cls = GenreConfig
    description = "Recommends items whose genres resemble the genres of the items in your history."

    def _fit(self, train: Interactions, context: Context) -> None:
        cat = catalog_for(train, context, self.name)
        if not cat.has_genres():
            raise DataError(
                f"model {self.name!r} needs item genres, and this dataset has none: "
                "load an items file with a genres column (e.g. Comedy|Drama), or leave the genre model out"
            )
        g = cat.genre_matrix().toarray().astype(np.float32)
        if self.config.center and len(g):
            g = g - g.mean(axis=0, keepdims=True)
        self.genre_names: list[str] = cat.genre_names
        self._genres = g
        self._unit = unit_rows(g)
        self._profiles = mean_profiles(train.matrix, g, self.config.rating_weighted)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return cosine_scores(self._profiles[user_idx], self._unit)

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        return cosine_scores(profile_of(item_idx, values, self._genres, self.config.rating_weighted), self._unit)[0]

    def user_profiles(self, user_idx: np.ndarray) -> np.ndarray:
        """float32 [n, n_genres]: the mean (centred, if configured) genre vectors, in ``genre_names`` order."""
        self._check_fitted()
        return self._profiles[np.asarray(user_idx, dtype=np.int64)].copy()

    def similar_items(self, item_idx: np.ndarray, to_items: np.ndarray) -> np.ndarray:
        """Genre cosine, float32 [len(item_idx), len(to_items)]; 0 where an item has no genres."""
        self._check_fitted()
        a = self._unit[np.asarray(item_idx, dtype=np.int64)]
        b = self._unit[np.asarray(to_items, dtype=np.int64)]
        return (a @ b.T).astype(np.float32)
