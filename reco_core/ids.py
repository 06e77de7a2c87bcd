"""IdMap: external ids (always strings) <-> contiguous integer indices.

External ids are kept as strings so that users' files with numeric, textual or mixed ids all
behave the same; when every id is an integer they are ordered numerically ("2" before "10"),
which keeps tables and pickers in the order people expect.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from reco_core.errors import QUOTE_CHARS, UnknownIdError, quote


def _sorted_unique(values: Iterable[object]) -> np.ndarray:
    as_str = pd.unique(
        pd.Series(list(values) if not isinstance(values, (np.ndarray, pd.Series)) else values).astype(str)
    )
    numeric = pd.to_numeric(pd.Series(as_str), errors="coerce")
    if len(as_str) and numeric.notna().all() and (numeric == numeric.round()).all():
        order = np.lexsort((as_str, numeric.to_numpy()))
    else:
        order = np.argsort(as_str, kind="stable")
    return np.asarray(as_str, dtype=object)[order]


def _example(external_id: object) -> str:
    """A known id as a message shows it: plain when short, else clipped like any quoted value."""
    text = str(external_id)
    return text if len(text) <= QUOTE_CHARS else quote(text)


@dataclass(frozen=True, eq=False)
class IdMap:
    """Sorted unique external ids; index ``i`` is the i-th id.

    Two IdMaps are equal when they hold the same ids in the same order (so the same index means the
    same id in both); equality and the hash compare ``fingerprint``, computed once per IdMap.
    """

    ids: np.ndarray
    _index: pd.Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, dtype=object)
        object.__setattr__(self, "ids", ids)
        index = pd.Index(ids)
        if not index.is_unique:
            raise ValueError("IdMap ids must be unique; build it with IdMap.from_values")
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_values(cls, values: Iterable[object]) -> IdMap:
        """Build from any iterable of ids (duplicates allowed); ids become strings."""
        return cls(_sorted_unique(values))

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def fingerprint(self) -> str:
        """sha1 hex digest of the ids, in order, with their types ("1" and 1 differ), as LensKit's Vocabulary."""
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(f"{self.ids.dtype.str}:{len(self.ids)}\0".encode())
        # repr() never contains a raw NUL, so NUL-joined reprs identify the sequence of ids exactly; a str
        # subclass (numpy.str_) is keyed as the plain str it looks up as.
        keys = (repr(str(x)) if isinstance(x, str) else repr(x) for x in self.ids.tolist())
        digest.update("\0".join(keys).encode())
        return digest.hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return NotImplemented
        return self is other or (len(self) == len(other) and self.fingerprint == other.fingerprint)

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __contains__(self, external_id: object) -> bool:
        return str(external_id) in self._index

    def index_of(
        self, ids: Iterable[object] | object, missing: Literal["raise", "mask"] = "raise", what: str = "id"
    ) -> np.ndarray:
        """Indices (int64) of external ids. ``missing="mask"`` gives -1 for unknown ids."""
        # Anything that is not a collection (a float, None, bytes...) is one id, so a bad id is an
        # UnknownIdError naming it rather than a TypeError from iterating it.
        if isinstance(ids, np.ndarray):
            values = ids.reshape(-1).tolist()
        elif isinstance(ids, (str, bytes, int, float, np.generic)) or not isinstance(ids, Iterable):
            values = [ids]
        else:
            values = list(ids)
        idx = self._index.get_indexer(pd.Index([str(v) for v in values], dtype=object)).astype(np.int64)
        if missing == "raise" and (idx < 0).any():
            bad = [values[i] for i in np.flatnonzero(idx < 0)[:5]]
            # Both the unknown ids and the examples are a person's text: each is clipped (``quote``).
            example = ", ".join(_example(x) for x in self.ids[:3])
            raise UnknownIdError(
                f"unknown {what} {', '.join(quote(str(b)) for b in bad)}"
                f"{' and others' if (idx < 0).sum() > 5 else ''}: pick one of the {len(self)} known {what}s"
                f" (for example {example})"
            )
        return idx

    def ids_of(self, idx: np.ndarray | Iterable[int]) -> np.ndarray:
        """External ids of indices; -1 (padding) maps to None."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty(idx.shape, dtype=object)
        valid = idx >= 0
        out[valid] = self.ids[idx[valid]]
        out[~valid] = None
        return out
