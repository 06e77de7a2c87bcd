"""Assembly: parsed rows -> Dataset (usable rows, k-core, the item vocabulary, catalogue and user table).

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
them a bare catalogue entry "Item <id>", counted in the notes.

Also here: ``load_files`` (a user's files), ``filter_dataset`` and ``with_items`` (a Dataset reshaped), and
``catalog_from_items`` (a vocabulary's catalogue from an items frame; the Spark engine builds its own with it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reco_core.checks import MUST_BE, check_whole
from reco_core.data import Dataset, Interactions, ItemCatalog, LoadReport, UserTable, item_text
from reco_core.datasets.columns import _ALIASES, _norm
from reco_core.datasets.readers import MAX_DECODED_BYTES, MAX_ROWS, _read_table
from reco_core.datasets.tables import _read_users, _Tidy, _tidy_interactions, read_items_frame
from reco_core.errors import ConfigError, DataError, quote
from reco_core.ids import IdMap


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


_NEGATIVE_NOTE = "ratings are negative; they count as positives unless --threshold excludes them, e.g. --threshold 0."


def _note_negative(kept_values: np.ndarray, report: LoadReport) -> None:
    """Say how many kept ratings are below 0 (every stored rating is a positive unless a threshold drops it);
    a note from an earlier load is replaced, since a threshold applied since may have dropped them."""
    report.notes[:] = [n for n in report.notes if not n.endswith(_NEGATIVE_NOTE)]
    n_negative = int((kept_values < 0).sum())
    if n_negative:
        report.notes.append(f"{n_negative:,} {_NEGATIVE_NOTE}")


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
    _note_negative(value[keep], report)
    inter = Interactions(user_map, item_map, matrix, tmatrix)
    report.notes.extend(item_notes or [])
    report.notes.extend(user_notes or [])
    catalog = catalog_from_items(item_map, items, report)
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
            raise ConfigError(
                f"threshold={quote(threshold)} is not a number; give a rating such as 4, or None"
            ) from None
        if not np.isfinite(t):
            raise ConfigError(f"threshold={quote(threshold)} is not finite; give a rating such as 4, or None")
        threshold = t
    return threshold, check_whole(kcore, "kcore", 0, MUST_BE + " (0 or 1 = no filtering)")


def catalog_from_items(item_map: IdMap, items: pd.DataFrame | None, report: LoadReport) -> ItemCatalog:
    """The catalogue of ``item_map``'s items from an items frame (``read_items_frame``'s), or a bare one without.

    Items of the frame outside the vocabulary are left out, and vocabulary items missing from it get a bare
    entry ("Item <id>", no genres): both counted in ``report.notes``.
    """
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
            # numpy's stubs read y=None as the one-argument where(); here None is the fill value.
            columns[col] = np.where(known, users[col].to_numpy(dtype=object)[p], None).astype(object)  # type: ignore[attr-defined]
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
    max_decoded_bytes: int | None = MAX_DECODED_BYTES,
) -> Dataset:
    """Load a user's interactions (CSV, TSV or Parquet; delimiter sniffed) with optional items and users files.

    Interactions: user, item, optional rating (absent: every row counts 1.0), optional timestamp (Unix
    seconds or ISO 8601). Items: item, optional title, genres separated by "|", optional text and year
    (else taken from a trailing "(1995)" in the title). Users: user, optional age, gender, occupation.
    ``columns``/``item_columns``/``user_columns`` name columns by role when the common names are not used;
    ``header=False`` reads a file without a header row in the order user, item, rating, timestamp.
    ``max_decoded_bytes`` bounds what each Parquet file's values may decode to, estimated before they are
    expanded (default 2,000 MB; None: no limit): a few kB of dictionary-encoded Parquet can hold gigabytes.
    Every problem raises a DataError naming the file, the column and the row.
    """
    check_whole(max_rows, "max_rows", message=MUST_BE)
    if max_decoded_bytes is not None:
        check_whole(max_decoded_bytes, "max_decoded_bytes", message=MUST_BE + " (or None for no limit)")
    _check_filters(threshold, kcore)
    frame, label = _read_table(interactions, "interactions", header, int(max_rows), max_decoded_bytes=max_decoded_bytes)
    tidy = _tidy_interactions(frame, label, columns, header)
    if threshold is not None and not _has_rating(frame, columns, header):
        raise ConfigError(
            f"threshold={quote(threshold)} needs a rating column, and {label} has none; drop the threshold"
        )
    item_frame, item_notes = (
        (None, []) if items is None else read_items_frame(items, item_columns, max_decoded_bytes=max_decoded_bytes)
    )
    user_frame, user_notes = (
        (None, []) if users is None else _read_users(users, user_columns, max_decoded_bytes=max_decoded_bytes)
    )
    if name is None:
        name = label if isinstance(interactions, pd.DataFrame) else Path(interactions).stem
    return _assemble(tidy, name, threshold, kcore, item_frame, user_frame, item_notes, user_notes)


def _has_rating(frame: pd.DataFrame, columns: Mapping[str, str | None] | None, header: bool) -> bool:
    if columns and "rating" in columns:
        return columns["rating"] is not None
    if not header:
        return frame.shape[1] >= 3
    return any(_norm(c) in _ALIASES["interactions"]["rating"] for c in frame.columns)


# ----------------------------------------------------------------------------------- filtering a Dataset


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
    _note_negative(m.data[keep], report)
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
