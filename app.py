"""Overview: what this app is, the dataset in figures and plots, and the current configuration in words.

Run with ``make run`` (or ``streamlit run app.py``). The other views live in ``pages/``; each calls the
shared sidebar itself, so a deep link to any page works on a fresh server.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from reco_core.errors import RecoError
from ui import cached, charts, lab, page, state, tiles, upload, vega_charts
from ui.upload import plain
from ui.widgets import show_error

LOGO = Path(__file__).resolve().parent / "assets" / "logo.svg"
HEADLINE = ("ndcg", "precision", "recall", "coverage", "novelty")
FIGURE_WIDTH = 450  # px: two figures per row from a 1,400 px window up, one below that
FIGURE_TILE = 170

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

try:
    dataset = lab.get_dataset(protocol)
except RecoError as exc:
    show_error(exc)
    st.stop()

stats = cached.overview_stats(lab.dataset_key(protocol), dataset)
st.subheader(f"The data: {plain(upload.dataset_title(stats['name']))}")
counts = st.container(horizontal=True, gap="small")
counts.metric("Users", f"{stats['n_users']:,}", width=FIGURE_TILE)
counts.metric("Items", f"{stats['n_items']:,}", width=FIGURE_TILE)
counts.metric("Interactions", f"{stats['n_interactions']:,}", width=FIGURE_TILE)
counts.metric("Density", f"{stats['density']:.2%}", help="interactions / (users × items)", width=FIGURE_TILE)
st.caption("Load report: " + plain(upload.source_words(stats["report"])))

item_counts = np.asarray(stats["item_counts"])
user_counts = np.asarray(stats["user_counts"])
_, head_share = vega_charts.popular_head(item_counts)
# Two figures side by side where the window is wide enough, one under the other on a laptop-width window.
figures = st.container(horizontal=True, gap="medium")
for chart, alt, caption in (
    (
        vega_charts.rating_histogram(stats["rating_values"], stats["rating_counts"]),
        "Bar chart of how many interactions have each rating value.",
        "How ratings are spread. Every rating counts as a positive unless the protocol sets a threshold.",
    ),
    (
        vega_charts.long_tail(item_counts),
        "Items sorted by popularity, most popular first, showing a long tail.",
        f"The most popular 20% of items hold {head_share:.0%} of all interactions: the long tail.",
    ),
    (
        vega_charts.user_activity(user_counts),
        "Histogram of the number of interactions per user, on a log scale.",
        f"Median user: {int(np.median(user_counts))} interactions; the busiest: {int(user_counts.max()):,}.",
    ),
    *(
        [
            (
                vega_charts.genre_bars(stats["genres"], stats["genre_interactions"], what="interactions"),
                "Horizontal bar chart of interactions per genre.",
                "Interactions per genre (an item with several genres counts in each).",
            )
        ]
        if stats["genres"]
        else []
    ),
):
    with figures.container(width=FIGURE_WIDTH):
        vega_charts.show(chart, alt=alt, caption=caption)
if not stats["genres"]:
    st.info("This dataset has no genres, so the genre chart and genre diversity are not available.")


def glance(cfg: state.LabConfig | None) -> None:
    """The configuration in words and its headline tiles: the Overview's live part."""
    st.subheader("The current configuration")
    if cfg is None:
        st.write(plain(protocol.describe()) + ".")
        page.no_configuration("Choose at least one member in the sidebar to fit and fuse.")
        return
    st.write(plain(cfg.describe()))
    try:
        current = lab.get_lab(cfg)
    except RecoError as exc:
        show_error(exc)
        return
    result = page.fused(current, cfg)
    if result is None:
        return
    best = result.best_member
    best_eval = current.session.member_evaluation(best, cfg.k) if best else None
    best_values = best_eval.values() if best_eval is not None else {}
    values = result.evaluation.values()
    row = tiles.grid()
    for name in HEADLINE:
        key = f"{name}@{cfg.k}"
        if key in values:
            tiles.tile(row, charts.metric_label(key), values[key], best_values.get(key), charts.higher_is_better(key))
    st.caption(
        f"Deltas against the best single member, {plain(best)}. "
        + tiles.jargon(HEADLINE)
        + " Open **Fusion Lab** for every metric, the per-user picture and the paired test."
    )


if cfg is None:
    glance(None)
else:
    page.live(cfg, glance)
