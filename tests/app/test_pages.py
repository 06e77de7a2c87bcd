"""AppTest for every page: it opens without an exception, the fused metrics follow the weights, and bad input
(a broken upload, all-zero weights) gives a message on the page instead of a traceback."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from apptest_helpers import (
    FUSION_LAB,
    PAGES,
    assert_clean,
    button,
    messages,
    metric,
    open_page,
    values,
    vega_chart_rows,
)

from ui import state, upload

pytestmark = pytest.mark.slow

EXPLORER = "pages/2_User_Explorer.py"
COMPARE = "pages/4_Compare.py"
LEARN = "pages/5_Learn.py"
YOUR_DATA = "pages/6_Your_data.py"
NDCG = "NDCG@10"


def small_interactions_csv(n_users: int = 40, n_items: int = 30, per_user: int = 8, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    rows = [
        (f"u{u}", f"i{i}", int(rng.integers(1, 6)), 1_000_000 + 60 * j)
        for u in range(n_users)
        for j, i in enumerate(rng.choice(n_items, per_user, replace=False))
    ]
    buf = io.StringIO()
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(buf, index=False)
    return buf.getvalue().encode()


# ------------------------------------------------------------------------------------------ every page


def test_pages_are_found() -> None:
    # Guards the parametrised test below: the pages folder must hold every view.
    assert {FUSION_LAB, COMPARE, LEARN, YOUR_DATA} <= set(PAGES)


def test_overview_opens(warm_lab) -> None:
    at = open_page()
    assert_clean(at)
    assert metric(at, "Users") == "943"
    assert metric(at, "Items") == "1,682"
    # The four dataset figures, drawn with Vega-Lite (a lighter first view than Plotly) with their alt text.
    charts = vega_chart_rows(at)
    assert list(charts) == ["Ratings", "Long tail of item popularity", "User activity", "Genres"]
    assert all(chart.proto.alt for chart in at.get("vega_lite_chart"))
    rows = {title: frame for title, (_, frame) in charts.items()}
    assert rows["Ratings"]["rating"].tolist() == [1, 2, 3, 4, 5]
    assert rows["Ratings"]["interactions"].sum() == 100_000
    assert rows["Long tail of item popularity"]["rank"].tolist() == [*range(1, 1683, 4), 1682]  # thinned to 422
    assert rows["User activity"]["users"].sum() == 943
    assert len(rows["Genres"]) == 18 and rows["Genres"]["interactions"].max() == 39_895  # Drama
    assert not at.get("plotly_chart"), "the Overview loads no Plotly chunk"


@pytest.mark.parametrize("page", PAGES)
def test_page_opens_without_exception_or_error(warm_lab, page: str) -> None:
    at = open_page(page)
    assert_clean(at)
    assert not at.error, f"{page} shows errors with the default configuration: {values(at.error)}"


# ------------------------------------------------------------------------------------------ fusion lab


def test_weight_change_changes_the_fused_metrics(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    before = metric(at, NDCG)
    at.slider(key=state.weight_key("itemknn")).set_value(0.0)
    at.slider(key=state.weight_key("text")).set_value(0.0)
    at.run()
    assert_clean(at)
    als_only = metric(at, NDCG)
    assert als_only != before
    # Only the live fragment reran: AppTest then holds just its elements (no title, no sidebar widgets).
    assert not at.title and not at.slider
    at.run()  # a full run brings the sidebar back
    # Back to the defaults: the same numbers again (the live loop is deterministic).
    at.slider(key=state.weight_key("itemknn")).set_value(state.default_weight("itemknn"))
    at.slider(key=state.weight_key("text")).set_value(state.default_weight("text"))
    at.run()
    assert metric(at, NDCG) == before


def test_all_zero_weights_give_a_message(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    for model in ("als", "itemknn", "text"):
        at.slider(key=state.weight_key(model)).set_value(0.0)
    at.run()
    assert_clean(at)
    assert "all weights are zero" in messages(at)
    assert NDCG not in [m.label for m in at.metric]  # no fused tile pretends to have a value


def test_run_this_at_scale_shows_the_spark_command_of_the_current_configuration(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    assert not [c for c in at.code if "--engine spark" in c.value]  # drawn only once the expander is opened
    at.session_state["fusion_lab:scale_open"] = True  # what opening the expander does
    at.run()
    (code,) = [c for c in at.code if "--engine spark" in c.value]
    assert "--models als,itemknn,text" in code.value and "--spark-master 'local[2]'" in code.value
    at.slider(key=state.weight_key("text")).set_value(0.0)
    at.run()
    (code,) = [c for c in at.code if "--engine spark" in c.value]
    assert "--weights" in code.value and ",0 " in code.value  # the command follows the sliders


def test_broken_configuration_upload_gives_an_error(warm_lab) -> None:
    at = open_page(FUSION_LAB)
    uploaders = [u for u in at.file_uploader if "config" in (u.key or "")]
    assert uploaders, "the Fusion Lab has a configuration uploader"
    uploaders[0].set_value(("config.json", b"{not json", "application/json"))
    at.run()
    assert_clean(at)
    assert "not valid json" in messages(at)


# ------------------------------------------------------------------------------------------ user explorer


def test_unknown_user_id_gives_an_error(warm_lab) -> None:
    at = open_page(EXPLORER)
    assert_clean(at)
    at.text_input(key="user").set_value("no-such-user").run()
    assert_clean(at)
    assert any("unknown user" in v.replace("\\", "").lower() for v in values(at.error))
    # A known id clears the message.
    at.text_input(key="user").set_value("1").run()
    assert_clean(at)
    assert not at.error


def test_explorer_buttons_pick_users(warm_lab) -> None:
    at = open_page(EXPLORER)
    button(at, "Most active").click().run()
    assert_clean(at)
    assert at.text_input(key="user").value == "405"  # ML-100K's most active user in the default training split
    button(at, "Least active").click().run()
    assert_clean(at)
    assert at.text_input(key="user").value != "405"


# ------------------------------------------------------------------------------------------ compare


def save(at, name: str) -> None:
    at.text_input(key="compare:name").set_value(name)
    button(at, "Save").click()
    at.run()
    assert_clean(at)


def test_compare_save_compare_load_delete(warm_lab) -> None:
    at = open_page(COMPARE)
    assert_clean(at)
    save(at, "defaults")
    at.slider(key=state.weight_key("text")).set_value(1.0).run()
    save(at, "text heavy")
    table = at.dataframe[0].value
    assert table.index.tolist() == ["defaults", "text heavy"]
    assert table.loc["defaults", "ndcg@10"] != table.loc["text heavy", "ndcg@10"]
    paired = [v.replace("\\", "") for v in values(at.markdown) if "Wilcoxon" in v]
    assert paired and "text heavy" in paired[0] and "defaults" in paired[0]  # the paired test in words
    assert len(at.get("download_button")) >= 1
    # The bars across metrics (Vega-Lite): one bar per saved configuration and metric, names as given.
    spec, bars = vega_chart_rows(at)["Saved configurations across metrics"]
    assert spec["encoding"]["color"]["scale"]["domain"] == ["defaults", "text heavy"]
    ndcg = bars[bars["metric"] == "NDCG@10"].set_index("model")
    assert ndcg.loc["defaults", "value"] == pytest.approx(table.loc["defaults", "ndcg@10"])
    assert ndcg["shown"].max() == pytest.approx(1.0)  # relative to the better of the two

    # Saving under a taken name is refused with a message, and the store is unchanged.
    save(at, "defaults")
    assert "already saved" in messages(at)
    assert len(at.dataframe[0].value) == 2

    # Load "defaults" back: the sidebar's text weight returns to its default.
    at.selectbox(key="compare:load").set_value("defaults")
    at.button(key="compare:load_btn").click()
    at.run()
    assert_clean(at)
    assert at.slider(key=state.weight_key("text")).value == pytest.approx(state.default_weight("text"))

    at.multiselect(key="compare:delete").set_value(["text heavy"]).run()  # enables the button, as in a browser
    at.button(key="compare:delete_btn").click()
    at.run()
    assert at.dataframe[0].value.index.tolist() == ["defaults"]


def test_compare_import_of_a_bad_file_gives_an_error(warm_lab) -> None:
    at = open_page(COMPARE)
    at.file_uploader(key="compare:import").set_value(("saved.json", b'{"format": "other"}', "application/json"))
    at.run()
    assert_clean(at)
    assert "not a saved-configurations export" in messages(at)


# ------------------------------------------------------------------------------------------ learn


def test_learn_worked_examples_and_convention_toggle(warm_lab) -> None:
    at = open_page(LEARN)
    assert_clean(at)
    assert len(at.latex) >= 13  # every metric's formula at least
    frames = [df.value for df in at.dataframe]
    rrf = next(f for f in frames if "final rank" in f.columns)
    assert rrf["final rank"].is_monotonic_increasing and "fused score" in rrf.columns
    ndcg = next(f for f in frames if "rel_i" in f.columns)
    assert len(ndcg) == 10
    before = float(metric(at, "Precision@10 (over k)"))
    at.toggle(key="learn:prec_alt").set_value(True).run()
    assert_clean(at)
    after = float(metric(at, "Precision@10 (over min(k, |T|))"))
    assert after >= before
    # The RRF example uses the sidebar's weights: all zero gives the message, not a traceback.
    for model in ("als", "itemknn", "text"):
        at.slider(key=state.weight_key(model)).set_value(0.0)
    at.run()
    assert_clean(at)
    assert "all weights are zero" in messages(at)


# ------------------------------------------------------------------------------------------ your data


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("broken.csv", b"user,item\n1,2\n3,4,5\n", ["broken.csv", "line 3"]),
        ("empty.csv", b"", ["empty.csv", "empty"]),
        ("binary.csv", b"\x00\x01\x02\x03", ["binary.csv", "nul"]),
        ("fake.parquet", b"PAR1 not really", ["fake.parquet", "parquet"]),
    ],
)
def test_bad_upload_gives_an_error_message(name: str, data: bytes, words: list[str]) -> None:
    at = open_page(YOUR_DATA)
    at.file_uploader(key="upload:interactions").set_value((name, data, "text/csv"))
    at.run()
    assert_clean(at)
    assert at.error, "a broken file must give st.error"
    text = messages(at)
    for w in words:
        assert w in text


def test_bad_values_are_reported_by_the_loader() -> None:
    at = open_page(YOUR_DATA)
    at.file_uploader(key="upload:interactions").set_value(("r.csv", b"user,item,rating\n1,2,5\n1,3,high\n", "text/csv"))
    at.run()
    assert_clean(at)
    assert "rating" in messages(at) and "row 2" in messages(at)


def test_row_limit_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload, "MAX_ROWS", 3)
    at = open_page(YOUR_DATA)
    at.file_uploader(key="upload:interactions").set_value(("big.csv", small_interactions_csv(2, 10, 3), "text/csv"))
    at.run()
    assert_clean(at)
    assert "at most 3" in messages(at)


def test_upload_mapping_report_and_use_the_dataset() -> None:
    at = open_page(YOUR_DATA)
    # 120 items: the live session is built for lists of up to 50 items (ui.state.MAX_K) and refuses fewer.
    data = small_interactions_csv(n_users=40, n_items=120, per_user=12)
    at.file_uploader(key="upload:interactions").set_value(("mine.csv", data, "text/csv"))
    at.run()
    assert_clean(at)
    chosen = {s.label.rstrip(" *"): s.value for s in at.selectbox if (s.key or "").startswith("upload:map:")}
    assert chosen == {"User": "userId", "Item": "movieId", "Rating": "rating", "Timestamp": "timestamp"}
    assert metric(at, "Rows read") == "480" and metric(at, "Kept") == "480"
    at.button(key="upload:use").click().run()
    assert_clean(at)
    assert isinstance(at.session_state[state.UPLOAD_KEY], state.UploadedData)
    assert at.session_state[state.K_DATASET] == state.DATASET_UPLOAD
    # The whole app now runs on the upload: the Fusion Lab fits the members on it.
    at.switch_page(FUSION_LAB).run()
    assert_clean(at)
    assert 0.0 <= float(metric(at, NDCG)) <= 1.0
    # No items file, so no genres: the missing genre-diversity tile is explained in words, not engine terms.
    captions = " ".join(c.value for c in at.caption)
    assert "Not shown for this dataset: ILD (genres)" in captions and "EvalContext" not in captions


def test_a_bad_upload_leaves_the_rest_of_the_app_working(warm_lab) -> None:
    at = open_page(YOUR_DATA)
    at.file_uploader(key="upload:interactions").set_value(("bad.csv", b"\x00", "text/csv"))
    at.run()
    assert at.error
    at.switch_page(FUSION_LAB).run()
    assert_clean(at)
    assert not at.error
    float(metric(at, NDCG))
