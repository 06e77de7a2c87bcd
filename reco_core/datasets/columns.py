"""Columns: which column holds which role (user, item, rating...), and parsing ids, numbers and timestamps.

Every bad cell raises a DataError naming the file, the column and the row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from reco_core.errors import ConfigError, DataError, quote

# Recognised column names, compared after lower-casing, dropping a RecBole type suffix (":token")
# and removing "_", "-", " " and "."; so user_id, userId, userID and "User ID" all match "userid".
_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "interactions": {
        "user": ("user", "userid", "uid", "users", "username"),
        "item": ("item", "itemid", "movieid", "movie", "iid", "items", "product", "productid"),
        "rating": ("rating", "score", "value", "ratings", "stars", "weight"),
        "timestamp": ("timestamp", "ts", "time", "date", "datetime", "unixtime"),
    },
    "items": {
        "item": ("item", "itemid", "movieid", "movie", "iid", "product", "productid"),
        "title": ("title", "movietitle", "name", "itemname", "moviename"),
        "genres": ("genres", "genre", "class", "categories", "category", "tags"),
        "text": ("text", "description", "overview", "plot", "summary"),
        "year": ("year", "releaseyear"),
    },
    "users": {
        "user": ("user", "userid", "uid", "username"),
        "age": ("age",),
        "gender": ("gender", "sex"),
        "occupation": ("occupation", "job"),
    },
}
_REQUIRED = {"interactions": ("user", "item"), "items": ("item",), "users": ("user",)}
_HEADERLESS_ORDER = {
    "interactions": ("user", "item", "rating", "timestamp"),
    "items": ("item", "title", "genres"),
    "users": ("user", "age", "gender", "occupation"),
}
# Cell texts that mean "no value" in an id column (compared lower-cased, after stripping).
_MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none", "<na>", "nat"})
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _cell(value: object) -> str:
    """A cell as a message quotes it: its text, clipped (``reco_core.errors.quote``)."""
    return quote(str(value))


def _name(value: object) -> str:
    """A column name or role in a list of them: clipped shorter, so twenty names stay one readable line."""
    return quote(str(value), 40)


def _norm(name: object) -> str:
    """Column name as compared with the aliases."""
    return re.sub(r"[\s_\-.]", "", str(name).split(":")[0].strip().lower())


def _describe_rows(rows: np.ndarray) -> str:
    """ "row 3" or "row 3 (and 11 more rows)" from 0-based positions."""
    more = f" (and {len(rows) - 1:,} more rows)" if len(rows) > 1 else ""
    return f"row {int(rows[0]) + 1}{more}"


def _resolve_columns(
    frame: pd.DataFrame, role: str, columns: Mapping[str, str | None] | None, source: str, header: bool
) -> tuple[dict[str, str], list[str]]:
    """Map each role (user, item, rating...) to a column of ``frame``; notes list what was ignored."""
    aliases = _ALIASES[role]
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(aliases))
    if unknown:
        raise ConfigError(
            f"columns for the {role} file: unknown role(s) {', '.join(_name(u) for u in unknown)};"
            f" use roles among {', '.join(aliases)}"
        )
    names = [str(c) for c in frame.columns]
    frame.columns = names
    found: dict[str, str] = {}
    if not header:
        for r, name in zip(_HEADERLESS_ORDER[role], names, strict=False):
            found[r] = name
    for r, col in columns.items():
        if col is None:
            found.pop(r, None)
            continue
        col = str(col)
        if col not in names:
            raise DataError(
                f"{source}: column {quote(col)} (named for {r!r}) is not in the file, row: header;"
                f" the columns are {', '.join(map(_name, names[:20]))}{' ...' if len(names) > 20 else ''}"
            )
        found[r] = col
    if header:
        normed = [_norm(c) for c in names]
        for r, names_ok in aliases.items():
            if r in found or r in columns:
                continue
            for alias in names_ok:  # alias order is the priority order
                if alias in normed:
                    found[r] = names[normed.index(alias)]
                    break
    for r in _REQUIRED[role]:
        if r not in found:
            hint = ""
            if header and len(names) >= 2 and all(_looks_numeric(c) for c in names[:2]):
                hint = " The first row looks like data: pass header=False if the file has no header row."
            raise DataError(
                f"{source}: no {r} column (row: header); the columns are"
                f" {', '.join(map(_name, names[:20]))}{' ...' if len(names) > 20 else ''}: name one of"
                f" {', '.join(aliases[r])}, or pass columns={{'{r}': '<your column>'}}.{hint}"
            )
    used = set(found.values())
    ignored = [c for c in names if c not in used]
    notes = []
    if ignored:
        shown = ", ".join(map(_name, ignored[:8])) + (f" and {len(ignored) - 8} more" if len(ignored) > 8 else "")
        notes.append(f"{source}: ignored column(s) {shown}.")
    return found, notes


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _as_text(s: pd.Series) -> pd.Series:
    """A column as stripped strings ("" for missing), on pandas' string dtype so the work stays vectorised."""
    if not pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
        s = s.astype(object).where(s.notna(), "").map(str)
    return s.astype("str").fillna("").str.strip()


def _ids(frame: pd.DataFrame, col: str, source: str) -> np.ndarray:
    """An id column as an object array of stripped strings; a missing id is a DataError naming the row."""
    s = frame[col]
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        missing = s.isna().to_numpy()
        if missing.any():
            _raise_missing_id(source, col, np.flatnonzero(missing), "")
        values = s.to_numpy()
        if pd.api.types.is_float_dtype(s.dtype):
            if not np.isfinite(values).all():
                rows = np.flatnonzero(~np.isfinite(values))
                raise DataError(
                    f"{source}: column {quote(col)}, {_describe_rows(rows)}: id {quote(values[rows[0]])} is not finite;"
                    " fix the id"
                )
            # Parquet/pandas turn integer ids into floats when a value is missing elsewhere: 7.0 -> "7".
            if (values == np.round(values)).all() and np.abs(values).max(initial=0) < 2**53:
                return values.astype(np.int64).astype(str).astype(object)
        return s.astype(str).to_numpy(dtype=object)
    text = _as_text(s)
    missing = text.str.lower().isin(_MISSING_TEXT).to_numpy(dtype=bool)
    if missing.any():
        rows = np.flatnonzero(missing)
        _raise_missing_id(source, col, rows, text.iloc[rows[0]])
    broken = text.str.contains(r"[\r\n]", regex=True).to_numpy(dtype=bool)
    if broken.any():
        rows = np.flatnonzero(broken)
        raise DataError(
            f"{source}: column {quote(col)}, {_describe_rows(rows)}: id {_cell(text.iloc[rows[0]])} spans several lines"
            " (probably a quote that is never closed); close or remove the quote"
        )
    return text.to_numpy(dtype=object)


def _raise_missing_id(source: str, col: str, rows: np.ndarray, value: object) -> None:
    raise DataError(
        f"{source}: column {quote(col)}, {_describe_rows(rows)}: the id is missing ({_cell(value)});"
        " fill in the id or remove the row"
    )


def _parse_numbers(s: pd.Series) -> np.ndarray:
    """float64 values of a column; NaN where a cell is empty or not a number."""
    if pd.api.types.is_bool_dtype(s.dtype):
        s = s.astype(np.int8)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(_as_text(s), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _check_numbers(values: np.ndarray, s: pd.Series, col: str, source: str, what: str, fix: str) -> np.ndarray:
    """Raise for the first empty, non-numeric, infinite or float32-overflowing cell; else return ``values``."""
    nan = np.isnan(values)
    if nan.any():
        rows = np.flatnonzero(nan)
        v = s.iloc[rows[0]]
        empty = v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""
        kind = "empty" if empty else "not a number"
        raise DataError(f"{source}: column {quote(col)}, {_describe_rows(rows)}: {what} {_cell(v)} is {kind}; {fix}")
    bad = ~np.isfinite(values) | (np.abs(values) > _FLOAT32_MAX)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"{source}: column {quote(col)}, {_describe_rows(rows)}: {what} {_cell(s.iloc[rows[0]])} is infinite or too"
            f" large; {fix}"
        )
    return values


def _numbers(frame: pd.DataFrame, col: str, source: str, what: str, fix: str) -> np.ndarray:
    """A numeric column as float64; empty, non-numeric, infinite or float32-overflowing cells raise."""
    return _check_numbers(_parse_numbers(frame[col]), frame[col], col, source, what, fix)


def _timestamps(frame: pd.DataFrame, col: str, source: str) -> np.ndarray:
    """Unix seconds (float64): numbers as they are, or ISO 8601 dates/times (UTC unless an offset is given)."""
    s = frame[col]
    fix = "use Unix seconds or ISO 8601 dates (2021-03-04 or 2021-03-04T12:00:00), or pass columns={'timestamp': None}"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if s.isna().any():
            rows = np.flatnonzero(s.isna().to_numpy())
            raise DataError(f"{source}: column {quote(col)}, {_describe_rows(rows)}: timestamp is empty; {fix}")
        utc = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        return _unix_seconds(utc)
    numeric = _parse_numbers(s)
    if not np.isnan(numeric).any() or pd.api.types.is_numeric_dtype(s.dtype):
        return _check_numbers(numeric, s, col, source, "timestamp", fix)
    text = _as_text(s)
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    not_date = parsed.isna().to_numpy()
    bad = not_date & np.isnan(numeric)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"{source}: column {quote(col)}, {_describe_rows(rows)}: timestamp {_cell(text.iloc[rows[0]])} is neither a"
            f" number nor an ISO 8601 date; {fix}"
        )
    if not_date.any():
        rows = np.flatnonzero(not_date)
        raise DataError(
            f"{source}: column {quote(col)}, {_describe_rows(rows)}: timestamp {_cell(text.iloc[rows[0]])} is a number"
            f" while row {int(np.flatnonzero(~not_date)[0]) + 1} is a date; use one kind in the whole column"
        )
    return _check_numbers(_unix_seconds(parsed), s, col, source, "timestamp", fix)


def _unix_seconds(utc: pd.Series) -> np.ndarray:
    """Seconds since 1970 of UTC datetimes, as float64. Computed in whole seconds, not nanoseconds: a date
    before 1677 or after 2262 (``1000-01-01``) overflows pandas' nanosecond arithmetic, but is a valid time."""
    naive = utc.dt.tz_localize(None).dt.as_unit("s")
    return naive.to_numpy(dtype="datetime64[s]").astype(np.int64).astype(np.float64)
