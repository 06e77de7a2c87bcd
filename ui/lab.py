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

from reco_core import datasets, experiment, explain
from reco_core.data import Dataset, ItemCatalog
from reco_core.errors import ConfigError, FitError, RecoError
from reco_core.experiment import MemberSpec, Protocol
from reco_core.fusion import FusionResult, fuse, normalise
from reco_core.live import LiveResult, LiveSession
from reco_core.metrics import EvalContext, Evaluation
from reco_core.models import Scorer, knn
from reco_core.ranking import Ranking, top_k
from reco_core.splitting import Split
from ui import cached, state
from ui.charts import FUSION_NAME
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


def current_result(lab: Lab, cfg: LabConfig) -> LiveResult:
    """Re-fuse with the sidebar's weights and fusion (method, normaliser, k, its parameters): no refit, no rescoring.

    Team-draft's coin flips use the protocol's seed, here and in every other fusion the pages show.
    Raises ConfigError (e.g. all weights zero) with a one-line message for the page to show.
    """
    session = _session_of(lab)
    weights = _positive_weights(lab, cfg)
    with lab.lock:
        return session.apply(weights, cfg.fusion)


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


def item_titles(lab: Lab, item_idx: np.ndarray) -> list[str]:
    """Titles (with year when known) of item indices; -1 padding -> ""."""
    cat = lab.catalog
    out = []
    for i in np.asarray(item_idx).reshape(-1):
        if i < 0:
            out.append("")
            continue
        title = str(cat.title[i])
        year = cat.year[i]
        if year == year and year is not None and f"({int(year)})" not in title:  # year == year: not NaN
            title = f"{title} ({int(year)})"
        out.append(title)
    return out


def item_genres(lab: Lab, item_idx: np.ndarray) -> list[str]:
    cat = lab.catalog
    return [", ".join(cat.genres[i]) if i >= 0 else "" for i in np.asarray(item_idx).reshape(-1)]


def item_frame(lab: Lab, item_idx: np.ndarray) -> pd.DataFrame:
    """Item id, title and genres of item indices (text only, for tables)."""
    idx = np.asarray(item_idx).reshape(-1)
    return pd.DataFrame(
        {
            "item": lab.split.train.items.ids_of(idx),
            "title": item_titles(lab, idx),
            "genres": item_genres(lab, idx),
        }
    )


# ------------------------------------------------------------------------------------------ analyses the pages draw
# Plain numpy over a LiveResult and the session's member lists; nothing here refits or rescores.

FUSION = FUSION_NAME  # the fused series' name in tables and charts (charts colours it by this name)
SEGMENTS = ("light", "medium", "heavy")


def member_evaluations(lab: Lab, k: int) -> dict[str, Evaluation]:
    """Each fitted member's own evaluation at k (computed once per member and k by the session)."""
    session = _session_of(lab)
    with lab.lock:
        return {name: session.member_evaluation(name, k) for name in session.members}


def metric_table(lab: Lab, result: LiveResult | None, k: int) -> pd.DataFrame:
    """Rows: the fusion (when there is a result) then each member; columns: every metric key at k."""
    rows = {}
    if result is not None:
        rows[FUSION] = result.evaluation.values()
    for name, ev in member_evaluations(lab, k).items():
        rows[name] = ev.values()
    return pd.DataFrame.from_dict(rows, orient="index")


def rankings_at(lab: Lab, result: LiveResult | None, k: int) -> dict[str, Ranking]:
    """The fused top-k (when there is a result) and each member's top-k, all for the session's users."""
    session = _session_of(lab)
    out: dict[str, Ranking] = {}
    if result is not None:
        out[FUSION] = result.ranking.head(k)
    for name in session.members:
        out[name] = session.member_ranking(name).head(k)
    return out


def activity_segments(lab: Lab, user_idx: np.ndarray) -> np.ndarray:
    """Segment index (0 light, 1 medium, 2 heavy) of each user by training-activity tercile.

    Terciles are taken over the session's users, so each segment holds about a third of them.
    """
    counts = lab.split.train.user_counts()[np.asarray(user_idx)]
    if len(counts) == 0:
        return np.zeros(0, dtype=np.int64)
    cuts = np.quantile(counts, [1 / 3, 2 / 3])
    return np.searchsorted(cuts, counts, side="right").astype(np.int64)


def segment_table(lab: Lab, evaluations: dict[str, Evaluation], key: str) -> pd.DataFrame:
    """Mean of a per-user metric by activity segment for each series: columns segment, series, value, n."""
    rows = []
    for series, ev in evaluations.items():
        if key not in ev.per_user:
            continue
        seg = activity_segments(lab, ev.user_idx)
        for s, label in enumerate(SEGMENTS):
            mask = seg == s
            values = ev.per_user[key][mask]
            rows.append((label, series, float(values.mean()) if values.size else np.nan, int(mask.sum())))
    return pd.DataFrame(rows, columns=["segment", "series", "value", "n"])


def activity_ranges(lab: Lab, user_idx: np.ndarray) -> dict[str, str]:
    """ "light" -> "3-45 training interactions", ... for the captions."""
    counts = lab.split.train.user_counts()[np.asarray(user_idx)]
    seg = activity_segments(lab, user_idx)
    out = {}
    for s, label in enumerate(SEGMENTS):
        c = counts[seg == s]
        out[label] = f"{int(c.min())}-{int(c.max())}" if c.size else "none"
    return out


def head_items(lab: Lab, head_frac: float = 0.2) -> np.ndarray:
    """Boolean mask of the head: the most popular ``head_frac`` of items by training interactions."""
    counts = lab.split.train.item_counts()
    n_head = max(1, round(head_frac * len(counts)))
    order = np.argsort(-counts, kind="stable")
    mask = np.zeros(len(counts), dtype=bool)
    mask[order[:n_head]] = True
    return mask


def tail_share(lab: Lab, rankings: dict[str, Ranking], head_frac: float = 0.2) -> pd.DataFrame:
    """Share of recommended slots holding head vs tail items, per series (padding left out)."""
    head = head_items(lab, head_frac)
    rows = []
    for series, r in rankings.items():
        items = r.item_idx[r.item_idx >= 0]
        h = float(head[items].mean()) if items.size else np.nan
        rows.append((series, h, 1 - h if items.size else np.nan))
    counts = lab.split.train.item_counts()
    train_head = float(counts[head].sum() / max(counts.sum(), 1))
    rows.append(("training interactions", train_head, 1 - train_head))
    return pd.DataFrame(rows, columns=["series", "head", "tail"]).set_index("series")


def genre_share(lab: Lab, rankings: dict[str, Ranking]) -> pd.DataFrame:
    """Per genre: share of recommended slots whose item has it, per series, and the training share."""
    gm = lab.catalog.genre_matrix()
    names = lab.catalog.genre_names
    if gm.shape[1] == 0:
        return pd.DataFrame()
    out = {}
    for series, r in rankings.items():
        items = r.item_idx[r.item_idx >= 0]
        counts = np.bincount(items, minlength=gm.shape[0]).astype(np.float64)
        out[series] = np.asarray(gm.T @ counts).ravel() / max(len(items), 1)
    train_counts = lab.split.train.item_counts().astype(np.float64)
    out["training interactions"] = np.asarray(gm.T @ train_counts).ravel() / max(train_counts.sum(), 1)
    return pd.DataFrame(out, index=names)


def ablation_table(lab: Lab, cfg: LabConfig, keys: Sequence[str], full: Evaluation | None = None) -> pd.DataFrame:
    """The fusion with each member removed: its metrics and their change against the full fusion (``full``,
    the current result's evaluation; recomputed when not given)."""
    session = _session_of(lab)
    weights = lab.weights_for(cfg)
    f = cfg.fusion
    with lab.lock:
        if full is None:
            full = session.apply(weights, f).evaluation
        without = session.ablation(weights, f.method, f.normaliser, f.k, seed=f.seed, params=f.param_map)
    rows = []
    for name, ev in without.items():
        row: dict[str, Any] = {"without": name}
        for key in keys:
            if ev is None:
                row[key] = np.nan
                row[f"change in {key}"] = np.nan
                continue
            value = ev.value(key)
            row[key] = value
            row[f"change in {key}"] = value - full.value(key)
        rows.append(row)
    return pd.DataFrame(rows).set_index("without")


def recommendations_csv(lab: Lab, ranking: Ranking) -> str:
    """user, rank, item, title, genres, score as CSV text; every text cell made formula-safe."""
    from reco_core.runs import safe_csv_cell

    frame = ranking.to_frame(lab.split.train.users, lab.split.train.items)
    idx = lab.split.train.items.index_of(frame["item"].astype(str))
    frame.insert(3, "title", item_titles(lab, idx))
    frame.insert(4, "genres", item_genres(lab, idx))
    for col in ("user", "item", "title", "genres"):
        frame[col] = frame[col].map(safe_csv_cell)
    return frame.to_csv(index=False)


# ------------------------------------------------------------------------------------------ one user (explorer)


@dataclass(frozen=True)
class UserView:
    """One person's fused list and what explains it.

    ``user_index`` is None for a profile the models have not seen (edited or new). ``scores``: each
    member's raw score row (float32 [n_items]; the profile's own items -inf, NaN = cannot score).
    ``fusion`` holds one row (the fused top-k, contributions per member); ``held_out`` the user's test
    items (empty for a new profile).
    """

    user_index: int | None
    history: np.ndarray
    scores: dict[str, np.ndarray]
    fusion: FusionResult
    held_out: np.ndarray

    @property
    def items(self) -> np.ndarray:
        return self.fusion.ranking.item_idx[0]

    def member_list(self, name: str, k: int) -> np.ndarray:
        """The member's own top-k (profile items excluded), -1 padded."""
        return top_k(self.scores[name][None, :], k).item_idx[0]


def _fuse_rows(lab: Lab, cfg: LabConfig, scores: dict[str, np.ndarray], user_index: int = 0) -> FusionResult:
    """Fuse one person's member rows as ``current_result`` fuses the session's users (same top-N, seed, and
    the user's own index, on which team-draft's coin flips depend); a new profile fuses as user 0."""
    weights = _positive_weights(lab, cfg)
    names = list(scores)
    return fuse(
        [scores[n][None, :] for n in names],
        None,
        weights,
        cfg.method,
        cfg.normaliser,
        cfg.k,
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


def slot_table(lab: Lab, view: UserView, because: int = 2) -> pd.DataFrame:
    """One row per fused slot: rank, title, genres, held-out hit, which member brought it, its share of the
    fused score per member, and "because you liked" (from the member that brought it, if it can tell)."""
    contrib = explain.contributions(view.fusion, 0)
    names = list(view.fusion.member_names)
    k = view.fusion.ranking.k
    own = {n: set(view.member_list(n, k).tolist()) for n in names}
    rows = []
    for rank, part in contrib.groupby("rank", sort=True):
        item = int(part["item"].iloc[0])
        by_member = part.set_index("member")
        placed = by_member.index[by_member["placed"]].tolist()
        listed = [n for n in names if item in own[n]]
        # Who brought the item in: the member that placed the slot (interleaving); else the only member
        # whose own top-k holds it (without it the item would not be here); else the largest contribution.
        if placed:
            brought, why = placed[0], "its turn in the interleaving"
        elif len(listed) == 1 and len(names) > 1:
            brought = listed[0]
            share = by_member.loc[brought, "share"] if brought in by_member.index else np.nan
            why = f"only in its own top-{k}" + (f"; {share:.0%} of the score" if share == share else "")
        else:
            brought = str(by_member["contribution"].idxmax())
            share = by_member.loc[brought, "share"]
            why = f"{share:.0%} of the score" if share == share else "largest part"
            if not listed:
                why += f"; in no member's own top-{k}"
        row: dict[str, Any] = {
            "rank": int(rank),
            "title": item_titles(lab, np.array([item]))[0],
            "genres": item_genres(lab, np.array([item]))[0],
            "held out": bool(np.isin(item, view.held_out)),
            "brought in by": f"{brought} ({why})",
        }
        for n in names:
            row[f"{n} share"] = float(by_member.loc[n, "share"]) if n in by_member.index else np.nan
        row["because you liked"] = _because(lab, view, item, brought, because)
        row["item"] = item
        rows.append(row)
    return pd.DataFrame(rows)


def _because(lab: Lab, view: UserView, item: int, first: str, n: int) -> str:
    """ "Title A, Title B" from the first member (in preference order) that can relate items; "" if none."""
    if view.history.size == 0:
        return ""
    members = lab.members
    order = [first, *[m for m in members if m != first]]
    for name in order:
        model = members.get(name)
        if model is None:
            continue
        try:
            pairs = explain.because_you_liked(model, view.history, item, n)
        except RecoError:
            continue
        pairs = [(i, s) for i, s in pairs if s > 0]
        if pairs:
            return "; ".join(item_titles(lab, np.array([i for i, _ in pairs]))) + f" ({name})"
    return ""


def normalised_rows(view: UserView, normaliser: str) -> dict[str, np.ndarray]:
    """Each member's row after the normaliser (profile items and unscorable items NaN)."""
    out = {}
    for name, row in view.scores.items():
        out[name] = normalise(row[None, :], normaliser)[0]
    return out


def signature(cfg: LabConfig) -> tuple:
    """What moves a user's fused list without refitting: the weights and the fusion."""
    return (cfg.weights, cfg.fusion)


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
