"""Details a first-time user stumbled on in the browser walk-through, each pinned down.

- A member keeps its colour in a chart that shows only some members (the genre and per-user charts drew
  the best member in another member's colour).
- The configuration sentence never says "after none normalisation".
- A file whose columns are all taken says which column is missing instead of asking to choose one.
- A new user made from a description has no held-out items: no "hit" column that reads as all misses.
"""

from __future__ import annotations

from apptest_helpers import assert_clean, button, messages, open_page

from ui import charts, state

EXPLORER = "pages/2_User_Explorer.py"
YOUR_DATA = "pages/6_Your_data.py"


def test_a_member_keeps_its_colour_when_only_some_members_are_drawn() -> None:
    members = ["als", "itemknn", "text"]
    everyone = charts.colour_map([charts.FUSION_NAME, *members], members)
    subset = charts.colour_map([charts.FUSION_NAME, "itemknn", "training interactions"], members)
    assert subset["itemknn"] == everyone["itemknn"]
    assert subset[charts.FUSION_NAME] == charts.FUSION_COLOUR
    assert subset["training interactions"] not in everyone.values()  # a reference series takes a free colour


def test_the_configuration_sentence_names_the_normaliser_in_words() -> None:
    cfg = state.config_from_values({**state.default_values(), state.K_NORMALISER: "none"}, None)
    text = cfg.describe()
    assert "none normalisation" not in text and "of the raw scores" in text
    cfg = state.config_from_values(state.default_values(), None)
    assert "after min-max normalisation" in cfg.describe()


def test_a_file_without_an_item_column_says_so() -> None:
    at = open_page(YOUR_DATA)
    at.file_uploader(key="upload:interactions").set_value(("two.csv", b"user,rating\n1,4\n2,5\n", "text/csv"))
    at.run()
    assert_clean(at)
    text = messages(at)
    assert "two.csv has no column left for the item ids" in text and "add an item column" in text


def test_a_new_user_from_a_description_has_no_hit_column(warm_lab) -> None:
    at = open_page(EXPLORER)
    at.query_params["explorer:view"] = "A new user"
    at.run()
    at.text_input(key="explorer:new_text").set_value("funny animated films for children").run()
    assert_clean(at)
    fused = [md.value for md in at.markdown if "Fused list for the new user" in md.value]
    assert fused and "hit" not in fused[0]
    tables = [d.value for d in at.dataframe if "brought in by" in d.value.columns]
    assert len(tables) == 1, "one fused list for the new user"
    table = tables[0]
    assert "held out" not in table.columns and "because you liked" not in table.columns
    assert len(table) == state.DEFAULT_K


def test_an_interleaved_slot_names_its_member_without_nested_brackets(warm_lab) -> None:
    at = open_page(EXPLORER)
    at.selectbox(key=state.K_METHOD).set_value("team_draft").run()
    assert_clean(at)
    tables = [d.value for d in at.dataframe if "brought in by" in d.value.columns]
    assert tables
    brought = tables[0]["brought in by"].tolist()
    assert all(b.endswith("(its turn in the interleaving)") and b.count("(") == 1 for b in brought), brought


def test_compare_auto_names_differ_when_only_the_normaliser_changed(warm_lab) -> None:
    at = open_page("pages/4_Compare.py")
    button(at, "Save").click()
    at.run()
    at.selectbox(key=state.K_NORMALISER).set_value("zscore").run()
    button(at, "Save").click()
    at.run()
    assert_clean(at)
    assert "already saved" not in messages(at)
    names = at.dataframe[0].value.index.tolist()
    assert names == [
        "wsum/minmax k=10: als 40%, itemknn 40%, text 20%",
        "wsum/zscore k=10: als 40%, itemknn 40%, text 20%",
    ]
