"""Trade-offs: every weight vector at once, accuracy against diversity, coverage or novelty.

The sweep is exploratory: it is evaluated on the test users, so reading the best point off it would
overstate what those weights do. The weight search at the bottom runs on a validation split carved from
train (members refitted without it) and only then reports the chosen weights on test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from reco_core import search
from reco_core.errors import RecoError
from reco_core.metrics import METRICS
from ui import charts, lab, page, state, tiles
from ui.upload import plain
from ui.widgets import show_error

PAGE = "tradeoffs"
CHART_KEY = f"{PAGE}:chart"
ACCURACY = ("ndcg", "precision", "recall", "map", "mrr", "hit_rate")
OTHER = ("ild_genre", "ild_text", "coverage", "novelty", "personalisation", "gini", "arp")
STEPS = (0.25, 0.2, 0.1, 0.05)
MAX_SWEEP_POINTS = 300  # about 30 ms each: keep the first sweep within seconds

cfg, current = page.start(
    "Trade-offs",
    "Every weight vector on a grid, fused and evaluated: how much accuracy does diversity, coverage or "
    "novelty cost? Click a point to load its weights into the sidebar.",
    get_lab=lab.get_lab,
)

names = list(current.session.members)
if len(names) < 2:
    st.info("A trade-off needs at least two members: add another member in the sidebar.")
    st.stop()

k = cfg.k


def held_out_per_user(part: Any) -> float:
    """Mean held-out items per user who has any (the users a part evaluates)."""
    counts = part.user_counts()
    counts = counts[counts > 0]
    return float(counts.mean()) if counts.size else 0.0


def weights_text(row: pd.Series) -> str:
    return ", ".join(f"{n} {row[f'w:{n}']:.2f}" for n in names)


def row_weights(row: pd.Series) -> dict[str, float]:
    return {n: float(row[f"w:{n}"]) for n in names}


# ------------------------------------------------------------------ the sweep (exploratory, on test)
st.subheader("The weight sweep")
st.warning(
    "Exploratory: these points are evaluated on the **test** users. Use them to see the shape of the "
    "trade-off; for weights you can report, run the search on validation below.",
    icon=":material/science:",
)
sizes = {s: search.grid_size(len(names), s) for s in STEPS}
# Up to 4 members the whole grid is swept, so only steps with a small grid are offered; with more members
# a large grid is replaced by MAX_SWEEP_POINTS random points (corners and centre included).
if len(names) <= search.GRID_MAX_MEMBERS:
    usable = [s for s in STEPS if sizes[s] <= MAX_SWEEP_POINTS] or [STEPS[0]]
else:
    usable = list(STEPS)


def step_label(s: float) -> str:
    if sizes[s] <= MAX_SWEEP_POINTS or len(names) <= search.GRID_MAX_MEMBERS:
        return f"{s:g} ({sizes[s]} weight vectors)"
    return f"{s:g} (grid of {sizes[s]:,}: {MAX_SWEEP_POINTS} random vectors instead)"


c1, c2, c3 = st.columns(3)
step = c1.selectbox(
    "Grid step",
    usable,
    index=usable.index(0.1) if 0.1 in usable else 0,
    format_func=step_label,
    key=f"{PAGE}:step",
)
try:
    table = lab.sweep(current, cfg, step, max_points=MAX_SWEEP_POINTS)
except RecoError as exc:
    show_error(exc)
    st.stop()

metric_cols = [c for c in table.columns if "@" in c]
acc_keys = [f"{m}@{k}" for m in ACCURACY if f"{m}@{k}" in metric_cols]
other_keys = [f"{m}@{k}" for m in OTHER if f"{m}@{k}" in metric_cols]
y_key = c2.selectbox("Accuracy (vertical)", acc_keys, format_func=charts.metric_label, key=f"{PAGE}:y")
x_key = c3.selectbox("Against (horizontal)", other_keys, format_func=charts.metric_label, key=f"{PAGE}:x")
if tiles.jargon([x_key.partition("@")[0]]):
    st.caption(tiles.jargon([x_key.partition("@")[0]]))

# pareto_front maximises both; a lower-is-better metric (gini, arp) is flipped in a copy first.
oriented = table[[x_key, y_key]].copy()
for key in (x_key, y_key):
    if not charts.higher_is_better(key):
        oriented[key] = -oriented[key]
front = search.pareto_front(oriented, x_key, y_key)
hover = [weights_text(r) for _, r in table.iterrows()]
point = None
now = page.fused(current, cfg, "The chart still shows every weight vector; the star marks the current one.")
if now is not None:
    point = (now.evaluation.value(x_key), now.evaluation.value(y_key))


def load_clicked() -> None:
    """Selection callback: load the clicked point's weights into the sidebar (applied before it is drawn)."""
    event = st.session_state.get(CHART_KEY)
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for p in points:
        data = p.get("customdata")
        row = data[0] if isinstance(data, (list, tuple)) else data
        if row is None:
            continue
        picked = table.iloc[int(row)]
        state.queue_weights(row_weights(picked), notice=f"Weights loaded from the chart: {weights_text(picked)}.")
        return


fig = charts.tradeoff_scatter(table, x_key, y_key, front, hover, current=point)
charts.show(
    fig,
    alt=f"Scatter plot of {charts.metric_label(y_key)} against {charts.metric_label(x_key)} for every weight "
    "vector on the grid, with the Pareto front drawn as a line and the current weights as a star.",
    caption=f"{int(front.sum())} of {len(table)} weight vectors are on the Pareto front: no other vector beats "
    "them on both axes. Click a point to load its weights.",
    key=CHART_KEY,
    on_select=load_clicked,
    selection_mode="points",
)

front_rows = table[front].sort_values(x_key)
labels = {
    int(i): f"{weights_text(r)}  ->  {charts.metric_label(y_key)} {r[y_key]:.4f}, {charts.metric_label(x_key)} "
    f"{r[x_key]:.4f}"
    for i, r in front_rows.iterrows()
}


def load_selected() -> None:
    chosen = st.session_state.get(f"{PAGE}:front_pick")
    if chosen is None:
        return
    picked = table.loc[int(chosen)]
    state.queue_weights(row_weights(picked), notice=f"Weights loaded from the front: {weights_text(picked)}.")


f1, f2 = st.columns([4, 1], vertical_alignment="bottom")
f1.selectbox(
    "Or pick a point of the front",
    list(labels),
    format_func=lambda i: labels[i],
    key=f"{PAGE}:front_pick",
)
f2.button("Load these weights", on_click=load_selected, width="stretch", key=f"{PAGE}:load_front")
with st.expander("The front as a table"):
    shown = front_rows[[*(f"w:{n}" for n in names), y_key, x_key]].rename(
        columns={f"w:{n}": f"weight {n}" for n in names}
        | {y_key: charts.metric_label(y_key), x_key: charts.metric_label(x_key)}
    )
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={c: st.column_config.NumberColumn(format="%.4f") for c in shown.columns},
    )

# ------------------------------------------------------------------ the weight search (validation)
st.subheader("Search the weights on validation")
st.caption(
    f"Members are refitted on train minus a {cfg.protocol.valid_frac:.0%} validation part; the grid is "
    "evaluated there; the best weights are then reported once on test, against the best single member."
)
s1, s2, s3 = st.columns(3)
objective = s1.selectbox("Maximise", acc_keys, format_func=charts.metric_label, key=f"{PAGE}:objective")
search_step = s2.selectbox(
    "Grid step", usable, index=usable.index(step), format_func=step_label, key=f"{PAGE}:search_step"
)
use_floor = s3.toggle("Subject to a floor", key=f"{PAGE}:use_floor")
floor: tuple[Any, ...] | None = None
if use_floor:
    g1, g2 = st.columns(2)
    floor_key = g1.selectbox("On", other_keys, format_func=charts.metric_label, key=f"{PAGE}:floor_metric")
    lower_better = not charts.higher_is_better(floor_key)
    col = table[floor_key]
    floor_value = g2.number_input(
        f"{charts.metric_label(floor_key)} {'at most' if lower_better else 'at least'}",
        value=float(np.round(col.median(), 4)),
        format="%.4f",
        key=f"{PAGE}:floor_value",
        help=f"On the test sweep it ranges from {col.min():.4f} to {col.max():.4f}.",
    )
    floor = (floor_key, "<=", floor_value) if lower_better else (floor_key, ">=", floor_value)

run_key = (current.key, cfg.fusion, objective, search_step, floor)
if st.button("Search weights on validation", type="primary", key=f"{PAGE}:run_search"):
    try:
        valid = lab.validation_lab(cfg)
        bar = st.progress(0.0, text="Searching…")
        with valid.lock, current.lock:
            found = search.optimise(
                valid.session,
                current.session,
                objective,
                floor,
                search_step,
                cfg.method,
                cfg.normaliser,
                max_points=MAX_SWEEP_POINTS,
                seed=cfg.fusion.seed,
                progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m),
                params=cfg.fusion.param_map,
            )
        bar.empty()
        held = {"valid": held_out_per_user(valid.split.valid), "test": held_out_per_user(current.split.test)}
        state.remember(PAGE, "search", {"key": run_key, "result": found, "held": held})
    except RecoError as exc:
        show_error(exc)

saved = state.recall(PAGE, "search")
if saved is not None and saved["key"] == run_key:
    found = saved["result"]
    if found.weights is None:
        show_error(found.message)
    else:
        w = found.weights
        cols = st.columns(len(w))
        for c, (n, v) in zip(cols, w.items(), strict=True):
            c.metric(f"Weight of {n}", f"{v:.2f}")
        sr = found.search
        where = ""
        if sr.bound is not None:
            where = f" with {charts.metric_label(sr.bound[0])} {'≥' if sr.bound[1] == '>=' else '≤'} {sr.bound[2]:g}"
        st.markdown(
            f"**On validation:** the best {charts.metric_label(objective)} is {sr.best_value:.4f}{plain(where)}, "
            f"at the weights above ({sr.n_feasible:,} of {len(sr.table):,} weight vectors "
            f"{'meet the floor' if sr.bound is not None else 'evaluated'}; {plain(sr.strategy)})."
        )
        held = saved.get("held") or {}
        if held:
            st.caption(
                f"Why validation {charts.metric_label(objective)} is lower than on test: the validation part is a "
                f"small slice of each user's training items, {held['valid']:.1f} held-out items per user on "
                f"average against {held['test']:.1f} on test, so there are fewer hits to find in the top "
                f"{cfg.k}. Compare weights with each other on the same part; the test figures below are the ones "
                "to report."
            )
        if found.test is not None:
            test = found.test
            t1, t2 = st.columns(2)
            fused_value = test.evaluation.value(objective)
            best_value = test.best_evaluation.value(objective)
            t1.metric(
                f"Fused {charts.metric_label(objective)} on test",
                f"{fused_value:.4f}",
                **tiles.delta(
                    fused_value,
                    best_value,
                    METRICS[objective.partition("@")[0]].higher_is_better,
                    suffix=f" vs {test.best_member}",
                ),
            )
            t2.metric(f"{test.best_member} alone on test", f"{best_value:.4f}")
            try:
                st.markdown("**Paired test on test users:** " + plain(test.comparison_sentence()))
            except RecoError as exc:
                show_error(exc)

        def load_found() -> None:
            state.queue_weights(w, notice="Weights loaded from the validation search.")

        st.button("Load these weights into the sidebar", on_click=load_found, key=f"{PAGE}:load_search")
elif saved is not None:
    st.caption("The settings changed since the last search: run it again to see weights for these settings.")
