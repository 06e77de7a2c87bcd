"""Reading raw tables: text (CSV/TSV, delimiter sniffed, UTF-8 checked) and Parquet files -> frames of cells.

Nothing is converted here (text cells stay strings), so nothing is lost before the columns are parsed.
Rows are numbered from 1 at the first data row (the header is not a row), so "row 3" is the third record
under the header.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from reco_core.errors import DataError, not_a_file, path_kind, quote

MAX_ROWS = 5_000_000
"""Default row limit for a user's file; larger files get a DataError naming the limit and the fix."""

MAX_DECODED_BYTES = 2_000_000_000
"""Default limit on the bytes a Parquet file's values may decode to (2,000 MB; ``--max-decoded-mb``).

Parquet stores a repeated value once: 1.6 kB of dictionary-encoded Parquet can hold 4.2 GB of text. The size is
estimated before anything large is built (``parquet_stored_bytes``, then ``read_parquet_bounded``)."""


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
        column = quote(header[col_idx].strip(), 40) if col_idx < len(header) else f"number {col_idx + 1}"
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
    max_decoded_bytes: int | None = MAX_DECODED_BYTES,
) -> tuple[pd.DataFrame, str]:
    """A raw frame and the label used in messages (the path, or ``label``/"<DataFrame>").

    ``max_decoded_bytes`` bounds what a Parquet file's values may decode to (None: no limit)."""
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
    if path_kind(path) == "missing":
        raise DataError(f"{name}: no such file (column: none, row: none); check the path of the {role} file")
    # A folder or a device (/dev/zero reads forever) is named for what it is, and never opened.
    problem = not_a_file(path)
    if problem is not None:
        raise DataError(f"{problem} (the {role} file; column: none, row: none)")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, name, role, max_rows, max_decoded_bytes), name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(
            f"{name}: cannot read the file ({exc.strerror or type(exc).__name__}; column: none, row: none);"
            f" check that the {role} file is readable"
        ) from None
    return _read_text_table(raw, name, suffix, header, max_rows), name


# ------------------------------------------------------------------------------------------------ Parquet
# Shared with the dashboard's upload reader (``ui.upload``), which words its own limits.


def parquet_stored_bytes(meta: Any) -> int:
    """The bytes a Parquet file's values take once decompressed, from its metadata alone (the row groups'
    ``total_byte_size``): the first estimate, before any column is read. A dictionary-encoded column counts
    only its dictionary and indices here, so ``read_parquet_bounded`` counts its rows too."""
    return int(sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)))


def nested_kind(arrow_type: Any) -> str | None:
    """``"struct"``, ``"list"``, ``"map"``... for a nested Arrow type, None for a plain one."""
    import pyarrow as pa

    if not pa.types.is_nested(arrow_type):
        return None
    for check, word in (
        (pa.types.is_struct, "struct"),
        (pa.types.is_map, "map"),
        (pa.types.is_list, "list"),
        (pa.types.is_large_list, "list"),
        (pa.types.is_fixed_size_list, "list"),
        (pa.types.is_union, "union"),
    ):
        if check(arrow_type):
            return word
    return "nested"


def _is_text(pa: Any, t: Any) -> bool:
    return any(
        check(t)
        for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    )


def parquet_plain_bytes(table: Any) -> int:
    """Bytes ``table`` takes with every dictionary column expanded: a row costs its value's length plus a 4-byte
    offset, as Parquet's own plain encoding counts it; other columns count their Arrow buffers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    for column in table.columns:
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type) and _is_text(pa, chunk.type.value_type):
                lengths = pc.binary_length(chunk.dictionary).cast(pa.int64())
                total += int(pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0) + 4 * len(chunk)
            elif pa.types.is_dictionary(chunk.type):  # numbers: a fixed width per row, bounded by the row limit
                total += pc.take(chunk.dictionary, chunk.indices).nbytes
            else:
                total += chunk.nbytes
    return total


def read_parquet_bounded(source: Any, schema: Any, check: Callable[[int], None]) -> Any:
    """A Parquet file (a path or a file object) as an Arrow table with plain columns, sized before it is expanded.

    Text columns are read as dictionaries, which stay small however often a value repeats; ``check`` is called
    with the bytes their rows would take (``parquet_plain_bytes``) and raises to refuse; only then are they
    expanded. The file's pandas metadata is not used: nothing in the file decides what objects are built.
    Call it after ``parquet_stored_bytes`` has passed the same check, and with nested columns refused.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = [f.name for f in schema if _is_text(pa, f.type)]
    table = pq.ParquetFile(source, read_dictionary=text).read(use_pandas_metadata=False)
    check(parquet_plain_bytes(table))
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(columns, names=table.column_names)


def _read_parquet(path: Path, name: str, role: str, max_rows: int, max_decoded_bytes: int | None) -> pd.DataFrame:
    """A Parquet file as a frame, bounded in rows and in decoded bytes (``max_decoded_bytes``, None: no limit)
    before anything large is built; a nested column (struct, list) is refused by name."""
    import pyarrow.parquet as pq

    def unreadable(exc: BaseException) -> DataError:
        return DataError(
            f"{name}: not a readable Parquet file (column unknown, row unknown): {type(exc).__name__}: {exc}"
        )

    def check(n_bytes: int) -> None:
        if max_decoded_bytes is not None and n_bytes > max_decoded_bytes:
            raise DataError(
                f"{name}: the {role} file decodes to about {n_bytes / 1e6:,.0f} MB of values, more than the limit"
                f" of {max_decoded_bytes / 1e6:,.0f} MB (Parquet stores a repeated value once); keep only the"
                " columns and rows you need, or raise the limit (--max-decoded-mb, or max_decoded_bytes=)"
            )

    try:
        meta = pq.ParquetFile(path).metadata
        n_rows = meta.num_rows
        schema = meta.schema.to_arrow_schema()
    except Exception as exc:  # pyarrow raises many types for a damaged file; all mean the same to the user
        raise unreadable(exc) from None
    if n_rows > max_rows:
        raise DataError(
            f"{name}: {n_rows:,} rows, more than the limit of {max_rows:,} (row {max_rows + 1});"
            " load a sample of the file or raise max_rows"
        )
    if len(schema) == 0:
        raise DataError(f"{name}: the file has no columns (row 1); give user and item columns")
    for f in schema:
        kind = nested_kind(f.type)
        if kind is not None:
            # A nested cell would become text such as "{'id': 'u0'}", and cannot be sized before it is decoded.
            raise DataError(
                f"{name}: column {quote(f.name)} holds nested values ({kind}): give plain ids, numbers or text"
                " (genres as 'Comedy|Drama')"
            )
    check(parquet_stored_bytes(meta))
    try:
        table = read_parquet_bounded(path, schema, check)
        frame = table.to_pandas(ignore_metadata=True)
    except DataError:
        raise
    except Exception as exc:
        raise unreadable(exc) from None
    if frame.shape[1] == 0:
        raise DataError(f"{name}: the file has no columns (row 1); give user and item columns")
    frame.columns = _unique_names(list(frame.columns))
    return frame.reset_index(drop=True)
