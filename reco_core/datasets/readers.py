"""Reading raw tables: text (CSV/TSV, delimiter sniffed, UTF-8 checked) and Parquet files -> frames of cells.

Nothing is converted here (text cells stay strings), so nothing is lost before the columns are parsed.
Rows are numbered from 1 at the first data row (the header is not a row), so "row 3" is the third record
under the header.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from reco_core.errors import DataError

MAX_ROWS = 5_000_000
"""Default row limit for a user's file; larger files get a DataError naming the limit and the fix."""


def _clip(value: object, n: int = 40) -> str:
    text = str(value)
    return repr(text if len(text) <= n else text[:n] + "...")


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
