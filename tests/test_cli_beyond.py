"""The command line's re-ranking, learned fusion and per-segment weights (docs/reranking.md, docs/learned.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reco_core.__main__ import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    # 60 users x 40 items in four taste groups: a user mostly likes the items of their group, so the members
    # find held-out items and learned fusion has validation positives to learn from. Seeded, so exact.
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("beyond")
    rows = ["user,item,rating"]
    for u in range(60):
        group = u % 4
        liked = [i for i in range(40) if i % 4 == group and rng.random() < 0.8]
        other = [i for i in range(40) if i % 4 != group and rng.random() < 0.15]
        rows += [f"u{u},m{i},{rng.integers(1, 6)}" for i in liked + other]
    inter = folder / "inter.csv"
    inter.write_text("\n".join(rows) + "\n")
    genres = ["Drama", "Comedy", "Action|Drama", "Horror"]
    items = folder / "items.csv"
    items.write_text(
        "item,title,genres,year\n" + "\n".join(f"m{i},Movie {i},{genres[i % 4]},{1980 + i}" for i in range(40)) + "\n"
    )
    return ["--interactions", str(inter), "--items", str(items), "--no-text-metrics", "--format", "json"]


def run_json(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def test_fuse_rerank_adds_a_row_and_says_how_far_the_list_moved(capsys, files) -> None:
    payload, _ = run_json(
        capsys, "fuse", "--models", "pop,itemknn", "--rerank", "mmr", "--rerank-lambda", "0.5", *files
    )
    rows = {r["model"]: r for r in payload["results"]}
    assert list(rows) == ["pop", "itemknn", "fused", "fused + mmr"]
    assert rows["fused + mmr"]["ild_genre@10"] >= rows["fused"]["ild_genre@10"]
    assert "% of slots changed, RBO" in payload["re-ranked list moved"]
    assert "vs fused" in payload["re-ranked list moved"] and "vs itemknn" in payload["re-ranked list moved"]
    key = next(k for k in payload if k.startswith("re-ranked vs fused (paired, p Holm-corrected"))
    assert "ndcg@10" in payload[key]


def test_fuse_rerank_with_lambda_zero_is_the_fused_list(capsys, files) -> None:
    payload, _ = run_json(
        capsys, "fuse", "--models", "pop,itemknn", "--rerank", "popularity", "--rerank-lambda", "0", *files
    )
    rows = {r["model"]: r for r in payload["results"]}
    for key, value in rows["fused"].items():
        if key != "model":
            assert rows["fused + popularity"][key] == pytest.approx(value), key
    assert payload["re-ranked list moved"].startswith("vs fused: 0.0% of slots changed, RBO 1.000")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--rerank", "mmr", "--rerank-lambda", "2"], "re-rank lambda=2.0 is out of range"),
        (["--rerank", "mmr", "--rerank-candidates", "5"], "re-ranking reaches 5 fused candidates, fewer than k=10"),
    ],
)
def test_rerank_errors_are_one_line(capsys, files, argv, needle) -> None:
    code = main(["fuse", "--models", "pop,itemknn", *argv, *files])
    _, err = capsys.readouterr()
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_fuse_learned_trains_on_validation_and_reports_on_test(capsys, files) -> None:
    payload, err = run_json(capsys, "fuse", "--method", "learned", "--models", "pop,itemknn", *files)
    assert [r["model"] for r in payload["results"]] == ["pop", "itemknn", "learned"]
    assert "LambdaRank" in payload["learned fusion"] and "boosted from" in payload["learned fusion"]
    assert "Wilcoxon p" in payload["versus best member"]
    assert "gain share" not in payload["feature importances (gain share)"]
    assert "%" in payload["feature importances (gain share)"]
    assert "training LightGBM LambdaRank" in err  # progress on stderr


def test_optimise_per_segment_reports_each_segment(capsys, files) -> None:
    payload, _ = run_json(capsys, "optimise", "--per-segment", "--models", "pop,itemknn", "--step", "0.25", *files)
    assert [r["segment"] for r in payload["results"]] == ["light", "medium", "heavy"]
    assert payload["segments"].startswith("light: <= ")
    assert "per-segment weights" in payload["per-segment weights versus global, on test"]
    code = main(["optimise", "--per-segment", "--floor", "coverage@10=0.3", "--models", "pop,itemknn", *files])
    _, err = capsys.readouterr()
    assert code == 2 and "--floor is not supported with --per-segment" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["fuse", "--rerank", "mmr"], "--rerank is not available with --engine spark"),
        (["fuse", "--method", "learned"], "--method learned is not available with --engine spark"),
        (["optimise", "--per-segment"], "--per-segment is not available with --engine spark"),
    ],
)
def test_local_only_flags_are_refused_with_spark_before_it_starts(capsys, files, argv, needle) -> None:
    code = main([*argv, "--models", "pop,itemknn", "--engine", "spark", *files])
    _, err = capsys.readouterr()
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
