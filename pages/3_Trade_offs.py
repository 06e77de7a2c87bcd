"""Trade-offs: every weight vector at once, accuracy against diversity, coverage or novelty.

The sweep is exploratory: it is evaluated on the test users, so reading the best point off it would
overstate what those weights do. The weight search at the bottom runs on a validation split carved from
train (members refitted without it) and only then reports the chosen weights on test, against every member
(Holm's correction over one paired test per member). Below it, the same search per user segment (light,
medium, heavy by training history length; ``reco_core.segments``) against one global set of weights, with
Holm's correction over the test on all users and one per segment; its result is kept in the shared sweep
store, so every session on the same configuration and settings sees it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from reco_core import search, segments, stats
from reco_core.errors import RecoError
from reco_core.metrics import METRICS
from reco_core.stats import PairedComparison, paired_comparison
from ui import cached, charts, lab, page, state, tests_table, tiles
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
    # The sweep and the searches fuse without the re-ranker (re-ranking every grid point would multiply their
    # cost): the star is the current weights' fused list before it, so it sits on the same cloud.
    before = lab.fused_evaluation(current, now)
    point = (before.value(x_key), before.value(y_key))
if cfg.rerank is not None:
    st.info(
        "The sweep and the weight searches on this page fuse without the re-ranker"
        f" ({state.reranker_label(cfg.rerank.method)}), and"
        " the star marks the current weights before it; the Fusion Lab shows the re-ranked list.",
        icon=":material/info:",
    )


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


def against_members(test: Any, key: str) -> dict[str, PairedComparison]:
    """The searched weights on test against every member alone (paired, per user), keyed by member; the best
    member's comparison is the one the report states first. Empty for a metric without per-user values."""
    if key not in test.evaluation.per_user:
        return {}
    out: dict[str, PairedComparison] = {}
    with current.lock:
        for n in names:
            if n == test.best_member:
                out[n] = test.compare(key)
            else:
                alone = current.session.member_evaluation(n, int(key.partition("@")[2]))
                out[n] = paired_comparison(alone.per_user[key], test.evaluation.per_user[key], metric=key)
    return out


def show_member_tests(test: Any, key: str, members: dict[str, PairedComparison]) -> None:
    """The paired test against the best member in words; with several members, Holm's correction over one test
    per member next to its p, and the table of all of them."""
    best = test.best_member
    head = test.compare(key) if best not in members else members[best]
    if len(members) < 2:
        st.markdown("**Paired test on test users:** " + plain(head.sentence(best, "fused")))
        return
    table = stats.comparison_table(members)
    row = table.set_index("comparison").loc[best]
    m = len(table)
    sentence = head.sentence(best, "fused", row["p (Holm)"], m)
    st.markdown(f"**Paired test on test users** (one test per member): {plain(sentence)}")
    with st.expander(f"Fused against each of the {m} members on test"):
        label = charts.metric_label(key)
        tests_table.show(tests_table.frame(table, "member", f"{label}, member alone", f"{label}, fused"))
        st.caption(tests_table.caption(m, "the fused list against each member alone"))


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
        members = against_members(found.test, objective) if found.test is not None else {}
        state.remember(PAGE, "search", {"key": run_key, "result": found, "held": held, "members": members})
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
        if sr.floor is not None:
            where = f" with {charts.metric_label(sr.floor[0])} {'≥' if sr.floor[1] == '>=' else '≤'} {sr.floor[2]:g}"
        st.markdown(
            # plain() trims the text it escapes, so the space before "with" stays outside it.
            f"**On validation:** the best {charts.metric_label(objective)} is {sr.best_value:.4f}"
            f"{' ' + plain(where) if where else ''}, "
            f"at the weights above ({sr.n_feasible:,} of {len(sr.table):,} weight vectors "
            f"{'meet the floor' if sr.floor is not None else 'evaluated'}; {plain(sr.strategy)})."
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
                show_member_tests(test, objective, saved.get("members") or {})
            except RecoError as exc:
                show_error(exc)

        def load_found() -> None:
            state.queue_weights(w, notice="Weights loaded from the validation search.")

        st.button("Load these weights into the sidebar", on_click=load_found, key=f"{PAGE}:load_search")
elif saved is not None:
    st.caption("The settings changed since the last search: run it again to see weights for these settings.")

# ------------------------------------------------------------------ weights per user segment (validation)
st.subheader("Weights per user segment")
st.caption(
    "The same search run separately for light, medium and heavy users (cut by the number of training "
    "interactions), so a user with a short history can lean on other members than a heavy user. Each segment "
    "takes the weights that do best for its own users on validation; on test every user gets their segment's "
    "weights, compared, user by user, with the one global set of weights the same validation run chose."
)
SEGMENTS = segments.SEGMENT_NAMES
try:
    tercile_cuts = segments.history_segments(current.session.train.user_counts(), current.session.users)[1]
except RecoError as exc:
    show_error(exc)
    st.stop()
g1, g2, g3 = st.columns(3)
seg_objective = g1.selectbox("Maximise", acc_keys, format_func=charts.metric_label, key=f"{PAGE}:seg_objective")
seg_step = g2.selectbox("Grid step", usable, index=usable.index(step), format_func=step_label, key=f"{PAGE}:seg_step")
own_cuts = g3.toggle(
    "Set the segment thresholds",
    key=f"{PAGE}:seg_own",
    help=f"Off: the terciles of the test users' training history lengths (light at most "
    f"{int(np.floor(tercile_cuts[0]))}, medium at most {int(np.floor(tercile_cuts[1]))} training interactions).",
)
thresholds: tuple[float, float] | None = None
if own_cuts:
    h1, h2 = st.columns(2)
    cut1 = h1.number_input(
        "Light users: at most this many training interactions",
        min_value=0,
        value=int(np.floor(tercile_cuts[0])),
        step=1,
        key=f"{PAGE}:seg_t1",
    )
    cut2 = h2.number_input(
        "Medium users: at most this many (heavy users: more)",
        min_value=0,
        value=int(np.floor(tercile_cuts[1])),
        step=1,
        key=f"{PAGE}:seg_t2",
    )
    thresholds = (float(cut1), float(cut2))

# Shared by every session on this server (the sweep store: small tables, bounded); the key holds everything the
# search reads: the lab (protocol and members), the fusion, the metric, the grid and the thresholds.
seg_key = ("segments", current.key, cfg.fusion, seg_objective, float(seg_step), thresholds, MAX_SWEEP_POINTS)
seg_store = cached.store("sweep")


def segment_search() -> dict[str, Any]:
    """Run the per-segment search (progress bar while it runs) and its paired tests on test."""
    valid = lab.validation_lab(cfg)
    bar = st.progress(0.0, text="Searching the weights of each segment…")
    try:
        with valid.lock, current.lock:
            found = segments.search_segment_weights(
                valid.session,
                current.session,
                seg_objective,
                seg_step,
                cfg.method,
                cfg.normaliser,
                thresholds,
                max_points=MAX_SWEEP_POINTS,
                seed=cfg.fusion.seed,
                params=cfg.fusion.param_map,
                progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=f"Per-segment search: {m}"),
            )
    finally:
        bar.empty()
    # One test over all test users, then one per segment on its own users: Holm's correction over all of them.
    return {"result": found, "tests": found.tests()}


if st.button("Search weights per segment on validation", key=f"{PAGE}:run_segments"):
    try:
        seg_store.get_or_build(seg_key, segment_search)
        state.remember(PAGE, "segments_key", seg_key)
    except RecoError as exc:
        show_error(exc)


def segment_rows(found: segments.SegmentWeights) -> pd.DataFrame:
    """One row per segment, then the global weights: users, each member's weight, validation and test means."""
    label = charts.metric_label(found.metric)
    valid_means = found.validation.set_index("segment")
    valid_users = valid_means["users (validation)"]
    rows = []
    for s, name in enumerate(SEGMENTS):
        mask = found.test_segments == s
        rows.append(
            {
                "segment": name,
                "users (test)": int(mask.sum()),
                "users (validation)": int(valid_users[name]),
                **{f"weight {m}": w for m, w in found.weights[name].items()},
                f"{label} on validation": finite_or_nan(valid_means.loc[name, f"{found.metric} (segment weights)"]),
                f"{label} on test": float(found.test_per_user[mask].mean()) if mask.any() else np.nan,
                f"{label} on test, global weights": float(found.test_global_per_user[mask].mean())
                if mask.any()
                else np.nan,
            }
        )
    # The global weights' validation mean over all users: the segments' means weighted by their users.
    global_valid = valid_means[f"{found.metric} (global weights)"].to_numpy(dtype=np.float64)
    n_valid = valid_users.to_numpy(dtype=np.float64)
    finite = np.isfinite(global_valid) & (n_valid > 0)
    rows.append(
        {
            "segment": "global (everyone)",
            "users (test)": int(found.test_segments.size),
            "users (validation)": int(n_valid.sum()),
            **{f"weight {m}": w for m, w in found.global_weights.items()},
            f"{label} on validation": float((global_valid[finite] * n_valid[finite]).sum() / n_valid[finite].sum())
            if finite.any()
            else np.nan,
            f"{label} on test": float(found.test_global_per_user.mean()),
            f"{label} on test, global weights": float(found.test_global_per_user.mean()),
        }
    )
    return pd.DataFrame(rows)


def thresholds_words(found: segments.SegmentWeights, own: bool) -> str:
    # Histories are whole numbers, so a tercile such as 33.3 cuts where 33 does.
    t1, t2 = (int(np.floor(t)) for t in found.thresholds)
    source = "the thresholds you set" if own else "the terciles of the test users' history lengths"
    n = found.segment_sizes
    medium = f"{t1 + 1} to {t2}" if t2 > t1 else "none (the two thresholds are equal)"
    return (
        f"Segments by training history length ({source}): light users have at most {t1} training interactions "
        f"({n['light']:,} test users); medium users {medium} ({n['medium']:,}); heavy users more than {t2} "
        f"({n['heavy']:,})."
    )


def finite_or_nan(x: float) -> float:
    # A segment with no validation users has no mean (the engine keeps -inf there).
    return float(x) if np.isfinite(x) else np.nan


def load_segment(name: str, weights: dict[str, float]) -> None:
    state.queue_weights(weights, notice=f"Weights loaded from the per-segment search: the {name} weights.")


saved_seg = seg_store.get(seg_key)
if saved_seg is not None:
    found_seg: segments.SegmentWeights = saved_seg["result"]
    seg_label = charts.metric_label(found_seg.metric)
    st.markdown(plain(thresholds_words(found_seg, thresholds is not None)))
    rows = segment_rows(found_seg)
    weight_cols = [f"weight {m}" for m in found_seg.global_weights]
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config={
            **{c: st.column_config.NumberColumn(format="%.2f") for c in weight_cols},
            **{c: st.column_config.NumberColumn(format="%.4f") for c in rows.columns if c.startswith(seg_label)},
        },
    )
    bars = pd.DataFrame(
        [
            {"segment": r["segment"], "series": m, "value": r[f"weight {m}"], "n": r["users (test)"]}
            for _, r in rows.iterrows()
            for m in found_seg.global_weights
        ]
    )
    charts.show(
        charts.segment_bars(
            bars, "weight", title="Weights chosen per segment", y_label="weight", members=list(found_seg.global_weights)
        ),
        alt="Grouped bar chart of each member's weight in the light, medium and heavy segments and in the global "
        "weights; values: "
        + "; ".join(
            f"{r['segment']}: " + ", ".join(f"{m} {r[f'weight {m}']:.2f}" for m in found_seg.global_weights)
            for _, r in rows.iterrows()
        ),
    )
    tests: dict[str, PairedComparison] = saved_seg["tests"]
    overall = found_seg.comparison.sentence("global weighting", "per-segment weighting")
    if len(tests) > 1:
        table = stats.comparison_table(tests)
        first = table.iloc[0]
        m = len(table)
        overall = found_seg.comparison.sentence("global weighting", "per-segment weighting", first["p (Holm)"], m)
        overall += " (the tests: all users, then each segment)"
    st.markdown(f"**Per-segment against global weights, on test {plain(seg_label)}:** " + plain(overall))
    if len(tests) > 1:
        with st.expander("The paired test within each segment"):
            label = charts.metric_label(found_seg.metric)
            tests_table.show(tests_table.frame(table, "tested on", f"{label}, global", f"{label}, per segment"))
            st.caption(
                tests_table.caption(m, "all users, then each segment's users")
                + " A segment whose weights equal the global ones cannot differ on its users."
            )
    # A wrapping row of buttons as wide as their labels: four columns cut the labels at 800 px.
    loads = st.container(horizontal=True, gap="small")
    for name in SEGMENTS:
        loads.button(
            f"Load the {name} weights into the sidebar",
            on_click=load_segment,
            args=(name, dict(found_seg.weights[name])),
            key=f"{PAGE}:load_seg_{name}",
        )
    loads.button(
        "Load the global weights into the sidebar",
        on_click=load_segment,
        args=("global", dict(found_seg.global_weights)),
        key=f"{PAGE}:load_seg_global",
    )
elif state.recall(PAGE, "segments_key") is not None:
    st.caption(
        "No per-segment result for these settings (they changed since the last search, or the result was dropped "
        "to make room for newer ones): run the search again to see its weights."
    )
