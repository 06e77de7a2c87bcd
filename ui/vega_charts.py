"""Vega-Lite charts where a light chart matters: the Overview's four dataset figures (the first view of every new
session) and the members-against-fusion bars (redrawn at every key press on Fusion Lab, and on Compare); and
``show`` that draws one with its alt text.

Why Vega-Lite here and Plotly elsewhere (issue 14; docs/dashboard.md "What reruns when"):
- A Plotly figure makes a new session's browser fetch and compile Streamlit's 4.7 MB Plotly chunk before anything
  on the page is drawn (every lazily loaded element waits for the slowest); Vega-Lite's is 0.8 MB.
- A Plotly figure redrawn at each key press kept the browser busy about twice as long per press as the page
  without it; Streamlit updates a Vega-Lite chart whose spec is unchanged by swapping its rows.
The other charts (other tabs and pages, drawn once per visit) keep Plotly (``ui.charts``) for its click selections
and richer hover.

Each builder takes plain arrays or a small frame and returns a ``VegaChart``: a data frame, sent to the browser
as Arrow, and a plain Vega-Lite spec. Vega draws every text (labels, legends, tooltips) as text, never as markup.
The specs are plain dicts, not Altair objects: Altair validates a chart against the Vega-Lite schema each time it
is drawn, which every rerun would pay.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ui.charts import FUSION_COLOUR, PALETTE, colour_map, metric_label, relative_to_best

HEAD_COLOUR, ACTIVITY_COLOUR, GENRE_COLOUR = PALETTE[:3]  # Okabe-Ito, as every other chart
HEIGHT = 360  # px, as the Plotly figures on the other pages
HOVER_STRIPS = 100  # the long tail's hover answers for about 1% of the catalogue at a time
MAX_POINTS = 500  # a long-tail curve drawn from at most this many items (and the last): its shape at 450 px


@dataclass(frozen=True)
class VegaChart:
    """One figure: ``data`` (the rows Vega-Lite draws) and ``spec`` (a Vega-Lite spec without data)."""

    data: pd.DataFrame
    spec: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.spec["title"])


def _spec(title: str, height: int = HEIGHT, **parts: Any) -> dict[str, Any]:
    return {"title": title, "height": height, **parts}


def _channel(field: str, title: str, kind: str, **more: Any) -> dict[str, Any]:
    """An encoding channel: the field, its Vega-Lite type and the axis or legend title (and any other property)."""
    return {"field": field, "type": kind, "title": title, **more}


def rating_histogram(values: np.ndarray, counts: np.ndarray) -> VegaChart:
    """A bar per distinct rating value (``values`` with their ``counts``); more than 30 values (implicit
    counts, continuous scores) are put into 30 bins, each drawn over its range."""
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    total = max(float(c.sum()), 1.0)
    tooltip_counts = [
        {"field": "interactions", "type": "quantitative", "title": "interactions", "format": ","},
        {"field": "share", "type": "quantitative", "title": "share", "format": ".1%"},
    ]
    y = _channel("interactions", "interactions", "quantitative")
    if len(v) > 30:
        binned, edges = np.histogram(v, bins=30, weights=c)
        data = pd.DataFrame(
            {"from": edges[:-1], "to": edges[1:], "interactions": binned.astype(np.int64), "share": binned / total}
        )
        encoding = {
            "x": _channel("from", "rating", "quantitative"),
            "x2": {"field": "to"},
            "y": y,
            "tooltip": [
                {"field": "from", "type": "quantitative", "title": "from", "format": ".3g"},
                {"field": "to", "type": "quantitative", "title": "to", "format": ".3g"},
                *tooltip_counts,
            ],
        }
        mark: dict[str, Any] = {"type": "rect", "color": FUSION_COLOUR, "stroke": "white", "strokeWidth": 0.5}
    else:
        data = pd.DataFrame({"rating": v, "interactions": c.astype(np.int64), "share": c / total})
        encoding = {
            # Ordinal: one bar per value present, labelled as written (1, 2, ... or 0.5, 1, 1.5, ...).
            "x": _channel("rating", "rating", "ordinal", axis={"labelAngle": 0}),
            "y": y,
            "tooltip": [{"field": "rating", "type": "quantitative", "title": "rating"}, *tooltip_counts],
        }
        mark = {"type": "bar", "color": FUSION_COLOUR}
    return VegaChart(data, _spec("Ratings", mark=mark, encoding=encoding))


def long_tail(item_counts: np.ndarray, head_share: float = 0.2) -> VegaChart:
    """Items sorted by popularity, most popular first; the head (``head_share`` of the items) shaded and named
    with its share of the interactions. Hovering the curve tells the ranks under the pointer, their counts and the
    share of interactions the items up to there hold."""
    c = np.sort(np.asarray(item_counts, dtype=np.int64))[::-1]
    n = len(c)
    cum = np.cumsum(c) / max(int(c.sum()), 1)
    step = max(1, -(-n // MAX_POINTS))  # ceil: at most MAX_POINTS points, and the last item kept as well
    keep = np.unique(np.r_[np.arange(0, n, step), n - 1]) if n else np.arange(0)
    data = pd.DataFrame({"rank": keep + 1, "interactions": c[keep]})
    x = _channel("rank", "items, most popular first", "quantitative", scale={"domain": [0.5, max(n, 1) + 0.5]})
    curve: dict[str, Any] = {
        "mark": {"type": "area", "color": FUSION_COLOUR, "opacity": 0.35, "line": {"color": FUSION_COLOUR}},
        "encoding": {"x": x, "y": _channel("interactions", "interactions", "quantitative")},
    }
    layers = [curve]
    if n:
        head, held = popular_head(c, head_share)
        layers = [_head_shade(head), curve, _hover_strips(c, cum), _head_note(head, held, head_share, int(c[0]))]
    return VegaChart(data, _spec("Long tail of item popularity", layer=layers))


def popular_head(item_counts: np.ndarray, head_share: float = 0.2) -> tuple[int, float]:
    """How many items form the popular head (``head_share`` of the catalogue, at least one) and the share of all
    interactions they hold: the long tail's note, and the Overview's caption under it."""
    c = np.sort(np.asarray(item_counts, dtype=np.int64))[::-1]
    head = max(1, round(head_share * len(c)))
    return head, float(c[:head].sum() / max(int(c.sum()), 1))


def _head_shade(head: int) -> dict[str, Any]:
    return {
        "data": {"values": [{"from": 0.5, "to": head + 0.5}]},
        "mark": {"type": "rect", "color": HEAD_COLOUR, "opacity": 0.12},
        "encoding": {"x": {"field": "from", "type": "quantitative"}, "x2": {"field": "to"}},
    }


def _head_note(head: int, held: float, head_share: float, top: int) -> dict[str, Any]:
    return {
        "data": {"values": [{"x": head, "y": top}]},
        "mark": {"type": "text", "align": "left", "baseline": "top", "dx": 4, "dy": 4},
        "encoding": {
            "x": {"field": "x", "type": "quantitative"},
            "y": {"field": "y", "type": "quantitative"},
            "text": {"value": f"top {head_share:.0%} of items: {held:.0%} of interactions"},
        },
    }


def _hover_strips(c: np.ndarray, cum: np.ndarray) -> dict[str, Any]:
    """The curve's hover: up to ``HOVER_STRIPS`` invisible full-height strips of consecutive ranks, each telling
    its ranks, their interactions and the share the items up to its last rank hold. (An area is one mark with
    one datum, and Vega-Lite's nearest-point hover builds a Voronoi diagram that cost the first view 150 ms.)"""
    n = len(c)
    bounds = np.unique(np.linspace(0, n, min(n, HOVER_STRIPS) + 1).round().astype(np.int64))
    strips = [
        {
            "from": int(a) + 0.5,
            "to": int(b) + 0.5,
            "ranks": f"{a + 1:,}" if b - a == 1 else f"{a + 1:,}-{b:,}",
            "each": f"{c[a]:,}" if c[a] == c[b - 1] else f"{c[a]:,}-{c[b - 1]:,}",
            "held": float(cum[b - 1]),
        }
        for a, b in itertools.pairwise(bounds)
    ]
    return {
        "data": {"values": strips},
        "mark": {"type": "rect", "color": "white", "opacity": 0},
        "encoding": {
            "x": {"field": "from", "type": "quantitative"},
            "x2": {"field": "to"},
            "tooltip": [
                {"field": "ranks", "type": "nominal", "title": "items ranked"},
                {"field": "each", "type": "nominal", "title": "interactions each"},
                {"field": "held", "type": "quantitative", "title": "share held up to this rank", "format": ".1%"},
            ],
        },
    }


def user_activity(user_counts: np.ndarray) -> VegaChart:
    """Histogram of interactions per user over log-spaced bins (activity is heavy-tailed), on a log axis
    labelled 1-2-5 with counts."""
    c = np.asarray(user_counts, dtype=np.float64)
    c = c[c > 0]
    x_title = "interactions per user (log scale)"
    y = _channel("users", "users", "quantitative")
    if len(c) == 0:
        empty = pd.DataFrame({"from": [], "to": [], "users": [], "range": []})
        encoding = {"x": _channel("from", x_title, "quantitative"), "x2": {"field": "to"}, "y": y}
        return VegaChart(empty, _spec("User activity", mark={"type": "rect"}, encoding=encoding))
    edges = np.unique(np.round(np.geomspace(max(c.min(), 1), c.max() + 1, 30)))
    counts, edges = np.histogram(c, bins=edges)
    labels = [f"{int(a)}-{int(b) - 1}" if b - a > 1 else f"{int(a)}" for a, b in itertools.pairwise(edges)]
    data = pd.DataFrame({"from": edges[:-1], "to": edges[1:], "users": counts.astype(np.int64), "range": labels})
    ticks = nice_log_ticks(float(edges[0]), float(edges[-1]))
    x = _channel(
        "from",
        x_title,
        "quantitative",
        scale={"type": "log", "domain": [float(edges[0]), float(edges[-1])]},
        # The default log axis labels every minor tick; 1-2-5 ticks read as counts.
        axis={"values": ticks, "format": ","},
    )
    encoding = {
        "x": x,
        "x2": {"field": "to"},
        "y": y,
        "tooltip": [
            {"field": "range", "type": "nominal", "title": "interactions"},
            {"field": "users", "type": "quantitative", "title": "users", "format": ","},
        ],
    }
    mark = {"type": "rect", "color": ACTIVITY_COLOUR, "stroke": "white", "strokeWidth": 1}
    return VegaChart(data, _spec("User activity", mark=mark, encoding=encoding))


def nice_log_ticks(lo: float, hi: float) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... between ``lo`` and ``hi`` (the two ends, rounded, when fewer than two fall inside)."""
    lo, hi = max(lo, 1.0), max(hi, 1.0)
    out = [
        int(m * 10**e) for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1) for m in (1, 2, 5)
    ]
    inside = [v for v in out if lo <= v <= hi]
    if len(inside) > 9:  # more than three decades: powers of ten only, or the labels collide
        inside = [v for v in inside if str(v).rstrip("0") == "1"]
    return inside if len(inside) >= 2 else [round(lo), round(hi)]


def genre_bars(names: Sequence[str], counts: Sequence[int], what: str = "items") -> VegaChart:
    """Horizontal bars, the most frequent genre on top."""
    data = pd.DataFrame({"genre": [str(n) for n in names], what: [int(x) for x in counts]})
    encoding = {
        "x": _channel(what, what, "quantitative"),
        # Every genre named: Vega-Lite otherwise drops every other label when they come close.
        "y": _channel("genre", "genre", "nominal", sort="-x", axis={"labelOverlap": False, "labelLimit": 200}),
        "tooltip": [
            {"field": "genre", "type": "nominal", "title": "genre"},
            {"field": what, "type": "quantitative", "title": what, "format": ","},
        ],
    }
    spec = _spec(
        "Genres", height=max(300, 22 * len(data) + 80), mark={"type": "bar", "color": GENRE_COLOUR}, encoding=encoding
    )
    return VegaChart(data, spec)


def metric_bars(
    table: pd.DataFrame,
    keys: Sequence[str],
    title: str = "Members and the fusion",
    relative: bool = True,
    members: Sequence[str] = (),
) -> VegaChart:
    """Grouped bars: one group per metric (``keys``, in their order), one bar per row of ``table`` (index = model
    or configuration names, columns = keys), each name in its ``colour_map`` colour (``members`` keep theirs).

    With ``relative`` each metric is divided by its best value over the rows (``charts.relative_to_best``), so
    metrics on different scales (novelty is in bits) share one axis; the hover gives the actual value.
    """
    names = [str(n) for n in table.index]
    colours = colour_map(list(table.index), members)
    labels = [metric_label(k) for k in keys]
    raw = np.array(
        [[float(table.loc[n, k]) if k in table.columns else np.nan for k in keys] for n in table.index], dtype=float
    ).reshape(len(table.index), len(keys))  # two-dimensional even without rows
    shown = relative_to_best(raw, keys) if relative else raw
    data = pd.DataFrame(
        {
            "model": np.repeat(names, len(keys)),
            "metric": np.tile(labels, len(names)),
            "shown": shown.ravel(),
            "value": raw.ravel(),
        }
    )
    tooltip = [
        {"field": "model", "type": "nominal", "title": "model"},
        {"field": "metric", "type": "nominal", "title": "metric"},
        {"field": "value", "type": "quantitative", "title": "value", "format": ".4f"},
    ]
    if relative:
        tooltip.append({"field": "shown", "type": "quantitative", "title": "relative to the best", "format": ".3f"})
    encoding = {
        "x": _channel(
            "metric",
            "metric (mean over users; coverage is over all lists)",
            "nominal",
            sort=labels,
            # Slanted and all shown: level labels dropped every other metric on a laptop-width window.
            axis={"labelAngle": -30, "labelOverlap": False},
        ),
        "xOffset": {"field": "model", "type": "nominal", "sort": names},
        "y": _channel("shown", "relative to the best model (best = 1)" if relative else "value", "quantitative"),
        "color": {
            "field": "model",
            "type": "nominal",
            "sort": names,
            "scale": {"domain": names, "range": [colours[n] for n in table.index]},
            "legend": {"title": None, "orient": "top", "labelLimit": 240},
        },
        "tooltip": tooltip,
    }
    return VegaChart(data, _spec(title, height=420, mark={"type": "bar"}, encoding=encoding))


def show(chart: VegaChart, alt: str, caption: str | None = None) -> None:
    """Draw ``chart`` across its container with an accessible description (``alt``) and an optional caption."""
    import streamlit as st

    st.vega_lite_chart(chart.data, chart.spec, width="stretch", alt=alt)
    if caption:
        st.caption(caption)
