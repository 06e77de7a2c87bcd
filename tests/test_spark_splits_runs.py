"""``--engine spark`` with the time splits (temporal, leave-last) and external runs (evaluate-run, --runs).

Each is held to the local engine: the split row for row with the same description, the run reports word for word,
every metric to 1e-6 (docs/scale-out.md). One ``local[2]`` SparkSession serves the module, as in test_spark.py;
the data are MovieLens-100K (the splits) and a hand-made 40-user file (the runs), so the module stays quick.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reco_core import config as config_mod
from reco_core import datasets, experiment, splitting
from reco_core.errors import ConfigError


@pytest.fixture(scope="module")
def ml100k_data(spark, ml100k):
    from reco_core.spark.data import item_vocabulary, read_interactions

    frame = ml100k.interactions.to_frame()[["user", "item", "value", "timestamp"]]
    data = read_interactions(spark, spark.createDataFrame(frame))
    return data, item_vocabulary(data)


def _local_rows(split: splitting.Split) -> list[tuple[str, str, str]]:
    parts = [p for p in ("train", "valid", "test") if getattr(split, p) is not None]
    frame = pd.concat([getattr(split, p).to_frame()[["user", "item"]].assign(part=p) for p in parts])
    return sorted(map(tuple, frame[["user", "item", "part"]].astype(str).to_numpy()))


def _spark_rows(split) -> list[tuple[str, str, str]]:
    got = split.rows.select("user", "item_idx", "part").toPandas()
    got["item"] = split.items.ids[got["item_idx"].to_numpy()]
    return sorted(map(tuple, got[["user", "item", "part"]].astype(str).to_numpy()))


# ---------------------------------------------------------------------------------------------- splits


@pytest.mark.parametrize(
    ("method", "n_last", "valid_frac"), [("temporal", 1, 0.1), ("leave-last", 2, 0.1), ("leave-last", 1, 0.0)]
)
def test_time_splits_equal_local_row_for_row(spark, ml100k, ml100k_data, method, n_last, valid_frac):
    """MovieLens-100K: the Spark split is the local ``make_split`` (+ ``with_validation``) row for row, with the
    same description. ML-100K has users with several ratings in the same second, so leave-last meets ties."""
    from reco_core.spark.data import split_frame

    data, items = ml100k_data
    split = split_frame(spark, data, items, method, 0.2, 42, valid_frac, n_last)
    protocol = config_mod.Protocol(split=method, n_last=n_last, valid_frac=valid_frac or 0.1)
    local = experiment.make_split(ml100k, protocol, validation=valid_frac > 0)
    assert _spark_rows(split) == _local_rows(local)
    assert split.description == local.description
    assert split.counts["test"] == local.test.nnz and split.n_users == 943
    if method == "temporal":
        assert split.description.startswith("temporal split at 1998-03-07 02:21:09 UTC (test_frac=0.2): 19,997 of")


def test_leave_last_ties_go_to_the_higher_item_index(spark):
    """By hand: user a's two latest are at t=20, three items tie there (i2, i3, i4): the higher item index counts as
    later, so i4 and i3 are test. User b has one interaction (train only). c's three are all at one time: i5 and i2
    are its two "latest", i1 stays in train."""
    from reco_core.spark.data import item_vocabulary, read_interactions, split_frame

    rows = [
        ("a", "i1", 10), ("a", "i3", 20), ("a", "i2", 20), ("a", "i4", 20), ("a", "i5", 5),
        ("b", "i1", 7),
        ("c", "i5", 3), ("c", "i2", 3), ("c", "i1", 3),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"]).assign(rating=1.0)
    data = read_interactions(spark, spark.createDataFrame(frame))
    split = split_frame(spark, data, item_vocabulary(data), "leave-last", n_last=2)
    test = sorted((u, i) for u, i, p in _spark_rows(split) if p == "test")
    assert test == [("a", "i3"), ("a", "i4"), ("c", "i2"), ("c", "i5")]  # c keeps i1: the lowest index is oldest
    local = splitting.make_split(datasets.load_files(frame).interactions, "leave-last", n_last=2)
    assert _spark_rows(split) == _local_rows(local) and split.description == local.description
    assert split.description == (
        "leave-last-2 per user: 4 of 9 interactions in test (2 users); 1 users with a single interaction stay in"
        " train only and are not evaluated"
    )


def test_temporal_cut_is_numpys_lower_quantile_exactly(spark):
    """The rank is numpy's own (floor((n - 1) q)); the value is found by sorting, not approximated."""
    from reco_core.spark.data import exact_lower_quantile, lower_quantile_rank

    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 10, 99, 1000, 12345):
        values = rng.integers(0, 50, n).astype(np.float64)
        for q in (0.0, 0.1, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0 - 0.3, 1.0):
            assert np.sort(values)[lower_quantile_rank(n, q)] == np.quantile(values, q, method="lower"), (n, q)
    values = np.round(rng.normal(1e9, 1e6, 3000)) + rng.choice([0.0, 0.25, 0.5], 3000)  # ties and fractions
    frame = spark.createDataFrame(pd.DataFrame({"t": values})).repartition(5)
    # Adaptive execution would merge this small data's sorted partitions into one; kept apart, the value ranges of
    # the 8 sorted partitions are added up and the rank's range found as on large data.
    key = "spark.sql.adaptive.coalescePartitions.enabled"
    before = spark.conf.get(key)
    spark.conf.set(key, "false")
    try:
        for q in (0.0, 0.123, 0.8, 0.999, 1.0):
            assert exact_lower_quantile(frame, "t", q) == np.quantile(values, q, method="lower"), q
    finally:
        spark.conf.set(key, before)


def test_time_splits_refuse_in_the_local_words(spark):
    from reco_core.spark.data import item_vocabulary, read_interactions, split_frame

    def both(frame: pd.DataFrame, **kw) -> tuple[str, str]:
        data = read_interactions(spark, spark.createDataFrame(frame))
        with pytest.raises(ConfigError) as remote:
            split_frame(spark, data, item_vocabulary(data), **kw)
        with pytest.raises(ConfigError) as local:
            splitting.make_split(datasets.load_files(frame).interactions, **kw)
        return str(remote.value), str(local.value)

    plain = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "rating": [1.0, 2.0, 3.0]})
    remote, local = both(plain, method="temporal")
    assert remote == local == "a temporal split needs timestamps and this data has none; use split='random'"
    remote, local = both(plain, method="leave-last")
    assert remote == local and "a leave-last split needs timestamps" in remote
    same_time = plain.assign(timestamp=100)
    remote, local = both(same_time, method="temporal")
    assert (
        remote
        == local
        == (
            "the test part is empty: no interaction is later than the cut at 1970-01-01 00:01:40 UTC; raise test_frac"
            " or use 'random'"
        )
    )
    singles = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "rating": [1.0, 1.0], "timestamp": [1, 2]})
    remote, local = both(singles, method="leave-last")
    assert remote == local == "the test part is empty: every user has a single interaction; load more data"
    remote, local = both(same_time, method="leave-last", n_last=0)
    assert remote == local and "n_last" in remote
    remote, local = both(same_time, method="sideways")
    assert remote == local and remote.startswith("split method 'sideways' is unknown; choose one of random (")


# ------------------------------------------------------------------------------------------------ runs


@pytest.fixture(scope="module")
def run_files(tmp_path_factory) -> dict[str, Path]:
    """40 users x 60 items with timestamps, and two runs of another system over them.

    alpha.csv (ranks): 15 items per user in a shuffled file order, some ranks repeated (ties broken by file order),
    a repeated (user, item) with a worse rank, a user and an item the data lack; training items are listed too
    (dropped before the cut). beta.csv (scores, rounded so they tie): 12 items for half of the users."""
    folder = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    pairs = {(f"u{u}", f"i{i}") for u, i in zip(rng.integers(0, 40, 900), rng.integers(0, 60, 900), strict=True)}
    inter = pd.DataFrame(sorted(pairs), columns=["userId", "movieId"])
    inter["rating"] = rng.integers(1, 6, len(inter)).astype(float)
    inter["timestamp"] = rng.integers(1_000_000, 1_000_400, len(inter))  # many equal times
    inter.to_csv(folder / "inter.csv", index=False)
    alpha = []
    for u in range(40):
        for r, i in enumerate(rng.choice(60, 15, replace=False), 1):
            alpha.append((f"u{u}", f"i{i}", r if r % 4 else r - 1))  # every 4th rank repeats the one above
        alpha.append((f"u{u}", f"i{i}", 30))  # the last item again, placed worse: the better copy is kept
    alpha += [("ghost", "i1", 1), ("u1", "zzz", 1), ("u2", "yyy", 2)]
    frame = pd.DataFrame(alpha, columns=["user", "item", "rank"]).sample(frac=1.0, random_state=1)
    frame.to_csv(folder / "alpha.csv", index=False)
    beta = [
        (f"u{u}", f"i{i}", round(float(s), 1))
        for u in range(0, 40, 2)
        for i, s in zip(rng.choice(60, 12, replace=False), rng.random(12), strict=True)
    ]
    pd.DataFrame(beta, columns=["user", "item", "score"]).to_csv(folder / "beta.csv", index=False)
    return {"inter": folder / "inter.csv", "alpha": folder / "alpha.csv", "beta": folder / "beta.csv"}


def _cli(argv: list[str], capsys) -> dict:
    from reco_core.__main__ import main

    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out[: out.rindex("}") + 1])


def _same_numbers(local: dict, remote: dict) -> int:
    rows = {r["model"]: r for r in remote["results"]}
    assert [r["model"] for r in local["results"]] == list(rows)
    compared = 0
    for row in local["results"]:
        for key, value in row.items():
            if key != "model" and value is not None:
                assert math.isclose(rows[row["model"]][key], value, rel_tol=0, abs_tol=1e-6), (row["model"], key)
                compared += 1
    return compared


def _run_lines(payload: dict) -> list[str]:
    return [part for part in payload["data"].split(" | ") if "run '" in part]


def test_cli_evaluate_run_equals_local(spark, run_files, capsys):
    """The run's own lists at k = 3 and 10 (temporal split: cold users get an empty history), every metric and the
    run's report (unknown user and items, the duplicate, training items, ties, the cut) as the local engine."""
    common = [
        "evaluate-run", "--run", str(run_files["alpha"]), "--interactions", str(run_files["inter"]),
        "--split", "temporal", "--k", "3,10", "--format", "json",
    ]  # fmt: skip
    local = _cli(common, capsys)
    remote = _cli([*common, "--engine", "spark"], capsys)
    assert _same_numbers(local, remote) >= 2 * 14
    lines = _run_lines(local)
    assert lines == _run_lines(remote) and len(lines) == 1
    for words in ("dropped: user not in the split (e.g. 'ghost')", "'zzz'", "'yyy'", "duplicate", "training items"):
        assert words in lines[0], words
    assert "tied with the row above" in lines[0] and "beyond the first 10" in lines[0]


def test_cli_fuse_runs_with_a_model_equals_local(spark, run_files, capsys):
    """pop + two runs fused by rrf on a leave-last split: the members' and the fused rows equal the local engine's,
    and so do the fusion line (weights in --weights order, models then runs) and both run reports."""
    common = [
        "fuse", "--interactions", str(run_files["inter"]), "--models", "pop",
        "--runs", f"{run_files['alpha']},{run_files['beta']}", "--weights", "0.2,0.5,0.3", "--method", "rrf",
        "--split", "leave-last", "--n-last", "2", "--k", "5", "--format", "json",
    ]  # fmt: skip
    local = _cli(common, capsys)
    remote = _cli([*common, "--engine", "spark"], capsys)
    assert [r["model"] for r in remote["results"]] == ["pop", "run:alpha", "run:beta", "fused"]
    assert _same_numbers(local, remote) >= 4 * 14
    assert remote["fusion"] == local["fusion"] == "rrf / minmax, rrf_k 60, weights pop=0.2, run:alpha=0.5, run:beta=0.3"
    assert _run_lines(remote) == _run_lines(local) and len(_run_lines(local)) == 2


def test_every_fusion_method_over_runs_equals_local(spark, run_files):
    """Runs alone (no model), every fusion method in one Spark pass, against the local live session fusing the same
    two RunMembers: equal lists, so equal metrics. Ties inside a run's list go to the lower item index as locally."""
    from reco_core.fusion import METHODS
    from reco_core.live import LiveSession
    from reco_core.models.run_member import RunMember
    from reco_core.runs import read_run
    from reco_core.spark.data import item_vocabulary, read_interactions, split_frame
    from reco_core.spark.engine import Fusion, run
    from reco_core.spark.runs import read_run_file

    cfg = config_mod.ExperimentConfig()
    data = read_interactions(spark, str(run_files["inter"]))
    split = split_frame(spark, data, item_vocabulary(data), "random", 0.2, 42)
    weights = np.array([0.6, 0.4])
    fusions = [Fusion(m, weights, m, "minmax", (("rrf_k", 60.0),) if m == "rrf" else ()) for m in METHODS]
    runs = [read_run_file(run_files["alpha"]), read_run_file(run_files["beta"])]
    got = run(spark, cfg, split=split, members=[], runs=runs, fusions=fusions, ks=[5], progress=None)

    ds = datasets.load_files(run_files["inter"])
    local_split = experiment.make_split(ds, cfg.protocol)
    train = local_split.train
    depth = min(cfg.fusion.top_n, train.n_items)
    members = {}
    for path in (run_files["alpha"], run_files["beta"]):
        ranking, report = read_run(path, train.users, train.items, depth, exclude=train.matrix)
        members[f"run:{path.stem}"] = RunMember(ranking, path.stem).fit(train)
        assert report in got.run_reports
    ctx = experiment.eval_context(local_split, ds, with_text=False)
    session = LiveSession(members, local_split, ctx, top_n=cfg.fusion.top_n)
    local = {name: session.member_evaluation(name, 5).values() for name in members}
    for f in fusions:
        local[f.label] = session.update(
            list(weights), f.method, f.normaliser, 5, params=dict(f.params)
        ).evaluation.values()
    assert list(got.table.index) == [*members, *METHODS]
    for model, values in local.items():
        for key, value in values.items():
            assert math.isclose(got.value(model, key), value, rel_tol=0, abs_tol=1e-6), (model, key)


def test_cli_optimise_with_runs_picks_like_local(spark, run_files, capsys):
    """The search over pop and a run: the same chosen weights and the same test numbers as the local engine
    (the run is read against train minus validation for the search, against train for the report)."""
    common = [
        "optimise", "--interactions", str(run_files["inter"]), "--models", "pop", "--runs", str(run_files["alpha"]),
        "--step", "0.5", "--method", "borda", "--format", "json",
    ]  # fmt: skip
    local = _cli(common, capsys)
    remote = _cli([*common, "--engine", "spark"], capsys)
    assert remote["chosen weights (on validation)"] == local["chosen weights (on validation)"]
    assert _same_numbers(local, remote) >= 3 * 14
    assert _run_lines(remote) == _run_lines(local)


def test_run_refusals_are_the_local_lines(run_files, tmp_path, capsys):
    """Before any Spark work: a run file without rank or score, two runs with one stem, --ci (which Spark cannot
    bootstrap) are one line each, exit code 2, the bad file and the name clash in the local engine's words."""
    from reco_core.__main__ import main

    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\nu1,i1\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "alpha.csv").write_text(run_files["alpha"].read_text())
    base = ["--interactions", str(run_files["inter"]), "--format", "json"]
    for argv in (
        ["evaluate-run", "--run", str(bad), *base],
        ["fuse", "--runs", f"{run_files['alpha']},{other / 'alpha.csv'}", *base],
    ):
        lines = []
        for engine in ("local", "spark"):
            assert main([*argv, "--engine", engine]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1, err
            lines.append(err)
        assert lines[0] == lines[1], lines
    assert main(["evaluate-run", "--run", str(run_files["alpha"]), *base, "--ci", "--engine", "spark"]) == 2
    assert "--ci is not available with --engine spark" in capsys.readouterr().err


def test_fuse_without_models_or_runs_names_both_fixes(capsys):
    from reco_core.__main__ import main

    assert main(["fuse", "--engine", "spark"]) == 2
    err = capsys.readouterr().err
    assert "no members given" in err and "--runs" in err and len(err.strip().splitlines()) == 1
