"""External runs: read another system's top-k lists (CSV/TSV/Parquet or a frame) into a Ranking, and write ours.

A run file has one row per (user, item) with either a rank column (1 = best, smaller is better)
or a score column (higher is better); common column names are recognised and the caller can name
them. Every row is accounted for in the ``RunReport``: used, unknown user, unknown item, duplicate
(user, item) (the best-placed copy is kept), a training item (when ``exclude`` is given), or
beyond the user's first k. Users of the split that the run never mentions get empty lists
(padding), so they score 0 rather than vanishing from the evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reco_core.errors import DataError, not_a_file, quote
from reco_core.ids import IdMap
from reco_core.ranking import Ranking, check_k

# Recognised column names, compared after lower-casing, dropping a RecBole ":type" suffix and any
# character that is not a letter or digit ("User ID", "user_id" and "userId" all match "userid").
RUN_COLUMNS: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "uid", "users", "customer", "customerid", "qid", "query", "queryid"),
    "item": ("item", "itemid", "iid", "items", "movie", "movieid", "product", "productid", "doc", "docid"),
    "rank": ("rank", "ranking", "position", "pos"),
    "score": ("score", "prediction", "pred", "predicted", "predictedscore", "predictedrating", "relevance"),
}

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_LOOKS_ESCAPED = re.compile(r"'+[=+\-@\t\r]")  # apostrophes then a formula start: what safe_csv_cell writes


def safe_csv_cell(value: object) -> str:
    """Text for a CSV cell that a spreadsheet will not run as a formula.

    A cell starting with = + - @ (or tab / carriage return) gets a leading apostrophe (OWASP's
    advice against CSV injection), unless it is a plain number such as "-3.5", which a spreadsheet
    reads as a number anyway. Text that already looks escaped ("'=x") gets one more apostrophe, so
    ``unescape_csv_cell(safe_csv_cell(x)) == x`` for every x. None becomes an empty cell.
    """
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    if _LOOKS_ESCAPED.match(text):  # "'=x" itself: one more apostrophe, so reading it back gives "'=x", not "=x"
        return "'" + text
    return text


def unescape_csv_cell(text: str) -> str:
    """Undo ``safe_csv_cell`` ("'=x" -> "=x", "''=x" -> "'=x"); other text is returned unchanged."""
    return text[1:] if _LOOKS_ESCAPED.match(text) else text


@dataclass(frozen=True)
class RunReport:
    """Where every row of a run went. ``balanced()``: read = used + every counted drop."""

    source: str
    name: str
    order_by: str  # "rank" or "score": the column that orders each user's list
    k: int
    rows_read: int
    rows_used: int
    unknown_user_rows: int
    unknown_item_rows: int
    duplicate_rows: int
    training_item_rows: int
    beyond_k_rows: int
    tied_rows: int  # rows whose rank/score equals the previous row of the same user (file order breaks the tie)
    users_in_run: int  # known users with at least one kept row
    users_without_list: int  # users of the split with an empty list
    unknown_user_examples: tuple[str, ...] = ()
    unknown_item_examples: tuple[str, ...] = ()

    @property
    def rows_dropped(self) -> int:
        return (
            self.unknown_user_rows
            + self.unknown_item_rows
            + self.duplicate_rows
            + self.training_item_rows
            + self.beyond_k_rows
        )

    def balanced(self) -> bool:
        return self.rows_read == self.rows_used + self.rows_dropped

    def summary(self) -> str:
        parts = [
            f"run {self.name!r}: {self.rows_read:,} rows read from {self.source}",
            f"{self.rows_used:,} used (top {self.k} per user, ordered by {self.order_by})",
        ]
        if self.unknown_user_rows:
            ex = ", ".join(repr(x) for x in self.unknown_user_examples)
            parts.append(f"{self.unknown_user_rows:,} dropped: user not in the split (e.g. {ex})")
        if self.unknown_item_rows:
            ex = ", ".join(repr(x) for x in self.unknown_item_examples)
            parts.append(f"{self.unknown_item_rows:,} dropped: item not in the catalogue (e.g. {ex})")
        if self.duplicate_rows:
            parts.append(f"{self.duplicate_rows:,} dropped: duplicate (user, item), best-placed copy kept")
        if self.training_item_rows:
            parts.append(f"{self.training_item_rows:,} dropped: training items of the user")
        if self.beyond_k_rows:
            parts.append(f"{self.beyond_k_rows:,} dropped: beyond the first {self.k} of the user")
        if self.tied_rows:
            parts.append(f"{self.tied_rows:,} tied with the row above (file order kept)")
        parts.append(f"{self.users_in_run:,} users with a list, {self.users_without_list:,} with none (empty lists)")
        return "; ".join(parts)


def _normalise(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).split(":")[0].lower())


def _find_column(frame: pd.DataFrame, role: str, given: str | None, source: str) -> str | None:
    if given is not None:
        if given not in frame.columns:
            raise DataError(
                f"{source} has no column {given!r} (named as the {role} column): columns are"
                f" {', '.join(map(str, frame.columns))}"
            )
        return given
    aliases = set(RUN_COLUMNS[role])
    matches = [c for c in frame.columns if _normalise(c) in aliases]
    if len(matches) > 1:
        raise DataError(
            f"{source} has several {role} columns ({', '.join(map(str, matches))}): name the one to use"
            f" with {role}_col="
        )
    return matches[0] if matches else None


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        why = not_a_file(path)  # a folder or a device is named for what it is, never opened
        raise DataError(why or f"run file {quote(str(path))} does not exist: give the path of a CSV or TSV file")
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        sep = "\t" if suffix.endswith((".tsv", ".tab", ".tsv.gz")) else "," if ".csv" in suffix else None
        # Ids stay text ("007" is not 7); only empty cells are missing, so an id such as "NA" survives.
        return pd.read_csv(
            path, sep=sep, engine="python" if sep is None else "c", dtype=str, keep_default_na=False, na_values=[""]
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"run file {str(path)!r} is empty: it needs a header and one row per (user, item)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"run file {str(path)!r} could not be read as a table ({first}): check its format") from exc


def _id_strings(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_float_dtype(col) and col.notna().all() and (col == col.round()).all():
        col = col.astype(np.int64)  # a frame built with floats (1.0) means the id "1"
    return np.asarray([unescape_csv_cell(str(v).strip()) for v in col], dtype=object)


def _where(source: str, pos: int, is_file: bool) -> str:
    # Data row pos (0-based) is line pos + 2 of a file with a header line.
    return f"{source} line {pos + 2}" if is_file else f"{source} row {pos}"


def _check_ids(frame: pd.DataFrame, column: str, source: str, is_file: bool) -> np.ndarray:
    col = frame[column]
    blank = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        pos = int(np.flatnonzero(blank)[0])
        raise DataError(
            f"{_where(source, pos, is_file)}: column {column!r} is empty; every row needs a user and an item id"
            f" ({int(blank.sum())} such rows)"
        )
    return _id_strings(col)


def _check_numbers(frame: pd.DataFrame, column: str, source: str, is_file: bool) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{_where(source, pos, is_file)}: column {column!r} has {frame[column].iloc[pos]!r}, not a finite number"
            f" ({int(bad.sum())} such rows): fix or remove those rows"
        )
    return values


def _stored(keys: np.ndarray, matrix: sp.csr_matrix, u: np.ndarray, i: np.ndarray) -> np.ndarray:
    """Whether each (u, i) is a stored cell of the CSR ``matrix`` (``keys`` = its sorted row-major keys)."""
    if keys.size == 0:
        return np.zeros(u.shape, dtype=bool)
    q = u * matrix.shape[1] + i
    pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
    return keys[pos] == q


@dataclass(frozen=True)
class ParsedRun:
    """A run's rows as read and checked, before they meet any catalogue: ids as cleaned strings, ``key`` the
    placement (the rank, else minus the score: smaller is better) and ``score`` (None without a score column)."""

    source: str
    name: str
    order_by: str  # "rank" or "score"
    user: np.ndarray
    item: np.ndarray
    key: np.ndarray
    score: np.ndarray | None

    @property
    def rows_read(self) -> int:
        return len(self.user)


def parse_run(
    path_or_frame: str | Path | pd.DataFrame,
    name: str | None = None,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    rank_col: str | None = None,
    score_col: str | None = None,
) -> ParsedRun:
    """Read a run file (or frame) and check it: the columns found by their aliases, ids cleaned, numbers
    checked, each with its one-line message. Shared by ``read_run`` and the Spark engine's run reader."""
    is_file = not isinstance(path_or_frame, pd.DataFrame)
    if not isinstance(path_or_frame, pd.DataFrame):
        path = Path(path_or_frame)
        frame = _read_table(path)
        source = f"run file {str(path)!r}"
        default_name = path.stem
    else:
        frame = path_or_frame.reset_index(drop=True)
        source = "run frame"
        default_name = "run"
    if len(frame) == 0:
        raise DataError(f"{source} has no rows: it needs one row per (user, item)")
    ucol = _find_column(frame, "user", user_col, source)
    icol = _find_column(frame, "item", item_col, source)
    rcol = _find_column(frame, "rank", rank_col, source)
    scol = _find_column(frame, "score", score_col, source)
    if ucol is None or icol is None:
        role = "user" if ucol is None else "item"
        raise DataError(
            f"{source} has no {role} column (columns: {', '.join(map(str, frame.columns))}): name it one of"
            f" {', '.join(RUN_COLUMNS[role][:4])} or pass {role}_col="
        )
    if rcol is None and scol is None:
        raise DataError(
            f"{source} has neither a rank nor a score column (columns: {', '.join(map(str, frame.columns))}):"
            " add rank (1 = best) or score (higher = better), or pass rank_col= / score_col="
        )
    uid = _check_ids(frame, ucol, source, is_file)
    iid = _check_ids(frame, icol, source, is_file)
    key = _check_numbers(frame, rcol, source, is_file) if rcol is not None else None
    score = _check_numbers(frame, scol, source, is_file) if scol is not None else None
    if key is None:
        assert score is not None  # there is a rank or a score column (checked above)
        key = -score
    order_by = "rank" if rcol is not None else "score"
    return ParsedRun(source, name or default_name, order_by, uid, iid, key, score)


def read_run(
    path_or_frame: str | Path | pd.DataFrame,
    users: IdMap,
    items: IdMap,
    k: int,
    name: str | None = None,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    rank_col: str | None = None,
    score_col: str | None = None,
    exclude: sp.csr_matrix | None = None,
) -> tuple[Ranking, RunReport]:
    """A Ranking over every user of ``users`` (row i = user i) from an external run, and its report.

    Each user's rows are ordered by rank (ascending) when a rank column exists, else by score
    (descending); equal values keep file order. Of duplicate (user, item) rows the best-placed is
    kept. ``exclude`` (users x items CSR, usually ``train.matrix``) drops the user's training items
    before the list is cut at k, matching ``top_k``. Ranking scores are the run's scores, or the
    negated rank when ordering by rank without a score column (higher stays better).
    """
    check_k(k, len(items))
    parsed = parse_run(
        path_or_frame, name, user_col=user_col, item_col=item_col, rank_col=rank_col, score_col=score_col
    )
    source, name, order_by = parsed.source, parsed.name, parsed.order_by
    uid, iid, key, score = parsed.user, parsed.item, parsed.key, parsed.score
    rows_read = parsed.rows_read

    u = users.index_of(uid, missing="mask")
    i = items.index_of(iid, missing="mask")
    unknown_user = u < 0
    unknown_item = ~unknown_user & (i < 0)
    ok = ~unknown_user & ~unknown_item
    row = np.flatnonzero(ok)
    u, i, key = u[row], i[row], key[row]
    score = None if score is None else score[row]

    # Best placement first (ties by file row), so the first copy of a (user, item) is the one kept.
    order = np.lexsort((row, key, i, u))
    first = np.ones(order.size, dtype=bool)
    first[1:] = (u[order][1:] != u[order][:-1]) | (i[order][1:] != i[order][:-1])
    keep = order[first]
    duplicate_rows = int(order.size - keep.size)

    training_item_rows = 0
    if exclude is not None:
        ex = sp.csr_matrix(exclude)
        if ex.shape != (len(users), len(items)):
            raise DataError(f"exclude has shape {ex.shape}, not ({len(users)}, {len(items)}): pass train.matrix")
        ex.sort_indices()
        ex_keys = np.repeat(np.arange(ex.shape[0], dtype=np.int64), np.diff(ex.indptr)) * ex.shape[1] + ex.indices
        is_train = _stored(ex_keys, ex, u[keep], i[keep])
        training_item_rows = int(is_train.sum())
        keep = keep[~is_train]

    # Each user's list: by key, then file row.
    keep = keep[np.lexsort((row[keep], key[keep], u[keep]))]
    ku, kkey = u[keep], key[keep]
    starts = np.ones(keep.size, dtype=bool)
    starts[1:] = ku[1:] != ku[:-1]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(keep.size), 0))
    position = np.arange(keep.size) - group_start
    tied_rows = int(((~starts[1:]) & (kkey[1:] == kkey[:-1])).sum()) if keep.size else 0
    in_k = position < k
    beyond_k_rows = int((~in_k).sum())
    keep, position = keep[in_k], position[in_k]

    n_users = len(users)
    item_idx = np.full((n_users, k), -1, dtype=np.int32)
    scores = np.full((n_users, k), np.nan, dtype=np.float32)
    item_idx[u[keep], position] = i[keep]
    scores[u[keep], position] = score[keep] if score is not None else -key[keep]
    ranking = Ranking(np.arange(n_users, dtype=np.int32), item_idx, scores)

    has_list = (item_idx >= 0).any(axis=1)
    report = RunReport(
        source=source,
        name=name,
        order_by=order_by,
        k=int(k),
        rows_read=rows_read,
        rows_used=int(keep.size),
        unknown_user_rows=int(unknown_user.sum()),
        unknown_item_rows=int(unknown_item.sum()),
        duplicate_rows=duplicate_rows,
        training_item_rows=training_item_rows,
        beyond_k_rows=beyond_k_rows,
        tied_rows=tied_rows,
        users_in_run=int(has_list.sum()),
        users_without_list=int((~has_list).sum()),
        unknown_user_examples=tuple(pd.unique(uid[unknown_user])[:3].tolist()),
        unknown_item_examples=tuple(pd.unique(iid[unknown_item])[:3].tolist()),
    )
    return ranking, report


def write_run(ranking: Ranking, users: IdMap, items: IdMap, path: str | Path) -> Path:
    """Write ``ranking`` as a run file with columns user, item, rank, score (padding left out).

    Tab-separated for a .tsv path, else comma-separated. Id cells go through ``safe_csv_cell``, so
    a spreadsheet never runs them as formulas; ``read_run`` undoes the escaping.
    """
    path = Path(path)
    frame = ranking.to_frame(users, items)
    frame["user"] = [safe_csv_cell(v) for v in frame["user"]]
    frame["item"] = [safe_csv_cell(v) for v in frame["item"]]
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[["user", "item", "rank", "score"]].to_csv(path, sep=sep, index=False)
    return path
