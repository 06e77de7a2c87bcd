"""ui/compare.py: saved configuration snapshots, their comparison table, export and import."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from reco_core.errors import ConfigError, DataError
from reco_core.metrics import Evaluation
from ui import compare

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def evaluation(ndcg: list[float], coverage: float = 0.3, novelty: list[float] | None = None) -> Evaluation:
    per_user = {"ndcg@10": np.array(ndcg), "arp@10": np.array([50.0] * len(ndcg))}
    if novelty is not None:
        per_user["novelty@10"] = np.array(novelty)
    return Evaluation(np.arange(len(ndcg), dtype=np.int32), per_user, {"coverage@10": coverage})


def snap(name: str, ndcg: list[float], protocol: str = "ml-100k", **kw) -> compare.SavedConfig:
    users = [str(i + 1) for i in range(len(ndcg))]
    return compare.snapshot(name, '{"k": 10}', evaluation(ndcg, **kw), protocol, users, now=NOW)


def test_snapshot_keeps_means_and_per_user_values() -> None:
    s = snap("als only", [0.0, 0.5, 1.0])
    assert s.metrics["ndcg@10"] == pytest.approx(0.5)
    assert s.metrics["coverage@10"] == pytest.approx(0.3)
    np.testing.assert_allclose(s.per_user["ndcg@10"], [0.0, 0.5, 1.0])
    assert s.per_user["ndcg@10"].dtype == np.float32 and not s.per_user["ndcg@10"].flags.writeable
    assert s.user_ids == ("1", "2", "3") and s.saved_at == "2024-05-01T12:00:00+00:00"


@pytest.mark.parametrize(("name", "message"), [("", "give the configuration a name"), ("x" * 61, "at most 60")])
def test_names_are_checked(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        snap(name, [0.1])


def test_name_is_one_trimmed_line() -> None:
    assert snap("  a\n b ", [0.1]).name == "a b"


def test_add_refuses_a_duplicate_unless_replacing() -> None:
    store: dict[str, compare.SavedConfig] = {}
    compare.add(store, snap("a", [0.1]))
    with pytest.raises(ConfigError, match="already saved"):
        compare.add(store, snap("a", [0.2]))
    compare.add(store, snap("a", [0.2]), overwrite=True)
    assert store["a"].metrics["ndcg@10"] == pytest.approx(0.2)


def test_store_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare, "MAX_SAVED", 2)
    store: dict[str, compare.SavedConfig] = {}
    compare.add(store, snap("a", [0.1]))
    compare.add(store, snap("b", [0.1]))
    with pytest.raises(ConfigError, match="delete some"):
        compare.add(store, snap("c", [0.1]))
    compare.add(store, snap("b", [0.3]), overwrite=True)  # replacing does not grow the store


def test_comparison_frame_and_best() -> None:
    a, b = snap("a", [0.2, 0.4]), snap("b", [0.6, 0.8], coverage=0.1)
    frame = compare.comparison_frame([a, b])
    assert frame.index.tolist() == ["a", "b"]
    assert frame.columns.tolist() == ["ndcg@10", "coverage@10", "arp@10"]  # METRICS order
    assert frame.loc["b", "ndcg@10"] == pytest.approx(0.7)
    best = compare.best_per_metric(frame)
    assert best == {"ndcg@10": "b", "coverage@10": "a", "arp@10": "a"}  # arp: lower is better, a tie -> first
    long = compare.long_frame(frame)
    assert len(long) == 6 and set(long.columns) == {"configuration", "metric", "value"}


def test_missing_keys_are_nan() -> None:
    frame = compare.comparison_frame([snap("a", [0.1], novelty=[9.0]), snap("b", [0.2])])
    assert np.isnan(frame.loc["b", "novelty@10"])
    assert len(compare.long_frame(frame)) == 7


def test_comparable_needs_same_users_and_protocol() -> None:
    a, b = snap("a", [0.1, 0.2]), snap("b", [0.3, 0.4])
    assert compare.comparable(a, b, "ndcg@10") is None
    assert "different data" in compare.comparable(a, snap("c", [0.1, 0.2], protocol="ml-1m"), "ndcg@10")
    assert "different data" in compare.comparable(a, snap("d", [0.1]), "ndcg@10")
    assert "not a per-user metric" in compare.comparable(a, b, "coverage@10")


def test_export_import_round_trip() -> None:
    a = snap("a", [0.1, float("nan")])
    b = snap("b", [0.3, 0.4])
    text = compare.export_json([a, b])
    doc = json.loads(text)  # strict JSON: NaN became null
    assert doc["format"] == compare.EXPORT_FORMAT and len(doc["configurations"]) == 2
    assert doc["configurations"][0]["per_user"]["ndcg@10"][1] is None
    back = compare.import_json(text.encode())
    assert [e.name for e in back] == ["a", "b"]
    assert back[1].metrics == pytest.approx(dict(b.metrics))
    assert back[1].per_user.keys() == b.per_user.keys() and back[1].user_ids == b.user_ids
    for key in b.per_user:
        np.testing.assert_array_equal(back[1].per_user[key], b.per_user[key])
    assert json.loads(back[0].config_json) == {"k": 10}
    assert np.isnan(back[0].per_user["ndcg@10"][1])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"format": "other"}', "not a saved-configurations export"),
        (json.dumps({"format": compare.EXPORT_FORMAT, "version": 99}).encode(), "version 99"),
        (json.dumps({"format": compare.EXPORT_FORMAT, "version": 1, "configurations": {}}).encode(), "must be a list"),
        (
            json.dumps(
                {"format": compare.EXPORT_FORMAT, "version": 1, "configurations": [{"name": "x", "config": []}]}
            ).encode(),
            "configuration 1",
        ),
        (
            json.dumps(
                {
                    "format": compare.EXPORT_FORMAT,
                    "version": 1,
                    "configurations": [{"name": "x", "config": {}, "metrics": {"ndcg@10": "high"}}],
                }
            ).encode(),
            "is not a number",
        ),
    ],
)
def test_import_rejects_bad_files_with_a_message(data: bytes, message: str) -> None:
    with pytest.raises((DataError, ConfigError), match=message):
        compare.import_json(data, "saved.json")


def test_safe_filename() -> None:
    assert compare.safe_filename("../a b/c") == "a-b-c"
    assert compare.safe_filename("///") == "configurations"


def test_a_spark_run_summary_imports_beside_the_dashboards_configurations() -> None:
    from reco_core.config import ExperimentConfig, MemberSpec
    from reco_core.spark.summary import summary_dict

    cfg = ExperimentConfig(members=(MemberSpec.of("pop"), MemberSpec.of("als")), weights=(0.5, 0.5))
    table = {"pop": {"ndcg@10": 0.2}, "als": {"ndcg@10": 0.36}, "fused": {"ndcg@10": 0.38, "coverage@10": 0.3}}
    doc = summary_dict(cfg, table, {"command": "fuse", "n_evaluated": 943})
    (entry,) = compare.import_json(json.dumps(doc).encode(), source="spark-summary.json")
    assert entry.name.startswith("spark fuse fused ") and entry.metrics == {"ndcg@10": 0.38, "coverage@10": 0.3}
    assert "Spark, 943 users" in entry.protocol and entry.per_user == {}
    assert json.loads(entry.config_json)["members"][0]["model"] == "pop"
    # Means only: it sits in the table, but a paired test says why not.
    other = compare.SavedConfig("mine", entry.config_json, {"ndcg@10": 0.4}, entry.protocol)
    assert "not a per-user metric" in compare.comparable(entry, other, "ndcg@10")
    # An evaluate run (no fused row) gives one entry per model.
    doc = summary_dict(cfg, {"pop": {"ndcg@10": 0.2}, "als": {"ndcg@10": 0.36}}, {"command": "evaluate"})
    assert [e.metrics["ndcg@10"] for e in compare.import_json(json.dumps(doc))] == [0.2, 0.36]
