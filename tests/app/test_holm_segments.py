"""AppTest for issue 12's dashboard parts: weights per user segment on the Trade-offs page, and Holm's correction
next to p-values where several paired tests are shown at once (the weight search against every member, the
per-segment comparison, every metric of two snapshots on the Compare page)."""

from __future__ import annotations

import pandas as pd
import pytest
from apptest_helpers import assert_clean, button, open_page, values

from ui import state

pytestmark = pytest.mark.slow

TRADE_OFFS = "pages/3_Trade_offs.py"
COMPARE = "pages/4_Compare.py"
SEARCH_TIMEOUT = 300  # the first search fits the members again on train minus validation


def texts(at) -> str:
    """Every markdown and caption on the page, escapes removed."""
    return " | ".join(values(at.markdown) + values(at.caption)).replace("\\", "")


def frame_with(at, column_start: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if any(str(c).startswith(column_start) for c in d.value.columns)]
    assert found, f"no table with a column {column_start!r}"
    return found[0]


def holm_column(frame: pd.DataFrame) -> str:
    return next(c for c in frame.columns if str(c).startswith("p (Holm, "))


def test_per_segment_search_shows_three_segments_and_the_comparison_with_global_weights(warm_lab) -> None:
    at = open_page(TRADE_OFFS)
    assert_clean(at)
    at.selectbox(key="tradeoffs:seg_step").set_value(0.25).run()
    button(at, "Search weights per segment on validation").click()
    at.run(timeout=SEARCH_TIMEOUT)
    assert_clean(at)
    assert not at.error, values(at.error)

    table = frame_with(at, "users (validation)")
    assert table["segment"].tolist()[:3] == ["light", "medium", "heavy"]
    assert table["users (test)"].iloc[:3].sum() == table["users (test)"].iloc[3]  # the segments split every user
    members = [c.removeprefix("weight ") for c in table.columns if c.startswith("weight ")]
    assert len(members) >= 2
    assert table[[f"weight {m}" for m in members]].sum(axis=1).round(6).eq(1).all()  # each row is a weight vector

    words = texts(at)
    assert "light users have at most" in words and "heavy users more than" in words  # the thresholds in words
    sentence = next(v for v in values(at.markdown) if "Per-segment against global weights" in v).replace("\\", "")
    assert "Wilcoxon p" in sentence and "global weighting" in sentence and "per-segment weighting" in sentence
    assert "after Holm's correction over 4 tests" in sentence
    within = frame_with(at, "p (Holm, 4 tests)")
    assert (within[holm_column(within)] >= within["p"] - 1e-12).all()

    # Load the heavy users' weights: the sidebar's sliders move to them.
    heavy = table.set_index("segment").loc["heavy", [f"weight {m}" for m in members]]
    button(at, "Load the heavy weights into the sidebar").click()
    at.run()
    assert_clean(at)
    for m in members:
        model = m.split("(", 1)[0]
        assert at.slider(key=state.weight_key(model)).value == pytest.approx(heavy[f"weight {m}"], abs=0.026)


def test_weight_search_states_holm_over_one_test_per_member(warm_lab) -> None:
    at = open_page(TRADE_OFFS)
    assert_clean(at)
    at.selectbox(key="tradeoffs:search_step").set_value(0.25).run()
    button(at, "Search weights on validation").click()
    at.run(timeout=SEARCH_TIMEOUT)
    assert_clean(at)
    assert not at.error, values(at.error)
    n_members = len([m for m in at.metric if m.label.startswith("Weight of ")])
    sentence = next(v for v in values(at.markdown) if "Paired test on test users" in v).replace("\\", "")
    assert f"after Holm's correction over {n_members} tests)" in sentence and "one test per member" in sentence
    members = frame_with(at, f"p (Holm, {n_members} tests)")
    assert len(members) == n_members
    assert (members[holm_column(members)] >= members["p"] - 1e-12).all()


def save(at, name: str) -> None:
    at.text_input(key="compare:name").set_value(name)
    button(at, "Save").click()
    at.run()
    assert_clean(at)


def test_compare_every_metric_with_holm(warm_lab) -> None:
    at = open_page(COMPARE)
    assert_clean(at)
    save(at, "defaults")
    at.slider(key=state.weight_key("text")).set_value(1.0).run()
    save(at, "text heavy")
    at.toggle(key="compare:every").set_value(True).run()
    assert_clean(at)
    assert not at.error, values(at.error)

    table = frame_with(at, "p (Holm, ")
    holm = holm_column(table)
    m = len(table)
    assert m > 1 and holm == f"p (Holm, {m} tests)"
    assert (table[holm] >= table["p"] - 1e-12).all()  # the correction never lowers a p-value
    assert table[holm].le(1).all()
    assert "ndcg@10" not in table["metric"].tolist() and "NDCG@10" in table["metric"].tolist()
    assert set(table["verdict"]) <= {"a real difference", "could be chance", "weak evidence", "no difference"}
    words = texts(at)
    assert f"Holm's correction over the {m} tests" in words
    paired = next(v for v in values(at.markdown) if "Wilcoxon" in v).replace("\\", "")
    assert f"after Holm's correction over {m} tests" in paired

    # Off again: the single test stays, without the table.
    at.toggle(key="compare:every").set_value(False).run()
    assert not [d for d in at.dataframe if any(str(c).startswith("p (Holm") for c in d.value.columns)]
    assert any("Wilcoxon" in v for v in values(at.markdown))
