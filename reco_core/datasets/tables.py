"""The three kinds of input table, parsed: interactions (tidy rows in file order), items and users (frames).

Nothing is merged or dropped here except repeated item/user rows (counted in the notes); the interaction
rows are resolved when a Dataset is assembled (``reco_core.datasets.assemble``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reco_core.data import LoadReport
from reco_core.datasets.columns import _ids, _numbers, _resolve_columns, _timestamps
from reco_core.datasets.readers import MAX_DECODED_BYTES, MAX_ROWS, _read_table
from reco_core.errors import DataError

_YEAR_IN_TITLE = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


@dataclass
class _Tidy:
    """Parsed interaction rows (one entry per input row, in file order) and their report."""

    user: np.ndarray
    item: np.ndarray
    value: np.ndarray
    timestamp: np.ndarray | None
    report: LoadReport


def _tidy_interactions(
    frame: pd.DataFrame, source: str, columns: Mapping[str, str | None] | None, header: bool = True
) -> _Tidy:
    if len(frame) == 0:
        raise DataError(f"{source}: the file has a header but no data rows (row 1 is missing); add interactions")
    found, notes = _resolve_columns(frame, "interactions", columns, source, header)
    user = _ids(frame, found["user"], source)
    item = _ids(frame, found["item"], source)
    if "rating" in found:
        value = _numbers(frame, found["rating"], source, "rating", "give a number in every row (or no rating column)")
    else:
        value = np.ones(len(frame), dtype=np.float64)
        notes.append(f"{source}: no rating column, so every interaction counts as 1.0.")
    ts = _timestamps(frame, found["timestamp"], source) if "timestamp" in found else None
    report = LoadReport(source=source, rows_read=len(frame), notes=notes)
    return _Tidy(user, item, value, ts, report)


def read_interactions_frame(
    source: str | Path | pd.DataFrame,
    columns: Mapping[str, str | None] | None = None,
    max_rows: int = MAX_ROWS,
    header: bool = True,
    max_decoded_bytes: int | None = MAX_DECODED_BYTES,
) -> tuple[pd.DataFrame, LoadReport]:
    """Parse an interactions file or frame into a tidy frame (user, item, value[, timestamp]) and its report.

    One row per input row, in input order; ids are strings; nothing is merged or dropped yet
    (``report.rows_kept`` is 0 until a Dataset is assembled). ``columns`` maps roles (user, item,
    rating, timestamp) to column names; a role mapped to None is ignored even if a column matches.
    ``max_decoded_bytes`` bounds what a Parquet file's values may decode to (None: no limit).
    """
    frame, label = _read_table(source, "interactions", header, max_rows, max_decoded_bytes=max_decoded_bytes)
    tidy = _tidy_interactions(frame, label, columns, header)
    out = pd.DataFrame({"user": tidy.user, "item": tidy.item, "value": tidy.value})
    if tidy.timestamp is not None:
        out["timestamp"] = tidy.timestamp
    return out, tidy.report


def _split_genres(values: np.ndarray, sep: str | None) -> list[tuple[str, ...]]:
    out = []
    for v in values:
        parts = str(v).split(sep) if sep else str(v).split()
        out.append(tuple(dict.fromkeys(p.strip() for p in parts if p.strip() and p.strip() != "unknown")))
    return out


def read_items_frame(
    source_obj: str | Path | pd.DataFrame,
    columns: Mapping[str, str | None] | None,
    header: bool = True,
    genre_sep: str | None = "|",
    label: str | None = None,
    max_decoded_bytes: int | None = MAX_DECODED_BYTES,
) -> tuple[pd.DataFrame, list[str]]:
    """Items file -> frame (item, title, year, genres tuple, text or None) with one row per item, and notes.
    ``label`` names a frame the caller read from a file, so messages name that file."""
    frame, source = _read_table(source_obj, "items", header, label=label, max_decoded_bytes=max_decoded_bytes)
    if len(frame) == 0:
        raise DataError(f"{source}: the items file has a header but no data rows (row 1 is missing); add items")
    found, notes = _resolve_columns(frame, "items", columns, source, header)
    item = _ids(frame, found["item"], source)
    n = len(frame)

    def text_col(role: str) -> np.ndarray | None:
        if role not in found:
            return None
        s = frame[found[role]]
        return s.astype(object).where(s.notna(), "").map(str).str.strip().to_numpy(dtype=object)

    title = text_col("title")
    year = np.full(n, np.nan)
    if title is not None:
        for i, t in enumerate(title):
            m = _YEAR_IN_TITLE.match(t)
            if m:
                year[i] = float(m.group(2))
    if "year" in found:
        given = pd.to_numeric(frame[found["year"]], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan, copy=True
        )
        given[~np.isfinite(given)] = np.nan
        unreadable = np.isnan(given) & (text_col("year") != "")
        if unreadable.any():
            notes.append(f"{source}: {int(unreadable.sum()):,} year value(s) are not numbers and were left empty.")
        year = np.where(np.isnan(given), year, given)
    if title is None:
        title = np.asarray([f"Item {i}" for i in item], dtype=object)
    genres_raw = text_col("genres")
    genres = _split_genres(genres_raw, genre_sep) if genres_raw is not None else [() for _ in range(n)]
    text = text_col("text")
    out = pd.DataFrame({"item": item, "title": title, "year": year, "genres": genres})
    out["text"] = text if text is not None else None
    dup = out.duplicated("item", keep="last").to_numpy()
    if dup.any():
        notes.append(f"{source}: {int(dup.sum()):,} repeated item row(s); the last of each was kept.")
        out = out[~dup].reset_index(drop=True)
    return out, notes


def _read_users(
    source_obj: str | Path | pd.DataFrame,
    columns: Mapping[str, str | None] | None,
    header: bool = True,
    label: str | None = None,
    max_decoded_bytes: int | None = MAX_DECODED_BYTES,
) -> tuple[pd.DataFrame, list[str]]:
    """Users file -> frame (user, and whichever of age, gender, occupation exist), one row per user, and notes.
    ``label`` names a frame the caller read from a file, so messages name that file."""
    frame, source = _read_table(source_obj, "users", header, label=label, max_decoded_bytes=max_decoded_bytes)
    if len(frame) == 0:
        raise DataError(f"{source}: the users file has a header but no data rows (row 1 is missing); add users")
    found, notes = _resolve_columns(frame, "users", columns, source, header)
    out = pd.DataFrame({"user": _ids(frame, found["user"], source)})
    if "age" in found:
        age = pd.to_numeric(frame[found["age"]], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        age[~np.isfinite(age)] = np.nan
        out["age"] = age
    for role in ("gender", "occupation"):
        if role in found:
            s = frame[found[role]]
            out[role] = s.astype(object).where(s.notna(), None).to_numpy(dtype=object)
    dup = out.duplicated("user", keep="last").to_numpy()
    if dup.any():
        notes.append(f"{source}: {int(dup.sum()):,} repeated user row(s); the last of each was kept.")
        out = out[~dup].reset_index(drop=True)
    return out, notes
