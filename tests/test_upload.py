"""ui/upload.py: uploaded bytes -> table of strings -> column mapping, with one-line errors for bad files."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reco_core import datasets
from reco_core.errors import ConfigError, DataError, RecoError
from ui import upload
from ui.upload import ColumnMapping, guess_mapping, plain, read_table

ML100K = datasets.packaged_folder("ml-100k")  # the engine's own lookup of recbole's MovieLens-100K copy


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


# -- formats -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "delimiter"),
    [
        (b"user,item,rating\n1,10,5\n2,20,3\n", ","),
        (b"user\titem\trating\n1\t10\t5\n2\t20\t3\n", "\t"),
        (b"user;item;rating\n1;10;5\n2;20;3\n", ";"),
        (b"user|item|rating\n1|10|5\n2|20|3\n", "|"),
    ],
)
def test_delimiters_are_detected(data: bytes, delimiter: str) -> None:
    t = read_table(data, "r.csv")
    assert t.delimiter == delimiter
    assert t.columns == ["user", "item", "rating"]
    assert t.frame.to_numpy().tolist() == [["1", "10", "5"], ["2", "20", "3"]]


def test_ids_keep_their_spelling() -> None:
    # Read as text: "007" must not become 7, and "1e3" must not become 1000.
    t = read_table(b"user,item\n007,1e3\n", "r.csv")
    assert t.frame.iloc[0].tolist() == ["007", "1e3"]


def test_quoted_delimiter_inside_a_cell() -> None:
    t = read_table(b'item,title\n1,"Seven, Samurai"\n', "items.csv")
    assert t.frame["title"].tolist() == ["Seven, Samurai"]


def test_utf8_bom_is_dropped_from_the_header() -> None:
    t = read_table("user,item\n1,2\n".encode("utf-8-sig"), "r.csv")
    assert t.columns == ["user", "item"] and t.encoding == "UTF-8"


def test_latin1_falls_back_with_a_note_naming_the_line() -> None:
    t = read_table(b"item,title\n1,Caf\xe9\n2,ok\n", "items.csv")
    assert t.encoding == "Latin-1"
    assert t.frame["title"].tolist() == ["Café", "ok"]
    assert any("line 2" in n and "items.csv" in n for n in t.notes)


def test_headerless_numeric_file_gets_positional_names_and_movielens_order() -> None:
    t = read_table(b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n", "u.data")
    assert not t.has_header
    assert t.columns == ["column_1", "column_2", "column_3", "column_4"]
    assert len(t.frame) == 2  # the first row is data, not lost as a header
    assert guess_mapping(t.columns) == {
        "user": "column_1",
        "item": "column_2",
        "rating": "column_3",
        "timestamp": "column_4",
    }


def test_double_colon_movielens_1m_format() -> None:
    t = read_table(b"1::1193::5::978300760\n1::661::3::978302109\n", "ratings.dat")
    assert t.delimiter == "::"
    assert t.frame.to_numpy().tolist()[0] == ["1", "1193", "5", "978300760"]


def test_recbole_file_from_disk() -> None:
    assert ML100K is not None, (
        "recbole is not installed: `make test` installs it (pip install --no-deps recbole==1.2.1)"
    )
    t = read_table((ML100K / "ml-100k.inter").read_bytes(), "ml-100k.inter")
    assert len(t.frame) == 100_000
    assert guess_mapping(t.columns) == {
        "user": "user_id:token",
        "item": "item_id:token",
        "rating": "rating:float",
        "timestamp": "timestamp:float",
    }


def test_parquet_is_read_by_content_as_text() -> None:
    frame = pd.DataFrame({"userId": [1, 2], "movieId": [3.0, 4.5], "rating": [5.0, None]})
    t = read_table(parquet_bytes(frame), "whatever.csv")  # the name lies; the magic bytes decide
    assert t.format == "parquet"
    assert t.frame.to_numpy().tolist() == [["1", "3", "5"], ["2", "4.5", ""]]


def test_duplicate_headers_get_distinct_names() -> None:
    t = read_table(b"user,item,item\n1,2,3\n", "r.csv")
    assert len(set(t.columns)) == 3 and t.columns[:2] == ["user", "item"]


def test_describe_is_one_line() -> None:
    t = read_table(b"user,item\n1,2\n", "r.csv")
    assert t.describe() == "r.csv: CSV (comma, UTF-8), 2 columns, 1 rows"


# -- bad files: one-line DataError naming the file -------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", ["empty"]),
        (b"   \n\n", ["empty"]),
        (b"user,item\n", ["header", "no data rows"]),
        (b"user,item\n1,2\n3,4,5\n", ["line 3", "3 fields", "2"]),
        (b"\x00\x01\x02binary", ["NUL"]),
        (b"PAR1 this is not parquet", ["Parquet"]),
    ],
)
def test_bad_files_raise_one_line_data_errors(data: bytes, words: list[str]) -> None:
    with pytest.raises(DataError) as err:
        read_table(data, "bad.csv")
    msg = str(err.value)
    assert "bad.csv" in msg and "\n" not in msg
    for w in words:
        assert w in msg


def test_row_limit_is_enforced_with_a_clear_message() -> None:
    data = b"user,item\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(11))
    with pytest.raises(DataError, match=r"11 rows.*at most 10"):
        read_table(data, "big.csv", max_rows=10)
    assert len(read_table(data, "big.csv", max_rows=11).frame) == 11


def test_row_limit_applies_to_parquet() -> None:
    data = parquet_bytes(pd.DataFrame({"user": range(5), "item": range(5)}))
    with pytest.raises(DataError, match="at most 4"):
        read_table(data, "big.parquet", max_rows=4)


def test_a_dictionary_encoded_parquet_bomb_is_sized_by_its_rows_not_its_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One 2,000-character value repeated 2,000 times: the dictionary holds it once, so the row groups'
    total_byte_size is a few kB, but the rows expand to 8 MB. The check counts the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"user": ["x" * 2000] * 2000, "item": ["y" * 2000] * 2000}), buf, compression="zstd")
    data = buf.getvalue()
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) < 100_000
    monkeypatch.setattr(upload, "MAX_DECODED_BYTES", 1_000_000)
    with pytest.raises(DataError, match=r"^dict\.parquet decodes to 8 MB of values: .*at most 1 MB per file"):
        read_table(data, "dict.parquet")
    monkeypatch.setattr(upload, "MAX_DECODED_BYTES", 10_000_000)
    table = read_table(data, "dict.parquet").frame
    assert table.shape == (2000, 2) and set(table["user"]) == {"x" * 2000}


def test_parquet_nested_columns_are_refused_by_name() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"item": ["1", "2"], "genres": [["Comedy", "Drama"], ["War"]]}), buf)
    with pytest.raises(DataError, match=r"^items\.parquet: column 'genres' holds nested values .*'Comedy\|Drama'"):
        read_table(buf.getvalue(), "items.parquet")


def test_column_limit() -> None:
    header = ",".join(f"c{i}" for i in range(30)).encode()
    with pytest.raises(DataError, match="30 columns"):
        read_table(header + b"\n" + b",".join([b"1"] * 30) + b"\n", "wide.csv", max_columns=20)


def test_not_bytes_is_a_data_error() -> None:
    with pytest.raises(DataError, match="bytes"):
        read_table("user,item", "r.csv")  # type: ignore[arg-type]


def test_filename_path_parts_are_dropped() -> None:
    with pytest.raises(DataError) as err:
        read_table(b"", "../../etc/passwd")
    assert str(err.value).startswith("passwd is empty")


# -- mapping ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["userId", "movieId", "rating", "timestamp"], ("userId", "movieId", "rating", "timestamp")),
        (["USER_ID", "Item ID", "Score"], ("USER_ID", "Item ID", "Score", None)),
        (["customer_id", "product_id", "date"], ("customer_id", "product_id", None, "date")),
        (["a", "b"], (None, None, None, None)),
    ],
)
def test_guess_mapping(columns: list[str], expected: tuple) -> None:
    got = guess_mapping(columns)
    assert tuple(got[r] for r in upload.INTERACTION_ROLES) == expected


def test_guess_uses_each_column_once() -> None:
    # "value" is a rating name and "count" too: only one of them may take the rating role.
    got = guess_mapping(["user", "item", "value", "count"])
    assert got["rating"] == "value"
    assert list(got.values()).count("value") == 1


def test_guess_item_file_roles() -> None:
    got = guess_mapping(["movie_id", "title", "genres", "year"], upload.ITEM_ROLES)
    assert got == {"item": "movie_id", "title": "title", "genres": "genres", "year": "year", "text": None}


def test_mapping_validation_messages() -> None:
    cols = ["u", "i", "r"]
    ColumnMapping({"user": "u", "item": "i", "rating": "r", "timestamp": None}).validate(cols, "f.csv")
    with pytest.raises(ConfigError, match="item ids"):
        ColumnMapping({"user": "u", "item": None}).validate(cols, "f.csv")
    with pytest.raises(ConfigError, match="'u' is chosen for both user and item"):
        ColumnMapping({"user": "u", "item": "u"}).validate(cols, "f.csv")
    with pytest.raises(ConfigError, match="no column 'x'"):
        ColumnMapping({"user": "u", "item": "x"}).validate(cols, "f.csv")


def test_select_renames_mapped_columns() -> None:
    t = read_table(b"a,b,c\n1,2,3\n", "r.csv")
    out = upload.select(t, ColumnMapping({"user": "b", "item": "a", "rating": None}), upload.INTERACTION_ROLES)
    assert out.columns.tolist() == ["user", "item"]
    assert out["user"].tolist() == ["2"] and out["item"].tolist() == ["1"]


# -- display safety --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["[click](http://x)", "**bold**", ":red[alarm]", "$x^2$", "<b>hi</b>", "# title"])
def test_plain_escapes_markdown_active_characters(text: str) -> None:
    out = plain(text)
    # every active character is preceded by a backslash; removing the escapes gives the text back
    assert out.replace("\\", "") == text.replace("\\", "")
    for ch in "[]*:$<>#":
        assert ch not in out.replace("\\" + ch, "")


def test_plain_is_one_line() -> None:
    assert plain("a\nb\r\nc") == "a b c"


def test_errors_are_reco_errors() -> None:
    # The page catches RecoError to show st.error; nothing else may escape read_table for bad bytes.
    for data in (b"", b"user,item\n", b"\x00", b"PAR1"):
        with pytest.raises(RecoError):
            read_table(data, "x.csv")


def test_digest_depends_on_every_part() -> None:
    assert upload.digest(b"a", None) != upload.digest(b"a", b"")
    assert upload.digest(b"ab", b"c") != upload.digest(b"a", b"bc")
    assert upload.digest(b"a", "x") == upload.digest(b"a", "x")


# -- validation through reco_core.datasets.load_files ----------------------------------------------------


def test_build_dataset_accounts_for_every_row() -> None:
    data = b"userId,movieId,rating\n1,10,5\n1,10,4\n2,20,0\n2,30,3\n3,30,2\n"
    t = read_table(data, "mine.csv")
    ds = upload.build_dataset(t, ColumnMapping(guess_mapping(t.columns)), threshold=3)
    r = ds.report
    assert r.balanced() and r.rows_read == 5
    assert r.rows_kept == 2 and r.duplicates_merged == 1 and r.rows_dropped == 2
    assert r.source == "mine.csv" and ds.name == "mine"
    table = upload.report_table(r)
    assert table["rows"].iloc[1:].sum() == r.rows_read  # kept + merged + every drop reason add up to read
    assert any("threshold" in w for w in table["what happened"])


def test_build_dataset_error_names_the_uploaded_file() -> None:
    t = read_table(b"user,item,rating\n1,2,5\n1,3,abc\n", "bad.csv")
    with pytest.raises(RecoError) as err:
        upload.build_dataset(t, ColumnMapping(guess_mapping(t.columns)))
    msg = str(err.value)
    assert msg.startswith("bad.csv") and "rating" in msg and "row 2" in msg and "DataFrame" not in msg


def test_build_dataset_uses_the_mapping_not_the_names() -> None:
    # "rating" is a recognised name, but the person chose no rating: every row counts 1.
    t = read_table(b"a,b,rating\n1,2,5\n3,4,2\n", "r.csv")
    ds = upload.build_dataset(t, ColumnMapping({"user": "b", "item": "a", "rating": None, "timestamp": None}))
    assert sorted(ds.interactions.users.ids) == ["2", "4"]
    assert set(ds.interactions.matrix.data.tolist()) == {1.0}


def test_build_dataset_rejects_a_bad_mapping_before_loading() -> None:
    t = read_table(b"a,b\n1,2\n", "r.csv")
    with pytest.raises(ConfigError, match="user ids"):
        upload.build_dataset(t, ColumnMapping({"user": None, "item": "a"}))


def test_items_file_with_space_separated_genres() -> None:
    inter = read_table(b"user\titem\n1\t1\n1\t2\n2\t2\n", "r.tsv")
    items = read_table(
        b"item_id:token\tmovie_title:token_seq\tclass:token_seq\n1\tA\tAction Drama\n2\tB\tComedy\n", "i"
    )
    im = ColumnMapping(guess_mapping(items.columns, upload.ITEM_ROLES))
    sep = upload.guess_genre_separator(items.frame[im["genres"]])
    assert sep == " "
    ds = upload.build_dataset(inter, ColumnMapping(guess_mapping(inter.columns)), items, im, genre_separator=sep)
    assert ds.catalog.genres[0] == ("Action", "Drama") and ds.catalog.title.tolist() == ["A", "B"]


def test_guess_genre_separator() -> None:
    assert upload.guess_genre_separator(["Action|Drama", "Comedy"]) == "|"
    assert upload.guess_genre_separator(["Action, Drama"]) == ","
    assert upload.guess_genre_separator(["Action"]) == " "


def test_ml100k_upload_round_trip() -> None:
    inter = read_table((ML100K / "ml-100k.inter").read_bytes(), "ml-100k.inter")
    ds = upload.build_dataset(inter, ColumnMapping(guess_mapping(inter.columns)))
    assert (ds.interactions.n_users, ds.interactions.n_items, ds.interactions.nnz) == (943, 1682, 100_000)


# -- rows wider than the header, and files without a header (issue 13, items 1 and 2) --------------------

_UPLOAD_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)
_HEADERS = (
    ["user", "item", "rating", "timestamp"],
    ["userId", "movieId", "rating"],
    ["customer", "sku", "stars", "when"],
    ["user_id:token", "item_id:token"],
)
# Ids of one style per column, as exports have them: plain numbers, or a prefix and a number.
_ID_STYLES = st.sampled_from(["", "u", "i", "x", "tt", "ID-"]).map(
    lambda prefix: st.integers(0, 10**6).map(lambda n: f"{prefix}{n}")
)
_VALUES = {
    "rating": st.sampled_from(["1", "2", "3", "3.5", "4", "5", "0.5"]),
}
# One kind of timestamp per table (the engine refuses numbers mixed with dates, rightly).
_TIMESTAMPS = (
    st.integers(0, 2**31).map(str),
    st.dates(dt.date(1971, 1, 1), dt.date(2100, 12, 31)).map(str),
)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]], str]:
    """A header (recognised names, one of four styles) and 1-30 rows of ids, ratings and timestamps."""
    header = draw(st.sampled_from(_HEADERS))
    roles = ["user", "item", "rating", "timestamp"][: len(header)]
    values = {
        "user": draw(_ID_STYLES),
        "item": draw(_ID_STYLES),
        **_VALUES,
        "timestamp": draw(st.sampled_from(_TIMESTAMPS)),
    }
    rows = draw(st.lists(st.tuples(*(values[r] for r in roles)).map(list), min_size=1, max_size=30))
    return list(header), rows, draw(st.sampled_from([",", "\t", ";", "|"]))


def _text(lines: list[list[str]], delim: str, end: str = "") -> bytes:
    return "".join(delim.join(cells) + end + "\n" for cells in lines).encode()


def _engine_error(data: bytes, suffix: str = ".csv") -> str:
    """The engine's message for the same bytes read from a file (load_files), or "" when it loads them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        try:
            datasets.load_files(path)
        except RecoError as exc:
            return str(exc)
    return ""


@_UPLOAD_SETTINGS
@given(table=_tables())
def test_a_table_with_its_header_is_read_as_written(table: tuple[list[str], list[list[str]], str]) -> None:
    header, rows, delim = table
    t = read_table(_text([header, *rows], delim), "r.csv")
    assert t.has_header and t.columns == header and t.header_doubt is None
    assert t.frame.to_numpy().tolist() == rows


@_UPLOAD_SETTINGS
@given(table=_tables(), extra=st.sampled_from(["", "7", "x", "extra value"]))
def test_rows_with_one_field_more_than_the_header_are_refused_by_row(
    table: tuple[list[str], list[list[str]], str], extra: str
) -> None:
    """Every data row one field wider than the header: pandas made the first column the index and shifted the
    others left (users became items, items ratings) with "4 rows read; 4 kept". Now a one-line error naming the
    row and both field counts, like the engine's; an empty last field (a trailing delimiter) is named as such."""
    header, rows, delim = table
    data = _text([header], delim) + _text([[*r, extra] for r in rows], delim)
    with pytest.raises(DataError) as err:
        read_table(data, "wide.csv")
    msg = str(err.value)
    n = len(header)
    assert msg.startswith("wide.csv") and "\n" not in msg
    assert f"row 1 (line 2) has {n + 1} fields but the header has {n}" in msg
    assert ("trailing" in msg) == (extra == "")
    # The engine refuses the same bytes with the same row and counts.
    assert f"row 1 (line 2) has {n + 1} fields but the header has {n}" in _engine_error(data)


def test_a_trailing_comma_on_every_row_is_named_not_read_as_an_empty_timestamp() -> None:
    data = b"user,item,rating,timestamp\n1,10,4,100,\n2,20,3,200,\n3,30,5,300,\n4,40,2,400,\n"
    with pytest.raises(DataError) as err:
        read_table(data, "trail.csv")
    msg = str(err.value)
    assert "row 1 (line 2) has 5 fields but the header has 4" in msg and "trailing ','" in msg
    assert "timestamp ''" not in msg
    # A later row that is wider is named by its own row and line, blank lines and quoted line breaks counted.
    with pytest.raises(DataError, match=r"row 3 \(line 6\) has 3 fields but the header has 2"):
        read_table(b'user,title\n1,"a\nb"\n\n2,c\n3,d,e\n', "late.csv")
    # A trailing delimiter on the header too is a consistent file: an empty unnamed column, ignored.
    t = read_table(b"user,item,rating,timestamp,\n1,10,4,100,\n2,20,3,200,\n", "both.csv")
    assert t.columns == ["user", "item", "rating", "timestamp", "unnamed"]
    ds = upload.build_dataset(t, ColumnMapping(guess_mapping(t.columns)))
    assert ds.report.rows_read == ds.report.rows_kept == 2


@settings(max_examples=30, deadline=None, derandomize=True)  # each example loads a dataset
@given(table=_tables())
def test_a_file_without_a_header_is_recognised_and_keeps_every_row(
    table: tuple[list[str], list[list[str]], str],
) -> None:
    """Written without its header, the first record used to become the header and was lost. Now either the
    first row is all numbers (read as data at once) or the header is doubted with a reason, and reading with
    ``header=False`` keeps every row."""
    header, rows, delim = table
    assume(len(rows) >= 2)
    data = _text(rows, delim)
    t = read_table(data, "nohead.csv")
    if t.has_header:
        assert t.header_doubt, f"the first row {rows[0]} was taken as a header without a doubt"
        assert "\n" not in t.header_doubt and len(t.frame) == len(rows) - 1
    else:
        assert t.frame.to_numpy().tolist() == rows
    again = read_table(data, "nohead.csv", header=False)
    assert not again.has_header and again.frame.to_numpy().tolist() == rows
    assert again.columns == [f"column_{i + 1}" for i in range(len(header))]
    assert any("no header" in n for n in again.notes)
    # Every row reaches the load report (ids in MovieLens order for 2-4 columns).
    ds = upload.build_dataset(again, ColumnMapping(guess_mapping(again.columns)))
    r = ds.report
    assert r.balanced() and r.rows_read == len(rows)


def test_header_doubt_names_its_reason_and_leaves_real_headers_alone() -> None:
    # 928 rows with text ids: the first is not numbers only, so it used to become the header quietly.
    rows = [f"u{i % 50},i{i % 97},{1 + i % 5},{1_000_000 + i}" for i in range(928)]
    data = ("\n".join(rows) + "\n").encode()
    t = read_table(data, "ratings.csv")
    assert t.has_header and len(t.frame) == 927
    assert t.header_doubt and "'1'" in t.header_doubt and "number" in t.header_doubt
    assert len(read_table(data, "ratings.csv", header=False).frame) == 928
    # Same shape, no numbers: ids such as u1/i1 in the first row and in the data.
    t = read_table(b"u1,i1\nu2,i2\nu3,i3\n", "ids.csv")
    assert t.header_doubt and "same shape" in t.header_doubt
    # A first row that repeats a cell, or whose cell is also a value below it in the same column.
    assert "twice" in (read_table(b"u0,u0\n0,0\n", "d.csv").header_doubt or "")
    assert "also a value" in (read_table(b"alice,pen\nbob,cup\nalice,cup\n", "v.csv").header_doubt or "")
    # Real headers, recognised or not, and text-only data: no doubt.
    for data in (b"user,item\nu1,i1\n", b"a,b\nx,y\n", b"customer,sku\nalice,book\n", b"col,row\n1,2\n"):
        assert read_table(data, "ok.csv").header_doubt is None, data
    # header=True keeps a numeric first row as names (the person said so).
    t = read_table(b"1,2\n3,4\n", "n.csv", header=True)
    assert t.has_header and t.columns == ["1", "2"] and len(t.frame) == 1
