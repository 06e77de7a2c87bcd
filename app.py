"""Overview: what this app is, the dataset in figures and plots, and the current configuration in words.

Run with ``make run`` (or ``streamlit run app.py``). The other views live in ``pages/``; each calls the
shared sidebar itself, so a deep link to any page works on a fresh server.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from reco_core.errors import RecoError
from ui import cached, charts, lab, page, state
from ui.upload import plain
from ui.widgets import show_error

LOGO = Path(__file__).resolve().parent / "assets" / "logo.svg"
HEADLINE = ("ndcg", "precision", "recall", "coverage", "novelty")

cfg, _ = page.start(None)

st.image(str(LOGO), width=320)
st.markdown(
    "Reco Fusion Lab shows what happens when recommendation models are combined. Pick a few *members* in "
    "the sidebar: collaborative models that learn from who rated what (ALS, item-kNN, EASE...) and content "
    "models that read the items themselves (genres, text embeddings). Their scores are normalised and fused "
    "with the weights you set, and every metric, chart and list in the app updates as you move a slider. "
    "**Fusion Lab** compares the fused list with each member, **User Explorer** shows one person's "
    "recommendations and why, **Trade-offs** maps accuracy against diversity across all weights, and the "
    "remaining pages compare saved configurations, explain the formulas, and let you bring your own data."
)

protocol = state.last_protocol()
if protocol is None:
    st.info("Fix the data settings in the sidebar to see the dataset.")
    st.stop()

st.subheader("The configuration in words")
if cfg is not None:
    st.write(plain(cfg.describe()))
else:
    st.write(plain(protocol.describe()) + ". Choose at least one member in the sidebar.")

try:
    dataset = lab.get_dataset(protocol)
except RecoError as exc:
    show_error(exc)
    st.stop()

stats = cached.overview_stats(lab.dataset_key(protocol), dataset)
st.subheader(f"The data: {plain(stats['name'])}")
cols = st.columns(4)
cols[0].metric("Users", f"{stats['n_users']:,}")
cols[1].metric("Items", f"{stats['n_items']:,}")
cols[2].metric("Interactions", f"{stats['n_interactions']:,}")
cols[3].metric("Density", f"{stats['density']:.2%}", help="interactions / (users × items)")
st.caption("Load report: " + plain(stats["report"]))

item_counts = np.asarray(stats["item_counts"])
user_counts = np.asarray(stats["user_counts"])
head = max(1, round(0.2 * len(item_counts)))
head_share = float(np.sort(item_counts)[::-1][:head].sum() / max(item_counts.sum(), 1))
left, right = st.columns(2)
with left:
    charts.show(
        charts.rating_histogram(stats["rating_values"], stats["rating_counts"]),
        alt="Bar chart of how many interactions have each rating value.",
        caption="How ratings are spread. Every rating counts as a positive unless the protocol sets a threshold.",
    )
    charts.show(
        charts.user_activity(user_counts),
        alt="Histogram of the number of interactions per user, on a log scale.",
        caption=f"Median user: {int(np.median(user_counts))} interactions; the busiest: {int(user_counts.max()):,}.",
    )
with right:
    charts.show(
        charts.long_tail(item_counts),
        alt="Items sorted by popularity, most popular first, showing a long tail.",
        caption=f"The most popular 20% of items hold {head_share:.0%} of all interactions: the long tail.",
    )
    if stats["genres"]:
        charts.show(
            charts.genre_bars(stats["genres"], stats["genre_interactions"], what="interactions"),
            alt="Horizontal bar chart of interactions per genre.",
            caption="Interactions per genre (an item with several genres counts in each).",
        )
    else:
        st.info("This dataset has no genres, so the genre chart and genre diversity are not available.")

st.subheader("The current fusion at a glance")
if cfg is None:
    st.info("Choose at least one member in the sidebar to fit and fuse.")
    st.stop()
try:
    current = lab.get_lab(cfg)
    result = lab.current_result(current, cfg)
except RecoError as exc:
    show_error(exc)
    st.stop()

best = result.best_member
best_eval = current.session.member_evaluation(best, cfg.k) if best else None
fused_keys = set(result.evaluation.keys())
best_keys = set(best_eval.keys()) if best_eval is not None else set()
tiles = st.columns(len(HEADLINE))
for col, name in zip(tiles, HEADLINE, strict=True):
    key = f"{name}@{cfg.k}"
    if key not in fused_keys:
        continue
    value = result.evaluation.value(key)
    delta = None
    if best_eval is not None and key in best_keys:
        delta = f"{value - best_eval.value(key):+.4f} vs {best}"
    col.metric(
        charts.metric_label(key),
        f"{value:.4f}",
        delta,
        delta_color="normal" if charts.higher_is_better(key) else "inverse",
    )
st.caption("Open **Fusion Lab** for every metric, the per-user picture and the paired test.")
