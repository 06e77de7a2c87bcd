"""Splits: per-user random holdout, global temporal cut, per-user leave-last-n, user-supplied files.

Every split keeps the full users/items IdMaps in train, valid and test, so indices line up. All
splitters work on the CSR arrays directly (one sort over the stored interactions, no loop over
users), so a 20M-interaction split takes seconds. Conventions:

- per-user holdout (random, and the validation part): a user with n >= 2 interactions gives
  h = clip(floor(frac * n + 0.5), 1, n - 1) of them to the held-out part and keeps at least one in
  train; a user with a single interaction stays in train only, and is counted in the description.
  Which h: the user's interactions ordered by a seeded hash of (user id, item id), ties (a 64-bit
  collision) by item index, and the first h are held out (``holdout_rows``). The order depends only on
  the seed and the ids, never on the rows' order or on how the data is partitioned, so the Spark engine
  (``reco_core.spark``) reproduces it user by user with the very same function. Since 2026-12-03; before,
  one global numpy RNG shuffled all rows, which no partitioned engine can reproduce;
- temporal: one global cut time t = the (1 - test_frac) quantile of all timestamps (lower value);
  test = interactions strictly after t, so no test interaction is as old as a training one;
- leave-last-n: per user the n latest interactions (ties: the higher item index counts as later),
  at most n_u - 1 so one stays in train;
- user files: the train file defines the users; the items are the union of the train file's, the test
  file's and the items file's, so a test item never seen in training stays in the ground truth (counted);
  test rows with a user unknown to train, or repeating a training (user, item) pair, are dropped and
  counted, never silently.

Same arguments and seed -> same split.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reco_core import datasets
from reco_core.checks import MUST_BE, check_whole
from reco_core.data import Dataset, Interactions, LoadReport
from reco_core.errors import ConfigError, DataError, quote
from reco_core.ids import IdMap


@dataclass(frozen=True)
class Split:
    """train / optional valid / test over the same IdMaps; ``description`` says how it was made."""

    train: Interactions
    test: Interactions
    valid: Interactions | None = None
    description: str = ""

    def __post_init__(self) -> None:
        for part in (self.test, self.valid):
            if part is not None and (part.users != self.train.users or part.items != self.train.items):
                raise ValueError("train, valid and test must share the same IdMaps")

    def eval_users(self, part: str = "test") -> np.ndarray:
        """Indices (int32) of users with at least one held-out item in ``part`` ("test" or "valid")."""
        target = self.test if part == "test" else self.valid
        if target is None:
            return np.zeros(0, dtype=np.int32)
        return np.flatnonzero(target.user_counts() > 0).astype(np.int32)

    def cold_test_interactions(self, part: str = "test") -> int:
        """Held-out interactions in ``part`` on items with no training interaction (cold items).

        They stay in the ground truth: no collaborative model can rank such an item, and leaving them out
        would score every model above what it achieves.
        """
        target = self.test if part == "test" else self.valid
        if target is None:
            return 0
        cold_items = self.train.item_counts() == 0
        return int(cold_items[target.matrix.indices].sum())

    def n_users_without(self, part: str = "test") -> int:
        """Users left out of evaluation because they have nothing held out (reported, never silent)."""
        return self.train.n_users - len(self.eval_users(part))


def check_part(part: str, split: Split) -> str:
    """``part`` as "test" or "valid" (case and spaces ignored); "valid" only when ``split`` has that part."""
    key = str(part).strip().lower()
    if key not in ("test", "valid"):
        raise ConfigError(f"part={part!r} is not valid: choose test or valid")
    if key == "valid" and split.valid is None:
        raise ConfigError("part='valid' but the split has no validation part: split with a validation fraction")
    return key


# --------------------------------------------------------------------------------------------- helpers


def _check_frac(name: str, value: float, allow_zero: bool = False) -> float:
    try:
        frac = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a number; give a fraction such as 0.2") from None
    low_ok = frac >= 0 if allow_zero else frac > 0
    if not (np.isfinite(frac) and low_ok and frac < 1):
        bound = "0 <= " if allow_zero else "0 < "
        raise ConfigError(f"{name}={value!r} is out of range; give a fraction with {bound}{name} < 1, such as 0.2")
    return frac


def _rows_of(inter: Interactions) -> np.ndarray:
    """Row (user index) of every stored interaction, in CSR order."""
    return np.repeat(np.arange(inter.n_users, dtype=np.int64), inter.user_counts())


def _ts_data(inter: Interactions) -> np.ndarray | None:
    """Timestamps (+1, as stored) aligned with ``inter.matrix.data``; None when there are none.

    Loaders build both matrices with the same pattern; anything else is realigned by (row, col) key,
    and a stored interaction without a timestamp makes the timestamps unusable (None).
    """
    ts = inter.timestamps
    if ts is None:
        return None
    m = inter.matrix
    if ts.nnz == m.nnz and np.array_equal(ts.indptr, m.indptr) and np.array_equal(ts.indices, m.indices):
        return np.asarray(ts.data, dtype=np.float64)
    ts = sp.csr_matrix(ts)
    ts.sort_indices()
    key_m = _rows_of(inter) * inter.n_items + m.indices
    key_t = np.repeat(np.arange(ts.shape[0], dtype=np.int64), np.diff(ts.indptr)) * inter.n_items + ts.indices
    at = np.searchsorted(key_t, key_m)
    at_c = np.minimum(at, max(len(key_t) - 1, 0))
    if len(key_t) == 0 or not np.array_equal(key_t[at_c], key_m):
        return None
    return np.asarray(ts.data[at_c], dtype=np.float64)


def _part(inter: Interactions, mask: np.ndarray, ts: np.ndarray | None, rows: np.ndarray) -> Interactions:
    """The stored interactions where ``mask`` holds, as Interactions over the same IdMaps (canonical CSR)."""
    # A subset of CSR-ordered, duplicate-free cells is still (row, col)-sorted and duplicate-free.
    m = inter.matrix
    return _from_pairs(inter, rows[mask], m.indices[mask], m.data[mask], None if ts is None else ts[mask])


# splitmix64's finaliser constants (Steele, Lea and Flood 2014): a bijection of uint64 that spreads every
# input bit over the whole output, so (h_user, h_item) pairs that differ in one bit order independently.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def id_hashes(ids: Iterable[object], seed: int) -> np.ndarray:
    """uint64 per id: the first 8 bytes (little-endian) of blake2b(str(id)) keyed with the seed.

    Called once per distinct id (a vocabulary), never per interaction. ``str(id)`` is the canonical form
    because ``IdMap`` keeps ids as strings: "7" from a CSV and 7 from Parquet hash alike, as they are the
    same id everywhere else.
    """
    key = int(seed).to_bytes(8, "little", signed=False)
    digests = b"".join(hashlib.blake2b(str(x).encode("utf-8"), digest_size=8, key=key).digest() for x in ids)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


@functools.lru_cache(maxsize=8)
def _vocabulary_hashes(ids: IdMap, seed: int) -> np.ndarray:
    """``id_hashes`` of a whole vocabulary, kept for the last few (IdMap, seed) pairs (an IdMap is hashed and
    compared by its fingerprint, so equal vocabularies share one entry). Read-only: callers only gather from it."""
    out = id_hashes(ids.ids, seed)
    out.setflags(write=False)
    return out


def pair_hashes(user_hash: np.ndarray, item_hash: np.ndarray) -> np.ndarray:
    """uint64 per (user, item): splitmix64's finaliser over user_hash * golden + item_hash (wrapping)."""
    with np.errstate(over="ignore"):
        z = np.asarray(user_hash, dtype=np.uint64) * _GOLDEN + np.asarray(item_hash, dtype=np.uint64)
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def holdout_counts(n: np.ndarray, frac: float) -> np.ndarray:
    """How many of a user's n interactions are held out: clip(floor(frac*n + 0.5), 1, n-1), 0 when n < 2."""
    n = np.asarray(n, dtype=np.int64)
    return np.where(n >= 2, np.clip(np.floor(frac * n + 0.5), 1, np.maximum(n - 1, 1)), 0).astype(np.int64)


def holdout_rows(
    user_code: np.ndarray, user_hash: np.ndarray, item_hash: np.ndarray, item_index: np.ndarray, frac: float
) -> np.ndarray:
    """bool per row: held out. Rows in any order; ``user_code`` groups them by user (any integers).

    Per user, rows ordered by (``pair_hashes(user_hash, item_hash)``, ``item_index``) and the first
    ``holdout_counts(n, frac)`` are held out. A permutation of the rows permutes the answer and nothing else,
    and a user's answer depends on that user's rows only: the local engine calls this once over every row,
    the Spark engine once per user group, with the same hashes, so both hold out the same interactions.
    """
    user_code = np.asarray(user_code, dtype=np.int64)
    key = pair_hashes(user_hash, item_hash)
    order = np.lexsort((np.asarray(item_index, dtype=np.int64), key, user_code))
    grouped = user_code[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if len(grouped) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(grouped)])
    start_of = np.repeat(starts, sizes)
    rank = np.arange(len(grouped)) - start_of
    out = np.empty(len(grouped), dtype=bool)
    out[order] = rank < np.repeat(holdout_counts(sizes, frac), sizes)
    return out


def _holdout_mask(inter: Interactions, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-user hash-ordered holdout mask over the stored interactions (see the module docstring for h)."""
    counts = inter.user_counts()
    rows = _rows_of(inter)
    cols = inter.matrix.indices
    # Each distinct id is hashed once per seed (a validation part carved after the test part reuses the hashes);
    # the per-interaction work is two gathers and the mix.
    user_hash = _vocabulary_hashes(inter.users, seed)[rows]
    item_hash = _vocabulary_hashes(inter.items, seed)[cols]
    return holdout_rows(rows, user_hash, item_hash, cols, frac), rows, int((counts == 1).sum())


def _require_nonempty(mask: np.ndarray, what: str, why: str) -> None:
    if not mask.any():
        raise empty_part(what, why)


def _counts_text(inter: Interactions, held: np.ndarray, rows: np.ndarray, part: str) -> str:
    return counts_text(int(held.sum()), inter.nnz, int(np.unique(rows[held]).size), part)


# ------------------------------------------------------------------------------ words (shared with Spark)
# The descriptions and refusals of the splitters, from plain counts: the Spark engine (``reco_core.spark.data``)
# counts the same things with aggregates and words them with these, so both engines say the same.

RANDOM_EMPTY = "every user has fewer than 2 interactions; load more data or lower the k-core"
LEAVE_LAST_EMPTY = "every user has a single interaction; load more data"
VALID_EMPTY = "no user has 2 or more training interactions"


def empty_part(what: str, why: str) -> ConfigError:
    """The refusal of a split whose ``what`` part ("test", "validation") would be empty."""
    return ConfigError(f"the {what} part is empty: {why}")


def needs_timestamps(method: str) -> ConfigError:
    """The refusal of a time-based split ("temporal", "leave-last") on data without timestamps."""
    return ConfigError(f"a {method} split needs timestamps and this data has none; use split='random'")


def counts_text(n_held: int, n_total: int, n_users: int, part: str) -> str:
    """ "h of n interactions in part (u users)": how a description counts a held-out part."""
    return f"{n_held:,} of {n_total:,} interactions in {part} ({n_users:,} users)"


def cut_time_text(cut: float) -> str:
    """A temporal cut (a stored timestamp, ts + 1) as UTC text."""
    return datetime.fromtimestamp(cut - 1.0, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def temporal_empty(when: str) -> str:
    return f"no interaction is later than the cut at {when}; raise test_frac or use 'random'"


def _singles_text(singles: int) -> str:
    return f"{singles:,} users with a single interaction stay in train only and are not evaluated"


def random_description(frac: float, seed: int, counts: str, singles: int) -> str:
    head = f"random per-user holdout, hash-ordered (test_frac={frac:g}, seed={seed})"
    return f"{head}: {counts}; {_singles_text(singles)}"


def temporal_description(when: str, frac: float, counts: str, cold_users: int, cold_items: int) -> str:
    return (
        f"temporal split at {when} (test_frac={frac:g}): {counts};"
        f" {cold_users:,} test users and {cold_items:,} test items have no training interaction (cold start)"
    )


def leave_last_description(n: int, counts: str, singles: int) -> str:
    return f"leave-last-{int(n)} per user: {counts}; {_singles_text(singles)}"


def validation_description(base: str, frac: float, seed: int, counts: str, singles: int) -> str:
    """``base`` (the test split's description) followed by the validation part's counts."""
    return (
        f"{base}; validation (valid_frac={frac:g}, seed={seed}):"
        f" {counts}; {singles:,} users keep their single training interaction"
    )


# ------------------------------------------------------------------------------------------- splitters


def random_split(inter: Interactions, test_frac: float = 0.2, seed: int = 42) -> Split:
    """Per-user random holdout: each user with n >= 2 interactions gives clip(round(test_frac*n), 1, n-1) to test.

    Which ones: the first in the order of a seeded hash of (user id, item id) (``holdout_rows``), so the
    split depends only on the seed and the ids, not on the order of the rows or on partitioning.
    """
    frac = _check_frac("test_frac", test_frac)
    seed = check_whole(seed, "seed", 0, MUST_BE)
    test, rows, singles = _holdout_mask(inter, frac, seed)
    _require_nonempty(test, "test", RANDOM_EMPTY)
    ts = _ts_data(inter)
    desc = random_description(frac, seed, _counts_text(inter, test, rows, "test"), singles)
    return Split(_part(inter, ~test, ts, rows), _part(inter, test, ts, rows), None, desc)


def temporal_split(inter: Interactions, test_frac: float = 0.2) -> Split:
    """Global time cut: test = interactions after the (1 - test_frac) quantile of all timestamps."""
    frac = _check_frac("test_frac", test_frac)
    ts = _ts_data(inter)
    if ts is None:
        raise needs_timestamps("temporal")
    rows = _rows_of(inter)
    cut = float(np.quantile(ts, 1.0 - frac, method="lower"))
    test = ts > cut
    when = cut_time_text(cut)
    _require_nonempty(test, "test", temporal_empty(when))
    train = ~test
    seen_user = np.zeros(inter.n_users, dtype=bool)
    seen_user[rows[train]] = True
    seen_item = np.zeros(inter.n_items, dtype=bool)
    seen_item[inter.matrix.indices[train]] = True
    cold_users = int(np.unique(rows[test & ~seen_user[rows]]).size)
    cold_items = int(np.unique(inter.matrix.indices[test & ~seen_item[inter.matrix.indices]]).size)
    desc = temporal_description(when, frac, _counts_text(inter, test, rows, "test"), cold_users, cold_items)
    return Split(_part(inter, train, ts, rows), _part(inter, test, ts, rows), None, desc)


def leave_last_split(inter: Interactions, n: int = 1) -> Split:
    """Per user, the n latest interactions go to test (at most n_u - 1, so one stays in train)."""
    check_whole(n, "n_last", message=MUST_BE)
    ts = _ts_data(inter)
    if ts is None:
        raise needs_timestamps("leave-last")
    rows = _rows_of(inter)
    counts = inter.user_counts()
    # By user, then time, then item index. A stable sort by time keeps CSR order (user, item) among equal
    # times; its positions are unique, so one plain int64 sort of user * nnz + position finishes the job
    # (about 2x faster than a 3-key lexsort at 20M rows).
    position = np.empty(len(ts), dtype=np.int64)
    position[np.argsort(ts, kind="stable")] = np.arange(len(ts))
    order = np.argsort(rows * max(len(ts), 1) + position)
    from_end = np.empty(len(rows), dtype=np.int64)
    # Position from the end within the user's time order: 0 = latest.
    from_end[order] = inter.matrix.indptr[rows[order] + 1] - 1 - np.arange(len(rows))
    test = from_end < np.minimum(int(n), counts - 1)[rows]
    _require_nonempty(test, "test", LEAVE_LAST_EMPTY)
    singles = int((counts == 1).sum())
    desc = leave_last_description(n, _counts_text(inter, test, rows, "test"), singles)
    return Split(_part(inter, ~test, ts, rows), _part(inter, test, ts, rows), None, desc)


def with_validation(split: Split, valid_frac: float = 0.1, seed: int = 42) -> Split:
    """Carve a per-user random validation part out of train (same rule and hash order as random_split).

    The hash is keyed with ``seed``; the validation rows are the first of each user's training rows in that
    order (with the same seed as the test split, the next ones after the held-out test rows). Train loses them.
    """
    frac = _check_frac("valid_frac", valid_frac)
    seed = check_whole(seed, "seed", 0, MUST_BE)
    inter = split.train
    valid, rows, singles = _holdout_mask(inter, frac, seed)
    _require_nonempty(valid, "validation", VALID_EMPTY)
    ts = _ts_data(inter)
    desc = validation_description(split.description, frac, seed, _counts_text(inter, valid, rows, "valid"), singles)
    return Split(_part(inter, ~valid, ts, rows), split.test, _part(inter, valid, ts, rows), desc)


@dataclass(frozen=True)
class _Method:
    run: Callable[[Interactions, float, int, int], Split]
    help: str


SPLITTERS: dict[str, _Method] = {
    "random": _Method(lambda inter, f, seed, n: random_split(inter, f, seed), "per-user seeded-hash holdout"),
    "temporal": _Method(lambda inter, f, seed, n: temporal_split(inter, f), "global time cut"),
    "leave-last": _Method(lambda inter, f, seed, n: leave_last_split(inter, n), "per-user latest n"),
}
"""Split methods by name; ``make_split`` looks them up here."""


def make_split(
    inter: Interactions,
    method: str = "random",
    test_frac: float = 0.2,
    seed: int = 42,
    n_last: int = 1,
    valid_frac: float = 0.0,
) -> Split:
    """The named split (``SPLITTERS``), plus a validation part carved from train when ``valid_frac`` > 0."""
    spec = SPLITTERS.get(str(method).strip().lower().replace("_", "-"))
    if spec is None:
        choices = ", ".join(f"{k} ({v.help})" for k, v in SPLITTERS.items())
        raise ConfigError(f"split method {quote(method)} is unknown; choose one of {choices}")
    vf = _check_frac("valid_frac", valid_frac, allow_zero=True)
    split = spec.run(inter, test_frac, seed, n_last)
    return with_validation(split, vf, seed) if vf > 0 else split


# ------------------------------------------------------------------------------------------ user files


def split_from_files(
    train: str | Path | pd.DataFrame,
    test: str | Path | pd.DataFrame,
    items: str | Path | pd.DataFrame | None = None,
    users: str | Path | pd.DataFrame | None = None,
    columns: Mapping[str, str | None] | None = None,
    threshold: float | None = None,
    name: str | None = None,
    item_columns: Mapping[str, str | None] | None = None,
    user_columns: Mapping[str, str | None] | None = None,
    max_rows: int | None = None,
    header: bool = True,
    max_decoded_bytes: int | None = datasets.MAX_DECODED_BYTES,
) -> tuple[Dataset, Split]:
    """A split the user supplies as a train file and a test file (same formats as ``datasets.load_files``).

    The train file defines the users (loaded with ``load_files``: duplicates, zeros and threshold counted).
    The item vocabulary is the union of the train file's items, the kept test rows' items and the items
    file, so the same split scores the same whether it is generated inside or supplied as files: a test
    item never seen in training stays in the ground truth (a cold item no collaborative model can rank,
    which is the honest answer) and is counted in the report. Test rows are resolved in this order, each
    counted: rating 0, duplicate (last kept), below the threshold, user unknown to train, (user, item)
    already in train. Returns the Dataset (train + kept test rows, one report over both files) and the Split.
    ``max_decoded_bytes`` bounds what each Parquet file's values may decode to (None: no limit).
    """
    limit = datasets.MAX_ROWS if max_rows is None else max_rows
    train_ds = datasets.load_files(
        train, items, users, columns, threshold, 0, name, item_columns, user_columns, limit, header, max_decoded_bytes
    )
    frame, test_report = datasets.read_interactions_frame(test, columns, limit, header, max_decoded_bytes)
    item_ids = frame["item"].to_numpy(dtype=object)
    rows = train_ds.interactions.users.index_of(frame["user"].to_numpy(dtype=object), missing="mask")
    value = frame["value"].to_numpy(dtype=np.float64)
    ucode, _ = pd.factorize(frame["user"])
    icode, iuniq = pd.factorize(frame["item"])
    keep = datasets.usable_rows(ucode, icode, len(iuniq), value, threshold, test_report)
    unknown_user = keep & (rows < 0)
    test_report.drop("user not in the train file (no history to recommend from)", int(unknown_user.sum()))
    keep &= ~unknown_user
    train_ds = datasets.with_items(
        train_ds,
        pd.unique(item_ids[keep]),
        "Items only in the test file join the catalogue with no training interaction (cold items).",
    )
    tr = train_ds.interactions
    cols = tr.items.index_of(item_ids, missing="mask")
    train_keys = _rows_of(tr) * tr.n_items + tr.matrix.indices  # sorted: CSR order
    test_keys = np.where(keep, rows * tr.n_items + cols, -1)
    at = np.minimum(np.searchsorted(train_keys, test_keys), len(train_keys) - 1)
    in_train = keep & (train_keys[at] == test_keys)
    test_report.drop("(user, item) already in the train file", int(in_train.sum()))
    keep &= ~in_train
    test_report.rows_kept = int(keep.sum())
    if not keep.any():
        raise DataError(f"{test_report.source}: no test row is usable ({test_report.summary()}); check the test file")
    order = np.lexsort((cols[keep], rows[keep]))
    r, c = rows[keep][order], cols[keep][order]
    ts_test = frame["timestamp"].to_numpy(dtype=np.float64)[keep][order] + 1.0 if "timestamp" in frame else None
    test_inter = _from_pairs(tr, r, c, value[keep][order], ts_test)
    if (tr.timestamps is None) != (test_inter.timestamps is None):
        note = "only one of the train and test files has timestamps, so neither part keeps them"
        tr = Interactions(tr.users, tr.items, tr.matrix, None)
        test_inter = Interactions(tr.users, tr.items, test_inter.matrix, None)
        test_report.notes.append(note.capitalize() + ".")
    split = Split(tr, test_inter, None, "")
    cold = split.cold_test_interactions()
    if cold:
        test_report.notes.append(
            f"{cold:,} test interactions on items unseen in training (kept as ground truth: no collaborative"
            " model can rank a cold item)."
        )
    desc = (
        f"user-supplied split: train {train_ds.report.source} ({tr.nnz:,} interactions),"
        f" test {test_report.source} ({test_report.summary()})"
    )
    split = Split(tr, test_inter, None, desc)
    union_ts = None
    if tr.timestamps is not None and test_inter.timestamps is not None:
        union_ts = _canonical(tr.timestamps + test_inter.timestamps, np.float64)
    union = Interactions(tr.users, tr.items, _canonical(tr.matrix + test_inter.matrix, np.float32), union_ts)
    report = _merge_reports(train_ds.report, test_report)
    return Dataset(train_ds.name, union, train_ds.catalog, train_ds.users, report), split


def _canonical(m: sp.spmatrix, dtype: type) -> sp.csr_matrix:
    out = sp.csr_matrix(m, dtype=dtype)
    out.sum_duplicates()
    out.sort_indices()
    return out


def _from_pairs(
    like: Interactions, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, ts: np.ndarray | None
) -> Interactions:
    """Interactions over ``like``'s IdMaps from (row, col)-sorted, duplicate-free pairs."""
    shape = (like.n_users, like.n_items)
    build = datasets.csr_from_sorted_pairs
    times = None if ts is None else build(rows, cols, ts, shape, np.float64)
    return Interactions(like.users, like.items, build(rows, cols, values, shape, np.float32), times)


def _merge_reports(train: LoadReport, test: LoadReport) -> LoadReport:
    """One report over both files; reasons are prefixed with the file they came from."""
    out = LoadReport(
        source=f"{train.source} + {test.source}",
        rows_read=train.rows_read + test.rows_read,
        rows_kept=train.rows_kept + test.rows_kept,
        duplicates_merged=train.duplicates_merged + test.duplicates_merged,
    )
    for label, rep in (("train", train), ("test", test)):
        for reason, n in rep.dropped.items():
            out.drop(f"{label}: {reason}", n)
        out.notes.extend(f"{label}: {note}" for note in rep.notes)
    return out
