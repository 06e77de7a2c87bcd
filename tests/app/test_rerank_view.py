"""The re-ranker in the dashboard: chosen in the sidebar, live on the Fusion Lab (tiles, how far the lists moved,
the fused list before it), in the User Explorer (one person's re-ranked list), in the URL; and the tiles' paired
tests with Holm's correction."""

from __future__ import annotations

import pytest
from apptest_helpers import FUSION_LAB, assert_clean, metric, open_page, values

from ui import state

pytestmark = pytest.mark.slow

EXPLORER = "pages/2_User_Explorer.py"
NDCG = "NDCG@10"


def _markdown(at) -> str:
    return " ".join(values(at.markdown)).replace("\\", "")  # without Markdown's escapes


def _with_reranker(at, name: str = "mmr", lam: float | None = None):
    """Choose a re-ranker (a full rerun: its options appear) and set its lambda (a live-fragment rerun only; AppTest
    then holds just the fragment's elements, so a full run follows to bring the sidebar back)."""
    at.selectbox(key=state.K_RERANK).set_value(name).run()
    if lam is not None:
        at.slider(key=state.K_RERANK_LAMBDA).set_value(lam).run()
        at.run()
    return at


def test_fusion_lab_reranks_live_and_says_how_far_the_list_moved(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    fused_ndcg = metric(at, NDCG)
    assert "Re-ranked by" not in _markdown(at)
    _with_reranker(at, "mmr", 0.0)
    assert_clean(at)
    assert not at.error, values(at.error)
    # lambda 0 keeps the fused list: same tile, no slot changed.
    assert metric(at, NDCG) == fused_ndcg
    assert "0% of each user's slots differ from the fused list (rank-biased overlap 1.000)" in _markdown(at)
    at.slider(key=state.K_RERANK_LAMBDA).set_value(0.7).run()
    assert_clean(at)
    assert not at.slider  # only the live fragment reran: the new numbers came without a full rerun
    at.run()
    assert metric(at, NDCG) != fused_ndcg
    text = _markdown(at)
    assert "Re-ranked by MMR (diversity; genre similarity, lambda 0.7) from the fused top-50" in text
    moved = [df.value for df in at.dataframe if "RBO" in df.value.columns]
    assert moved, "no table of how far the list moved"
    assert list(moved[0]["from"]) == ["fused list", "als", "itemknn", "text"]
    assert (moved[0]["RBO"] < 1).all()
    # Members vs fusion shows the fused list before the re-ranker beside the re-ranked one.
    tables = [df.value for df in at.dataframe if "fusion before re-ranking" in list(df.value.index)]
    assert tables, "no 'fusion before re-ranking' row in the members table"


def test_the_reranker_travels_in_the_link_and_the_configuration() -> None:
    cfg = state.config_from_values({state.K_RERANK: "calibrated", state.K_RERANK_LAMBDA: 0.4, state.K_RERANK_DEPTH: 30})
    params = state.to_query_params(cfg)
    assert params[state.K_RERANK] == state.reranker_label("calibrated")
    back = state.config_from_query_params(params)
    assert back.rerank == cfg.rerank and back.rerank.lam == 0.4 and back.rerank.candidates == 30
    assert state.config_from_json(cfg.to_json()).rerank == cfg.rerank
    assert state.config_from_values({}).rerank is None


def test_a_depth_below_k_is_one_line_in_the_sidebar_and_on_the_page(warm_lab) -> None:
    at = _with_reranker(open_page(FUSION_LAB), "popularity")
    at.slider(key=state.K_RERANK_DEPTH).set_value(1).run()
    at.run()  # the live fragment cannot describe the configuration: the full run says why in the sidebar
    assert_clean(at)
    sidebar = [e.replace("\\", "") for e in values(at.sidebar.error)]  # without Markdown's escapes
    assert any("re-ranking reaches 1 fused candidate, fewer than k=10" in e for e in sidebar), sidebar
    # The page says the same, not "choose at least one member" while three are chosen.
    page_errors = [e for e in values(at.main.error)]
    assert len(page_errors) == 1 and "do not make a configuration" in page_errors[0].replace("\\", "")
    assert not [i for i in values(at.main.info) if "at least one member" in i]


def test_user_explorer_shows_the_persons_reranked_list(warm_lab) -> None:
    at = open_page(EXPLORER)
    _with_reranker(at, "calibrated", 0.5)
    assert_clean(at)
    assert not at.error, values(at.error)
    assert "After re-ranking" in _markdown(at)
    lists = [df.value for df in at.dataframe if "fused rank" in df.value.columns]
    assert lists and len(lists[0]) == 10 and (lists[0]["fused rank"] >= 1).all()
    moved = [df.value for df in at.dataframe if "RBO" in df.value.columns]
    assert moved and moved[0]["from"].iloc[0] == "fused list"


def test_tile_tests_are_holm_corrected(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    at.toggle(key="fusion_lab:tile_tests").set_value(True).run()
    assert_clean(at)
    tests = [df.value for df in at.dataframe if any(str(c).startswith("p (Holm, ") for c in df.value.columns)]
    assert tests, "no table of paired tests"
    table = tests[0]
    holm = next(c for c in table.columns if str(c).startswith("p (Holm, "))
    assert holm == f"p (Holm, {len(table)} tests)" and len(table) >= 5
    assert (table[holm] >= table["p"] - 1e-12).all()
    assert any("Holm's correction over the" in c for c in values(at.caption))


def test_the_fusion_lab_offers_learned_fusion_beside_the_other_views(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    assert "Learned fusion tab" in " ".join(values(at.sidebar.caption))  # said under the method picker
    at.query_params["fusion_lab:view"] = "Learned fusion"
    at.run()
    assert_clean(at)
    assert [b for b in at.button if b.label == "Train on validation"], [b.label for b in at.button]


def test_the_explorers_last_change_is_read_in_the_reranked_list(warm_lab) -> None:
    at = _with_reranker(open_page(EXPLORER), "mmr", 0.3)
    at.slider(key=state.K_RERANK_LAMBDA).set_value(0.9).run()  # only the lambda moves: the fused list stays
    assert_clean(at)
    text = _markdown(at)
    assert "**What the last weight move changed** (in the re-ranked list)" in text
    changes = [df.value for df in at.dataframe if "change" in df.value.columns]
    assert changes and len(changes[0]) > 0, "moving lambda from 0.3 to 0.9 changed no slot of the re-ranked list"


def test_trade_offs_says_its_sweep_fuses_without_the_reranker(warm_lab) -> None:
    at = _with_reranker(open_page("pages/3_Trade_offs.py"), "popularity")
    assert_clean(at)
    assert any("fuse without the re-ranker (Popularity penalty)" in i for i in values(at.info)), values(at.info)
