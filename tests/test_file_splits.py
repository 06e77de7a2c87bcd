"""The same split gives the same numbers whether it is generated inside or supplied as train/test files.

A supplied split keeps test rows on items the train file never mentions (cold items) in the ground truth,
over a catalogue that is the union of train, test and the items file; the numbers then equal ranx's and
Microsoft Recommenders' for the same run and split (both keep every held-out row).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.common import bench_deps_on_path
from reco_core import datasets, splitting
from reco_core.__main__ import main

K = 3


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def write_split_files(split: splitting.Split, catalog_frame: pd.DataFrame, folder: Path) -> tuple[Path, Path, Path]:
    """train.csv, test.csv (user, item, rating, timestamp) and items.csv (item, title, year, genres)."""
    paths = folder / "train.csv", folder / "test.csv", folder / "items.csv"
    for part, path in zip((split.train, split.test), paths, strict=False):
        part.to_frame().rename(columns={"value": "rating"}).to_csv(path, index=False)
    catalog_frame[["item", "title", "year", "genres"]].to_csv(paths[2], index=False)
    return paths


def test_ml100k_split_supplied_as_files_scores_like_the_one_made_inside(capsys, tmp_path: Path) -> None:
    ds = datasets.load("ml-100k")
    split = splitting.make_split(ds.interactions, "random", test_frac=0.2, seed=42)
    # Items whose every rating went to test: cold items, no collaborative model can rank them.
    cold = split.cold_test_interactions()
    assert cold > 0
    train, test, items = write_split_files(split, ds.catalog.to_frame(), tmp_path)

    file_ds, file_split = splitting.split_from_files(train, test, items=items)
    np.testing.assert_array_equal(file_split.train.users.ids, split.train.users.ids)
    np.testing.assert_array_equal(file_split.train.items.ids, split.train.items.ids)
    assert (file_split.train.matrix != split.train.matrix).nnz == 0
    assert (file_split.test.matrix != split.test.matrix).nnz == 0
    assert file_split.cold_test_interactions() == cold
    assert file_ds.catalog.text.tolist() == ds.catalog.text.tolist()
    assert f"{cold:,} test interactions on items unseen in training" in file_ds.report.summary()

    common = ["--models", "pop,itemknn", "--k", "10", "--format", "json", "--no-text-metrics"]
    inside = run_cli(capsys, "evaluate", "--dataset", "ml-100k", "--seed", "42", *common)
    files = run_cli(capsys, "evaluate", "--train", str(train), "--test", str(test), "--items", str(items), *common)
    assert len(inside["results"]) == len(files["results"]) == 2
    for a, b in zip(inside["results"], files["results"], strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            assert b[key] == value, (a["model"], key)


@pytest.fixture()
def cold_split(tmp_path: Path) -> dict[str, Path]:
    """Four users over items a-f; test holds two items (e, f) that train never mentions."""
    train = tmp_path / "train.csv"
    train.write_text("user,item\n1,a\n1,b\n2,a\n2,c\n3,b\n3,d\n4,c\n4,d\n")
    test = tmp_path / "test.csv"
    test.write_text("user,item\n1,c\n1,e\n2,b\n2,e\n2,f\n3,a\n4,f\n")
    items = tmp_path / "items.csv"
    items.write_text("item,title\na,A\nb,B\nc,C\nd,D\ne,E\nf,F\ng,G\n")  # g: in no interaction at all
    run = tmp_path / "run.csv"
    # Each user's list: ranks 1..3, training items never listed; "zz" is in no file (dropped and counted).
    run.write_text(
        "user,item,rank\n1,e,1\n1,d,2\n1,c,3\n2,d,2\n2,f,1\n2,g,3\n3,c,1\n3,e,2\n3,zz,3\n3,a,4\n4,e,1\n4,a,2\n4,b,3\n"
    )
    return {"train": train, "test": test, "items": items, "run": run}


def _lists(run: Path) -> dict[str, list[str]]:
    frame = pd.read_csv(run, dtype=str).astype({"rank": int}).sort_values(["user", "rank"])
    known = set("abcdefg")
    return {u: [i for i in g["item"] if i in known][:K] for u, g in frame.groupby("user")}


def test_an_external_run_on_a_split_with_cold_items_equals_ranx_and_recommenders(capsys, cold_split) -> None:
    f = cold_split
    payload = run_cli(
        capsys,
        "evaluate-run",
        "--train",
        str(f["train"]),
        "--test",
        str(f["test"]),
        "--items",
        str(f["items"]),
        "--run",
        str(f["run"]),
        "--k",
        str(K),
        "--format",
        "json",
        "--no-text-metrics",
    )
    ours = payload["results"][0]
    truth = pd.read_csv(f["test"], dtype=str)
    lists = _lists(f["run"])

    import ranx

    qrels = ranx.Qrels({u: dict.fromkeys(g["item"], 1) for u, g in truth.groupby("user")})
    run = ranx.Run({u: {item: float(K - r) for r, item in enumerate(items)} for u, items in lists.items()})
    names = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
    theirs = ranx.evaluate(qrels, run, [f"{m}@{K}" for m in names])
    for m in names:
        # Every user has |T| <= k here, so ranx's AP (divided by |T|) and ours (min(|T|, k)) coincide.
        assert ours[f"{m}@{K}"] == pytest.approx(theirs[f"{m}@{K}"], abs=1e-9), m

    assert bench_deps_on_path(), "Microsoft Recommenders is missing: `make test` installs it into .bench-deps"
    from recommenders.evaluation import python_evaluation as pe

    true_frame = truth.rename(columns={"user": "userID", "item": "itemID"}).assign(rating=1.0)
    pred_frame = pd.DataFrame(
        [(u, item, float(K - r)) for u, items in lists.items() for r, item in enumerate(items)],
        columns=["userID", "itemID", "prediction"],
    )
    for m, fn in (("precision", pe.precision_at_k), ("recall", pe.recall_at_k), ("ndcg", pe.ndcg_at_k)):
        assert ours[f"{m}@{K}"] == pytest.approx(fn(true_frame, pred_frame, k=K), abs=1e-9), m
    assert ours[f"map@{K}"] == pytest.approx(pe.map_at_k(true_frame, pred_frame, k=K), abs=1e-9)

    # By hand: the catalogue is a-g (the union of train, test and the items file), so coverage has 7 items
    # below it; the lists hold c, d, e, f, g, a, b = all 7. Recall for user 2 (T = b, e, f; list f, d, g) is 1/3.
    assert ours[f"coverage@{K}"] == pytest.approx(7 / 7)
    hits = {"1": 2, "2": 1, "3": 1, "4": 0}
    sizes = {"1": 2, "2": 3, "3": 1, "4": 1}
    assert ours[f"recall@{K}"] == pytest.approx(np.mean([hits[u] / sizes[u] for u in hits]))
    assert ours[f"precision@{K}"] == pytest.approx(sum(hits.values()) / (K * 4))
    assert math.isfinite(ours[f"novelty@{K}"])
    assert "4 test interactions on items unseen in training" in payload["data"]
