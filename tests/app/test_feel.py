"""Issue 14, what AppTest can see: live reruns of the Fusion Lab's fragment only, one message for all-zero weights,
the deltas' baseline (previous, pinned) and the history, Compare's second save, the movie pickers without "Select
all", and the diff an edited profile shows. The browser side (layout widths, the address across a page switch,
Enter in the picker) is in tests/e2e/test_feel.py.
"""

from __future__ import annotations

import pytest
from apptest_helpers import FUSION_LAB, assert_clean, button, messages, metric, open_page, values

from ui import state

pytestmark = pytest.mark.slow

EXPLORER = "pages/2_User_Explorer.py"
COMPARE = "pages/4_Compare.py"
NDCG = "NDCG@10"


def test_all_zero_weights_give_one_message(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    for model in ("als", "itemknn", "text"):
        at.slider(key=state.weight_key(model)).set_value(0.0)
    at.run()
    assert_clean(at)
    at.run()  # a full run: the sidebar's messages are in the tree too
    shown = values(at.error) + values(at.warning) + values(at.info)
    assert len(shown) == 1 and "all weights are zero" in shown[0].lower(), shown
    assert not at.error  # a state the person chose, not a failure


def test_deltas_against_the_previous_and_a_pinned_configuration(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    at.slider(key=state.weight_key("text")).set_value(0.0).run()
    text_off = metric(at, NDCG)
    at.run()
    at.slider(key=state.weight_key("text")).set_value(state.default_weight("text")).run()
    assert_clean(at)
    back = float(metric(at, NDCG))
    at.segmented_control(key="fusion_lab:baseline").set_value("previous").run()
    tile = next(m for m in at.metric if m.label == NDCG)
    assert tile.proto.delta == f"{back - float(text_off):+.4f}"  # the change the last move made
    assert any("previous configuration" in c for c in values(at.caption))

    # Pin this one, move a weight: the deltas are read against the pin.
    button(at, "Pin this configuration").click().run()
    assert at.segmented_control(key="fusion_lab:baseline").value == "pinned"
    at.run()
    at.slider(key=state.weight_key("itemknn")).set_value(0.0).run()
    moved = float(metric(at, NDCG))
    tile = next(m for m in at.metric if m.label == NDCG)
    assert tile.proto.delta == f"{moved - back:+.4f}"

    # The history lists every configuration looked at, newest first, once its expander is opened.
    assert not [d for d in at.dataframe if "configuration" in d.value.columns]
    at.session_state["fusion_lab:history_open"] = True
    at.run()
    history = [d.value for d in at.dataframe if "configuration" in d.value.columns]
    assert history and len(history[0]) == 3
    assert history[0][NDCG].iloc[0] == pytest.approx(moved, abs=1e-4)


def test_a_change_below_the_display_precision_has_no_arrow(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    at.segmented_control(key="fusion_lab:baseline").set_value("previous").run()
    at.slider(key=state.K_K).set_value(10).run()  # nothing moved: the previous is this configuration
    assert_clean(at)
    for tile in at.metric:
        if tile.proto.delta:
            assert tile.proto.delta.startswith("±"), tile.proto.delta


def test_complementarity_caption_names_the_selected_method(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    at.query_params["fusion_lab:view"] = "Complementarity"
    at.run()
    assert_clean(at)
    captions = " ".join(values(at.caption))
    assert "weighted sum brought up" in captions and "rank fusion" not in captions


def test_compare_suggests_a_fresh_name_after_each_save(warm_lab) -> None:
    at = open_page(COMPARE)
    assert "below" not in messages(at)  # the import box is above the empty-state message
    at.text_input(key="compare:name").set_value("mine")
    button(at, "Save").click().run()
    assert_clean(at)
    assert at.text_input(key="compare:name").value == ""  # the taken name is not offered again
    assert any("Saved mine" in v for v in values(at.success))
    at.slider(key=state.weight_key("text")).set_value(1.0).run()
    suggested = at.text_input(key="compare:name").placeholder
    button(at, "Save").click().run()
    assert_clean(at)
    assert "already saved" not in messages(at)
    assert at.dataframe[0].value.index.tolist() == ["mine", suggested]


def test_movie_pickers_add_one_movie_per_enter_and_the_edit_shows_its_diff(warm_lab) -> None:
    at = open_page(EXPLORER)
    at.query_params["explorer:view"] = "Edit this profile"
    at.run()
    assert_clean(at)
    for key in ("explorer:add", "explorer:remove"):
        picker = at.multiselect(key=key)
        assert picker.proto.select_all == 0  # no "Select all matches" for Enter to pick
        assert picker.proto.filter_mode == 1  # FILTER_MODE_CONTAINS: typing "Toy" offers titles containing it
    first = at.multiselect(key="explorer:add").options[0]
    at.multiselect(key="explorer:add").select(first).run()
    assert_clean(at)
    edit = [v for v in values(at.markdown) if v.startswith("**The edit:**")]
    assert edit and "; added " in edit[0] and "removed" not in edit[0]
    diffs = [d.value for d in at.dataframe if "rank before" in d.value.columns]
    assert diffs and set(diffs[0]["change"]) <= {"entered", "left", "moved"}


def test_overview_names_the_data_source_in_words(warm_lab) -> None:
    at = open_page()
    assert_clean(at)
    report = next(c for c in values(at.caption) if c.startswith("Load report"))
    assert "the recbole wheel's copy" in report.replace("\\", "") and "/" not in report.replace("\\/", "")
    assert any("MovieLens 100K" in s for s in values(at.subheader))


def test_an_upload_is_named_by_its_file(warm_lab) -> None:
    from test_pages import small_interactions_csv

    at = open_page("pages/6_Your_data.py")
    data = small_interactions_csv(n_users=40, n_items=120, per_user=12)
    at.file_uploader(key="upload:interactions").set_value(("ratings-2024.csv", data, "text/csv"))
    at.run()
    at.button(key="upload:use").click().run()
    at.switch_page("app.py").run()
    assert_clean(at)
    data_heading = next(s for s in values(at.subheader) if s.startswith("The data"))
    assert "ratings" in data_heading and "upload:" not in data_heading
