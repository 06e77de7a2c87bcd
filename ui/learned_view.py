"""The Fusion Lab's "Learned fusion" tab: a LightGBM LambdaRank meta-ranker trained on validation (issue 12).

``learned_tab(cfg, current)`` draws the tab inside the page's live fragment. Nothing heavy runs on a rerun:
the ranker is trained only when the person presses "Train on validation", and what it produced is kept in
the ``learned`` store of ``ui.cached``, shared by every browser session:

- ``("learned-model", lab key, top_n)``: the ``LearnedFusion`` fitted by ``reco_core.learned.fit_learned`` on
  the validation lab (members refitted on train minus validation). The lab key holds the protocol (seed and
  validation share included) and the member specs, so it also names the validation lab. k does not enter the
  model (its early stopping uses NDCG@10 on validation, its anchor the best member at 10).
- ``("learned-report", lab key, top_n, k)``: a ``Trained``: the test report at k (``report_learned``), the
  weights searched on validation for the comparison (``search.optimise``, weighted sum of min-max scores,
  grid step 0.1, NDCG@k, the protocol's seed: as ``fuse --method learned`` does) and the metric rows shown.

When k moves, the model is reused and only the search and the test report run again (after a press). The
sidebar's weights, method and normaliser never enter: the learned ranker has no weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from reco_core import search
from reco_core.errors import ConfigError, RecoError
from reco_core.learned import DEFAULT_TOP_N, LearnedFusion, LearnedReport, fit_learned, report_learned
from reco_core.stats import holm_adjust
from ui import cached, charts, lab, state
from ui.lab import Lab
from ui.state import LabConfig
from ui.upload import plain
from ui.widgets import show_error

PAGE = "fusion_lab"
STORE = "learned"
LEARNED = "learned"
SEARCHED = "searched weights"
SEARCH_STEP = 0.1  # the CLI's grid for the comparison (reco_core.cli_commands.cmd_fuse_learned)
MIN_TOP_N = 5
ALPHA = 0.05
# Where each phase sits on the one progress bar of a training run.
FIT_SHARE, SEARCH_SHARE = 0.6, 0.35

INTRO = (
    "A **LightGBM LambdaRank** meta-ranker re-ranks the union of the members' top-N candidates, learning per user "
    "and per item when to trust which member (scores, ranks, agreement, history length, popularity...). It is "
    "trained on the validation part, with the members refitted on train minus validation, and reported once on "
    "the test users."
)
NOTE = (
    "The sidebar's weights, fusion method and normaliser do not apply to the learned ranker: moving them changes "
    "the rest of this page, not these numbers. k does apply: the report below is at k = {k}."
)


@dataclass(frozen=True)
class Trained:
    """What one training run produced for (lab, top_n, k); shared, never mutated."""

    report: LearnedReport
    searched_weights: dict[str, float] | None
    search_message: str
    rows: dict[str, dict[str, float]]  # "learned", "searched weights", the best member -> metric values at k
    seconds: float

    @property
    def model(self) -> LearnedFusion:
        return self.report.model


def _model_key(current: Lab, top_n: int) -> tuple:
    return ("learned-model", current.key, int(top_n))


def _report_key(current: Lab, top_n: int, k: int) -> tuple:
    return ("learned-report", current.key, int(top_n), int(k))


class _Local:
    """Where results live for a lab built by hand (no store key): this browser session only."""

    @staticmethod
    def _items() -> dict:
        items = state.recall(PAGE, "learned_local")
        if items is None:
            items = {}
            state.remember(PAGE, "learned_local", items)
        return items

    def get(self, key: tuple) -> Any:
        return self._items().get(key)

    def get_or_build(self, key: tuple, build: Any) -> Any:
        items = self._items()
        if key not in items:
            items.clear()  # one entry: a hand-built lab is a test or a one-off
            items[key] = build()
        return items[key]


def _store(current: Lab) -> Any:
    return cached.store(STORE) if current.key else _Local()


class _Bar:
    """One ``st.status`` box with a progress bar, driven by the engine's ``progress(fraction, text)``."""

    def __init__(self, title: str) -> None:
        self._title = title
        self._status: Any = None
        self._bar: Any = None

    def phase(self, start: float, share: float) -> Any:
        """A ``progress`` callback whose 0..1 lands on ``start .. start + share`` of the bar."""
        return lambda fraction, text: self.update(start + share * min(max(float(fraction), 0.0), 1.0), text)

    def update(self, fraction: float, text: str) -> None:
        if self._status is None:
            self._status = st.status(self._title, expanded=True)
            self._bar = self._status.progress(0.0)
        self._bar.progress(min(max(float(fraction), 0.0), 1.0), text=plain(text))

    def done(self, label: str) -> None:
        if self._status is not None:
            self._status.update(label=label, state="complete", expanded=False)

    def failed(self, label: str) -> None:
        if self._status is not None:
            self._status.update(label=label, state="error", expanded=True)


def _train(cfg: LabConfig, current: Lab, top_n: int) -> Trained:
    """Fit (or reuse) the ranker for ``top_n``, search weights for the comparison and report both at k on test."""
    k = cfg.k
    store = _store(current)
    seed = cfg.protocol.seed
    valid = lab.validation_lab(cfg)
    valid_session, test_session = valid.session, current.session
    if valid_session is None or test_session is None:
        raise ConfigError("no member could be fitted: change the members or their settings in the sidebar")
    if tuple(valid.members) != tuple(current.members):
        raise ConfigError(
            f"members fitted on validation ({', '.join(valid.members)}) differ from those on test"
            f" ({', '.join(current.members)}): fix or remove the member that failed"
        )
    bar = _Bar(f"Learned fusion: top-{top_n} candidates per member, k = {k}")
    started = time.perf_counter()

    def fit() -> LearnedFusion:
        with valid.lock:
            return fit_learned(
                valid_session, valid.members, valid.catalog.year, top_n, seed=seed, progress=bar.phase(0.0, FIT_SHARE)
            )

    def build() -> Trained:
        model = store.get_or_build(_model_key(current, top_n), fit)
        bar.update(FIT_SHARE, f"searching weights on validation for the comparison (grid step {SEARCH_STEP:g})")
        with valid.lock, current.lock:  # the order the Trade-offs page takes them in
            found = search.optimise(
                valid_session,
                test_session,
                metric=f"ndcg@{k}",
                step=SEARCH_STEP,
                seed=seed,
                progress=bar.phase(FIT_SHARE, SEARCH_SHARE),
            )
        bar.update(FIT_SHARE + SEARCH_SHARE, "ranking the test users once with the learned model")
        searched = found.test.evaluation if found.test is not None else None
        with current.lock:
            report = report_learned(model, test_session, current.members, current.catalog.year, k=k, searched=searched)
            best_values = test_session.member_evaluation(report.best_member, k).values()
        rows = {LEARNED: report.evaluation.values()}
        if searched is not None:
            rows[SEARCHED] = searched.values()
        rows[report.best_member] = best_values
        return Trained(report, found.weights, found.message, rows, time.perf_counter() - started)

    try:
        trained = store.get_or_build(_report_key(current, top_n, k), build)
    except RecoError as exc:
        bar.failed(f"Learned fusion failed: {plain(exc)}")
        raise
    bar.done(f"Learned fusion ready in {time.perf_counter() - started:.1f} s")
    return trained


# ------------------------------------------------------------------------------------------ drawing


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return f"{p:.3g}" if p >= 0.001 else f"{p:.1e}"  # 3 figures: 0.0497 must not read as 0.050 next to alpha


def _metric_table(trained: Trained) -> pd.DataFrame:
    keys = [key for key in trained.rows[LEARNED] if all(key in row for row in trained.rows.values())]
    frame = pd.DataFrame({name: [row[key] for key in keys] for name, row in trained.rows.items()}, index=keys).T
    return frame.rename(columns=charts.metric_label)


def importance_figure(importances: pd.DataFrame, top: int = 12) -> go.Figure:
    """Horizontal bars of the features' gain share (largest at the top), in the dashboard's chart style."""
    shown = importances.head(top).iloc[::-1]
    fig = go.Figure(
        go.Bar(
            x=shown["gain_share"],
            y=shown["feature"],
            orientation="h",
            marker_color=charts.FUSION_COLOUR,
            customdata=shown["splits"],
            hovertemplate="%{y}<br>%{x:.1%} of the gain, %{customdata:,} splits<extra></extra>",
        )
    )
    fig.update_layout(
        title=dict(text="What the learned ranker relies on"),
        xaxis=dict(title="share of the total gain", tickformat=".0%"),
        yaxis_title="feature",
        height=max(260, 28 * len(shown) + 90),
        margin=dict(l=10, r=10, t=50, b=10),
    )
    return fig


def _comparisons(trained: Trained, k: int) -> None:
    report = trained.report
    best = report.best_member
    pairs = [(f"the best member ({best})", best, report.versus_best_member)]
    if report.versus_searched is not None:
        pairs.append((SEARCHED, SEARCHED, report.versus_searched))
    adjusted = holm_adjust([c.p_value for _, _, c in pairs])
    st.markdown("**Paired tests on the test users** (learned minus the other list, user by user):")
    for (words, name, comparison), p_adj in zip(pairs, adjusted, strict=True):
        verdict = "significant" if p_adj < ALPHA else "not significant"
        st.markdown(
            f"- Against {plain(words)}: {plain(comparison.sentence(name, LEARNED))}. Holm-adjusted p = {_p(p_adj)}"
            f" ({verdict} at {ALPHA:.0%})."
        )
    if len(pairs) > 1:
        st.caption(
            f"Holm's correction over these {len(pairs)} comparisons: each raw Wilcoxon p-value is adjusted so that "
            f"the chance of any false 'real difference' among them stays below {ALPHA:.0%}."
        )
    else:
        st.caption("Holm's correction over this single comparison leaves its p-value as it is.")
    if trained.searched_weights:
        chosen = ", ".join(f"{n} = {w:.2f}" for n, w in trained.searched_weights.items())
        st.caption(
            f"Searched weights: {plain(chosen)}, chosen on the same validation part (weighted sum of min-max "
            f"scores, grid step {SEARCH_STEP:g}, maximising NDCG@{k})."
        )
    elif trained.search_message:
        st.caption(f"Weight search: {plain(trained.search_message)}")


def _show(trained: Trained, k: int) -> None:
    model = trained.model
    table = _metric_table(trained)
    st.markdown(f"**On the test users at k = {k}**: the learned list, the searched weights and the best member.")
    st.dataframe(
        table, width="stretch", column_config={c: st.column_config.NumberColumn(format="%.4f") for c in table.columns}
    )
    _comparisons(trained, k)
    imp = model.importances()
    charts.show(
        importance_figure(imp),
        alt="Horizontal bar chart of each feature's share of the learned ranker's total gain, largest first.",
        caption="Gain share: how much of the trees' improvement each feature's splits bring. `<member>_score` and "
        f"`<member>_rank` are that member's normalised score and rank among its top-{model.top_n}.",
    )
    with st.expander("Feature importances as a table"):
        st.dataframe(
            imp,
            hide_index=True,
            width="stretch",
            column_config={"gain_share": st.column_config.NumberColumn("gain share", format="percent")},
        )
    st.caption(
        f"{model.best_iteration} trees, boosted from {plain(model.anchor)}'s scores (the best member on "
        f"validation), trained on {model.train_users:,} validation users and early-stopped on {model.stop_users:,} "
        f"others; {model.users_without_positive:,} validation users had no validation item among their candidates. "
        f"Computed in {trained.seconds:.1f} s."
    )


def learned_tab(cfg: LabConfig, current: Lab) -> None:
    """The "Learned fusion" tab of the Fusion Lab (module docstring); call it inside the tab's ``with`` block."""
    st.markdown(INTRO)
    if len(cfg.members) < 2 or len(current.members) < 2:
        fitted = f" (only {len(current.members)} fitted)" if len(cfg.members) >= 2 else ""
        st.info(f"Learned fusion needs at least two members{fitted}: add another member in the sidebar.")
        return
    session = current.session
    if session is None:
        show_error("no member could be fitted: change the members or their settings in the sidebar")
        return
    k = cfg.k
    st.info(NOTE.format(k=k))
    most = int(session.top_n)
    least = min(MIN_TOP_N, most)
    c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
    top_n = int(
        c1.number_input(
            "Candidates per member (top-N)",
            min_value=least,
            max_value=most,
            value=min(DEFAULT_TOP_N, most),
            step=5,
            # Kept while another tab is open (only the open tab is drawn); keyed by the bound, so a value kept for
            # a larger catalogue never exceeds a smaller one's.
            key=f"{PAGE}:learned_top_n:{most}",
            persist_state="session",
            help="Each member's top-N lists are merged into the candidates the ranker re-orders. More candidates "
            f"find more held-out items but make a larger training set (at most {most}: what the session keeps).",
        )
    )
    pressed = c2.button(
        "Train on validation",
        type="primary",
        key=f"{PAGE}:learned_train",
        help="Refits the members on train minus validation (once per configuration), trains the ranker there, "
        "searches weights on validation for the comparison, and reports both once on test.",
    )
    store = _store(current)
    trained: Trained | None = None
    if pressed:
        try:
            trained = _train(cfg, current, top_n)
        except RecoError as exc:
            show_error(exc)
            return
    else:
        trained = store.get(_report_key(current, top_n, k))
    if trained is not None:
        _show(trained, k)
    elif store.get(_model_key(current, top_n)) is not None:
        st.caption(
            f"The ranker for top-{top_n} candidates is trained, but its test report at k = {k} is not computed yet. "
            "Press the button: the model is reused, only the weight search and the test report run."
        )
    else:
        st.caption("Not trained yet for these members and this number of candidates.")
