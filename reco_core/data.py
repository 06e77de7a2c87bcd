"""Central data types: Interactions, ItemCatalog, UserTable, Dataset and the LoadReport.

All data invariants are checked here, once: canonical CSR, no duplicate cells, finite values,
ids known to their IdMap. Everything downstream can trust these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reco_core.errors import DataError
from reco_core.ids import IdMap


@dataclass
class LoadReport:
    """Accounts for every input row: kept, merged as duplicate, or dropped with a reason."""

    source: str = ""
    rows_read: int = 0
    rows_kept: int = 0
    duplicates_merged: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, count: int) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def balanced(self) -> bool:
        """Every read row is kept, merged or dropped."""
        return self.rows_read == self.rows_kept + self.duplicates_merged + self.rows_dropped

    def summary(self) -> str:
        parts = [f"{self.rows_read:,} rows read from {self.source or 'input'}", f"{self.rows_kept:,} kept"]
        if self.duplicates_merged:
            parts.append(f"{self.duplicates_merged:,} duplicate (user, item) rows merged (last kept)")
        for reason, n in self.dropped.items():
            parts.append(f"{n:,} dropped: {reason}")
        return "; ".join(parts) + ("" if not self.notes else ". " + " ".join(self.notes))


@dataclass(frozen=True)
class Interactions:
    """users x items matrix (CSR float32, canonical, finite); optional timestamps with the same pattern."""

    users: IdMap
    items: IdMap
    matrix: sp.csr_matrix
    timestamps: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        m = self.matrix
        if not sp.isspmatrix_csr(m) and not isinstance(m, sp.csr_array):
            raise DataError("Interactions.matrix must be CSR")
        if m.shape != (len(self.users), len(self.items)):
            raise DataError(f"matrix shape {m.shape} != ({len(self.users)}, {len(self.items)})")
        if m.dtype != np.float32:
            raise DataError("Interactions.matrix must be float32")
        if not m.has_canonical_format:
            raise DataError("Interactions.matrix must be canonical (sorted, no duplicates)")
        if not np.isfinite(m.data).all():
            raise DataError("Interactions.matrix has non-finite values")
        if self.timestamps is not None and self.timestamps.shape != m.shape:
            raise DataError("timestamps must have the matrix's shape")

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        users: IdMap | None = None,
        items: IdMap | None = None,
    ) -> Interactions:
        """Build from a tidy frame with columns user, item, value and optional timestamp.

        Duplicate (user, item) rows must already be resolved by the loader (it counts them);
        here they raise, because merging silently would hide lost data.
        """
        for col in ("user", "item", "value"):
            if col not in frame.columns:
                raise DataError(f"interaction frame has no column {col!r}: give user, item and value columns")
        users = users or IdMap.from_values(frame["user"])
        items = items or IdMap.from_values(frame["item"])
        rows = users.index_of(frame["user"].astype(str), what="user")
        cols = items.index_of(frame["item"].astype(str), what="item")
        values = frame["value"].to_numpy(dtype=np.float32)
        if not np.isfinite(values).all():
            raise DataError("interaction values must be finite: drop or fix NaN/inf ratings first")
        key = rows * len(items) + cols
        if len(np.unique(key)) != len(key):
            raise DataError("duplicate (user, item) rows: resolve them before building Interactions")
        shape = (len(users), len(items))
        matrix = sp.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float32)
        matrix.sort_indices()
        ts = None
        if "timestamp" in frame.columns and frame["timestamp"].notna().all():
            # +1 keeps a timestamp of 0 from vanishing as an implicit zero of the sparse format.
            tvals = frame["timestamp"].to_numpy(dtype=np.float64) + 1.0
            ts = sp.csr_matrix((tvals, (rows, cols)), shape=shape, dtype=np.float64)
            ts.sort_indices()
        return cls(users, items, matrix, ts)

    def to_frame(self) -> pd.DataFrame:
        """Tidy frame (user, item, value[, timestamp]) with external ids."""
        coo = self.matrix.tocoo()
        out = pd.DataFrame(
            {"user": self.users.ids[coo.row], "item": self.items.ids[coo.col], "value": coo.data.astype(np.float64)}
        )
        if self.timestamps is not None:
            out["timestamp"] = self.timestamps.tocoo().data - 1.0
        return out

    def with_matrix(self, matrix: sp.csr_matrix, timestamps: sp.csr_matrix | None = None) -> Interactions:
        """Same ids, another matrix (used by splitting)."""
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        matrix.sort_indices()
        if timestamps is not None:
            timestamps = sp.csr_matrix(timestamps, dtype=np.float64)
            timestamps.sort_indices()
        return Interactions(self.users, self.items, matrix, timestamps)

    def binary(self) -> sp.csr_matrix:
        """Same pattern with every stored value 1 (implicit feedback)."""
        out = self.matrix.copy()
        out.data[:] = 1.0
        return out

    def user_counts(self) -> np.ndarray:
        return np.diff(self.matrix.indptr).astype(np.int64)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.matrix.indices, minlength=self.n_items).astype(np.int64)

    def items_of(self, user_index: int) -> np.ndarray:
        m = self.matrix
        return m.indices[m.indptr[user_index] : m.indptr[user_index + 1]]


@dataclass(frozen=True)
class ItemCatalog:
    """Per item index: title, year (NaN if unknown), genres, and the text the text model embeds."""

    items: IdMap
    title: np.ndarray
    year: np.ndarray
    genres: tuple[tuple[str, ...], ...]
    text: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.items)
        if not (len(self.title) == len(self.year) == len(self.genres) == len(self.text) == n):
            raise DataError("ItemCatalog columns must all have one entry per item")

    @property
    def genre_names(self) -> list[str]:
        return sorted({g for gs in self.genres for g in gs})

    def genre_matrix(self) -> sp.csr_matrix:
        """items x genres multi-hot (float32), columns in ``genre_names`` order."""
        names = self.genre_names
        col = {g: j for j, g in enumerate(names)}
        rows, cols = [], []
        for i, gs in enumerate(self.genres):
            for g in gs:
                rows.append(i)
                cols.append(col[g])
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(self.items), len(names)), dtype=np.float32)

    def described(self) -> np.ndarray:
        """bool [n_items]: the item has a real text (not the bare "Item <id>" placeholder)."""
        placeholder = np.asarray([f"Item {i}" for i in self.items.ids], dtype=object)
        return np.asarray(self.text, dtype=object) != placeholder

    def has_genres(self) -> bool:
        return any(len(g) for g in self.genres)

    @classmethod
    def bare(cls, items: IdMap) -> ItemCatalog:
        """A catalogue for items we know nothing about: the id is the title and the text."""
        titles = np.asarray([f"Item {i}" for i in items.ids], dtype=object)
        return cls(items, titles, np.full(len(items), np.nan), tuple(() for _ in items.ids), titles.copy())

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "item": self.items.ids,
                "title": self.title,
                "year": self.year,
                "genres": ["|".join(g) for g in self.genres],
                "text": self.text,
            }
        )


def item_text(title: str, year: float, genres: tuple[str, ...]) -> str:
    """The text the text model embeds: "Title (year). Genres: a, b"."""
    head = str(title)
    if year == year and year is not None and f"({int(year)})" not in head:  # year == year: not NaN
        head = f"{head} ({int(year)})"
    return f"{head}. Genres: {', '.join(genres)}" if genres else head


@dataclass(frozen=True)
class UserTable:
    """Per user index: optional demographics (age, gender, occupation); missing values allowed."""

    users: IdMap
    frame: pd.DataFrame  # indexed 0..n_users-1, columns among age, gender, occupation

    def __post_init__(self) -> None:
        if len(self.frame) != len(self.users):
            raise DataError("UserTable.frame must have one row per user")


@dataclass(frozen=True)
class Dataset:
    """What a loader returns: interactions, catalogue, optional user table, and the load report."""

    name: str
    interactions: Interactions
    catalog: ItemCatalog
    users: UserTable | None
    report: LoadReport
