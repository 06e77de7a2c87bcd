"""Genre distributions for calibration (Steck 2018): of a user's history, of a list, and their divergence.

Each item spreads a weight of 1 evenly over its genres (an item without genres contributes nothing);
a history's or a list's distribution is the normalised sum over its items. ``kl_divergence`` smooths
the list's side towards the history's, ``q~ = (1 - alpha) q + alpha p``, so a list that misses one of
the user's genres has a finite divergence. Used by the ``calibrated`` re-ranker and by the
``miscalibration`` metric, so both mean the same thing.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

CALIBRATION_ALPHA = 0.01
"""Steck's smoothing of the list's genre distribution towards the history's, so KL stays finite."""


def item_genre_table(genres: sp.spmatrix) -> np.ndarray:
    """p(g | item) for every item plus one zero row at the end (for padding, index -1 or n_items)."""
    g = sp.csr_matrix(genres, dtype=np.float64)
    g.data[:] = 1.0
    per_item = np.asarray(g.sum(axis=1)).ravel()
    table = np.zeros((g.shape[0] + 1, g.shape[1]))
    table[:-1] = g.toarray() / np.maximum(per_item, 1.0)[:, None]
    return table


def genre_distribution(genres: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """p(g | item) rows for ``items`` (-1 = padding gives a zero row): each item's weight 1 spread evenly
    over its genres (an item without genres gives a zero row)."""
    table = item_genre_table(genres)
    return table[np.where(items >= 0, items, table.shape[0] - 1)]


def history_genre_distribution(genres: sp.csr_matrix, history: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """p(g | u) of each user's training history [n, genres] (rows sum to 1, or 0 without genres)."""
    return history_distribution(item_genre_table(genres)[:-1], history, users)


def history_distribution(table: np.ndarray, history: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """p(g | u) from a p(g | item) table [n_items, genres]: each history item counts once, whatever its value."""
    h = sp.csr_matrix(history[users], dtype=np.float64)
    h.data[:] = 1.0
    mass = np.asarray(h @ table)
    total = mass.sum(axis=1, keepdims=True)
    return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)


def kl_divergence(p: np.ndarray, q: np.ndarray, alpha: float = CALIBRATION_ALPHA) -> np.ndarray:
    """KL(p || (1 - alpha) q + alpha p) over the last axis, with 0 log 0 = 0 (Steck 2018, eq. 4)."""
    q_s = (1.0 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / np.where(q_s > 0, q_s, 1.0)), 0.0)
    return terms.sum(axis=-1)
