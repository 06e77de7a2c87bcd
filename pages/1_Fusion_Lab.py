"""Fusion Lab: the fused list against every member, on every metric, updating with each slider move.

Tiles per metric (change against the best single member), members and fusion side by side, the per-user
picture, the paired test in words, how members complement each other, results by segment, downloads,
and loading a saved configuration back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from reco_core import analysis
from reco_core.errors import RecoError
from reco_core.fusion import METHODS
from reco_core.live import LiveResult
from reco_core.metrics import METRICS, Evaluation
from reco_core.spark.summary import spark_command  # builds a command line: no pyspark is loaded
from ui import charts, lab, learned_view, page, state, tests_table, tiles, vega_charts
from ui.state import LabConfig
from ui.upload import plain
from ui.widgets import lazy_expander, movement_table, show_error

PAGE = "fusion_lab"
HISTORY_OPEN = f"{PAGE}:history_open"  # the open state of the lazily drawn expanders
SCALE_OPEN = f"{PAGE}:scale_open"
NEEDS_WORDS = {  # what a metric with MetricSpec.needs lacks on a dataset, in words
    "item_genres": "item genres: add an items file with a genres column on Your data",
    "item_vectors": "item text embeddings",
    "history": "the users' training histories",
    "genres_and_history": "item genres and the users' training histories",
}
BAR_METRICS = ("precision", "recall", "ndcg", "map", "coverage", "ild_genre", "novelty")
ABLATION_METRICS = ("ndcg", "precision", "recall", "coverage", "novelty")


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


@dataclass(frozen=True)
class Now:
    """What the live part draws from: the configuration, its result (None: all weights zero) and the members."""

    cfg: LabConfig
    result: LiveResult | None
    members_eval: dict[str, Evaluation]
    best: str

    @property
    def k(self) -> int:
        return self.cfg.k

    @property
    def best_eval(self) -> Evaluation:
        return self.members_eval[self.best]

    def table(self) -> pd.DataFrame:
        return lab.metric_table(current, self.result, self.k)


# ------------------------------------------------------------------ tiles, their baseline and the history
BASELINES = {"best": "the best member", "previous": "the previous configuration", "pinned": "the pinned one"}


def restore(config_json: str, notice: str) -> None:
    """Load a configuration (from the history or the pin) into the sidebar; the whole page reruns."""
    try:
        state.queue_config(state.config_from_json(config_json), notice=notice)
    except RecoError as exc:
        state.set_notice(f"Could not load it: {exc}")
    st.rerun()


def pin(entry: tiles.Entry | None) -> None:
    state.remember(PAGE, "pinned", entry)
    if entry is not None:
        st.session_state[f"{PAGE}:baseline"] = "pinned"
    elif st.session_state.get(f"{PAGE}:baseline") == "pinned":
        st.session_state[f"{PAGE}:baseline"] = "best"


def tiles_section(now: Now) -> None:
    result, k = now.result, now.k
    st.subheader(f"Fused list at k = {k}")
    if result is None:
        return
    values = result.evaluation.values()
    entry = tiles.Entry(now.cfg.to_json(), now.cfg.describe(), values)
    history: tiles.History = state.recall(PAGE, "history") or tiles.History()
    previous = history.record(entry)
    state.remember(PAGE, "history", history)
    if previous is not None:
        state.remember(PAGE, "previous", previous)
    previous = state.recall(PAGE, "previous")
    pinned: tiles.Entry | None = state.recall(PAGE, "pinned")

    options = ["best", "previous"] + (["pinned"] if pinned is not None else [])
    if st.session_state.get(f"{PAGE}:baseline") not in options:
        st.session_state[f"{PAGE}:baseline"] = "best"
    # A wrapping row: at 800 px the pin button goes under the control instead of cutting its last option.
    row = st.container(horizontal=True, vertical_alignment="bottom", gap="medium")
    b1 = b2 = row
    choice = b1.segmented_control(
        "Deltas against",
        options,
        format_func=lambda o: BASELINES[o],
        key=f"{PAGE}:baseline",
        help="The best single member (highest NDCG), the configuration you looked at before the last change, or "
        "one you pinned.",
    )
    if pinned is not None and pinned.config_json == entry.config_json:
        b2.button("Unpin", icon=":material/keep_off:", on_click=pin, args=(None,), key=f"{PAGE}:unpin")
    else:
        b2.button(
            "Pin this configuration",
            icon=":material/keep:",
            on_click=pin,
            args=(entry,),
            key=f"{PAGE}:pin",
            help="Keep it as the baseline of the deltas while you try others.",
        )
    base_values: dict[str, float] | None
    if choice == "previous":
        base_values = dict(previous.values) if previous is not None else None
        base_words = "the previous configuration" + (f" ({plain(previous.description)})" if previous else "")
    elif choice == "pinned" and pinned is not None:
        base_values, base_words = dict(pinned.values), f"the pinned configuration ({plain(pinned.description)})"
    else:
        base_values = dict(now.best_eval.values())
        base_words = f"the best single member, **{plain(now.best)}** (highest NDCG@{k})"

    keys = result.evaluation.keys()
    row = tiles.grid()
    for key in keys:
        spec = METRICS.get(key.partition("@")[0])
        tiles.tile(
            row,
            charts.metric_label(key),
            values[key],
            None if base_values is None else base_values.get(key),
            charts.higher_is_better(key),
            help=(spec.description if spec else None),
        )
    if choice == "previous" and previous is None:
        st.caption("No previous configuration yet: move a weight, and the deltas show what the move changed.")
    else:
        st.caption(
            f"Deltas are against {base_words}. Fused in {result.seconds * 1000:.0f} ms for "
            f"{result.evaluation.n:,} users."
        )
    jargon = tiles.jargon([key.partition("@")[0] for key in keys])
    if jargon:
        st.caption(jargon)
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
    if result.rerank is not None:
        rerank_movement(result)
    tile_tests(now)


def rerank_movement(result: LiveResult) -> None:
    """How far the re-ranker moved the lists: from the fused list it started from and from each member's own."""
    assert result.rerank is not None
    try:
        moved = lab.rerank_movement(current, result)
    except RecoError as exc:
        show_error(exc)
        return
    fused = moved.loc["fused list"]
    words = result.rerank.describe(result.fusion.ranking.k)
    how = plain(words[:1].upper() + words[1:])
    st.markdown(
        f"**{how}**: on average {fused['slots changed']:.0%} of each user's slots differ from the fused list"
        f" (rank-biased overlap {fused['RBO']:.3f})."
    )
    movement_table(st, moved, width="content")
    st.caption(
        "Slots changed: the share of the k slots holding another item, averaged over users. RBO: rank-biased"
        " overlap (persistence 0.9), 1 for the same list, 0 for disjoint ones; it weighs the top slots most. The"
        " tiles show the re-ranked list; Members vs fusion also shows the fused list before re-ranking."
    )


def tile_tests(now: Now) -> None:
    """On request, a paired test per tile (fused vs the best member, same users) with Holm's correction over all
    of them: looking at many tiles at once and trusting the smallest raw p overstates the evidence."""
    result = now.result
    if result is None:
        return
    if not st.toggle(
        "Test every tile's change against the best member",
        key=f"{PAGE}:tile_tests",
        help="A paired Wilcoxon test and bootstrap interval per per-user metric, with Holm's correction over all.",
    ):
        return
    try:
        table = lab.tile_tests(current, now.cfg, result)
    except RecoError as exc:
        show_error(exc)
        return
    # Column headers are plain text, not Markdown: the member's name as it is.
    tests_table.show(tests_table.frame(table, "metric", now.best, "fused", metric_rows=True))
    st.caption(
        f"Each row pairs the same {result.evaluation.n:,} users: the fused list against {plain(now.best)}, the best"
        " single member. Global metrics (coverage, Gini, personalisation) have no per-user values and are not"
        " tested. " + tests_table.caption(len(table), "one per metric")
    )


def history_section() -> None:
    history: tiles.History | None = state.recall(PAGE, "history")
    if history is None or len(history.entries) < 2:
        return
    # Drawn only while open: closed, its table was still sent, and mounted anew, at every key press.
    box = lazy_expander("History: the configurations of this session", HISTORY_OPEN)
    if box is None:
        return
    key = f"{PAGE}:history:{history.version}"  # a new table after each change: no stale row selection
    with box:
        rows = []
        for e in history.entries:
            rows.append(
                {"configuration": e.description}
                | {charts.metric_label(m): v for m, v in tiles.headline(e.values).items()}
            )
        frame = pd.DataFrame(rows)
        st.caption(
            f"The last {len(history.entries)} configurations, newest first. Click a row to load that configuration"
            " back into the sidebar."
        )
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            column_config={c: st.column_config.NumberColumn(format="%.4f") for c in frame.columns[1:]}
            | {"configuration": st.column_config.TextColumn(width="large")},
            key=key,
            on_select=lambda: load_from_history(history, key),
            selection_mode="single-row",
        )


def load_from_history(history: tiles.History, key: str) -> None:
    picked = (st.session_state.get(key) or {}).get("selection", {}).get("rows", [])
    if picked and 0 <= int(picked[0]) < len(history.entries):
        e = history.entries[int(picked[0])]
        restore(e.config_json, f"Loaded from the history: {e.description}")


def numbers(frame: pd.DataFrame, fmt: str = "%.4f") -> dict[str, object]:
    """Column formats for st.dataframe (cheaper than a pandas Styler on every rerun)."""
    return {c: st.column_config.NumberColumn(format=fmt) for c in frame.columns}


def members_tab(now: Now) -> None:
    table = now.table()
    page.give_way()  # before the chart, the tab's costliest element to draw
    bar_keys = [f"{m}@{now.k}" for m in BAR_METRICS if f"{m}@{now.k}" in table.columns]
    vega_charts.show(
        vega_charts.metric_bars(table, bar_keys, members=list(now.members_eval)),
        alt="Grouped bar chart comparing the fusion and each member on precision, recall, NDCG, MAP, coverage, "
        "genre diversity and novelty, relative to the best model on each metric.",
        caption="Bars are relative to the best model on each metric (1.0 = best), so metrics on different scales "
        "share an axis; hover for the actual values.",
    )
    shown = table.rename(columns=charts.metric_label)
    st.dataframe(shown, column_config=numbers(shown), width="stretch")
    if current.failed:
        st.caption("Left out (failed to fit): " + plain(", ".join(current.failed)))


def per_user_tab(now: Now) -> str:
    result, best, best_eval, k = now.result, now.best, now.best_eval, now.k
    per_user_keys = [key for key in best_eval.per_user if result is None or key in result.evaluation.per_user]
    default_key = f"ndcg@{k}"
    chosen = st.selectbox(
        "Metric",
        per_user_keys,
        index=per_user_keys.index(default_key) if default_key in per_user_keys else 0,
        format_func=charts.metric_label,
        key=f"{PAGE}:dist_metric",
    )
    if result is None:
        charts.show(
            charts.per_user_distribution({best: best_eval.per_user[chosen]}, chosen, members=list(now.members_eval)),
            alt=f"Histogram of per-user {charts.metric_label(chosen)} for the best member.",
            caption="Means hide a lot: many users get no hit at all, a few get many.",
        )
        return chosen
    diff = result.evaluation.per_user[chosen] - best_eval.per_user[chosen]
    charts.show(
        charts.per_user_difference(diff, chosen, best, charts.higher_is_better(chosen)),
        alt=f"Histogram of the per-user difference in {charts.metric_label(chosen)}, fused minus {best}: bars left "
        "of zero are users the fusion serves worse, right of zero better.",
        caption=f"Each user once: the fused list's {charts.metric_label(chosen)}"
        + (" (after re-ranking)" if result.rerank is not None else "")
        + f" minus {plain(best)}'s for the same user. Means hide a lot; this shows how many users gain, lose or stay"
        " the same.",
    )
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


def complement_tab(now: Now) -> None:
    result, k, cfg = now.result, now.k, now.cfg
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
                caption=f"'(none)': items in no member's top {k}, which {METHODS[cfg.method].label.lower()}"
                + (f" and the {state.reranker_label(cfg.rerank.method)} re-ranker" if cfg.rerank is not None else "")
                + " brought up from deeper in the members' lists.",
            )
        else:
            st.info("The shares need a fused list: give a member a positive weight.")
    if result is None or len(current.session.members) < 2:
        return
    evaluated = result.evaluation.values()
    abl_keys = [f"{m}@{k}" for m in ABLATION_METRICS if f"{m}@{k}" in evaluated]
    try:
        # Removing a member re-fuses without the re-ranker, so it is read against the fused list before it.
        abl = lab.ablation_table(current, cfg, abl_keys, full=lab.fused_evaluation(current, result))
    except RecoError as exc:
        show_error(exc)
        return
    names = {key: charts.metric_label(key) for key in abl_keys}
    names |= {f"change in {key}": f"change in {charts.metric_label(key)}" for key in abl_keys}
    shown = abl.rename(columns=names)
    fmt = {c: st.column_config.NumberColumn(format="%+.4f" if c.startswith("change") else "%.4f") for c in shown}
    st.markdown("**Remove one member** (the others keep their weights):")
    st.dataframe(shown, column_config=fmt, width="stretch")
    st.caption(
        "A negative change means the fusion needs that member; empty: nothing is left to fuse without it."
        + (" Read against the fused list before re-ranking." if result.rerank is not None else "")
    )


def segments_tab(now: Now, chosen: str) -> None:
    result, best, best_eval, k = now.result, now.best, now.best_eval, now.k
    members_eval = now.members_eval
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


def downloads(now: Now) -> None:
    st.subheader("Save or load")
    d1, d2 = st.columns(2)
    result, cfg = now.result, now.cfg
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

    def config_json() -> str:
        metrics_out = {
            "metrics": {"fusion": result.evaluation.values() if result is not None else None}
            | {name: ev.values() for name, ev in now.members_eval.items()},
            "best_member": now.best,
            "failed_members": current.failed,
        }
        return cfg.to_json(extra=metrics_out)

    d2.download_button(
        "Configuration and metrics (JSON)",
        data=config_json,
        file_name="fusion-config.json",
        mime="application/json",
        on_click="ignore",
        key=f"{PAGE}:download_json",
    )


def scale_section(cfg: LabConfig) -> None:
    """The command that runs this configuration on Apache Spark (docs/scale-out.md); st.code has a copy button.
    Drawn only while open, so a key press does not send it again (nor a first view load the code highlighter)."""
    box = lazy_expander("Run this at scale", SCALE_OPEN)
    if box is None:
        return
    with box:
        uploaded = state.get_uploaded()
        interactions = None
        if cfg.protocol.dataset.startswith("upload:"):
            # The server never keeps an uploaded file's path: the command names the file the person uploaded.
            interactions = uploaded.name if uploaded is not None else "your-interactions.csv"
        if cfg.rerank is not None:
            st.info(
                f"Re-ranking after fusion ({state.reranker_label(cfg.rerank.method)}) runs on the local engine only:"
                " the command below"
                " fuses without it. A configuration file that carries a re-ranker is refused by the Spark engine,"
                " so set the re-ranker to None before downloading one for Spark."
            )
        try:
            command = spark_command(replace(cfg, rerank=None), master="local[2]", interactions=interactions)
        except RecoError as exc:
            show_error(exc)
            return
        st.code(command, language="bash")
        st.caption(
            "The same configuration on Apache Spark: replace local[2] with your cluster's master (spark://..., yarn,"
            " k8s://...), and give the data at scale with --interactions and a path or URI Spark reads (in place of"
            " --dataset). A member with its own parameters"
            " travels in fusion-config.json (download it above). Import the run's spark-summary.json on Compare to"
            " see it beside this page's configurations. docs/scale-out.md explains sizing."
        )


# Only the open tab is computed (tabs report which one is open), so a slider move stays fast.
TABS = ("Members vs fusion", "Per user", "Complementarity", "Segments", "Learned fusion")


def live_part(cfg: LabConfig) -> None:
    """Everything that moves with the weights, method, normaliser and k (the page's live fragment)."""
    result = page.fused(current, cfg, "The members' own results follow.")
    members_eval = lab.member_evaluations(current, cfg.k)
    best = result.best_member if result is not None else current.session.best_member(cfg.k)
    now = Now(cfg, result, members_eval, best)
    page.give_way()  # a newer key press is queued: skip drawing numbers it has already replaced
    tiles_section(now)
    page.give_way()
    tabs = st.tabs(list(TABS), key=f"{PAGE}:view", on_change="rerun", bind="query-params")
    if tabs[0].open:
        with tabs[0]:
            members_tab(now)
    if tabs[1].open:
        with tabs[1]:
            per_user_tab(now)
    if tabs[2].open:
        with tabs[2]:
            complement_tab(now)
    if tabs[3].open:
        with tabs[3]:
            key = st.session_state.get(f"{PAGE}:dist_metric", f"ndcg@{cfg.k}")
            segments_tab(now, key if key in now.best_eval.per_user else f"ndcg@{cfg.k}")
    if tabs[4].open:
        with tabs[4]:
            learned_view.learned_tab(cfg, current)
    page.give_way()
    history_section()
    downloads(now)
    scale_section(cfg)


page.live(cfg, live_part)
load_configuration()
