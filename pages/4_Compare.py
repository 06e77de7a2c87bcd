"""Compare: save the current configuration under a name, compare saved ones side by side, export, load back.

Snapshots live in this browser session only (``ui.state.remember``), bounded by ``ui.compare.MAX_SAVED``;
Export writes them all as one JSON file, which Import reads back (in this or another session). Two snapshots
evaluated on the same users get a paired test on one metric, or with "Test every metric" one per per-user
metric in a table, with Holm's correction over all of them next to each raw p.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from reco_core.errors import RecoError
from reco_core.metrics import METRICS
from reco_core.stats import paired_comparison
from ui import charts, compare, lab, page, state, tests_table, upload, vega_charts
from ui.state import LabConfig
from ui.upload import plain
from ui.widgets import show_error

PAGE = "compare"
DEFAULT_METRICS = ("precision", "recall", "ndcg", "map", "coverage", "ild_genre", "novelty")

cfg, _ = page.start("Compare", heading="Compare configurations")
st.markdown(
    "Save the sidebar's configuration under a name, change something (members, weights, method, protocol), "
    "save again, and compare the snapshots side by side. Snapshots stay in this browser session; "
    "**Export** downloads them all as JSON and **Import** brings such a file back."
)

store: dict[str, compare.SavedConfig] = dict(state.recall(PAGE, "saved", {}) or {})


def keep(new_store: dict[str, compare.SavedConfig]) -> None:
    state.remember(PAGE, "saved", dict(new_store))


def auto_name(c: LabConfig) -> str:
    """ "wsum/minmax k=10: als 40%, itemknn 40%, text 20%"; a name already taken by another configuration
    (one that differs only in the protocol or a hyperparameter) gets " #2", " #3"..., so pressing Save after a
    change never meets "already saved"."""
    parts = [f"{m.label} {s:.0%}" for m, s in zip(c.members, c.shares, strict=True)]
    head = c.method + (f"/{c.normaliser}" if c.uses_normaliser else "") + f" k={c.k}"
    if c.rerank is not None:
        head += f" +{c.rerank.method} {c.rerank.lam:g}"
    # Too long a name loses whole members from its end ("…"), never part of a share: a cut "text 1" for 17% misleads.
    text = f"{head}: " + ", ".join(parts)
    while len(text) > compare.MAX_NAME - 4 and len(parts) > 1:
        parts = parts[:-1]
        text = f"{head}: " + ", ".join(parts) + ", …"
    base = compare.clean_name(text[: compare.MAX_NAME - 4])
    name, n = base, 2
    while name in store and store[name].config_json != c.to_json():
        name, n = f"{base} #{n}", n + 1
    return name


# ------------------------------------------------------------------------------------------ save
st.subheader("Save the current configuration")
just_saved = state.recall(PAGE, "just_saved")
if just_saved:
    # The last save succeeded: empty the name so the field suggests a fresh name (its placeholder) instead of
    # offering the taken one again, which the next save of another configuration would refuse.
    state.remember(PAGE, "just_saved", None)
    st.session_state["compare:name"] = ""
    st.session_state["compare:replace"] = False
if cfg is None:
    page.no_configuration("Choose at least one member in the sidebar to save a configuration.")
elif cfg.all_zero:
    st.warning("All weights are zero, so there is no fused list to save: give a member a positive weight.")
else:
    st.caption(plain(cfg.describe()))
    with st.form("compare:save", border=False):
        name_col, btn_col = st.columns([4, 1], vertical_alignment="bottom")
        name = name_col.text_input(
            "Name",
            key="compare:name",
            placeholder=auto_name(cfg),
            max_chars=compare.MAX_NAME,
            help="Optional: left empty, the configuration is saved under the name shown in grey.",
        )
        replace = st.checkbox("Replace a snapshot with the same name", key="compare:replace")
        submitted = btn_col.form_submit_button("Save", type="primary")
    if just_saved:
        st.success(f"Saved {plain(just_saved)}.")
    if submitted:
        try:
            current = lab.get_lab(cfg)
            result = lab.current_result(current, cfg)
            user_ids = current.split.train.users.ids_of(result.evaluation.user_idx)
            entry = compare.snapshot(
                name or auto_name(cfg), cfg.to_json(), result.evaluation, cfg.protocol.describe(), list(user_ids)
            )
            compare.add(store, entry, overwrite=replace)
            keep(store)
            state.remember(PAGE, "just_saved", entry.name)
            st.rerun()
        except RecoError as exc:
            show_error(exc)

# ------------------------------------------------------------------------------------------ import
with st.expander("Import an exported file"):
    up = st.file_uploader("Saved configurations (JSON)", type=["json"], key="compare:import")
    if up is not None:
        data = up.getvalue()
        digest = upload.digest(data)
        if state.recall(PAGE, "imported") != digest:  # import a file once, not on every rerun while it stays
            state.remember(PAGE, "imported", digest)
            try:
                imported = compare.import_json(data, source=up.name)
                added, skipped = [], []
                for e in imported:
                    if e.name in store:
                        skipped.append(e.name)
                        continue
                    compare.add(store, e)
                    added.append(e.name)
                keep(store)
                msg = f"Imported {len(added)} configuration(s)"
                if skipped:
                    msg += f"; already saved, not replaced: {', '.join(skipped)}"
                state.remember(PAGE, "import_message", ("success", msg))
            except RecoError as exc:
                state.remember(PAGE, "import_message", ("error", str(exc)))
            st.rerun()
    kind_msg = state.recall(PAGE, "import_message")
    if kind_msg and up is not None:
        (st.success if kind_msg[0] == "success" else st.error)(plain(kind_msg[1]))

if not store:
    st.info("Nothing saved yet. Save the current configuration, or import an exported file: both are above.")


def every_metric_table(
    a: compare.SavedConfig, b: compare.SavedConfig, keys: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """B against A on every testable per-user metric, Holm-corrected, and the metrics left out (a missing
    value). Kept for the last pair (the snapshots themselves, not their names), so a rerun does not bootstrap
    again."""
    usable, left_out = compare.testable_keys(a, b, keys)
    memo = state.recall(PAGE, "every_metric")
    if memo is not None and memo[0] is a and memo[1] is b and memo[2] == usable:
        return memo[3], left_out
    table = compare.paired_metric_table(a, b, usable)
    state.remember(PAGE, "every_metric", (a, b, usable, table))
    return table, left_out


def show_every_metric(table: pd.DataFrame, left_out: list[str], a_name: str, b_name: str) -> None:
    """The table of every metric's paired test, with raw and Holm-corrected p, and what the correction does."""
    m = len(table)
    if m == 0:
        st.info("No per-user metric of both configurations can be tested.")
        return
    tests_table.show(tests_table.frame(table, "metric", "A", "B", metric_rows=True))
    real = int((table["verdict"] == "a real difference").sum())
    raw = int((table["p"] < 0.05).sum())
    st.caption(
        f"A = {plain(a_name)}, B = {plain(b_name)}, on the same users. {raw} of {m} raw p-values are below 0.05;"
        f" {real} difference{'s' if real != 1 else ''} remain{'s' if real == 1 else ''} real after the correction. "
        + tests_table.caption(m, "one per metric")
    )
    if left_out:
        st.caption(
            "Not tested (a per-user value is missing): " + ", ".join(charts.metric_label(k) for k in left_out) + "."
        )


# ------------------------------------------------------------------------------------------ compare
entries = list(store.values())
if entries:
    st.subheader(f"Saved configurations ({len(entries)})")
    keys_all = compare.metric_keys(entries)
    default_keys = [k for k in keys_all if k.partition("@")[0] in DEFAULT_METRICS]
    chosen = st.multiselect(
        "Metrics",
        keys_all,
        default=default_keys or keys_all[:6],
        format_func=charts.metric_label,
        key="compare:metrics",
    )
    frame = compare.comparison_frame(entries, chosen)
    best = compare.best_per_metric(frame)
    column_config = {
        k: st.column_config.NumberColumn(
            charts.metric_label(k),
            format="%.4f",
            help=(METRICS[k.partition("@")[0]].description if k.partition("@")[0] in METRICS else None),
        )
        for k in chosen
    }
    st.dataframe(frame, column_config=column_config, width="stretch")
    if len(entries) >= 2 and best:
        st.caption(
            "Best per metric: "
            + "; ".join(f"{charts.metric_label(k)}: {plain(n)}" for k, n in best.items())
            + ". (ARP and Gini: lower is better.)"
        )
    if chosen:
        vega_charts.show(
            vega_charts.metric_bars(frame, chosen, title="Saved configurations across metrics"),
            alt="Grouped bar chart: for each chosen metric, one bar per saved configuration, relative to the best "
            "configuration on that metric; values: "
            + "; ".join(f"{n}: " + ", ".join(f"{k} {frame.loc[n, k]:.3f}" for k in chosen) for n in frame.index),
            caption="Each metric is divided by the best configuration's value (best = 1), so metrics on different "
            "scales share one axis; hover for the actual values, or read them in the table.",
        )

    # -- a paired test between two snapshots
    if len(entries) >= 2:
        st.subheader("Is the difference real?")
        names = [e.name for e in entries]
        c1, c2, c3 = st.columns(3)
        a_name = c1.selectbox("A", names, index=0, key="compare:a")
        b_name = c2.selectbox("B", names, index=1, key="compare:b")
        per_user_keys = sorted(set(store[a_name].per_user) & set(store[b_name].per_user), key=compare.metric_order)
        if per_user_keys:
            default_ix = next((i for i, k in enumerate(per_user_keys) if k.startswith("ndcg@")), 0)
            key = c3.selectbox(
                "Metric", per_user_keys, index=default_ix, format_func=charts.metric_label, key="compare:paired"
            )
            every = st.toggle(
                "Test every metric",
                key="compare:every",
                help="One paired test per metric, with Holm's correction over all of them: looking at many "
                "metrics and reporting the smallest p overstates the evidence.",
            )
            why_not = compare.comparable(store[a_name], store[b_name], key)
            if a_name == b_name:
                st.info("Pick two different configurations.")
            elif why_not:
                st.info(f"No paired test: {why_not}.")
            else:
                a, b = store[a_name], store[b_name]
                try:
                    table, left_out = every_metric_table(a, b, per_user_keys) if every else (None, [])
                    pc = paired_comparison(
                        a.per_user[key].astype(np.float64), b.per_user[key].astype(np.float64), metric=key
                    )
                    sentence = pc.sentence(a.name, b.name)
                    if table is not None and key in set(table["metric"]) and len(table) > 1:
                        # The verdict reads the corrected p, as the table of every metric below does.
                        row = table.set_index("metric").loc[key]
                        sentence = pc.sentence(a.name, b.name, row["p (Holm)"], len(table))
                    st.write(plain(sentence))
                    if table is not None:
                        show_every_metric(table, left_out, a.name, b.name)
                except RecoError as exc:
                    show_error(exc)

    # -- load, delete, export
    st.subheader("Load, delete, export")
    c1, c2 = st.columns(2)
    with c1:
        to_load = st.selectbox("Configuration", [e.name for e in entries], key="compare:load")
        if st.button("Load into the sidebar", key="compare:load_btn"):
            try:
                loaded = state.config_from_json(store[to_load].config_json)
                if loaded.protocol.dataset.startswith("upload:") and (
                    state.get_uploaded() is None or state.get_uploaded().protocol_name != loaded.protocol.dataset
                ):
                    st.error(
                        "That configuration uses an uploaded dataset that is not in this session: upload it again."
                    )
                else:
                    state.queue_config(loaded, notice=f"Loaded {to_load}")
                    st.rerun()
            except RecoError as exc:
                show_error(exc)
    with c2:
        to_delete = st.multiselect("Delete", [e.name for e in entries], key="compare:delete")
        if st.button("Delete selected", disabled=not to_delete, key="compare:delete_btn"):
            for n in to_delete:
                store.pop(n, None)
            keep(store)
            st.rerun()
    st.download_button(
        "Export all as JSON",
        data=compare.export_json(entries),
        file_name="reco-fusion-lab-configurations.json",
        mime="application/json",
        key="compare:export",
        on_click="ignore",
    )
