"""The Vega-Lite charts (``ui.vega_charts``): the rows each chart draws, worked by hand, and the spec parts a
person reads (titles, axis ticks, the head's note, the colours).

The browser draws these specs; tests/e2e/test_browser.py checks that the Overview's four charts are drawn
with no Vega error, and tests/app/test_pages.py that the Overview sends them with their alt text.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from ui import vega_charts as vc
from ui.charts import FUSION_COLOUR, PALETTE


def test_rating_bars_hold_each_value_its_count_and_share() -> None:
    chart = vc.rating_histogram(np.array([1.0, 2.0, 4.5]), np.array([1, 1, 2]))
    assert chart.data["rating"].tolist() == [1.0, 2.0, 4.5]
    assert chart.data["interactions"].tolist() == [1, 1, 2]
    assert chart.data["share"].tolist() == [0.25, 0.25, 0.5]
    assert chart.spec["mark"]["type"] == "bar" and chart.spec["encoding"]["x"]["type"] == "ordinal"
    assert chart.title == "Ratings"


def test_many_rating_values_are_binned_into_thirty_ranges_and_none_is_lost() -> None:
    values = np.arange(100, dtype=np.float64)
    counts = np.ones(100, dtype=np.int64)
    chart = vc.rating_histogram(values, counts)
    assert len(chart.data) == 30 and chart.data["interactions"].sum() == 100
    assert chart.data["from"].iloc[0] == 0.0 and chart.data["to"].iloc[-1] == 99.0
    assert (chart.data["to"].to_numpy()[:-1] == chart.data["from"].to_numpy()[1:]).all()  # ranges touch
    assert chart.spec["mark"]["type"] == "rect" and chart.spec["encoding"]["x2"] == {"field": "to"}


def test_long_tail_sorts_items_and_names_the_heads_share() -> None:
    chart = vc.long_tail(np.array([1, 5, 0, 3, 1]))  # sorted: 5 3 1 1 0, ten interactions
    assert chart.data["rank"].tolist() == [1, 2, 3, 4, 5]
    assert chart.data["interactions"].tolist() == [5, 3, 1, 1, 0]
    shade, _curve, strips, note = chart.spec["layer"]
    assert shade["data"]["values"] == [{"from": 0.5, "to": 1.5}]  # the head: round(20% of 5) = 1 item
    assert note["encoding"]["text"]["value"] == "top 20% of items: 50% of interactions"
    assert note["data"]["values"] == [{"x": 1, "y": 5}]
    # Five items, one hover strip each: its rank, its count, and the share the items up to it hold.
    assert [(v["ranks"], v["each"]) for v in strips["data"]["values"]] == [
        ("1", "5"),
        ("2", "3"),
        ("3", "1"),
        ("4", "1"),
        ("5", "0"),
    ]
    np.testing.assert_allclose([v["held"] for v in strips["data"]["values"]], [0.5, 0.8, 0.9, 1.0, 1.0])


def test_hover_strips_cover_every_rank_once() -> None:
    counts = np.arange(1, 1683)[::-1] % 400  # 1,682 items, as MovieLens-100K
    strips = vc.long_tail(counts).spec["layer"][2]["data"]["values"]
    assert len(strips) == vc.HOVER_STRIPS
    assert strips[0]["from"] == 0.5 and strips[-1]["to"] == 1682.5
    assert all(a["to"] == b["from"] for a, b in itertools.pairwise(strips))
    assert strips[0]["ranks"] == "1-17" and strips[-1]["held"] == 1.0
    first = np.sort(counts)[::-1][:17]
    assert strips[0]["each"] == f"{first[0]:,}-{first[-1]:,}"


def test_a_long_catalogue_is_thinned_but_keeps_both_ends() -> None:
    counts = np.arange(10_000, 0, -1)
    chart = vc.long_tail(counts)
    assert len(chart.data) == 501 and chart.data["rank"].iloc[0] == 1 and chart.data["rank"].iloc[-1] == 10_000
    assert chart.data["interactions"].iloc[0] == 10_000 and chart.data["interactions"].iloc[-1] == 1
    assert chart.spec["layer"][1]["encoding"]["x"]["scale"]["domain"] == [0.5, 10_000.5]


def test_an_empty_catalogue_draws_the_curve_without_a_head() -> None:
    chart = vc.long_tail(np.array([], dtype=np.int64))
    assert chart.data.empty and len(chart.spec["layer"]) == 1


def test_user_activity_counts_every_active_user_on_a_log_axis_labelled_with_counts() -> None:
    chart = vc.user_activity(np.array([20, 25, 40, 65, 120, 300, 737, 0]))
    assert chart.data["users"].sum() == 7  # the user without interactions has no place on a log axis
    x = chart.spec["encoding"]["x"]
    assert x["scale"]["type"] == "log"
    assert x["axis"] == {"values": [20, 50, 100, 200, 500], "format": ","}
    assert chart.data["range"].iloc[0].startswith("20")
    assert chart.data["from"].iloc[0] == 20 and chart.data["to"].iloc[-1] == 738


def test_no_active_user_gives_an_empty_activity_chart() -> None:
    chart = vc.user_activity(np.zeros(3))
    assert chart.data.empty and chart.title == "User activity"


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"), [(1, 3, [1, 2]), (3, 4, [3, 4]), (1, 1e5, [1, 10, 100, 1000, 10000, 100000])]
)
def test_log_ticks_stay_readable(lo: float, hi: float, ticks: list[int]) -> None:
    assert vc.nice_log_ticks(lo, hi) == ticks


def test_genre_bars_name_every_genre_most_frequent_first() -> None:
    chart = vc.genre_bars(["Drama", "Comedy", "Film-Noir"], [30, 50, 2], what="interactions")
    assert chart.data.to_dict("list") == {"genre": ["Drama", "Comedy", "Film-Noir"], "interactions": [30, 50, 2]}
    y = chart.spec["encoding"]["y"]
    assert y["sort"] == "-x" and y["axis"]["labelOverlap"] is False  # Vega-Lite orders by the bars' length
    assert chart.spec["height"] == 300  # at least 300 px; 22 px a genre beyond


def test_specs_are_plain_json_without_markup() -> None:
    """What reaches the browser is JSON that Vega draws as text: no link channel (``href``) and no expression
    that could build one (``labelExpr``, ``calculate``). Genre names travel as data (Arrow); the bars' names are
    also the colour scale's domain, drawn as legend text."""
    hostile = "<img src=x onerror=alert(1)>"
    charts = [
        vc.rating_histogram(np.array([1.0]), np.array([1])),
        vc.long_tail(np.array([3, 1])),
        vc.user_activity(np.array([1, 2, 3])),
        vc.genre_bars([hostile], [1]),
        vc.metric_bars(pd.DataFrame({"ndcg@10": [0.1]}, index=[hostile]), ["ndcg@10"]),
    ]
    for chart in charts:
        text = json.dumps(chart.spec)
        for risky in ('"href"', "labelExpr", "calculate", '"url"'):
            assert risky not in text, (chart.title, risky)
        if chart.title != "Members and the fusion":
            assert "<" not in text, chart.title
    assert charts[3].data["genre"].tolist() == [hostile]
    assert charts[4].data["model"].tolist() == [hostile]  # drawn as legend text, as written


def test_metric_bars_are_relative_to_the_best_model_per_metric() -> None:
    table = pd.DataFrame({"ndcg@10": [0.2, 0.4, np.nan], "gini@10": [0.5, 0.25, 1.0]}, index=["fusion", "als", "text"])
    chart = vc.metric_bars(table, ["ndcg@10", "gini@10"], members=["als", "text"])
    rows = chart.data.set_index(["model", "metric"])
    # NDCG: higher is better, best 0.4; Gini: lower is better, best 0.25, so 0.25 / value.
    assert rows.loc[("fusion", "NDCG@10"), "shown"] == 0.5 and rows.loc[("als", "NDCG@10"), "shown"] == 1.0
    assert np.isnan(rows.loc[("text", "NDCG@10"), "shown"])  # no value, no bar
    assert rows.loc[("fusion", "Gini@10"), "shown"] == 0.5 and rows.loc[("text", "Gini@10"), "shown"] == 0.25
    assert rows.loc[("fusion", "Gini@10"), "value"] == 0.5  # the hover's actual value
    colour = chart.spec["encoding"]["color"]["scale"]
    assert colour["domain"] == ["fusion", "als", "text"]
    assert colour["range"] == [FUSION_COLOUR, PALETTE[0], PALETTE[1]]  # each member its palette colour
    assert chart.spec["encoding"]["x"]["sort"] == ["NDCG@10", "Gini@10"]


def test_metric_bars_give_plain_values_without_relative() -> None:
    table = pd.DataFrame({"ndcg@10": [0.2, 0.4]}, index=["a", "b"])
    chart = vc.metric_bars(table, ["ndcg@10"], relative=False)
    assert chart.data["shown"].tolist() == [0.2, 0.4] and chart.spec["encoding"]["y"]["title"] == "value"
    assert [t["field"] for t in chart.spec["encoding"]["tooltip"]] == ["model", "metric", "value"]


def test_metric_bars_leave_out_a_metric_whose_best_is_zero_or_below() -> None:
    table = pd.DataFrame(
        {"miscalibration@10": [0.0, 0.2], "pop_gap@10": [-0.5, 0.1], "ndcg@10": [0.0, 0.0]}, index=["a", "b"]
    )
    chart = vc.metric_bars(table, ["miscalibration@10", "pop_gap@10", "ndcg@10"])
    assert chart.data["shown"].isna().all()  # no ratio to the best means anything there
    assert chart.data["value"].tolist() == [0.0, -0.5, 0.0, 0.2, 0.1, 0.0]  # the hover keeps the values


def test_metric_bars_without_rows_draw_an_empty_chart() -> None:
    chart = vc.metric_bars(pd.DataFrame({"ndcg@10": []}), ["ndcg@10"])
    assert chart.data.empty and chart.spec["encoding"]["color"]["scale"]["domain"] == []


def test_the_popular_head_and_its_share() -> None:
    assert vc.popular_head(np.array([1, 5, 0, 3, 1])) == (1, 0.5)  # round(20% of 5) = 1 item: 5 of 10
    assert vc.popular_head(np.array([2, 2, 2, 2, 2, 2, 2, 2, 2, 2]), 0.3) == (3, 0.3)
    assert vc.popular_head(np.zeros(3, dtype=np.int64)) == (1, 0.0)  # no interactions: no share, no division
