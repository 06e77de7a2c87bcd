"""The command line: results on hand-made files, one-line errors with exit code 2, ML-100K targets."""

import json

import pytest

from reco_core.__main__ import main


@pytest.fixture()
def files(tmp_path):
    # 6 users x 6 items; every user likes a block of items, so kNN finds the held-out ones.
    rows = ["user,item,rating,timestamp"]
    t = 0
    for u in range(1, 7):
        for i in range(1, 7):
            if (u + i) % 3 != 0:
                t += 1
                rows.append(f"u{u},m{i},{1 + (u * i) % 5},{t}")
    inter = tmp_path / "inter.csv"
    inter.write_text("\n".join(rows) + "\n")
    items = tmp_path / "items.csv"
    items.write_text(
        "item,title,genres\n" + "\n".join(f"m{i},Movie {i},{'Drama' if i % 2 else 'Comedy'}" for i in range(1, 7))
    )
    return inter, items


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_on_own_files_prints_json(capsys, files):
    inter, items = files
    code, out, err = run_cli(
        capsys,
        "evaluate",
        "--interactions",
        str(inter),
        "--items",
        str(items),
        "--models",
        "pop,itemknn",
        "--k",
        "2,3",
        "--format",
        "json",
        "--no-text-metrics",
    )
    assert code == 0, err
    payload = json.loads(out)
    models = [r["model"] for r in payload["results"]]
    assert models == ["pop", "itemknn"]
    for r in payload["results"]:
        assert 0.0 <= r["ndcg@3"] <= 1.0 and "precision@2" in r
    assert "rows read" in payload["data"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["evaluate", "--models", "nosuch"], "unknown model 'nosuch'"),
        (["evaluate", "--models", "pop", "--k", "0"], "--k"),
        (["evaluate", "--models", "pop", "--split", "sideways"], "invalid choice"),
        (["evaluate", "--models", "pop", "--interactions", "/nonexistent/x.csv"], "/nonexistent/x.csv"),
        (["evaluate", "--models", "pop", "--train", "a.csv"], "--train and --test go together"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(capsys, argv, needle):
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    _out, err = capsys.readouterr()
    assert info.value.code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_k_larger_than_catalogue_is_one_line(capsys, files):
    inter, _ = files
    code, _, err = run_cli(
        capsys, "evaluate", "--interactions", str(inter), "--models", "pop", "--k", "50", "--no-text-metrics"
    )
    assert code == 2 and "larger than the catalogue" in err and len(err.strip().splitlines()) == 1


def test_evaluate_run_judges_an_external_file(capsys, files, tmp_path):
    inter, _items = files
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    lines = inter.read_text().splitlines()
    header, body = lines[0], lines[1:]
    last = {r.split(",")[0]: r for r in body}  # each user's last row is held out
    test_rows = list(last.values())
    train.write_text("\n".join([header] + [r for r in body if r not in test_rows]) + "\n")
    test.write_text("\n".join([header, *test_rows]) + "\n")
    run = tmp_path / "run.csv"
    # A perfect run: every user gets its held-out item first; one row names a user the split lacks.
    perfect = [f"{r.split(',')[0]},{r.split(',')[1]},1" for r in test_rows]
    run.write_text("user,item,rank\n" + "\n".join(perfect) + "\nghost,m1,1\n")
    code, out, err = run_cli(
        capsys,
        "evaluate-run",
        "--run",
        str(run),
        "--train",
        str(train),
        "--test",
        str(test),
        "--k",
        "1",
        "--format",
        "json",
        "--no-text-metrics",
    )
    assert code == 0, err
    result = json.loads(out)["results"][0]
    assert result["precision@1"] == 1.0 and result["ndcg@1"] == 1.0
    assert "ghost" in json.loads(out)["data"] or "unknown" in json.loads(out)["data"]


@pytest.mark.slow
def test_default_protocol_reaches_the_published_figures(capsys):
    """Issue 2: pop ~0.22, ALS ~0.35, item-kNN ~0.35 (within 0.01), EASE the strongest, on ML-100K."""
    code, out, err = run_cli(
        capsys, "evaluate", "--models", "pop,itemknn,als,ease", "--format", "json", "--no-text-metrics"
    )
    assert code == 0, err
    ndcg = {r["model"]: r["ndcg@10"] for r in json.loads(out)["results"]}
    assert ndcg["pop"] >= 0.21 and ndcg["als"] >= 0.34 and ndcg["itemknn"] >= 0.34
    assert ndcg["ease"] == max(ndcg.values())


def test_fuse_with_weights_one_zero_reproduces_the_first_member(capsys, files):
    inter, items = files
    base = ["--interactions", str(inter), "--items", str(items), "--k", "3", "--format", "json", "--no-text-metrics"]
    code, out, err = run_cli(capsys, "fuse", "--models", "itemknn,pop", "--weights", "1,0", *base)
    assert code == 0, err
    rows = {r["model"]: r for r in json.loads(out)["results"]}
    assert rows["fused"]["ndcg@3"] == pytest.approx(rows["itemknn"]["ndcg@3"])
    assert "versus best member" in json.loads(out)


def test_fuse_rejects_bad_weights_in_one_line(capsys, files):
    inter, _ = files
    base = ["--interactions", str(inter), "--no-text-metrics"]
    for weights, needle in [("0,0", "zero"), ("1", "one each"), ("a,b", "not valid")]:
        code, _, err = run_cli(capsys, "fuse", "--models", "itemknn,pop", "--weights", weights, *base)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli(capsys, "fuse", "--models", "itemknn,pop", "--method", "magic", "--k", "50", *base)
    assert code == 2 and "magic" in err


def test_explain_and_optimise_run_on_small_files(capsys, files):
    inter, items = files
    base = ["--interactions", str(inter), "--items", str(items), "--no-text-metrics", "--k", "2"]
    code, out, err = run_cli(
        capsys, "explain", "--user", "u1", "--models", "itemknn,pop", "--weights", "0.7,0.3", *base
    )
    assert code == 0, err
    assert "Movie" in out and "itemknn" in out
    code, out, err = run_cli(
        capsys,
        "optimise",
        "--models",
        "itemknn,pop",
        "--metric",
        "ndcg@2",
        "--step",
        "0.5",
        "--valid-frac",
        "0.3",
        "--format",
        "json",
        *base,
    )
    assert code == 0, err
    assert "chosen" in json.loads(out)["search"] or "no weight" in json.loads(out)["search"].lower()


def test_an_external_run_is_a_fusion_member(capsys, files, tmp_path):
    """A run file that lists u-items in a fixed order fuses like a model; alone it reproduces itself."""
    inter, items = files
    run = tmp_path / "other.csv"
    run.write_text(
        "user,item,rank\n" + "\n".join(f"u{u},m{i},{r}" for u in range(1, 7) for r, i in enumerate([3, 6, 1], 1))
    )
    base = ["--interactions", str(inter), "--items", str(items), "--k", "2", "--format", "json", "--no-text-metrics"]
    code, out, err = run_cli(
        capsys, "fuse", "--models", "pop", "--runs", str(run), "--weights", "0,1", "--method", "rrf", *base
    )
    assert code == 0, err
    rows = {r["model"]: r for r in json.loads(out)["results"]}
    assert set(rows) == {"pop", "run:other", "fused"}
    assert rows["fused"]["ndcg@2"] == pytest.approx(rows["run:other"]["ndcg@2"])
    assert "run:other" in json.loads(out)["data"]


def test_optimise_refuses_a_too_fine_step_before_fitting(capsys, monkeypatch):
    from reco_core import experiment

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the step was checked")

    monkeypatch.setattr(experiment, "fit_members", no_fit)
    code, _, err = run_cli(capsys, "optimise", "--models", "pop,itemknn,als", "--step", "0.001")
    assert code == 2 and "501,501" in err and len(err.strip().splitlines()) == 1, err


def test_no_text_metric_without_titles(capsys, files):
    # An interactions file alone has only placeholder names ("Item m1"): ild_text would compare embedded ids.
    inter, items = files
    code, out, err = run_cli(capsys, "evaluate", "--interactions", str(inter), "--models", "pop", "--k", "2",
                             "--format", "json")  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert "ild_text@2" not in payload["results"][0]
    assert "ild_text skipped: no item text vectors" in out
    code, out, err = run_cli(capsys, "evaluate", "--interactions", str(inter), "--items", str(items), "--models",
                             "pop", "--k", "2", "--format", "json")  # fmt: skip
    assert code == 0, err
    assert "ild_text@2" in json.loads(out)["results"][0]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--spark-master", "mesos-nope"], "--spark-master 'mesos-nope' is not valid"),
        (["--spark-master", "spark://127.0.0.1:9"], "cannot reach the Spark master spark://127.0.0.1:9"),
    ],
)
def test_engine_spark_refuses_a_bad_master_in_one_line_before_starting_spark(capsys, files, extra, needle):
    # Checked before any JVM starts (reco_core.spark.session.check_master), so this costs milliseconds.
    argv = ["fuse", "--interactions", str(files[0]), "--models", "pop", "--engine", "spark", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
