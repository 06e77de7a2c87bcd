"""Splits: invariants (disjoint, union = original, per-user counts), determinism, errors, user-supplied files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from reco_core import datasets
from reco_core.data import Interactions
from reco_core.errors import ConfigError, DataError
from reco_core.splitting import (
    SPLITTERS,
    leave_last_split,
    make_split,
    random_split,
    split_from_files,
    temporal_split,
    with_validation,
)


def inter_from(rows: list[tuple[str, str, float, float]], timestamps: bool = True) -> Interactions:
    frame = pd.DataFrame(rows, columns=["user", "item", "value", "timestamp"])
    if not timestamps:
        frame = frame.drop(columns="timestamp")
    return Interactions.from_frame(frame)


@pytest.fixture(scope="module")
def small() -> Interactions:
    return datasets.synthetic(120, 200, 6000, seed=3).interactions


def cells(m: sp.csr_matrix) -> set[tuple[int, int, float]]:
    coo = m.tocoo()
    return set(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True))


def assert_partition(inter: Interactions, *parts: Interactions) -> None:
    """The parts are disjoint and their union is the original, values and timestamps included."""
    sets = [cells(p.matrix) for p in parts]
    assert sum(len(s) for s in sets) == inter.nnz
    assert set().union(*sets) == cells(inter.matrix)
    if inter.timestamps is not None:
        assert set().union(*(cells(p.timestamps) for p in parts)) == cells(inter.timestamps)
    for p in parts:
        assert p.users is inter.users and p.items is inter.items


def test_random_split_per_user_counts_and_invariants(small):
    split = random_split(small, test_frac=0.2, seed=5)
    assert_partition(small, split.train, split.test)
    n = small.user_counts()
    expected = np.clip(np.floor(0.2 * n + 0.5), 1, n - 1)
    assert np.array_equal(split.test.user_counts(), expected)
    assert (split.train.user_counts() >= 1).all()
    again = random_split(small, test_frac=0.2, seed=5)
    assert (again.test.matrix != split.test.matrix).nnz == 0
    other = random_split(small, test_frac=0.2, seed=6)
    assert (other.test.matrix != split.test.matrix).nnz > 0


def test_random_split_hand_checked_rounding_and_singles():
    rows = [("a", str(i), 1.0, i) for i in range(7)] + [("b", "0", 1.0, 0), ("b", "1", 1.0, 1), ("c", "2", 1.0, 2)]
    split = random_split(inter_from(rows), test_frac=0.2, seed=1)
    # a: round(1.4) = 1; b: max(1, round(0.4)) = 1 but keeps 1 in train; c: single, train only.
    assert split.test.user_counts().tolist() == [1, 1, 0]
    assert split.train.user_counts().tolist() == [6, 1, 1]
    assert "1 users with a single interaction stay in train" in split.description
    assert split.eval_users().tolist() == [0, 1] and split.n_users_without() == 1


def test_temporal_split_cuts_time_globally(small):
    split = temporal_split(small, test_frac=0.25)
    assert_partition(small, split.train, split.test)
    assert split.train.timestamps.data.max() < split.test.timestamps.data.min()
    assert abs(split.test.nnz / small.nnz - 0.25) < 0.01
    assert "cold start" in split.description


def test_temporal_and_leave_last_need_timestamps():
    inter = inter_from([("a", "x", 1.0, 0), ("a", "y", 1.0, 0)], timestamps=False)
    with pytest.raises(ConfigError, match="temporal split needs timestamps"):
        temporal_split(inter)
    with pytest.raises(ConfigError, match="leave-last split needs timestamps"):
        leave_last_split(inter)


def test_temporal_split_with_one_timestamp_is_a_clear_error():
    inter = inter_from([("a", "x", 1.0, 5), ("a", "y", 1.0, 5), ("b", "x", 1.0, 5)])
    with pytest.raises(ConfigError, match="the test part is empty: no interaction is later than the cut"):
        temporal_split(inter)


def test_leave_last_hand_checked():
    rows = [
        ("a", "i1", 5.0, 30),
        ("a", "i2", 4.0, 10),
        ("a", "i3", 3.0, 20),
        ("a", "i4", 2.0, 30),  # ties with i1 at t=30: the higher item index counts as later
        ("b", "i1", 1.0, 1),
        ("b", "i2", 1.0, 2),
        ("c", "i3", 1.0, 9),
    ]
    inter = inter_from(rows)
    one = leave_last_split(inter, n=1)
    test = one.test.to_frame()
    assert sorted(zip(test["user"], test["item"], strict=True)) == [("a", "i4"), ("b", "i2")]
    two = leave_last_split(inter, n=2)
    test2 = two.test.to_frame()
    # a gives its two latest (i4, i1); b keeps one in train, so only its latest; c is a single.
    assert sorted(zip(test2["user"], test2["item"], strict=True)) == [("a", "i1"), ("a", "i4"), ("b", "i2")]
    assert_partition(inter, two.train, two.test)


def test_leave_last_on_real_sizes_keeps_latest(small):
    split = leave_last_split(small, n=2)
    assert_partition(small, split.train, split.test)
    assert (split.test.user_counts() == 2).all()
    latest_train = split.train.to_frame().groupby("user")["timestamp"].max()
    earliest_test = split.test.to_frame().groupby("user")["timestamp"].min()
    assert (earliest_test >= latest_train.reindex(earliest_test.index)).all()


def test_with_validation_carves_from_train(small):
    base = random_split(small, 0.2, seed=1)
    split = with_validation(base, valid_frac=0.1, seed=2)
    assert_partition(base.train, split.train, split.valid)
    assert (split.test.matrix != base.test.matrix).nnz == 0
    n = base.train.user_counts()
    assert np.array_equal(split.valid.user_counts(), np.clip(np.floor(0.1 * n + 0.5), 1, n - 1))
    assert "validation (valid_frac=0.1" in split.description


def test_make_split_registry_and_errors(small):
    assert set(SPLITTERS) == {"random", "temporal", "leave-last"}
    for method in SPLITTERS:
        split = make_split(small, method, test_frac=0.2, seed=1, n_last=1, valid_frac=0.1)
        assert_partition(small, split.train, split.valid, split.test)
    assert make_split(small, "leave_last").test.nnz == small.n_users
    with pytest.raises(
        ConfigError, match=r"split method 'kfold' is unknown; choose one of random .*temporal.*leave-last"
    ):
        make_split(small, "kfold")
    for bad in (0, 1, -0.1, float("nan"), "x"):
        with pytest.raises(ConfigError, match="test_frac"):
            make_split(small, "random", test_frac=bad)
    with pytest.raises(ConfigError, match="valid_frac"):
        make_split(small, "random", valid_frac=1.0)
    with pytest.raises(ConfigError, match="n_last"):
        make_split(small, "leave-last", n_last=0)
    with pytest.raises(ConfigError, match="seed"):
        make_split(small, "random", seed=-1)


def test_empty_split_is_a_clear_error():
    singles = inter_from([("a", "x", 1.0, 1), ("b", "y", 1.0, 2)])
    with pytest.raises(ConfigError, match="the test part is empty: every user has fewer than 2 interactions"):
        random_split(singles)
    with pytest.raises(ConfigError, match="the test part is empty"):
        leave_last_split(singles)


def test_ml100k_default_split_figures():
    inter = datasets.load("ml-100k", allow_download=False).interactions
    split = make_split(inter, "random", 0.2, 42)
    assert split.train.nnz + split.test.nnz == 100_000
    assert len(split.eval_users()) == 943
    assert abs(split.test.nnz - 20_000) < 500


# ------------------------------------------------------------------------------------------- user files


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_split_from_files_counts_every_test_row(tmp_path):
    train = write(tmp_path / "train.csv", "user,item,rating,ts\n1,a,5,1\n1,b,4,2\n2,a,3,3\n2,c,2,4\n")
    test = write(
        tmp_path / "test.csv",
        "user,item,rating,ts\n"
        "1,c,5,10\n"  # kept
        "2,b,4,11\n"  # duplicate of the next row: merged
        "2,b,5,12\n"  # kept (last)
        "9,a,5,13\n"  # user unknown to train
        "1,z,5,14\n"  # item unknown to train: kept, a cold item in the ground truth
        "9,y,5,14\n"  # user unknown to train: its item y does not join the catalogue
        "1,a,5,15\n"  # already in train
        "1,b,0,16\n",  # rating 0
    )
    dataset, split = split_from_files(train, test)
    assert list(split.train.items.ids) == ["a", "b", "c", "z"]
    assert split.train.nnz == 4 and split.test.nnz == 3
    assert split.test.to_frame()[["user", "item", "value"]].values.tolist() == [
        ["1", "c", 5.0],
        ["1", "z", 5.0],
        ["2", "b", 5.0],
    ]
    assert split.cold_test_interactions() == 1
    rep = dataset.report
    assert rep.rows_read == 12 and rep.rows_kept == 7 and rep.duplicates_merged == 1 and rep.balanced()
    assert rep.dropped == {
        "test: rating is 0 (a sparse matrix stores 0 as 'no interaction')": 1,
        "test: user not in the train file (no history to recommend from)": 2,
        "test: (user, item) already in the train file": 1,
    }
    assert "user not in the train file" in split.description
    assert "1 test interactions on items unseen in training" in rep.summary()
    assert dataset.catalog.title.tolist()[-1] == "Item z"
    assert dataset.interactions.nnz == 7 and split.test.timestamps is not None
    valid = with_validation(split, 0.5, seed=0)
    assert valid.valid.nnz >= 1


def test_split_from_files_threshold_and_errors(tmp_path):
    train = write(tmp_path / "train.csv", "user,item,rating\n1,a,5\n1,b,2\n")
    with pytest.raises(DataError, match=r"t2\.csv: no test row is usable .*already in the train file"):
        split_from_files(train, write(tmp_path / "t2.csv", "user,item,rating\n1,a,5\n"))
    with pytest.raises(DataError, match=r"test\.csv: no test row is usable .*below the threshold"):
        split_from_files(train, write(tmp_path / "test.csv", "user,item,rating\n1,b,1\n"), threshold=3)
    with pytest.raises(DataError, match=r"bad\.csv: column 'rating', row 1"):
        split_from_files(train, write(tmp_path / "bad.csv", "user,item,rating\n1,b,x\n"))


# ------------------------------------------------------------------------- the hash order of the holdout


def test_id_hashes_are_keyed_blake2b_of_the_id_string():
    import hashlib

    from reco_core.splitting import id_hashes

    want = int.from_bytes(hashlib.blake2b(b"42", digest_size=8, key=(7).to_bytes(8, "little")).digest(), "little")
    got = id_hashes(["42", 42], seed=7)
    assert got.dtype == np.uint64 and got.tolist() == [want, want]  # "42" and 42 are the same id
    assert id_hashes(["42"], seed=8)[0] != want


def test_holdout_rows_hand_checked_order():
    from reco_core.splitting import holdout_rows, pair_hashes

    # One user, four items with item hashes chosen by hand; the pair hash decides the order.
    uh = np.full(4, 5, dtype=np.uint64)
    ih = np.array([10, 11, 12, 13], dtype=np.uint64)
    key = pair_hashes(uh, ih)
    first = int(np.argmin(key))
    held = holdout_rows(np.zeros(4), uh, ih, np.arange(4), frac=0.25)  # round(0.25 * 4) = 1
    assert held.tolist() == [i == first for i in range(4)]
    # A full tie (same pair hash) is broken by the lower item index.
    tie = holdout_rows(np.zeros(2), np.zeros(2, np.uint64), np.zeros(2, np.uint64), np.array([9, 3]), frac=0.5)
    assert tie.tolist() == [False, True]


def test_pair_hashes_wrap_in_uint64_and_match_splitmix64():
    from reco_core.splitting import pair_hashes

    def splitmix(u: int, i: int) -> int:
        m = (1 << 64) - 1
        z = (u * 0x9E3779B97F4A7C15 + i) & m
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    u, i = (1 << 64) - 3, 12345
    assert int(pair_hashes(np.array([u], np.uint64), np.array([i], np.uint64))[0]) == splitmix(u, i)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 10_000))
def test_random_split_does_not_depend_on_row_order(perm_seed, split_seed):
    from reco_core.splitting import holdout_rows, id_hashes

    rng = np.random.default_rng(perm_seed)
    n = 300
    frame = pd.DataFrame(
        {"user": rng.integers(0, 25, n).astype(str), "item": rng.integers(0, 40, n).astype(str), "value": 1.0}
    ).drop_duplicates(["user", "item"])
    shuffled = frame.sample(frac=1.0, random_state=perm_seed % 1000)
    a = random_split(Interactions.from_frame(frame), 0.3, split_seed).test.to_frame()
    b = random_split(Interactions.from_frame(shuffled), 0.3, split_seed).test.to_frame()
    assert a.equals(b)
    # The row function itself: permuting rows permutes the answer, and each user's part alone gives the same.
    uc, ic = pd.factorize(shuffled["user"])[0], pd.factorize(shuffled["item"])[0]
    uh, ih = id_hashes(shuffled["user"], split_seed), id_hashes(shuffled["item"], split_seed)
    whole = holdout_rows(uc, uh, ih, ic, 0.3)
    perm = rng.permutation(len(uc))
    assert np.array_equal(holdout_rows(uc[perm], uh[perm], ih[perm], ic[perm], 0.3), whole[perm])
    for u in np.unique(uc)[:5]:
        sel = uc == u
        assert np.array_equal(holdout_rows(uc[sel], uh[sel], ih[sel], ic[sel], 0.3), whole[sel])
    held = set(zip(shuffled["user"][whole], shuffled["item"][whole], strict=True))
    assert held == set(zip(a["user"], a["item"], strict=True))
