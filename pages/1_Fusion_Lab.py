"""Fusion Lab: the fused list against every member, on every metric, updating with each slider move.

Tiles per metric (change against the best single member), members and fusion side by side, the per-user
picture, the paired test in words, how members complement each other, results by segment, downloads,
and loading a saved configuration back.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from reco_core import analysis
from reco_core.errors import RecoError
from reco_core.metrics import METRICS
from ui import charts, lab, page, state
from ui.upload import plain
from ui.widgets import show_error

PAGE = "fusion_lab"
NEEDS_WORDS = {  # what a metric with MetricSpec.needs lacks on a dataset, in words
    "item_genres": "item genres: add an items file with a genres column on Your data",
    "item_vectors": "item text embeddings",
}
BAR_METRICS = ("precision", "recall", "ndcg", "map", "coverage", "ild_genre", "novelty")
ABLATION_METRICS = ("ndcg", "precision", "recall", "coverage", "novelty")
TILES_PER_ROW = 5


def load_configuration() -> None:
    """The configuration uploader: a valid JSON loads into the sidebar; a broken one gives an error."""
    upload = st.file_uploader(
        "Load a configuration (JSON saved by this page)", type=["json"], key=f"{PAGE}:config_upload"
    )
    if upload is None:
        return
    # The uploader keeps its file across reruns: load each file once, or the app would rerun forever.
    if state.recall(PAGE, "loaded_file") == upload.file_id:
        return
    state.remember(PAGE, "loaded_file", upload.file_id)
    try:
        loaded = state.config_from_json(upload.getvalue())
    except RecoError as exc:
        show_error(exc)
        return
    if loaded.protocol.dataset.startswith("upload:") and state.get_uploaded() is None:
        show_error("this configuration uses uploaded data that is not in this session: upload it on Your data first")
        return
    state.queue_config(loaded, notice=f"Configuration loaded from {upload.name}.")
    st.rerun()


cfg, current = page.start(
    "Fusion Lab",
    "The fused top-k list against each member on the test users. Every number here is recomputed from the "
    "members' cached scores when you move a weight: nothing is refitted.",
    get_lab=lab.get_lab,
    no_config="Choose at least one member in the sidebar (or load a configuration below).",
    on_stop=load_configuration,
)

result = None
try:
    result = lab.current_result(current, cfg)
except RecoError as exc:  # e.g. every weight at zero: the members' own numbers still show below
    show_error(exc)

k = cfg.k
members_eval = lab.member_evaluations(current, k)
table = lab.metric_table(current, result, k)
best = result.best_member if result is not None else current.session.best_member(k)
best_eval = members_eval[best]

# ------------------------------------------------------------------ tiles
st.subheader(f"Fused list at k = {k}")
if result is not None:
    keys = result.evaluation.keys()
    best_keys = set(best_eval.keys())
    for start in range(0, len(keys), TILES_PER_ROW):
        cols = st.columns(TILES_PER_ROW)
        for col, key in zip(cols, keys[start : start + TILES_PER_ROW], strict=False):
            value = result.evaluation.value(key)
            spec = METRICS.get(key.partition("@")[0])
            delta = f"{value - best_eval.value(key):+.4f}" if key in best_keys else None
            col.metric(
                charts.metric_label(key),
                f"{value:.4f}",
                delta,
                delta_color="normal" if charts.higher_is_better(key) else "inverse",
                help=(spec.description if spec else None),
                border=True,
            )
    st.caption(
        f"Deltas are against the best single member, **{plain(best)}** (highest NDCG@{k}). Fused in "
        f"{result.seconds * 1000:.0f} ms for {result.evaluation.n:,} users."
    )
    # The engine notes a metric it skipped in its own terms ("ild_genre skipped: the EvalContext has no
    # item_genres"); say which tile is missing and why in the page's words, and pass any other note through.
    missing = [n for n, spec in METRICS.items() if spec.needs and f"{n}@{k}" not in keys]
    if missing:
        st.caption(
            "Not shown for this dataset: "
            + "; ".join(
                f"{charts.metric_label(n)} (needs {NEEDS_WORDS.get(METRICS[n].needs, METRICS[n].needs)})"
                for n in missing
            )
            + "."
        )
    for note in result.evaluation.notes:
        if not any(note.startswith(f"{n} skipped") for n in missing):
            st.caption(plain(note))
else:
    st.info("No fused list to show until a weight is above zero; the members' own results follow.")


def numbers(frame: pd.DataFrame, fmt: str = "%.4f") -> dict[str, object]:
    """Column formats for st.dataframe (cheaper than a pandas Styler on every rerun)."""
    return {c: st.column_config.NumberColumn(format=fmt) for c in frame.columns}


def members_tab() -> None:
    bar_keys = [f"{m}@{k}" for m in BAR_METRICS if f"{m}@{k}" in table.columns]
    charts.show(
        charts.metric_bars(table, bar_keys),
        alt="Grouped bar chart comparing the fusion and each member on precision, recall, NDCG, MAP, coverage, "
        "genre diversity and novelty, relative to the best model on each metric.",
        caption="Bars are relative to the best model on each metric (1.0 = best), so metrics on different scales "
        "share an axis; hover for the actual values.",
    )
    shown = table.rename(columns=charts.metric_label)
    st.dataframe(shown, column_config=numbers(shown), width="stretch")
    if current.failed:
        st.caption("Left out (failed to fit): " + plain(", ".join(current.failed)))


def per_user_tab() -> str:
    per_user_keys = [key for key in best_eval.per_user if result is None or key in result.evaluation.per_user]
    default_key = f"ndcg@{k}"
    chosen = st.selectbox(
        "Metric",
        per_user_keys,
        index=per_user_keys.index(default_key) if default_key in per_user_keys else 0,
        format_func=charts.metric_label,
        key=f"{PAGE}:dist_metric",
    )
    series = {best: best_eval.per_user[chosen]}
    if result is not None:
        series = {analysis.FUSION: result.evaluation.per_user[chosen], **series}
    charts.show(
        charts.per_user_distribution(series, chosen, members=list(members_eval)),
        alt=f"Overlaid histograms of per-user {charts.metric_label(chosen)} for the fusion and the best member.",
        caption="Means hide a lot: many users get no hit at all, a few get many.",
    )
    if result is None:
        return chosen
    try:
        st.markdown("**Paired test** (fused vs the best member, same users): " + plain(result.comparison_sentence()))
        c = result.comparison
        st.caption(
            f"Mean {charts.metric_label(c.metric)}: {plain(best)} {c.mean_a:.4f}, fused {c.mean_b:.4f}. Wilcoxon "
            f"signed-rank test on the per-user differences and a paired bootstrap {c.ci_level:.0%} interval of "
            "their mean."
        )
    except RecoError as exc:
        show_error(exc)
    return chosen


def complement_tab() -> None:
    with current.lock:
        overlap = current.session.overlap(k, fused=result)
    left, right = st.columns(2)
    with left:
        charts.show(
            charts.overlap_heatmap(overlap.jaccard.to_numpy(), list(overlap.jaccard.index), k),
            alt="Heatmap of the mean Jaccard overlap between each pair of members' top-k lists.",
            caption="Low overlap means the members find different items: room for fusion to help.",
        )
    with right:
        if overlap.share is not None:
            only = overlap.share["only_in_list"].to_dict()
            charts.show(
                charts.share_bars(only, "Slots of the fused list that only one member proposed"),
                alt="Bar chart of each member's share of the fused list's slots that no other member has in its top-k.",
                caption="'(none)': items in no member's top-k, promoted from deeper in the lists by rank fusion.",
            )
        else:
            st.info("The shares need a fused list: give a member a positive weight.")
    if result is None or len(current.session.members) < 2:
        return
    abl_keys = [f"{m}@{k}" for m in ABLATION_METRICS if f"{m}@{k}" in table.columns]
    try:
        abl = lab.ablation_table(current, cfg, abl_keys, full=result.evaluation)
    except RecoError as exc:
        show_error(exc)
        return
    names = {key: charts.metric_label(key) for key in abl_keys}
    names |= {f"change in {key}": f"change in {charts.metric_label(key)}" for key in abl_keys}
    shown = abl.rename(columns=names)
    fmt = {c: st.column_config.NumberColumn(format="%+.4f" if c.startswith("change") else "%.4f") for c in shown}
    st.markdown("**Remove one member** (the others keep their weights):")
    st.dataframe(shown, column_config=fmt, width="stretch")
    st.caption("A negative change means the fusion needs that member; empty: nothing is left to fuse without it.")


def segments_tab(chosen: str) -> None:
    st.caption("These move with the weights too.")
    evaluations = dict(members_eval)
    if result is not None:
        evaluations = {analysis.FUSION: result.evaluation, **evaluations}
    rankings = analysis.rankings_at(current.session, result, k)
    seg = analysis.segment_table(current.split.train, evaluations, chosen)
    ranges = analysis.activity_ranges(current.split.train, best_eval.user_idx)
    seg["segment"] = seg["segment"].map(lambda s: f"{s} users ({ranges[s]})")
    a, b = st.columns(2)
    with a:
        charts.show(
            charts.segment_bars(seg, chosen, title=f"{charts.metric_label(chosen)} by user activity"),
            alt=f"Grouped bars of {charts.metric_label(chosen)} for light, medium and heavy users, per model.",
            caption="Users split into thirds by their number of training interactions (in brackets).",
        )
    with b:
        tails = analysis.tail_share(current.split.train, rankings)
        charts.show(
            charts.share_bars(tails["tail"].to_dict(), "Share of long-tail items in the lists"),
            alt="Bar chart of the share of recommended items outside the 20% most popular, per model.",
            caption="Tail: outside the 20% most popular items in training.",
        )
    genres = analysis.genre_share(current.split.train, current.catalog, rankings)
    if genres.empty:
        st.info("This dataset has no genres.")
        return
    cols = [c for c in (analysis.FUSION, best, analysis.TRAINING) if c in genres.columns]
    long = genres[cols].reset_index(names="segment").melt(id_vars="segment", var_name="series", value_name="value")
    charts.show(
        charts.segment_bars(
            long,
            chosen,
            title="Genres in the lists",
            y_label="share of slots",
            x_label="genre",
            members=list(members_eval),
        ),
        alt="Grouped bars of the share of recommended slots per genre for the fusion, the best member and training.",
        caption=f"The fusion, the best single member ({plain(best)}) and the training interactions. An item with "
        "several genres counts in each, so shares add up to more than 1.",
    )


# Only the open tab is computed (tabs report which one is open), so a slider move stays fast.
TABS = ("Members vs fusion", "Per user", "Complementarity", "Segments")
tabs = st.tabs(list(TABS), key=f"{PAGE}:view", on_change="rerun", bind="query-params")
if tabs[0].open:
    with tabs[0]:
        members_tab()
if tabs[1].open:
    with tabs[1]:
        per_user_tab()
if tabs[2].open:
    with tabs[2]:
        complement_tab()
if tabs[3].open:
    with tabs[3]:
        key = st.session_state.get(f"{PAGE}:dist_metric", f"ndcg@{k}")
        segments_tab(key if key in best_eval.per_user else f"ndcg@{k}")

# ------------------------------------------------------------------ downloads and loading
st.subheader("Save or load")
d1, d2 = st.columns(2)
if result is not None:
    ranking = result.ranking
    d1.download_button(
        "Recommendations (CSV)",
        data=lambda: lab.recommendations_csv(current, ranking),
        file_name="recommendations.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"{PAGE}:download_csv",
    )
metrics_out = {
    "metrics": {"fusion": result.evaluation.values() if result is not None else None}
    | {name: ev.values() for name, ev in members_eval.items()},
    "best_member": best,
    "failed_members": current.failed,
}
d2.download_button(
    "Configuration and metrics (JSON)",
    data=cfg.to_json(extra=metrics_out),
    file_name="fusion-config.json",
    mime="application/json",
    on_click="ignore",
    key=f"{PAGE}:download_json",
)
load_configuration()
