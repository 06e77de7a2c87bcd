"""Helpers the interaction-based models share: the training matrix, profile rows and unscorable rows.

- ``interaction_matrix``: X is the ratings when ``use_ratings`` is on, else the binary matrix (every stored cell 1).
- ``profile_row``: an unseen profile as a 1 x n_items CSR row built the same way as a row of X.
- ``nan_empty_rows``: a user (or profile) with no interactions cannot be scored, so its row is NaN
  (fusion then falls back on the other members).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reco_core.data import Interactions


def interaction_matrix(train: Interactions, use_ratings: bool) -> sp.csr_matrix:
    """The training matrix a model fits on: a copy of the ratings, or the binary matrix."""
    return train.matrix.copy() if use_ratings else train.binary()


def profile_row(item_idx: np.ndarray, values: np.ndarray, n_items: int, use_ratings: bool) -> sp.csr_matrix:
    """A float32 1 x n_items CSR row for a profile; repeated items are summed (the caller's list, as given).

    The cells are ``values`` when ``use_ratings`` is on, else 1 per listed item.
    """
    data = np.asarray(values, dtype=np.float32) if use_ratings else np.ones(len(item_idx), dtype=np.float32)
    row = sp.csr_matrix((data, (np.zeros(len(item_idx), dtype=np.int64), item_idx)), shape=(1, n_items))
    row.sum_duplicates()
    return row


def nan_empty_rows(scores: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
    """Set to NaN, in place, the rows of ``scores`` whose row of ``history`` is empty; returns ``scores``."""
    empty = np.diff(history.indptr) == 0
    if empty.any():
        scores[empty] = np.nan
    return scores
