"""ui/upload.py: uploaded bytes -> table of strings -> column mapping, with one-line errors for bad files."""

from __future__ import annotations

import io

import pandas as pd
import pytest

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
