"""The re-ranker as part of the configuration (``RerankSpec``): its JSON, its checks, the live session's
re-ranked results, how far they moved, and the command line reading it from a ``--config`` file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from reco_core import config
from reco_core.__main__ import main
from reco_core.config import ExperimentConfig, FusionSpec, RerankSpec
from reco_core.data import Interactions
from reco_core.errors import ConfigError
from reco_core.eval_context import EvalContext
from reco_core.fusion import METHODS
from reco_core.ids import IdMap
from reco_core.live import LiveSession
from reco_core.ranking import Ranking
from reco_core.rerank import movement
from reco_core.spark.summary import spark_command
from reco_core.splitting import Split

# ----------------------------------------------------------------------------------------------- the spec


def test_rerank_spec_round_trips_through_the_json() -> None:
    cfg = ExperimentConfig(
        members=(config.MemberSpec.of("pop"),), weights=(1.0,), rerank=RerankSpec("mmr", 0.4, "text", 30)
    )
    back = config.loads(cfg.to_json())
    assert back == cfg and back.rerank == RerankSpec("mmr", 0.4, "text", 30)
    assert json.loads(cfg.to_json())["rerank"] == {
        "method": "mmr",
        "lambda": 0.4,
        "similarity": "text",
        "candidates": 30,
    }
    assert "rerank" not in json.loads(ExperimentConfig().to_json())  # none: no key, as before
    assert "re-ranked by MMR (diversity; text similarity, lambda 0.4) from the fused top-30" in cfg.describe()


@pytest.mark.parametrize(
    ("rerank", "needle"),
    [
        ({"method": "shuffle"}, "re-ranker 'shuffle' is unknown"),
        ({"method": "mmr", "lambda": 1.5}, "re-rank lambda=1.5 is out of range"),
        ({"method": "mmr", "similarity": "colour"}, "re-rank similarity 'colour' is unknown"),
        ({"method": "mmr", "candidates": 5}, "re-ranking reaches 5 fused candidates, fewer than k=10"),
        ({"method": "mmr", "depth": 5}, "rerank has no field 'depth'"),
        ({"lambda": 0.2}, "rerank needs a 'method'"),
        ("mmr", "configuration field 'rerank' must be an object"),
    ],
)
def test_a_bad_rerank_object_is_one_line_naming_it(rerank, needle) -> None:
    text = json.dumps({"members": [{"model": "pop"}], "rerank": rerank})
    with pytest.raises(ConfigError) as exc:
        config.loads(text)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_null_rerank_is_no_rerank() -> None:
    assert config.loads(json.dumps({"members": [{"model": "pop"}], "rerank": None})).rerank is None


# --------------------------------------------------------------------------------------- the live session


def _session(fixed_scorer) -> LiveSession:
    """8 users x 12 items, genres on every item; two members with fixed scores (hand-checkable, exact)."""
    rng = np.random.default_rng(3)
    n_users, n_items = 8, 12
    train = (rng.random((n_users, n_items)) < 0.3).astype(np.float32)
    test = ((rng.random((n_users, n_items)) < 0.3) & (train == 0)).astype(np.float32)
    test[:, 0] = np.where(train[:, 0] == 0, 1, test[:, 0])
    users = IdMap.from_values([f"u{i:02d}" for i in range(n_users)])
    items = IdMap.from_values([f"i{i:02d}" for i in range(n_items)])
    split = Split(
        Interactions(users, items, sp.csr_matrix(train)),
        Interactions(users, items, sp.csr_matrix(test)),
    )
    genres = sp.csr_matrix(np.eye(3, dtype=np.float32)[np.arange(n_items) % 3])
    ctx = EvalContext(n_items=n_items, item_popularity=train.sum(axis=0).astype(np.int64), item_genres=genres)

    members = {
        name: fixed_scorer(np.random.default_rng(seed).random((n_users, n_items))).fit(split.train)
        for name, seed in (("a", 1), ("b", 2))
    }
    return LiveSession(members, split, ctx, top_n=8, max_k=8)


@pytest.mark.parametrize("method", list(METHODS))
def test_lambda_zero_gives_the_fused_list_for_every_method(fixed_scorer, method: str) -> None:
    session = _session(fixed_scorer)
    spec = FusionSpec(method=method, k=4)
    plain = session.apply([0.6, 0.4], spec)
    same = session.apply([0.6, 0.4], spec, RerankSpec("mmr", lam=0.0, candidates=8))
    assert np.array_equal(same.ranking.item_idx, plain.ranking.item_idx)
    assert np.array_equal(same.fused_ranking.item_idx, plain.ranking.item_idx)  # fused top-8, head 4 = top-4
    assert same.evaluation.values() == plain.evaluation.values()
    moved = session.movement(same)
    assert moved.loc["fused list", "slots changed"] == 0.0 and moved.loc["fused list", "RBO"] == pytest.approx(1.0)


def test_a_rerank_reorders_only_fused_candidates_and_reports_the_fused_list_beside(fixed_scorer) -> None:
    session = _session(fixed_scorer)
    spec = FusionSpec(k=3)
    result = session.apply([0.5, 0.5], spec, RerankSpec("mmr", lam=0.9, candidates=6))
    fused6 = result.fusion.ranking
    assert fused6.k == 6 and result.ranking.k == 3 and result.rerank == RerankSpec("mmr", 0.9, "genre", 6)
    for row in range(len(result.ranking)):
        assert set(result.ranking.item_idx[row]) <= set(fused6.item_idx[row])
    # lambda 0.9 with one genre per item: the three slots take three different genres wherever the fused six
    # hold all three, so the genre diversity is at least the fused list's.
    assert result.evaluation.values()["ild_genre@3"] >= session.fused_evaluation(result).values()["ild_genre@3"]
    assert list(session.movement(result).index) == ["fused list", "a", "b"]


def test_the_session_caps_the_depth_and_refuses_a_depth_below_k(fixed_scorer) -> None:
    session = _session(fixed_scorer)
    capped = session.apply([1, 1], FusionSpec(k=4), RerankSpec("popularity", candidates=50))
    assert capped.fusion.ranking.k == session.max_k == 8
    with pytest.raises(ConfigError, match="re-rank"):
        ExperimentConfig(fusion=FusionSpec(k=10), rerank=RerankSpec("mmr", candidates=5))


def test_movement_is_hand_checkable() -> None:
    a = Ranking(np.array([0]), np.array([[1, 2, 3]]), np.zeros((1, 3), np.float32))
    b = Ranking(np.array([0]), np.array([[1, 3, 4]]), np.zeros((1, 3), np.float32))
    table = movement(b, {"a": a})
    # Slots: 2 of 3 differ. RBO (p 0.9, k 3): X = 1, 1, 2 -> 2/3*0.729 + 0.1/0.9*(0.9 + 0.5*0.81 + 2/3*0.729).
    assert table.loc["a", "slots changed"] == pytest.approx(2 / 3)
    expected = 2 / 3 * 0.729 + 0.1 / 0.9 * (0.9 + 0.5 * 0.81 + 2 / 3 * 0.729)
    assert table.loc["a", "RBO"] == pytest.approx(expected, abs=1e-12)


def test_a_result_without_rerank_has_no_movement(fixed_scorer) -> None:
    session = _session(fixed_scorer)
    with pytest.raises(ConfigError, match="not re-ranked"):
        session.movement(session.apply([1, 1], FusionSpec(k=3)))


# -------------------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("rerank-config")
    rows = ["user,item,rating"]
    for u in range(40):
        liked = [i for i in range(30) if i % 3 == u % 3 and rng.random() < 0.8]
        rows += [f"u{u},m{i},{rng.integers(1, 6)}" for i in liked]
    (folder / "inter.csv").write_text("\n".join(rows) + "\n")
    genres = ["Drama", "Comedy", "Action"]
    (folder / "items.csv").write_text(
        "item,title,genres\n" + "\n".join(f"m{i},Movie {i},{genres[i % 3]}" for i in range(30)) + "\n"
    )
    cfg = ExperimentConfig(
        members=(config.MemberSpec.of("pop"), config.MemberSpec.of("itemknn")),
        weights=(0.5, 0.5),
        rerank=RerankSpec("mmr", lam=0.5, candidates=20),
    )
    (folder / "cfg.json").write_text(cfg.to_json())
    data = ["--interactions", str(folder / "inter.csv"), "--items", str(folder / "items.csv"), "--no-text-metrics"]
    return folder, [*data, "--format", "json"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_fuse_reads_the_rerank_from_the_config_and_flags_override_it(capsys, files) -> None:
    folder, data = files
    code, out, err = _run(capsys, "fuse", "--config", str(folder / "cfg.json"), *data)
    assert code == 0, err
    payload = json.loads(out)
    assert [r["model"] for r in payload["results"]][-1] == "fused + mmr"
    assert payload["re-ranking"] == (
        "re-ranked by MMR (diversity; genre similarity, lambda 0.5) from the fused top-20, to the top-10"
    )
    code, out, err = _run(capsys, "fuse", "--config", str(folder / "cfg.json"), "--rerank-lambda", "0.2", *data)
    assert code == 0 and "lambda 0.2)" in json.loads(out)["re-ranking"], err
    code, out, err = _run(capsys, "fuse", "--config", str(folder / "cfg.json"), "--rerank", "none", *data)
    assert code == 0 and "re-ranking" not in json.loads(out), err


def test_a_rerank_option_without_a_reranker_is_refused(capsys, files) -> None:
    _, data = files
    code, _, err = _run(capsys, "fuse", "--models", "pop,itemknn", "--rerank-lambda", "0.2", *data)
    assert code == 2 and "--rerank-lambda needs a re-ranker" in err and len(err.strip().splitlines()) == 1


def test_other_commands_say_the_configs_rerank_is_not_applied(capsys, files) -> None:
    folder, data = files
    code, out, err = _run(capsys, "evaluate", "--config", str(folder / "cfg.json"), *data)
    assert code == 0, err
    assert json.loads(out)["re-ranking"].startswith("the configuration's re-ranker (mmr) is not applied")


def test_spark_refuses_a_config_that_reranks(capsys, files) -> None:
    folder, data = files
    code, _, err = _run(capsys, "fuse", "--config", str(folder / "cfg.json"), "--engine", "spark", *data)
    assert code == 2 and "the Spark engine does not do" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="runs on the local engine only"):
        spark_command(ExperimentConfig(rerank=RerankSpec("calibrated")))


def test_k_and_the_rerank_flags_are_read_before_they_are_checked_together(capsys, files, tmp_path) -> None:
    folder, data = files
    deep = tmp_path / "deep.json"
    deep.write_text(config.loads((folder / "cfg.json").read_text()).to_json())  # candidates 20
    code, _, err = _run(capsys, "fuse", "--config", str(deep), "--k", "30", *data)
    assert code == 2 and "re-ranking reaches 20 fused candidates, fewer than k=30" in err
    for extra in (["--rerank", "none"], ["--rerank-candidates", "30"]):
        code, out, err = _run(capsys, "fuse", "--config", str(deep), "--k", "30", *extra, *data)
        assert code == 0, (extra, err)
    # A command that does not re-rank is not held to the re-ranker's depth, and says it did not apply it.
    code, out, err = _run(capsys, "evaluate", "--config", str(deep), "--k", "30", *data)
    assert code == 0, err
    assert "re-ranker (mmr) is not applied" in json.loads(out)["re-ranking"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--rerank", "none", "--rerank-lambda", "0.7"], "--rerank-lambda has no effect with --rerank none"),
        (["--rerank", "calibrated", "--rerank-similarity", "text"], "--rerank-similarity is MMR's option"),
    ],
)
def test_a_rerank_option_that_would_do_nothing_is_refused(capsys, files, argv, needle) -> None:
    _, data = files
    code, _, err = _run(capsys, "fuse", "--models", "pop,itemknn", *argv, *data)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_similarity_is_mmrs_only_and_lambda_must_be_a_number() -> None:
    assert RerankSpec("calibrated", similarity="text") == RerankSpec("calibrated")
    for bad in ("0.5", True, None):
        with pytest.raises(ConfigError, match=r"rerank\.lambda"):
            RerankSpec.from_dict({"method": "mmr", "lambda": bad})


def test_the_spark_command_for_a_config_that_reranks() -> None:
    cfg = ExperimentConfig(members=(config.MemberSpec.of("pop"),), weights=(1.0,), rerank=RerankSpec("mmr"))
    assert "--engine spark" in spark_command(cfg, command="evaluate")  # evaluate does not re-rank: no refusal
