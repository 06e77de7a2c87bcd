"""From a ``LabConfig`` to fitted members, a live session and the current fused result.

    get_lab(cfg)            dataset -> split -> each member fitted -> EvalContext -> LiveSession (test)
    current_result(lab, cfg)  re-fuse with the sidebar's weights, method, normaliser and k (cheap)
    validation_lab(cfg)     the same on train minus validation, LiveSession on validation (weight search)

Everything expensive is built once per small key (protocol fields, member spec) in the bounded stores
of ``ui.cached`` and shared by every browser session; a weight change never refits or rescores. When
something has to be built, an ``st.status`` box lists the steps (loading, splitting, each member's
fit with its time, embeddings with a progress bar). A member that fails to fit is reported by name
with ``st.error`` and left out; the others keep working.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from reco_core import analysis, datasets, experiment
from reco_core.analysis import UserView
from reco_core.data import Dataset, ItemCatalog
from reco_core.errors import ConfigError, FitError, RecoError
from reco_core.experiment import MemberSpec, Protocol
from reco_core.fusion import FusionResult, fuse
from reco_core.live import LiveResult, LiveSession
from reco_core.metrics import EvalContext, Evaluation
from reco_core.models import Scorer, knn
from reco_core.ranking import Ranking
from reco_core.splitting import Split
from ui import cached, state
from ui.state import LabConfig
from ui.widgets import show_error

Progress = Callable[[float, str], None]
MAX_PROFILES = 8  # what-if profiles kept per lab (members x items float32 each)


@dataclass(frozen=True)
class FitOutcome:
    """One member's fit: the model, or the one-line reason it failed; seconds either way."""

    spec: MemberSpec
    model: Scorer | None
    error: str | None
    seconds: float


@dataclass(frozen=True)
class Lab:
    """Everything a page needs for one protocol and member set (shared, never mutated)."""

    protocol: Protocol
    part: str  # "test", or "valid" for the weight search
    dataset: Dataset
    split: Split
    ctx: EvalContext
    outcomes: tuple[FitOutcome, ...]
    session: LiveSession | None  # None when no member fitted
    key: tuple = field(default=(), compare=False, repr=False)  # its store key (protocol, part, member specs)
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)
    # Member rows of the last few what-if profiles, so a weight move re-fuses a profile without rescoring it.
    profiles: cached.BoundedStore = field(
        default_factory=lambda: cached.BoundedStore(MAX_PROFILES), compare=False, repr=False
    )

    @property
    def members(self) -> dict[str, Scorer]:
        """Fitted members by label, in the configuration's order."""
        return {o.spec.label: o.model for o in self.outcomes if o.model is not None}

    @property
    def failed(self) -> dict[str, str]:
        return {o.spec.label: o.error or "" for o in self.outcomes if o.model is None}

    @property
    def catalog(self) -> ItemCatalog:
        return self.dataset.catalog

    def weights_for(self, cfg: LabConfig) -> list[float]:
        """The sidebar's weights of the fitted members, in the session's order (failed members left out)."""
        by_label = cfg.weight_map
        return [float(by_label.get(label, 0.0)) for label in self.members]


# ------------------------------------------------------------------------------------------ keys


def _dataset_key(p: Protocol) -> tuple:
    return ("dataset", p.dataset, p.data_dir, p.threshold, p.kcore)


def _split_key(p: Protocol, validation: bool) -> tuple:
    return ("split", p, validation)


def _member_key(p: Protocol, validation: bool, spec: MemberSpec) -> tuple:
    return ("member", p, validation, spec)


def _context_key(p: Protocol, validation: bool) -> tuple:
    return ("context", p, validation)


def _session_key(p: Protocol, validation: bool, specs: Sequence[MemberSpec]) -> tuple:
    return ("session", p, validation, tuple(specs))


# ------------------------------------------------------------------------------------------ builders


def _load_dataset(protocol: Protocol) -> Dataset:
    if protocol.dataset.startswith("upload:"):
        up = state.get_uploaded()
        if up is None or up.protocol_name != protocol.dataset:
            raise ConfigError("the uploaded dataset is not in this session: upload it again on the Your data page")
        # The protocol's threshold and k-core apply to an upload as to any dataset (each drop counted).
        return datasets.filter_dataset(up.dataset, protocol.threshold, protocol.kcore)
    return experiment.load_dataset(protocol)


def _fit(spec: MemberSpec, split: Split, dataset: Dataset, seed: int, progress: Progress | None) -> FitOutcome:
    start = time.perf_counter()
    try:
        model = experiment.fit_member(spec, split, dataset, seed, progress)
        return FitOutcome(spec, model, None, time.perf_counter() - start)
    except RecoError as exc:
        return FitOutcome(spec, None, str(exc), time.perf_counter() - start)
    except MemoryError:
        return FitOutcome(spec, None, f"{spec.label} ran out of memory: try a smaller dataset", 0.0)


def _context(split: Split, dataset: Dataset, progress: Progress | None) -> EvalContext:
    """Evaluation context with text vectors (for ild_text); without them if the text model is unavailable."""
    try:
        return experiment.eval_context(split, dataset, with_text=True, progress=progress)
    except RecoError:
        return experiment.eval_context(split, dataset, with_text=False)


class _Steps:
    """The ``st.status`` box shown while something is built (created on the first step only)."""

    def __init__(self, container: Any, title: str) -> None:
        self._container = container
        self._title = title
        self._status: Any = None
        self._bar: Any = None

    def step(self, message: str) -> None:
        if self._status is None:
            self._status = self._container.status(self._title, expanded=True)
        self._bar = None
        self._status.write(message)

    def progress(self, fraction: float, message: str) -> None:
        if self._status is None:
            self.step(message)
        if self._bar is None:
            self._bar = self._status.progress(0.0, text=message)
        self._bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    def done(self, label: str) -> None:
        if self._status is not None:
            self._status.update(label=label, state="complete", expanded=False)

    def failed(self, label: str) -> None:
        if self._status is not None:
            self._status.update(label=label, state="error", expanded=True)


def _build(protocol: Protocol, specs: Sequence[MemberSpec], validation: bool, container: Any) -> Lab:
    part = "valid" if validation else "test"
    stores = cached.stores()
    title = "Preparing the weight search (validation split)" if validation else "Preparing the lab"
    steps = _Steps(container if container is not None else st, title)
    started = time.perf_counter()

    def load() -> Dataset:
        steps.step(f"Loading {protocol.dataset}…")
        return _load_dataset(protocol)

    def split_it() -> Split:
        steps.step("Splitting " + ("train into train and validation…" if validation else "into train and test…"))
        return experiment.make_split(dataset, protocol, validation=validation)

    def context() -> EvalContext:
        steps.step("Embedding item texts for the text-diversity metric…")
        return _context(split, dataset, steps.progress)

    try:
        dataset = stores["dataset"].get_or_build(_dataset_key(protocol), load)
        split = stores["split"].get_or_build(_split_key(protocol, validation), split_it)
        outcomes = []
        for spec in specs:

            def fit(spec: MemberSpec = spec) -> FitOutcome:
                steps.step(f"Fitting {spec.label}…")
                out = _fit(spec, split, dataset, protocol.seed, steps.progress)
                steps.step(f"{spec.label}: " + (f"fitted in {out.seconds:.1f} s" if out.model else "failed"))
                return out

            outcomes.append(stores["member"].get_or_build(_member_key(protocol, validation, spec), fit))
        ctx = stores["context"].get_or_build(_context_key(protocol, validation), context)

        def make_session() -> Lab:
            fitted = {o.spec.label: o.model for o in outcomes if o.model is not None}
            session = None
            if fitted:
                steps.step(f"Scoring {part} users with every member…")
                session = LiveSession(fitted, split, ctx, part=part, max_k=state.MAX_K)
            return Lab(protocol, part, dataset, split, ctx, tuple(outcomes), session, key)

        key = _session_key(protocol, validation, specs)
        lab = stores["session"].get_or_build(key, make_session)
    except RecoError as exc:
        steps.failed(f"Could not prepare the lab: {exc}")
        raise
    steps.done(f"Ready in {time.perf_counter() - started:.1f} s")
    return lab


def get_lab(cfg: LabConfig, progress_container: Any = None, report_failures: bool = True) -> Lab:
    """The lab for ``cfg`` (test part), built once per protocol and member set.

    Shows build progress in ``progress_container`` (default: the page) and an ``st.error`` per member
    that failed to fit. Raises RecoError when the data cannot be loaded or split, or no member fitted.
    """
    lab = _build(cfg.protocol, cfg.members, False, progress_container)
    _after(lab, report_failures)
    return lab


def validation_lab(cfg: LabConfig, progress_container: Any = None, report_failures: bool = True) -> Lab:
    """The lab on train minus validation with a LiveSession on the validation part (for the weight search)."""
    lab = _build(cfg.protocol, cfg.members, True, progress_container)
    _after(lab, report_failures)
    return lab


def _after(lab: Lab, report_failures: bool) -> None:
    if report_failures:
        for label, reason in lab.failed.items():
            # Escaped: a library's exception message may quote a title or an id from a person's file.
            show_error(f"Member {label} could not be fitted and is left out: {reason}")
    _session_of(lab)


def _session_of(lab: Lab) -> LiveSession:
    """The lab's live session; ConfigError (for the page to show) when no member fitted."""
    if lab.session is None:
        raise ConfigError("no member could be fitted: change the members or their settings in the sidebar")
    return lab.session


def _positive_weights(lab: Lab, cfg: LabConfig) -> list[float]:
    """The sidebar's weights of the fitted members; ConfigError when none is above zero."""
    weights = lab.weights_for(cfg)
    if not any(w > 0 for w in weights):
        raise ConfigError("all weights are zero: give at least one member a positive weight in the sidebar")
    return weights


def itemknn_by_pruning(lab: Lab) -> dict[str, Scorer]:
    """Item-kNN under each neighbour-pruning rule on the lab's split, with the lab's own item-kNN settings
    (the defaults when it has none); fitted once and kept in the member store like any member."""
    base = next((o.spec for o in lab.outcomes if o.spec.model == "itemknn"), MemberSpec.of("itemknn"))
    validation = lab.part == "valid"
    out: dict[str, Scorer] = {}
    for rule in knn.PRUNE_RULES:
        spec = MemberSpec.of("itemknn", {**dict(base.params), "prune": rule})
        outcome = cached.store("member").get_or_build(
            _member_key(lab.protocol, validation, spec),
            lambda spec=spec: _fit(spec, lab.split, lab.dataset, lab.protocol.seed, None),
        )
        if outcome.model is None:
            raise FitError(outcome.error or f"{spec.label} could not be fitted")
        out[rule] = outcome.model
    return out


def _shared(lab: Lab, kind: str, key: tuple, build: Callable[[], Any]) -> Any:
    """``build()`` through the ``kind`` store of ``ui.cached``, keyed by the lab's own key and ``key`` (small
    values: weights, FusionSpec), so every browser session on this lab and configuration shares one result.
    A lab without a store key (built by hand, not by ``get_lab``) is not shared: ``build()`` runs."""
    if not lab.key:
        return build()
    return cached.store(kind).get_or_build((kind, lab.key, *key), build)


def current_result(lab: Lab, cfg: LabConfig) -> LiveResult:
    """Re-fuse with the sidebar's weights and fusion (method, normaliser, k, its parameters): no refit, no rescoring.

    Team-draft's coin flips use the protocol's seed, here and in every other fusion the pages show.
    Raises ConfigError (e.g. all weights zero) with a one-line message for the page to show.
    """
    session = _session_of(lab)
    weights = _positive_weights(lab, cfg)

    def build() -> LiveResult:
        with lab.lock:
            return session.apply(weights, cfg.fusion, cfg.rerank)

    # Shared by every browser session (ui.cached): one fusion per configuration however many people look at it.
    return _shared(lab, "result", _fusion_key(weights, cfg), build)


def _fusion_key(weights: Sequence[float], cfg: LabConfig) -> tuple:
    """What a fused result depends on: the weights' shares (not the raw weights: (1, 1) and (0.5, 0.5) are the same
    fusion), the fusion and the re-ranker."""
    total = sum(weights)
    shares = tuple(round(w / total, 12) for w in weights)
    return (shares, cfg.fusion, cfg.rerank)


def rerank_movement(lab: Lab, result: LiveResult) -> pd.DataFrame:
    """How far a re-ranked result moved from the fused list and each member (``LiveSession.movement``)."""
    session = _session_of(lab)
    with lab.lock:
        return session.movement(result)


def tile_tests(lab: Lab, cfg: LabConfig, result: LiveResult) -> pd.DataFrame:
    """Fused against the best member on every per-user metric, Holm-corrected over all of them
    (``stats.paired_table``: A = the best member, B = the fused list). Shared by every browser session per
    configuration; each caller gets its own copy."""
    from reco_core.stats import paired_table

    keys = [key for key in result.evaluation.per_user if key in result.best_evaluation.per_user]

    def build() -> pd.DataFrame:
        # The default bootstrap seed, as LiveResult.compare uses: the Per user tab shows the same interval.
        return paired_table(result.best_evaluation.per_user, result.evaluation.per_user, keys)

    # Kept in the ablation store (tables of the same size, per configuration), under their own key.
    key = ("tile-tests", *_fusion_key(lab.weights_for(cfg), cfg), result.best_member)
    return _shared(lab, "ablation", key, build).copy()


def fused_evaluation(lab: Lab, result: LiveResult) -> Evaluation:
    """The evaluation of the fused top-k before re-ranking (``LiveSession.fused_evaluation``)."""
    session = _session_of(lab)
    with lab.lock:
        return session.fused_evaluation(result)


def get_dataset(protocol: Protocol, progress_container: Any = None) -> Dataset:
    """Only the dataset (the Overview page draws it before anything is fitted)."""
    stores = cached.stores()
    steps = _Steps(progress_container if progress_container is not None else st, "Loading data")

    def load() -> Dataset:
        steps.step(f"Loading {protocol.dataset}…")
        return _load_dataset(protocol)

    ds = stores["dataset"].get_or_build(_dataset_key(protocol), load)
    steps.done(f"Loaded {ds.name}")
    return ds


def dataset_key(protocol: Protocol) -> str:
    """A short string naming the protocol's dataset (for st.cache_data keys)."""
    return repr(_dataset_key(protocol))


# ------------------------------------------------------------------------------------------ small helpers for pages


def history(lab: Lab, user_index: int) -> tuple[np.ndarray, np.ndarray]:
    """A user's training items (indices) and their ratings (stored values), in item order."""
    m = lab.split.train.matrix
    lo, hi = m.indptr[user_index], m.indptr[user_index + 1]
    return m.indices[lo:hi].astype(np.int64), m.data[lo:hi].astype(np.float64)


def activity(lab: Lab) -> np.ndarray:
    """Training interactions per user (index order)."""
    return lab.split.train.user_counts()


def item_frame(lab: Lab, item_idx: np.ndarray) -> pd.DataFrame:
    """Item id, title and genres of item indices (text only, for tables)."""
    idx = np.asarray(item_idx).reshape(-1)
    return pd.DataFrame(
        {
            "item": lab.split.train.items.ids_of(idx),
            "title": analysis.item_titles(lab.catalog, idx),
            "genres": analysis.item_genres(lab.catalog, idx),
        }
    )


# ------------------------------------------------------------------------------------------ analyses the pages draw
# The analyses live in reco_core.analysis; these wrappers only hold the lab's lock around the shared session
# (its member evaluations are cached inside it) and read the sidebar's configuration.


def member_evaluations(lab: Lab, k: int) -> dict[str, Evaluation]:
    """Each fitted member's own evaluation at k (``analysis.member_evaluations`` under the lab's lock)."""
    session = _session_of(lab)
    with lab.lock:
        return analysis.member_evaluations(session, k)


def metric_table(lab: Lab, result: LiveResult | None, k: int) -> pd.DataFrame:
    """The fusion (when there is a result) and each member on every metric at k (``analysis.metric_table``)."""
    session = _session_of(lab)
    with lab.lock:
        return analysis.metric_table(session, result, k)


def ablation_table(lab: Lab, cfg: LabConfig, keys: Sequence[str], full: Evaluation | None = None) -> pd.DataFrame:
    """The fusion with each member removed, with the sidebar's weights and fusion (``analysis.ablation_table``;
    ``full``: the current result's evaluation, recomputed when not given). Shared by every browser session per
    (lab, weights, fusion, keys); each caller gets its own copy of the table."""
    session = _session_of(lab)
    weights = lab.weights_for(cfg)

    def build() -> pd.DataFrame:
        with lab.lock:
            return analysis.ablation_table(session, weights, cfg.fusion, keys, full)

    return _shared(lab, "ablation", (tuple(weights), cfg.fusion, tuple(keys)), build).copy()


def recommendations_csv(lab: Lab, ranking: Ranking) -> str:
    """user, rank, item, title, genres, score as CSV text; every text cell made formula-safe."""
    from reco_core.runs import safe_csv_cell

    frame = ranking.to_frame(lab.split.train.users, lab.split.train.items)
    idx = lab.split.train.items.index_of(frame["item"].astype(str))
    frame.insert(3, "title", analysis.item_titles(lab.catalog, idx))
    frame.insert(4, "genres", analysis.item_genres(lab.catalog, idx))
    for col in ("user", "item", "title", "genres"):
        frame[col] = frame[col].map(safe_csv_cell)
    return frame.to_csv(index=False)


# ------------------------------------------------------------------------------------------ one user (explorer)


def _fuse_rows(
    lab: Lab, cfg: LabConfig, scores: dict[str, np.ndarray], user_index: int = 0, k: int | None = None
) -> FusionResult:
    """Fuse one person's member rows as ``current_result`` fuses the session's users (same top-N, seed, and
    the user's own index, on which team-draft's coin flips depend); a new profile fuses as user 0. ``k``: the
    fused list's length (default the configuration's)."""
    weights = _positive_weights(lab, cfg)
    names = list(scores)
    return fuse(
        [scores[n][None, :] for n in names],
        None,
        weights,
        cfg.method,
        cfg.normaliser,
        cfg.k if k is None else k,
        lab.split.train.n_items,
        np.array([user_index], dtype=np.int32),
        seed=cfg.fusion.seed,
        top_n=_session_of(lab).top_n,
        member_names=names,
        params=cfg.fusion.param_map,
    )


def _masked(row: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    out = np.array(row, dtype=np.float32, copy=True).reshape(-1)
    out[np.asarray(exclude, dtype=np.int64)] = -np.inf
    return out


def user_view(lab: Lab, cfg: LabConfig, user_index: int) -> UserView:
    """The fused list of a known user (any user, not only evaluated ones), as the live session ranks it.

    An evaluated user's member rows are the session's own (scored once when the lab was built), so a weight
    move only re-fuses; a user outside the session (nothing held out) is scored here, one row per member.
    """
    u = int(user_index)
    history = lab.split.train.items_of(u)
    session = _session_of(lab)
    with lab.lock:
        if session.has_user(u):
            scores = session.user_scores(u)
        else:
            scores = {name: _masked(model.score(np.array([u]))[0], history) for name, model in lab.members.items()}
    held = lab.split.test.items_of(u) if lab.part == "test" else lab.split.valid.items_of(u)  # type: ignore[union-attr]
    return UserView(u, history, scores, _fuse_rows(lab, cfg, scores, u), held)


def profile_view(
    lab: Lab,
    cfg: LabConfig,
    items: Sequence[int],
    ratings: Sequence[float] | None = None,
    text: str | None = None,
    held_out: np.ndarray | None = None,
) -> UserView:
    """The fused list of a profile the models have not seen: liked ``items`` (optional ``ratings``), and for
    members that read text (``score_text``) an optional free-text description.

    A member that reads text scores the description when one is given (otherwise the items); the others
    score the items. A member that cannot score the profile (no items) contributes nothing.
    """
    hist = np.asarray(list(items), dtype=np.int64)
    values = None if ratings is None else np.asarray(list(ratings), dtype=np.float32)
    query = str(text) if text and text.strip() else None
    if hist.size == 0 and query is None:
        raise ConfigError("the profile is empty: pick at least one movie, or describe what you like")
    scores = _profile_rows(lab, hist, values, query)
    return UserView(
        None, hist, scores, _fuse_rows(lab, cfg, scores), np.zeros(0, dtype=np.int64) if held_out is None else held_out
    )


def _profile_rows(lab: Lab, hist: np.ndarray, values: np.ndarray | None, query: str | None) -> dict[str, np.ndarray]:
    """Each member's masked row for a profile, scored once per (items, ratings, text) and kept with the lab.

    The rows are shared by later reruns (a weight move only re-fuses them), so they are made read-only.
    """

    def build() -> dict[str, np.ndarray]:
        scores = {}
        with lab.lock:
            for name, model in lab.members.items():
                if query is not None and hasattr(model, "score_text"):
                    row = model.score_text(query)
                elif hist.size:
                    row = model.score_profile(hist, values)
                else:
                    row = np.full(lab.split.train.n_items, np.nan, dtype=np.float32)
                scores[name] = _masked(row, hist)
                scores[name].setflags(write=False)
        return scores

    key = (tuple(hist.tolist()), None if values is None else tuple(values.tolist()), query)
    return lab.profiles.get_or_build(key, build)


@dataclass(frozen=True)
class RerankedList:
    """One person's list after the re-ranker: ``items`` (the top-k, -1 padded), ``fused_rank`` (each item's
    1-based place in the fused list it was taken from) and ``moved`` (``rerank.movement``: slots changed and RBO
    from the fused top-k and from each member's own top-k)."""

    items: np.ndarray
    fused_rank: np.ndarray
    moved: pd.DataFrame
    depth: int


def reranked_list(lab: Lab, cfg: LabConfig, view: UserView) -> RerankedList | None:
    """``view``'s fused list re-ranked as ``current_result`` re-ranks the session's users (None without a
    re-ranker): the person's rows fused to the re-ranker's depth, then re-ordered with their own history (a
    profile's items for a profile the models have not seen)."""
    from scipy import sparse

    from reco_core.rerank import RerankInputs, movement, rerank

    spec = cfg.rerank
    if spec is None:
        return None
    depth = _session_of(lab).rerank_depth(spec, cfg.k)
    u = 0 if view.user_index is None else int(view.user_index)
    fused = _fuse_rows(lab, cfg, view.scores, u, k=depth).ranking
    history: sparse.csr_matrix = lab.split.train.matrix
    if view.user_index is None:  # the profile's own items are its history, as row 0 of a one-row matrix
        cols = np.asarray(view.history, dtype=np.int64)
        history = sparse.csr_matrix(
            (np.ones(cols.size, dtype=np.float32), (np.zeros(cols.size, dtype=np.int64), cols)),
            shape=(1, lab.split.train.n_items),
        )
        fused = Ranking(np.zeros(1, dtype=fused.user_idx.dtype), fused.item_idx, fused.score)
    out = rerank(fused, cfg.k, spec.method, spec.lam, RerankInputs(lab.ctx, history, spec.similarity))
    items = out.item_idx[0]
    where = {int(item): pos + 1 for pos, item in enumerate(fused.item_idx[0]) if item >= 0}
    fused_rank = np.array([where.get(int(i), 0) for i in items], dtype=np.int64)
    others = {"fused list": fused.head(cfg.k)}
    for name in view.scores:
        own = view.member_list(name, cfg.k)[None, :]
        others[name] = Ranking(out.user_idx, own.astype(out.item_idx.dtype), np.zeros(own.shape, dtype=np.float32))
    return RerankedList(items, fused_rank, movement(out, others), depth)


def signature(cfg: LabConfig) -> tuple:
    """What moves a user's fused list without refitting: the weights, the fusion and the re-ranker."""
    return (cfg.weights, cfg.fusion, cfg.rerank)


# ------------------------------------------------------------------------------------------ weight sweeps


def sweep(
    lab: Lab, cfg: LabConfig, step: float, max_points: int = 2000, progress_container: Any = None
) -> pd.DataFrame:
    """Every weight vector of the simplex grid at ``step`` evaluated on the lab's part (all metrics at k).

    One row per point: ``w:<member>`` columns, then every metric. A grid over ``max_points`` is refused up to
    4 members (ConfigError) and replaced by that many random points beyond (``search.search_weights``'s rule).
    Stored per (lab, step, max_points, fusion); a progress bar is shown while it is computed.
    """
    from reco_core import search

    session = _session_of(lab)
    key = ("sweep", lab.key, float(step), int(max_points), cfg.fusion)
    steps = _Steps(progress_container if progress_container is not None else st, "Sweeping the weights")

    def build() -> pd.DataFrame:
        steps.step(f"Fusing and evaluating every weight vector at step {step:g}…")
        with lab.lock:
            found = search.search_weights(
                session,
                f"ndcg@{cfg.k}",
                None,
                step,
                cfg.method,
                cfg.normaliser,
                cfg.k,
                max_points=max_points,
                seed=cfg.fusion.seed,
                progress=steps.progress,
                params=cfg.fusion.param_map,
            )
        return found.table

    table = cached.store("sweep").get_or_build(key, build)
    steps.done(f"Swept {len(table)} weight vectors")
    return table
