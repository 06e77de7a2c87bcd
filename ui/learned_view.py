"""The Fusion Lab's "Learned fusion" tab: a LightGBM LambdaRank meta-ranker trained on validation (issue 12).

``learned_tab(cfg, current)`` draws the tab inside the page's live fragment. Nothing heavy runs on a rerun:
the ranker is trained only when the person presses "Train on validation", by ``reco_core.learned.run_learned``
(the function ``fuse --method learned`` calls: fit on the validation lab, weights searched on validation with
grid step 0.1 for the comparison, the test report at k, Holm's correction over its two paired tests), so the
dashboard and the command line report the same numbers and the same adjusted p-values.

**Training runs in a background thread**, owned by a ``_Job`` kept in the ``learned`` store of ``ui.cached``
under ``("learned-report", lab key, top_n, k)``, shared by every browser session. The job holds the progress
(fraction and text), then the ``Trained`` result or a one-line error; the thread updates only these plain
Python fields (never a Streamlit call). While the job runs, every session showing the same configuration polls
it with a small ``st.fragment(run_every=POLL_SECONDS)`` progress bar; when it ends, the poller reruns the page,
which draws the result (or the error, once). So a slider move, a second press or another session during
training loses nothing: a press while the job runs starts nothing new, and a failed job is started afresh by
the next press. What the press does in the script thread is only the validation lab (members refitted on train
minus validation, once per configuration, with its own progress box: it may need the browser session, for an
uploaded dataset) and the start of the thread.

The store also keeps ``("learned-model", lab key, top_n)``: the trained ``LearnedFusion`` (k does not enter the
model: its early stopping uses NDCG@10 on validation, its anchor the best member at 10). When k moves, a press
reuses it and only the search and the test report run again; a press at another k while that model is still
being trained waits for it instead of training a second one. The sidebar's weights, method and normaliser never
enter: the learned ranker has no weights.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from reco_core.errors import ConfigError, RecoError
from reco_core.learned import (
    BEST_MEMBER,
    DEFAULT_TOP_N,
    SEARCH_STEP,
    LearnedFusion,
    LearnedReport,
    LearnedRun,
    run_learned,
)
from ui import cached, charts, lab, state
from ui.lab import Lab
from ui.state import LabConfig
from ui.upload import plain
from ui.widgets import show_error

PAGE = "fusion_lab"
STORE = "learned"
LEARNED = "learned"
SEARCHED = "searched weights"
MIN_TOP_N = 5
ALPHA = 0.05
POLL_SECONDS = 0.75  # how often a session showing a running job redraws its progress bar

_LOG = logging.getLogger(__name__)

INTRO = (
    "A **LightGBM LambdaRank** meta-ranker re-ranks the union of the members' top-N candidates, learning per user "
    "and per item when to trust which member (scores, ranks, agreement, history length, popularity...). It is "
    "trained on the validation part, with the members refitted on train minus validation, and reported once on "
    "the test users."
)
NOTE = (
    "The sidebar's weights, fusion method, normaliser and re-ranker do not apply to the learned ranker: moving "
    "them changes the rest of this page, not these numbers. k does apply: the report below is at k = {k}."
)
IN_PROGRESS = (
    "Training in progress for these members, candidates and k: pressing again starts nothing new. Its progress "
    "is below."
)


@dataclass(frozen=True)
class Trained:
    """What one training run produced for (lab, top_n, k); shared, never mutated."""

    run: LearnedRun
    rows: dict[str, dict[str, float]]  # "learned", "searched weights", the best member -> metric values at k
    seconds: float

    @property
    def model(self) -> LearnedFusion:
        return self.run.model

    @property
    def report(self) -> LearnedReport:
        return self.run.report


def _model_key(current: Lab, top_n: int) -> tuple:
    return ("learned-model", current.key, int(top_n))


def _report_key(current: Lab, top_n: int, k: int) -> tuple:
    return ("learned-report", current.key, int(top_n), int(k))


Progress = Callable[[float, str], None]


class _Job:
    """One training run in a daemon thread, shared by every session that shows its (lab, top_n, k).

    The thread runs ``work(progress)`` and writes only this object's plain fields (under its lock): the
    progress, then ``result`` or ``error``, then ``done``. Streamlit is never called from the thread.
    """

    def __init__(self, title: str, k: int, work: Callable[[Progress], Trained]) -> None:
        self.title = title
        self.k = int(k)
        self._work: Callable[[Progress], Trained] | None = work
        self._lock = threading.Lock()
        self._fraction = 0.0
        self._text = "starting"
        self.result: Trained | None = None
        self.error: str | None = None
        self.started = time.perf_counter()
        self.done = threading.Event()
        self.on_end: Callable[[_Job], None] | None = None  # plain Python, called in the thread when it ends
        self.thread = threading.Thread(target=self._run, name=f"learned fusion: {title}", daemon=True)

    @property
    def running(self) -> bool:
        return not self.done.is_set()

    @property
    def failed(self) -> bool:
        return self.done.is_set() and self.result is None

    def progress(self, fraction: float, text: str) -> None:
        """The engine's ``progress(fraction, text)``: kept for the pollers (the bar never moves back)."""
        with self._lock:
            self._fraction = max(self._fraction, min(max(float(fraction), 0.0), 1.0))
            self._text = str(text)

    def snapshot(self) -> tuple[float, str]:
        with self._lock:
            return self._fraction, self._text

    def start(self) -> _Job:
        self.thread.start()
        return self

    def _run(self) -> None:
        result: Trained | None = None
        error: str | None = None
        # Held only while it runs: the finished job stays in the store and must not keep the labs alive.
        work, self._work = self._work, None
        try:
            if work is None:
                raise RuntimeError("a training job runs once")
            result = work(self.progress)
        except RecoError as exc:
            error = str(exc)
        except BaseException as exc:  # a bug or a library failure: one line on the page, the traceback in the log
            _LOG.exception("learned fusion failed: %s", self.title)
            error = f"learned fusion failed unexpectedly ({type(exc).__name__}: {exc})"
        finally:
            with self._lock:
                self.result, self.error = result, error
                if result is not None:
                    self._fraction, self._text = 1.0, "done"
            try:
                if self.on_end is not None:
                    self.on_end(self)
            finally:
                self.on_end = None  # it holds the lab too
                self.done.set()


# Jobs training a model right now, by (lab key, top_n): a press at another k waits for that model instead of
# training it twice. Entries leave when their job ends; guarded by _JOBS_LOCK, which also makes "look up the
# job, start one if there is none (or it failed)" one step across sessions.
_JOBS_LOCK = threading.Lock()
_TRAINING: dict[tuple, _Job] = {}


class _Local:
    """Where results live for a lab built by hand (no store key): this browser session only, a few entries."""

    MAX = 4

    @staticmethod
    def _items() -> dict:
        items = state.recall(PAGE, "learned_local")
        if items is None:
            items = {}
            state.remember(PAGE, "learned_local", items)
        return items

    def get(self, key: tuple) -> Any:
        return self._items().get(key)

    def put(self, key: tuple, value: Any) -> None:
        items = self._items()
        items.pop(key, None)
        items[key] = value
        while len(items) > self.MAX:
            items.pop(next(iter(items)))


def _store(current: Lab) -> Any:
    return cached.store(STORE) if current.key else _Local()


def _work(valid: Lab, current: Lab, top_n: int, k: int, seed: int, model: LearnedFusion | None, after: _Job | None):
    """What the job's thread runs: ``run_learned`` under the labs' locks (no Streamlit call)."""

    def work(progress: Progress) -> Trained:
        started = time.perf_counter()
        reuse = model
        if reuse is None and after is not None:
            progress(0.0, f"waiting for the ranker being trained at k = {after.k} (it is reused here)")
            after.done.wait()
            reuse = after.result.model if after.result is not None else None
        valid_session, test_session = valid.session, current.session
        if valid_session is None or test_session is None:
            raise ConfigError("no member could be fitted: change the members or their settings in the sidebar")
        run = run_learned(
            valid_session,
            test_session,
            valid.members,
            current.members,
            current.catalog.year,
            top_n,
            k,
            seed,
            progress=progress,
            search_step=SEARCH_STEP,
            model=reuse,
            valid_lock=valid.lock,
            test_lock=current.lock,  # the order the Trade-offs page takes them in: validation first
        )
        rows = {LEARNED: run.evaluation.values()}
        if run.searched_evaluation is not None:
            rows[SEARCHED] = run.searched_evaluation.values()
        rows[run.best_member] = run.best_evaluation.values()
        return Trained(run, rows, time.perf_counter() - started)

    return work


def _start(cfg: LabConfig, current: Lab, top_n: int) -> _Job:
    """The running or finished job for (lab, top_n, k), or a new one started (also in place of a failed one).

    Builds the validation lab here, in the script thread (once per configuration, shared, with its own progress
    box); the thread only trains, searches and reports."""
    k = cfg.k
    valid = lab.validation_lab(cfg)
    if valid.session is None or current.session is None:
        raise ConfigError("no member could be fitted: change the members or their settings in the sidebar")
    if tuple(valid.members) != tuple(current.members):
        raise ConfigError(
            f"members fitted on validation ({', '.join(valid.members)}) differ from those on test"
            f" ({', '.join(current.members)}): fix or remove the member that failed"
        )
    store = _store(current)
    key = _report_key(current, top_n, k)
    with _JOBS_LOCK:
        job = store.get(key)
        if job is not None and not job.failed:
            return job  # another session (or an earlier press) started it
        model = store.get(_model_key(current, top_n))
        training = (current.key, int(top_n))
        after = _TRAINING.get(training) if current.key and model is None else None
        work = _work(valid, current, top_n, k, cfg.protocol.seed, model, after)
        job = _Job(f"Learned fusion: top-{top_n} candidates per member, k = {k}", k, work)
        if current.key:
            shared = store

            def on_end(done: _Job) -> None:  # in the thread: plain Python on the thread-safe shared store
                with _JOBS_LOCK:
                    if _TRAINING.get(training) is done:
                        del _TRAINING[training]
                if done.result is not None and shared.get(_model_key(current, top_n)) is None:
                    shared.put(_model_key(current, top_n), done.result.model)

            job.on_end = on_end
        # Started before it is published: a thread that cannot start leaves no job that would say "training in
        # progress" forever, and the next press tries again. (on_end waits for _JOBS_LOCK, held here.)
        job.start()
        if current.key and model is None and after is None:
            _TRAINING[training] = job
        store.put(key, job)
        return job


def _harvest(store: Any, current: Lab, top_n: int, job: _Job) -> None:
    """Keep a finished job's model for the other k (the shared store already has it; a hand-built lab's not)."""
    if job.result is not None and store.get(_model_key(current, top_n)) is None:
        store.put(_model_key(current, top_n), job.result.model)


def _poll(job: _Job) -> None:
    """The progress of a running job (a fragment that reruns every POLL_SECONDS); once it has ended, the page
    reruns and draws the result or the error instead."""
    if not job.running:
        st.rerun()
    fraction, text = job.snapshot()
    elapsed = time.perf_counter() - job.started
    st.progress(fraction, text=plain(f"{job.title}: {text} ({elapsed:.0f} s)"))
    st.caption(
        "Training runs in the background: you can move the sliders or open another tab, and every browser "
        "session on this configuration sees the same run. The result appears here when it is done."
    )


# ------------------------------------------------------------------------------------------ drawing


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
    run = trained.run
    st.markdown("**Paired tests on the test users** (learned minus the other list, user by user):")
    for c in run.comparisons:
        words = f"the best member ({c.name})" if c.against == BEST_MEMBER else SEARCHED
        # The sentence fuse --method learned prints too: raw Wilcoxon p, then the Holm-adjusted p and its verdict.
        st.markdown(f"- Against {plain(words)}: {plain(c.sentence(LEARNED))}.")
    if len(run.comparisons) > 1:
        st.caption(
            f"Holm's correction over these {len(run.comparisons)} comparisons: each raw Wilcoxon p-value is adjusted "
            f"so that the chance of any false 'real difference' among them stays below {ALPHA:.0%}."
        )
    else:
        st.caption("Holm's correction over this single comparison leaves its p-value as it is.")
    if run.searched_weights:
        chosen = ", ".join(f"{n} = {w:.2f}" for n, w in run.searched_weights.items())
        st.caption(
            f"Searched weights: {plain(chosen)}, chosen on the same validation part (weighted sum of min-max "
            f"scores, grid step {run.search_step:g}, maximising NDCG@{k})."
        )
    elif run.search_message:
        st.caption(f"Weight search: {plain(run.search_message)}")


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
    job: _Job | None = store.get(_report_key(current, top_n, k))
    if pressed:
        if job is not None and job.running:
            st.info(IN_PROGRESS)
        elif job is None or job.failed:
            try:
                job = _start(cfg, current, top_n)
            except RecoError as exc:
                show_error(exc)
                return
        # A finished job: nothing new to run, its result is drawn below.
    if job is None:
        if store.get(_model_key(current, top_n)) is not None:
            st.caption(
                f"The ranker for top-{top_n} candidates is trained, but its test report at k = {k} is not computed "
                "yet. Press the button: the model is reused, only the weight search and the test report run."
            )
        else:
            st.caption("Not trained yet for these members and this number of candidates.")
    elif job.running:
        st.fragment(run_every=POLL_SECONDS)(_poll)(job)
    elif job.result is None:
        show_error(job.error or "learned fusion failed")  # one line, once; the next press starts afresh
        st.caption("Press **Train on validation** to try again.")
    else:
        _harvest(store, current, top_n, job)
        _show(job.result, k)
