"""Every cache of the dashboard, all bounded.

Fitted members, datasets, splits, evaluation contexts and live sessions are big, shared by every browser
session, and never mutated after they are built: they live in ``BoundedStore`` LRUs held by one
``st.cache_resource`` object. Why not one ``st.cache_resource`` function per step: a cached function
replays the Streamlit elements it drew, so the fitting progress (``st.status``, ``st.progress``) would
reappear on every rerun; the store lets the caller ask "is it built?" and show progress only when it
builds. ``st.cache_resource.clear()`` empties everything (the holder object is rebuilt).

Keys are small: the protocol's fields, a member's spec, and for an uploaded dataset its content hash,
never arrays. Small derived tables (the overview's counts) use ``st.cache_data``.

What a rerun computes is shared too (issue 16, a class on one server): the fused result and evaluation of a
configuration (``result``: lab key, the fitted members' weights, the FusionSpec) and its ablation table
(``ablation``), so ten students on the same configuration cost one fusion; learned fusion's trained rankers
and test reports (``learned``, ``ui.learned_view``) are shared the same way. Nothing here depends on the browser
session: session values (an upload) reach a key only as their content hash. Concurrent requests for a key
that is being built wait for that one build (``BoundedStore.get_or_build``); ``BoundedStore.stats`` counts
builds and hits (the tests and the sessions benchmark read them).
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
# Fused results with their evaluation (a ranking, per-user metrics and contributions: about 0.5 MB each on
# MovieLens-100K, a few MB on MovieLens-1M) and ablation tables (a few rows). A class on one configuration
# shares one entry; thirty students on thirty configurations still fit.
MAX_RESULTS = 64
MAX_ABLATIONS = 32
# Learned fusion (ui.learned_view): trained meta-rankers per (lab, top_n) and their test reports per (lab, top_n,
# k); a LightGBM booster of a few hundred trees and a k-item ranking per test user, well under a MB each.
MAX_LEARNED = 16


class _Build:
    """One build in flight: the thread building it, and an event the waiters wait on."""

    __slots__ = ("done", "ok", "owner", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.owner = threading.get_ident()
        self.ok = False
        self.value: Any = None


class BoundedStore:
    """A thread-safe LRU in which concurrent requests for one key wait for a single build.

    ``get_or_build(key, build)``: the first caller builds (outside the store's lock, so other keys are served
    meanwhile); every caller that asks for the same key while it builds waits and gets the same object, even
    if the LRU has already evicted it. When the build raises, its caller gets the exception and one waiter
    builds again: a build may fail for its own session's reason (Streamlit stops a script when its session
    reruns), which must not fail the other sessions. A build that asks for its own key again (re-entrant)
    builds without waiting, instead of deadlocking.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = int(max_entries)
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, _Build] = {}
        self._stats = {"hits": 0, "builds": 0, "waits": 0, "failures": 0}

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def stats(self) -> dict[str, int]:
        """Counts since creation: ``hits`` (served from the store), ``builds`` (started), ``waits`` (requests
        that waited for another caller's build), ``failures`` (builds that raised)."""
        with self._lock:
            return dict(self._stats)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._put_locked(key, value)

    def _put_locked(self, key: Hashable, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        """The stored value, or ``build()`` stored under ``key`` (built once however many callers ask at once);
        a failing build stores nothing and raises in its own caller only."""
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    self._stats["hits"] += 1
                    return self._items[key]
                pending = self._building.get(key)
                if pending is None or pending.owner == threading.get_ident():
                    mine = _Build()
                    self._building[key] = mine
                    self._stats["builds"] += 1
                    break
                self._stats["waits"] += 1
            pending.done.wait()
            if pending.ok:
                return pending.value
            # The build failed in its own caller: try again (one waiter becomes the builder).
        try:
            value = build()
        except BaseException:
            with self._lock:
                self._stats["failures"] += 1
                if self._building.get(key) is mine:
                    del self._building[key]
            mine.done.set()
            raise
        with self._lock:
            self._put_locked(key, value)
            mine.value, mine.ok = value, True
            if self._building.get(key) is mine:
                del self._building[key]
        mine.done.set()
        return value

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
        "result": BoundedStore(MAX_RESULTS),
        "ablation": BoundedStore(MAX_ABLATIONS),
        "learned": BoundedStore(MAX_LEARNED),
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
