"""Every cache of the dashboard, all bounded.

Fitted members, datasets, splits, evaluation contexts and live sessions are big, shared by every browser
session, and never mutated after they are built: they live in ``BoundedStore`` LRUs held by one
``st.cache_resource`` object. Why not one ``st.cache_resource`` function per step: a cached function
replays the Streamlit elements it drew, so the fitting progress (``st.status``, ``st.progress``) would
reappear on every rerun; the store lets the caller ask "is it built?" and show progress only when it
builds. ``st.cache_resource.clear()`` empties everything (the holder object is rebuilt).

Keys are small: the protocol's fields, a member's spec, and for an uploaded dataset its content hash,
never arrays. Small derived tables (the overview's counts) use ``st.cache_data``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np
import streamlit as st

from reco_core.data import Dataset

T = TypeVar("T")

# How many of each kind are kept (least recently used is dropped first). A live session for MovieLens-1M
# holds a few hundred MB of score blocks, hence the small numbers.
MAX_DATASETS = 3
MAX_SPLITS = 4
MAX_CONTEXTS = 4
MAX_MEMBERS = 24
MAX_SESSIONS = 4
MAX_SWEEPS = 16  # weight-sweep tables (a few hundred rows each)


class BoundedStore:
    """A thread-safe LRU with one build lock per key, so concurrent sessions never build the same thing twice."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = int(max_entries)
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        """The stored value, or ``build()`` stored under ``key``; a failing build stores nothing."""
        hit = self.get(key)
        if hit is not None:
            return hit
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            hit = self.get(key)  # another session may have built it while we waited
            if hit is not None:
                return hit
            try:
                value = build()
                self.put(key, value)
                return value
            finally:
                with self._lock:
                    self._building.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@st.cache_resource(max_entries=1, show_spinner=False)
def stores() -> dict[str, BoundedStore]:
    """The process-wide stores, one per kind of object."""
    return {
        "dataset": BoundedStore(MAX_DATASETS),
        "split": BoundedStore(MAX_SPLITS),
        "context": BoundedStore(MAX_CONTEXTS),
        "member": BoundedStore(MAX_MEMBERS),
        "session": BoundedStore(MAX_SESSIONS),
        "sweep": BoundedStore(MAX_SWEEPS),
    }


def store(kind: str) -> BoundedStore:
    return stores()[kind]


@st.cache_data(max_entries=8, show_spinner=False)
def overview_stats(dataset_key: str, _dataset: Dataset) -> dict[str, Any]:
    """Counts the Overview page draws (small arrays only): ratings, item and user activity, genres."""
    ds = _dataset
    inter = ds.interactions
    item_counts = inter.item_counts()
    user_counts = inter.user_counts()
    values, value_counts = np.unique(inter.matrix.data, return_counts=True)
    genre_names = ds.catalog.genre_names
    gm = ds.catalog.genre_matrix()
    genre_items = np.asarray(gm.sum(axis=0)).ravel().astype(np.int64)
    genre_interactions = np.asarray(gm.T @ item_counts).ravel().astype(np.int64) if gm.shape[1] else np.zeros(0)
    n_users, n_items = inter.n_users, inter.n_items
    return {
        "name": ds.name,
        "n_users": n_users,
        "n_items": n_items,
        "n_interactions": inter.nnz,
        "density": inter.nnz / max(n_users * n_items, 1),
        "rating_values": values.astype(np.float64),
        "rating_counts": value_counts.astype(np.int64),
        "item_counts": item_counts,
        "user_counts": user_counts,
        "genres": list(genre_names),
        "genre_items": genre_items,
        "genre_interactions": genre_interactions,
        "has_timestamps": inter.timestamps is not None,
        "report": ds.report.summary(),
        "has_users": ds.users is not None,
    }
