"""Issue 13, items 6 and 7: Parquet files sized before they are decoded, nested id columns, and paths that
are no file (a folder, a device) named for what they are, in the engine's readers and in the CLI.

The Parquet files are built here with pyarrow: a dictionary-encoded column stores one long value once, however
many rows repeat it, so a file of about a kilobyte decodes to gigabytes.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reco_core import datasets, splitting
from reco_core.__main__ import main
from reco_core.errors import ConfigError, DataError


def _repeated(value: str, rows: int) -> pa.DictionaryArray:
    """A dictionary-encoded column: ``value`` stored once, ``rows`` indices pointing at it."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array([value]))


def dictionary_bomb(path: Path, length: int = 100_000, rows: int = 21_000) -> Path:
    """user and item each one ``length``-character value repeated ``rows`` times: 2 x 2.1 GB decoded by default."""
    table = pa.table({"user": _repeated("u" * length, rows), "item": _repeated("i" * length, rows)})
    pq.write_table(table, path, compression="zstd")
    return path


def test_a_kilobyte_of_dictionary_encoded_parquet_holding_gigabytes_is_refused_before_decoding(
    tmp_path: Path,
) -> None:
    path = dictionary_bomb(tmp_path / "bomb.parquet")
    assert path.stat().st_size < 2_000  # about 1 kB on disk
    meta = pq.ParquetFile(path).metadata
    assert sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) < 1_000_000  # pages are small
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        datasets.load_files(path)
    message = str(info.value)
    assert time.perf_counter() - start < 5  # 4.2 GB was never built
    assert message.startswith(f"{path}: the interactions file decodes to about 4,200 MB of values")
    assert "more than the limit of 2,000 MB" in message and "--max-decoded-mb" in message
    assert "max_decoded_bytes" in message and "\n" not in message


def test_the_decoded_limit_is_a_parameter_and_a_small_file_under_it_loads(tmp_path: Path) -> None:
    """8 MB of values from a small file: refused under a 1 MB limit, loaded under 10 MB or with no limit."""
    path = dictionary_bomb(tmp_path / "dict.parquet", length=2_000, rows=2_000)
    with pytest.raises(DataError, match=r"dict\.parquet: the interactions file decodes to about 8 MB.* limit of 1 MB"):
        datasets.load_files(path, max_decoded_bytes=1_000_000)
    for limit in (10_000_000, None):
        ds = datasets.load_files(path, max_decoded_bytes=limit)
        assert ds.interactions.nnz == 1 and ds.report.duplicates_merged == 1_999
        assert list(ds.interactions.users.ids) == ["u" * 2_000]
    with pytest.raises(ConfigError, match=r"max_decoded_bytes=0 must be a whole number >= 1"):
        datasets.load_files(path, max_decoded_bytes=0)


def test_items_users_and_split_files_are_sized_too(tmp_path: Path) -> None:
    inter = tmp_path / "inter.csv"
    inter.write_text("user,item\n1,1\n2,1\n1,2\n2,3\n")
    items = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item": ["1", "2"], "title": _repeated("t" * 2_000, 2)}), items)
    big_items = tmp_path / "big_items.parquet"
    pq.write_table(pa.table({"item": _repeated("x" * 2_000, 2_000), "title": _repeated("t" * 2_000, 2_000)}), big_items)
    assert datasets.load_files(inter, items=items, max_decoded_bytes=1_000_000).catalog is not None
    with pytest.raises(DataError, match=r"big_items\.parquet: the items file decodes to about 8 MB"):
        datasets.load_files(inter, items=big_items, max_decoded_bytes=1_000_000)
    test = dictionary_bomb(tmp_path / "test.parquet", length=2_000, rows=2_000)
    with pytest.raises(DataError, match=r"test\.parquet: the interactions file decodes to about 8 MB"):
        splitting.split_from_files(inter, test, max_decoded_bytes=1_000_000)


def test_a_compressed_parquet_bomb_is_refused_from_its_metadata_before_any_column_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No dictionary: zstd alone holds 200 MB of repeated text in a few hundred kB; the row groups' sizes say so."""
    chunk = pa.table({"user": pa.array(["x" * 2_000] * 10_000), "item": pa.array(["y" * 2_000] * 10_000)})
    path = tmp_path / "zstd.parquet"
    with pq.ParquetWriter(path, chunk.schema, compression="zstd", use_dictionary=False) as writer:
        for _ in range(5):
            writer.write_table(chunk)
    assert path.stat().st_size < 1_000_000

    def read(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the file was decoded")

    monkeypatch.setattr(pq.ParquetFile, "read", read)
    with pytest.raises(DataError, match=r"zstd\.parquet: the interactions file decodes to about 20\d MB"):
        datasets.load_files(path, max_decoded_bytes=100_000_000)


def test_the_cli_refuses_a_parquet_bomb_with_one_line_and_takes_max_decoded_mb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = dictionary_bomb(tmp_path / "bomb.parquet")
    assert main(["evaluate", "--interactions", str(bomb), "--models", "pop"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bomb}: the interactions file decodes to about 4,200 MB") and "\n" not in err
    small = dictionary_bomb(tmp_path / "small.parquet", length=2_000, rows=2_000)
    argv = ["evaluate", "--train", str(small), "--test", str(small), "--models", "pop", "--max-decoded-mb", "1"]
    assert main(argv) == 2
    assert "limit of 1 MB" in capsys.readouterr().err
    assert main(["evaluate", "--interactions", str(small), "--max-decoded-mb", "-1"]) == 2
    assert "--max-decoded-mb -1 is not valid" in capsys.readouterr().err


def test_the_dashboard_and_the_engine_share_one_parquet_estimate() -> None:
    from reco_core.datasets import readers
    from ui import upload

    buf = io.BytesIO()
    pq.write_table(pa.table({"user": _repeated("x" * 2_000, 2_000), "item": _repeated("y" * 2_000, 2_000)}), buf)
    table = pq.ParquetFile(io.BytesIO(buf.getvalue()), read_dictionary=["user", "item"]).read()
    assert readers.parquet_plain_bytes(table) == 2 * 2_000 * (2_000 + 4)
    assert not hasattr(upload, "_plain_bytes")  # the copy in ui/upload.py is gone: it calls the engine's


# ---------------------------------------------------------------------------------------- nested id columns


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        (pa.array([{"id": "u0"}, {"id": "u1"}]), "struct"),
        (pa.array([["u0"], ["u1", "u2"]]), "list"),
    ],
    ids=["struct", "list"],
)
def test_a_nested_id_column_is_refused_by_name(tmp_path: Path, column: pa.Array, kind: str) -> None:
    """It became the text "{'id': 'u0'}" before, and was loaded as an id."""
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"user": column, "item": ["1", "2"]}), path)
    with pytest.raises(DataError) as info:
        datasets.load_files(path)
    assert str(info.value).startswith(f"{path}: column 'user' holds nested values ({kind}): give plain ids")


# ------------------------------------------------------------------------------- paths that are not files


def test_a_directory_is_named_as_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        datasets.load_files(tmp_path)
    assert str(info.value).startswith(f"{str(tmp_path)!r} is a directory: give a file")
    assert "no such file" not in str(info.value)
    with pytest.raises(DataError, match=r"is a directory: give a file \(the items file"):
        inter = tmp_path / "inter.csv"
        inter.write_text("user,item\n1,1\n")
        datasets.load_files(inter, items=tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_named_and_never_read() -> None:
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        datasets.load_files("/dev/zero")
    assert str(info.value).startswith("'/dev/zero' is not a regular file (a character device): give a file")
    with pytest.raises(ConfigError, match=r"configuration file '/dev/zero' is not a regular file"):
        from reco_core import config

        config.load("/dev/zero")  # its size reads 0, and it never ends: it was read until memory ran out
    assert time.perf_counter() - start < 5


def test_a_missing_file_still_says_no_such_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        datasets.load_files(tmp_path / "nope.csv")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_the_cli_names_directories_devices_and_pipes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    for path, words in (
        (tmp_path, "is a directory: give a file"),
        (pipe, "is not a regular file (a named pipe): give a file"),
    ):
        assert main(["evaluate", "--interactions", str(path), "--models", "pop"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {str(path)!r} {words}") and err.count("\n") == 1
        assert main(["evaluate", "--config", str(path)]) == 2
        assert words in capsys.readouterr().err


def test_the_cli_top_level_names_a_directory_an_oserror_points_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError from any command (a folder opened as a file) says what the path is, not "No such file"."""
    from reco_core import cli_commands

    def opens_a_folder(args: Any) -> Any:
        return open(tmp_path)

    monkeypatch.setitem(cli_commands.COMMANDS, "evaluate", opens_a_folder)
    assert main(["evaluate"]) == 2
    assert capsys.readouterr().err == f"error: {str(tmp_path)!r} is a directory: give a file\n"

    def missing(args: Any) -> Any:
        return open(tmp_path / "gone.csv")

    monkeypatch.setitem(cli_commands.COMMANDS, "evaluate", missing)
    assert main(["evaluate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot read {str(tmp_path / 'gone.csv')!r}: No such file or directory")
