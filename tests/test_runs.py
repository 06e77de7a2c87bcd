"""External runs: reading (every row accounted for), writing (formula-safe), and evaluating them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from reco_core.data import Interactions
from reco_core.errors import DataError
from reco_core.ids import IdMap
from reco_core.metrics import EvalContext, evaluate
from reco_core.ranking import Ranking, top_k
from reco_core.runs import read_run, safe_csv_cell, unescape_csv_cell, write_run

USERS = IdMap.from_values(["1", "2", "3"])
ITEMS = IdMap.from_values(["10", "20", "30", "40", "50"])


def write(tmp_path: Path, text: str, name: str = "run.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def lists(ranking: Ranking) -> list[list[str]]:
    return [[ITEMS.ids[i] for i in row if i >= 0] for row in ranking.item_idx]


def test_rank_column_orders_each_users_list(tmp_path):
    path = write(tmp_path, "user,item,rank\n1,30,2\n1,10,1\n2,50,1\n1,40,3\n")
    ranking, report = read_run(path, USERS, ITEMS, k=2)
    np.testing.assert_array_equal(ranking.user_idx, [0, 1, 2])
    assert lists(ranking) == [["10", "30"], ["50"], []]
    assert ranking.item_idx.shape == (3, 2) and ranking.item_idx[2].tolist() == [-1, -1]
    assert report.order_by == "rank" and report.name == "run"
    assert (report.rows_read, report.rows_used, report.beyond_k_rows) == (4, 3, 1)
    assert (report.users_in_run, report.users_without_list) == (2, 1)
    assert report.balanced()
    np.testing.assert_array_equal(ranking.score[0], [-1.0, -2.0])  # negated rank: higher stays better


def test_score_column_and_common_names_tsv(tmp_path):
    path = write(tmp_path, "userId\tmovieId\tprediction\n2\t20\t0.1\n2\t40\t0.9\n2\t10\t0.5\n", "ext.tsv")
    ranking, report = read_run(path, USERS, ITEMS, k=3, name="theirs")
    assert lists(ranking)[1] == ["40", "10", "20"]
    np.testing.assert_allclose(ranking.score[1], [0.9, 0.5, 0.1], rtol=1e-6)
    assert report.order_by == "score" and report.name == "theirs"


def test_unknown_duplicate_and_training_rows_are_counted(tmp_path):
    text = "user,item,score\n1,10,5\n1,10,9\n9,10,1\n8,20,1\n1,99,3\n1,20,4\n1,30,3\n2,30,1\n"
    exclude = sp.csr_matrix(([1.0], ([0], [2])), shape=(3, 5))  # user "1" trained on item "30"
    ranking, report = read_run(write(tmp_path, text), USERS, ITEMS, k=5, exclude=exclude)
    assert lists(ranking) == [["10", "20"], ["30"], []]
    assert report.unknown_user_rows == 2 and set(report.unknown_user_examples) == {"9", "8"}
    assert report.unknown_item_rows == 1 and report.unknown_item_examples == ("99",)
    assert report.duplicate_rows == 1  # (1, 10) twice: the better-placed copy (score 9) is kept
    assert ranking.score[0, 0] == 9
    assert report.training_item_rows == 1
    assert report.rows_used == 3 and report.balanced()
    summary = report.summary()
    for words in ("8 rows read", "user not in the split", "item not in the catalogue", "duplicate", "training"):
        assert words in summary


def test_training_items_are_dropped_before_the_cut_at_k(tmp_path):
    text = "user,item,rank\n1,30,1\n1,10,2\n1,20,3\n"
    exclude = sp.csr_matrix(([1.0], ([0], [2])), shape=(3, 5))
    ranking, report = read_run(write(tmp_path, text), USERS, ITEMS, k=2, exclude=exclude)
    assert lists(ranking)[0] == ["10", "20"]
    assert report.beyond_k_rows == 0 and report.training_item_rows == 1


def test_ties_keep_file_order_and_are_reported(tmp_path):
    ranking, report = read_run(write(tmp_path, "user,item,score\n3,50,1\n3,10,1\n3,20,2\n"), USERS, ITEMS, k=3)
    assert lists(ranking)[2] == ["20", "50", "10"]
    assert report.tied_rows == 1


def test_frame_input_with_named_columns_and_float_ids():
    frame = pd.DataFrame({"who": [1.0, 1.0], "what": [20.0, 10.0], "pos": [1, 2]})
    ranking, report = read_run(frame, USERS, ITEMS, k=2, user_col="who", item_col="what")
    assert lists(ranking)[0] == ["20", "10"]
    assert report.source == "run frame" and report.order_by == "rank"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user,product_code,rank\n1,10,1\n", "has no item column .* pass item_col="),
        ("user,item\n1,10\n", "neither a rank nor a score column"),
        ("user,item,rank\n1,10,1\n1,20,abc\n", "line 3: column 'rank' has 'abc', not a finite number"),
        ("user,item,score\n1,10,nan\n", "line 2: column 'score' has 'nan', not a finite number"),
        ("user,item,rank\n1,,1\n", "line 2: column 'item' is empty"),
        ("user,item,rank\n", "has no rows"),
        ("", "is empty"),
        ("user,user_id,item,rank\n1,1,10,1\n", "several user columns"),
    ],
)
def test_malformed_runs_name_file_column_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message) as info:
        read_run(path, USERS, ITEMS, k=2)
    assert "run.csv" in str(info.value)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_run(tmp_path / "nope.csv", USERS, ITEMS, k=2)


def test_safe_csv_cell():
    assert safe_csv_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert safe_csv_cell("+1+1") == "'+1+1"
    assert safe_csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_csv_cell("-2+3") == "'-2+3"
    assert safe_csv_cell("\tx") == "'\tx"
    assert safe_csv_cell("-3.5") == "-3.5"  # a plain number stays a number
    assert safe_csv_cell("1e-3") == "1e-3"
    assert safe_csv_cell("Toy Story") == "Toy Story"
    assert safe_csv_cell(None) == ""
    assert safe_csv_cell(42) == "42"
    for text in ("=x", "+y", "@z", "-w", "plain", "'quoted"):
        assert unescape_csv_cell(safe_csv_cell(text)) == text


def test_write_then_read_round_trips_and_escapes_formulas(tmp_path):
    users = IdMap.from_values(["=cmd|' /C calc'!A0", "u2"])
    items = IdMap.from_values(["a", "b", "@c", "d"])
    scores = np.array([[0.1, 0.9, 0.5, -0.2], [0.3, 0.2, 0.1, 0.0]], dtype=np.float32)
    ranking = top_k(scores, 3)
    path = write_run(ranking, users, items, tmp_path / "out" / "ours.csv")
    text = path.read_text()
    assert text.splitlines()[0] == "user,item,rank,score"
    assert "\n'=cmd" in text and "'@c" in text
    back, report = read_run(path, users, items, k=3)
    np.testing.assert_array_equal(back.item_idx, ranking.item_idx)
    np.testing.assert_allclose(back.score, ranking.score, rtol=1e-6)
    assert report.order_by == "rank" and report.rows_used == 6 and report.balanced()
    tsv = write_run(ranking, users, items, tmp_path / "ours.tsv")
    assert tsv.read_text().splitlines()[0] == "user\titem\trank\tscore"


def test_an_external_run_evaluates_like_our_own_ranking(tmp_path):
    users, items = IdMap.from_values(range(4)), IdMap.from_values(range(6))
    rng = np.random.default_rng(0)
    dense = rng.random((4, 6)) < 0.4
    dense[np.arange(4), np.arange(4)] = True  # every user has a test item
    test_m = sp.csr_matrix(dense.astype(np.float32))
    test = Interactions(users, items, test_m)
    ranking = top_k(rng.random((4, 6)).astype(np.float32), 3)
    path = write_run(ranking, users, items, tmp_path / "r.csv")
    back, _ = read_run(path, users, items, k=3)
    ctx = EvalContext(6, np.arange(6))
    assert evaluate(back, test, ctx, ks=(3,)).values() == evaluate(ranking, test, ctx, ks=(3,)).values()


def test_parquet_runs_are_read_like_csv(tmp_path):
    path = tmp_path / "run.parquet"
    pd.DataFrame({"user_id": [2, 2], "item_id": [50, 30], "score": [0.2, 0.8]}).to_parquet(path)
    ranking, report = read_run(path, USERS, ITEMS, k=2)
    assert lists(ranking)[1] == ["30", "50"] and report.rows_used == 2


def test_a_folder_or_a_device_given_as_a_run_file_is_named(tmp_path) -> None:
    users, items = IdMap.from_values(["u1"]), IdMap.from_values(["i1"])
    with pytest.raises(DataError, match="is a directory: give a file"):
        read_run(tmp_path, users, items, 1)
    with pytest.raises(DataError, match="is not a regular file"):
        read_run("/dev/null", users, items, 1)
