"""Plotly figure builders for the dashboard's analysis pages, and ``show()`` that draws one with its alt text.
The Overview's dataset figures and the members-vs-fusion bars are Vega-Lite charts (``ui.vega_charts``).

Each builder takes plain arrays or small frames (never CSR matrices) and returns a figure with a title,
axis labels and hover text. Figures stay light (no per-user scatter of thousands of points where a
histogram says the same), so a rerun after a slider move stays fast.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from reco_core.metrics import METRICS

# One colour per series, colour-blind safe (Okabe-Ito); the fusion is always drawn in the first.
FUSION_COLOUR = "#0072B2"
PALETTE = ("#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999", "#000000")
FUSION_NAME = "fusion"
_LAYOUT = dict(margin=dict(l=10, r=10, t=50, b=10), hoverlabel=dict(namelength=-1), legend_title_text="")


def colour_map(names: Sequence[str], members: Sequence[str] = ()) -> dict[str, str]:
    """Stable colours: the fusion blue; each of ``members`` the palette colour of its position there, so a
    member keeps its colour in a chart that shows only some of them; other series take the next free colours
    in the order given."""
    member_pos = {m: i for i, m in enumerate(members)}
    out, i = {}, len(members)
    for n in names:
        if n == FUSION_NAME:
            out[n] = FUSION_COLOUR
        elif n in member_pos:
            out[n] = PALETTE[member_pos[n] % len(PALETTE)]
        else:
            out[n] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def metric_label(key: str) -> str:
    """ "ndcg@10" -> "NDCG@10" using the metric registry's label."""
    name, _, k = key.partition("@")
    spec = METRICS.get(name)
    label = spec.label if spec is not None else name
    return f"{label}@{k}" if k else label


def higher_is_better(key: str) -> bool:
    spec = METRICS.get(key.partition("@")[0])
    return True if spec is None else spec.higher_is_better


def plotly_text(value: object) -> str:
    """A name or label as Plotly should show it: escaped, since Plotly renders a few HTML tags (``<b>``, ``<i>``,
    ``<a href>``, ``<br>``) in trace names, axis labels and hover text, and names may come from a person's file
    (genres, saved-configuration names, a run file's member)."""
    return html.escape(str(value))


def _hover_text(value: object) -> str:
    """``plotly_text`` for a hover template, where Plotly would also substitute a ``%{...}``."""
    return plotly_text(value).replace("%{", "&#37;{")


def _finish(fig: go.Figure, title: str, x: str, y: str, height: int = 360) -> go.Figure:
    fig.update_layout(title=dict(text=title), xaxis_title=x, yaxis_title=y, height=height, **_LAYOUT)
    return fig


# ------------------------------------------------------------------------------------------ fusion lab


def relative_to_best(raw: np.ndarray, keys: Sequence[str]) -> np.ndarray:
    """Each column of ``raw`` (rows = models, one column per metric key) divided by its best value: the best model
    is 1.0; for a lower-is-better metric the best is the lowest and the others are best / value. A column with no
    finite value, or whose best is zero or below (a miscalibration of 0, a negative popularity gap), is NaN: no
    ratio to the best means anything there, and the table beside the chart gives the values."""
    shown = np.full(raw.shape, np.nan)
    for j, key in enumerate(keys):
        col = raw[:, j]
        if not np.isfinite(col).any():
            continue
        best = np.nanmax(col) if higher_is_better(key) else np.nanmin(col)
        if not (np.isfinite(best) and best > 0):
            continue
        if higher_is_better(key):
            shown[:, j] = col / best
        else:
            shown[:, j] = np.where(col > 0, best / np.where(col > 0, col, 1), np.nan)
    return shown


def per_user_distribution(values: Mapping[str, np.ndarray], key: str, members: Sequence[str] = ()) -> go.Figure:
    """Overlaid histograms of one per-user metric for a few series (e.g. fusion vs best member); ``members``
    as in ``colour_map``."""
    colours = colour_map(list(values), members)
    fig = go.Figure()
    all_vals = np.concatenate([np.asarray(v, dtype=np.float64) for v in values.values()]) if values else np.zeros(0)
    hi = float(np.nanmax(all_vals)) if all_vals.size else 1.0
    size = hi / 25 if hi > 0 else 0.04
    for name, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        label = plotly_text(name)
        fig.add_trace(
            go.Histogram(
                x=v,
                name=f"{label} (mean {np.nanmean(v):.3f})" if v.size else label,
                marker_color=colours[name],
                opacity=0.6,
                xbins=dict(start=0, end=hi + size, size=size),
                hovertemplate=_hover_text(name) + "<br>%{x}: %{y:,} users<extra></extra>",
            )
        )
    fig.update_layout(barmode="overlay")
    return _finish(fig, f"Per-user {metric_label(key)}", metric_label(key), "users")


def per_user_difference(diff: np.ndarray, key: str, best: str, higher_is_better: bool = True) -> go.Figure:
    """A paired view of one per-user metric: each user's fused value minus the best member's, as a histogram
    whose bars are coloured by what the difference means (better, the same, worse for that user); the
    legend counts the users in each. Users with no change get one bar at zero of their own."""
    d = np.asarray(diff, dtype=np.float64)
    d = d[np.isfinite(d)]
    same = np.abs(d) < 1e-12
    better = (d > 0) if higher_is_better else (d < 0)
    worse = ~same & ~better
    hi = float(np.max(np.abs(d))) if d.size else 1.0
    hi = hi if hi > 0 else 1.0
    edges = np.linspace(-hi, hi, 41)
    width = float(edges[1] - edges[0])
    mids = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    groups = (
        ("better with the fusion", better, FUSION_COLOUR),
        ("no change", same, "#999999"),
        (f"better with {best}", worse, "#D55E00"),
    )
    for name, mask, colour in groups:
        n = int(mask.sum())
        if name == "no change":
            x, y = np.array([0.0]), np.array([n])
        else:
            y, _ = np.histogram(d[mask], bins=edges)
            x = mids
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                width=width * 0.95,
                name=f"{plotly_text(name)}: {n:,} users",
                marker_color=colour,
                hovertemplate=_hover_text(name) + "<br>difference %{x:+.3f}: %{y:,} users<extra></extra>",
            )
        )
    fig.update_layout(barmode="overlay", bargap=0)
    label = metric_label(key)
    return _finish(fig, f"Per-user {label}: fused minus {plotly_text(best)}", f"difference in {label}", "users")


def overlap_heatmap(matrix: np.ndarray, names: Sequence[str], k: int) -> go.Figure:
    """Mean Jaccard overlap between members' top-k lists (1 on the diagonal)."""
    m = np.asarray(matrix, dtype=np.float64)
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=[plotly_text(n) for n in names],
            y=[plotly_text(n) for n in names],
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=np.round(m, 2),
            texttemplate="%{text}",
            hovertemplate="%{y} vs %{x}: mean overlap %{z:.2f}<extra></extra>",
            colorbar=dict(title="overlap"),
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _finish(fig, f"Overlap of members' top-{k} lists (mean Jaccard)", "member", "member")


def share_bars(shares: Mapping[str, float], title: str) -> go.Figure:
    names = list(shares)
    colours = colour_map(names)
    fig = go.Figure(
        go.Bar(
            x=[plotly_text(n) for n in names],
            y=[shares[n] for n in names],
            marker_color=[colours[n] for n in names],
            hovertemplate="%{x}: %{y:.1%}<extra></extra>",
        )
    )
    fig.update_yaxes(tickformat=".0%")
    return _finish(fig, title, "member", "share of slots")


def segment_bars(
    frame: pd.DataFrame,
    key: str,
    title: str | None = None,
    y_label: str | None = None,
    n_label: str = "users",
    x_label: str = "segment",
    members: Sequence[str] = (),
) -> go.Figure:
    """Grouped bars of one value by segment: ``frame`` columns segment, series, value (and optional n);
    ``members`` as in ``colour_map``."""
    series = list(dict.fromkeys(frame["series"]))
    colours = colour_map(series, members)
    fig = go.Figure()
    for s in series:
        part = frame[frame["series"] == s]
        n = part["n"] if "n" in part.columns else pd.Series([np.nan] * len(part))
        fig.add_trace(
            go.Bar(
                name=plotly_text(s),
                x=[plotly_text(g) for g in part["segment"]],  # genre segments come from a person's file
                y=part["value"],
                marker_color=colours[s],
                customdata=np.asarray(n),
                hovertemplate=f"{_hover_text(s)}<br>"
                + "%{x}: %{y:.4f}"
                + ("<br>%{customdata:,} " + n_label if "n" in part else "")
                + "<extra></extra>",
            )
        )
    fig.update_layout(barmode="group")
    label = metric_label(key)
    return _finish(fig, title or f"{label} by segment", x_label, y_label or label)


# ------------------------------------------------------------------------------------------ user explorer


def contribution_bars(slots: Sequence[str], contributions: np.ndarray, members: Sequence[str], title: str) -> go.Figure:
    """Stacked horizontal bars: for each fused slot (top first), each member's part of its fused score. ``slots``
    are drawn as given: the caller escapes them (``plotly_text``), as the explorer's slot labels are built there."""
    c = np.asarray(contributions, dtype=np.float64)
    colours = colour_map(list(members))
    fig = go.Figure()
    for j, m in enumerate(members):
        fig.add_trace(
            go.Bar(
                name=plotly_text(m),
                y=list(slots),
                x=c[:, j],
                orientation="h",
                marker_color=colours[m],
                hovertemplate=f"{_hover_text(m)}<br>" + "%{y}<br>contribution %{x:.3f}<extra></extra>",
            )
        )
    # Plotly lists a stacked trace legend bottom-up; "normal" keeps it in member order, as in every other chart.
    fig.update_layout(barmode="stack", legend_traceorder="normal")
    fig.update_yaxes(autorange="reversed")
    return _finish(fig, title, "contribution to the fused score", "", height=max(300, 28 * len(slots) + 100))


def score_curves(curves: Mapping[str, np.ndarray], title: str, y_label: str) -> go.Figure:
    """One line per member: its scores for one user over the catalogue, sorted high to low."""
    colours = colour_map(list(curves))
    fig = go.Figure()
    for name, v in curves.items():
        v = np.asarray(v, dtype=np.float64)
        v = np.sort(v[np.isfinite(v)])[::-1]
        step = max(1, len(v) // 500)
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(v) + 1)[::step],
                y=v[::step],
                mode="lines",
                name=plotly_text(name),
                line=dict(color=colours[name]),
                hovertemplate=f"{_hover_text(name)}<br>" + "rank %{x:,}: %{y:.4f}<extra></extra>",
            )
        )
    return _finish(fig, title, "items, best first", y_label)


# ------------------------------------------------------------------------------------------ trade-offs


def tradeoff_scatter(
    frame: pd.DataFrame,
    x: str,
    y: str,
    front: np.ndarray,
    hover: Sequence[str],
    current: tuple[float, float] | None = None,
) -> go.Figure:
    """Every weight vector as a point (x metric vs y metric); the Pareto front drawn and marked.

    ``front`` is a boolean mask over rows; ``hover`` one text per row (the weights). Points carry their
    row number in ``customdata`` so a click can be mapped back to the weights.
    """
    f = np.asarray(front, dtype=bool)
    rows = np.arange(len(frame))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=frame[x][~f],
            y=frame[y][~f],
            mode="markers",
            name="weight vectors",
            marker=dict(color="#999999", size=7, opacity=0.6),
            customdata=rows[~f],
            text=[hover[i] for i in rows[~f]],
            hovertemplate="%{text}<br>" + f"{metric_label(x)} " + "%{x:.4f}<br>" + f"{metric_label(y)} " + "%{y:.4f}"
            "<extra></extra>",
        )
    )
    order = rows[f][np.argsort(frame[x].to_numpy()[f])]
    fig.add_trace(
        go.Scatter(
            x=frame[x].to_numpy()[order],
            y=frame[y].to_numpy()[order],
            mode="lines+markers",
            name="Pareto front",
            marker=dict(color=FUSION_COLOUR, size=10, symbol="diamond"),
            line=dict(color=FUSION_COLOUR),
            customdata=order,
            text=[hover[i] for i in order],
            hovertemplate="<b>Pareto front</b><br>%{text}<br>"
            + f"{metric_label(x)} "
            + "%{x:.4f}<br>"
            + f"{metric_label(y)} "
            + "%{y:.4f}<extra></extra>",
        )
    )
    if current is not None:
        fig.add_trace(
            go.Scatter(
                x=[current[0]],
                y=[current[1]],
                mode="markers",
                name="current weights",
                marker=dict(color="#D55E00", size=14, symbol="star"),
                hovertemplate="current weights<extra></extra>",
            )
        )
    return _finish(fig, f"{metric_label(y)} against {metric_label(x)}", metric_label(x), metric_label(y), height=460)


# ------------------------------------------------------------------------------------------ drawing


def show(fig: go.Figure, alt: str, caption: str | None = None, **kwargs: Any) -> Any:
    """Draw ``fig`` with an accessible description (``alt``) and an optional visible caption.

    Extra keyword arguments go to ``st.plotly_chart`` (``key``, ``on_select``, ``selection_mode``...);
    its return value is returned (the selection state when ``on_select`` is set).
    """
    import streamlit as st

    out = st.plotly_chart(fig, alt=alt, width="stretch", config={"displaylogo": False}, **kwargs)
    if caption:
        st.caption(caption)
    return out
