"""ui/compare.py's helpers for several paired tests at once: Holm's correction in tables and in words."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from reco_core import stats
from reco_core.errors import ConfigError
from reco_core.metrics import Evaluation
from reco_core.stats import PairedComparison, holm_adjust, paired_comparison
from ui import compare, tests_table

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RNG = np.random.default_rng(3)
N = 60


def snap(name: str, per_user: dict[str, np.ndarray], protocol: str = "ml-100k") -> compare.SavedConfig:
    ev = Evaluation(np.arange(N, dtype=np.int32), per_user, {"coverage@10": 0.3})
    return compare.snapshot(name, '{"k": 10}', ev, protocol, [str(i) for i in range(N)], now=NOW)


def pair() -> tuple[compare.SavedConfig, compare.SavedConfig]:
    base = {k: RNG.random(N) for k in ("ndcg@10", "recall@10", "novelty@10")}
    other = {
        "ndcg@10": base["ndcg@10"] + 0.2,  # clearly better
        "recall@10": base["recall@10"] + RNG.normal(0, 0.05, N),  # noise
        "novelty@10": base["novelty@10"].copy(),  # identical
    }
    return snap("A", base), snap("B", other)


def test_the_display_table_has_seven_columns_and_names_the_tests() -> None:
    a, b = pair()
    table = compare.paired_metric_table(a, b, ["ndcg@10", "novelty@10"])
    shown = tests_table.frame(table, "metric", "A", "B", metric_rows=True)
    assert list(shown.columns) == ["metric", "A", "B", "difference (95% CI)", "p", "p (Holm, 2 tests)", "verdict"]
    assert shown["metric"].tolist() == ["NDCG@10", "Novelty@10"]
    d, lo, hi = table.loc[0, ["B - A", "ci_low", "ci_high"]]
    assert shown.loc[0, "difference (95% CI)"] == f"{d:+.4f} ({lo:+.4f} to {hi:+.4f})"
    assert tests_table.holm_header(1) == "p (Holm, 1 test)"


def test_a_sentence_reads_its_verdict_from_the_adjusted_p() -> None:
    # Raw p 0.019 with an interval clear of 0 is "a real difference" alone, but not after Holm over 6 tests.
    pc = PairedComparison("ndcg@10", 943, 0.40, 0.406, 0.006, 0.001, 0.011, 10.0, 0.019)
    assert pc.sentence("A", "B").endswith("a real difference")
    held = pc.sentence("A", "B", p_adjusted=0.115, tests=6)
    assert "p = 0.019 over 943 users (0.115 after Holm's correction over 6 tests)" in held
    assert held.endswith("weak evidence (the test and the interval disagree)") and "is ahead of" in held


def test_paired_metric_table_adjusts_over_the_metrics_tested() -> None:
    a, b = pair()
    keys = ["ndcg@10", "recall@10", "novelty@10"]
    table = compare.paired_metric_table(a, b, keys)
    assert table["metric"].tolist() == keys
    np.testing.assert_allclose(table["p (Holm)"], holm_adjust(table["p"].to_numpy()))
    assert (table["p (Holm)"] >= table["p"]).all()
    row = table.set_index("metric")
    assert row.loc["ndcg@10", "verdict"] == "a real difference"
    assert row.loc["novelty@10", "p"] == 1.0  # every difference zero: nothing to rank
    assert row.loc["ndcg@10", "B - A"] == pytest.approx(0.2)


def test_testable_keys_leave_out_missing_values_and_other_protocols() -> None:
    a, b = pair()
    holey = dict(b.per_user)
    holey["recall@10"] = np.where(np.arange(N) == 5, np.nan, holey["recall@10"])
    b2 = snap("B2", holey)
    usable, left_out = compare.testable_keys(a, b2, ["ndcg@10", "recall@10", "novelty@10", "coverage@10"])
    assert usable == ["ndcg@10", "novelty@10"] and left_out == ["recall@10"]
    other = snap("C", dict(b.per_user), protocol="another split")
    assert compare.testable_keys(a, other, ["ndcg@10"]) == ([], [])
    with pytest.raises(ConfigError, match="different data or users"):
        compare.paired_metric_table(a, other, ["ndcg@10"])


def test_comparisons_table_reads_the_adjusted_p() -> None:
    base = RNG.random(200)
    tests = {
        "clear": paired_comparison(base, base + 0.1, "ndcg@10"),
        "borderline": paired_comparison(base, base + RNG.normal(0.01, 0.06, 200), "ndcg@10"),
        "same": paired_comparison(base, base.copy(), "ndcg@10"),
    }
    table = stats.comparison_table(tests)
    assert table["comparison"].tolist() == ["clear", "borderline", "same"]
    np.testing.assert_allclose(table["p (Holm)"], holm_adjust([t.p_value for t in tests.values()]))
    assert (table["p (Holm)"] >= table["p"]).all()
    verdict = dict(zip(table["comparison"], table["verdict"], strict=True))
    assert verdict["clear"] == "a real difference" and verdict["same"] == "no difference"
    assert stats.comparison_table({}).empty


def test_a_raw_p_below_alpha_can_become_chance_after_the_correction() -> None:
    # Raw p 0.03 and 0.04: Holm gives 0.06 and 0.06, so neither stays "a real difference" (the interval still
    # leaves out 0: the test and the interval now disagree).
    def pc(p: float) -> PairedComparison:
        return PairedComparison("ndcg@10", 100, 0.30, 0.32, 0.02, 0.001, 0.04, 1000.0, p)

    table = stats.comparison_table({"one": pc(0.03), "two": pc(0.04)})
    np.testing.assert_allclose(table["p (Holm)"], [0.06, 0.06])
    assert table["verdict"].tolist() == ["weak evidence", "weak evidence"]
    alone = stats.comparison_table({"one": pc(0.03)})
    assert alone["verdict"].tolist() == ["a real difference"]  # one test: nothing to correct
