"""Analyses of a fused result and its members: complementarity, ablation, activity segments, popularity and
genre mix, and slot provenance (who brought each fused item in). The dashboard only draws them; the CLI and
Python call them the same way.

Plain numpy and pandas over engine objects (``LiveSession``, ``LiveResult``, ``Evaluation``, ``Ranking``,
the training ``Interactions`` and the ``ItemCatalog``); nothing here refits or rescores. A session's member
evaluations are cached inside the session, so a caller that shares one session between threads holds its
own lock around these calls (the dashboard's ``ui.lab`` does).

Conventions: the fused series is named ``FUSION`` ("fusion") and the training data's own share
``TRAINING`` ("training interactions") in every table; users are split into ``SEGMENTS`` (light, medium,
heavy) by training-activity tercile; the head is the most popular ``head_frac`` of items by training
interactions (ties by the lower item index), the tail the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reco_core import explain
from reco_core.config import FusionSpec
from reco_core.data import Interactions, ItemCatalog
from reco_core.errors import RecoError
from reco_core.fusion import FusionResult, normalise
from reco_core.live import LiveResult, LiveSession
from reco_core.metrics import Evaluation
from reco_core.models.base import Scorer
from reco_core.ranking import Ranking, top_k

__all__ = [
    "FUSION",
    "SEGMENTS",
    "TRAINING",
    "UserView",
    "ablation_table",
    "activity_ranges",
    "activity_segments",
    "genre_share",
    "head_items",
    "item_genres",
    "item_titles",
    "member_evaluations",
    "metric_table",
    "normalised_rows",
    "rankings_at",
    "segment_table",
    "slot_table",
    "tail_share",
]

FUSION = "fusion"  # the fused series' name in tables (the dashboard's charts colour it by this name)
BEFORE_RERANK = "fusion before re-ranking"  # the fused list a re-ranker started from
TRAINING = "training interactions"  # the training data's own share, beside the series in share tables
SEGMENTS = ("light", "medium", "heavy")


# ------------------------------------------------------------------------------------------ items in words


def item_titles(catalog: ItemCatalog, item_idx: np.ndarray | Sequence[int]) -> list[str]:
    """Titles of item indices, with " (year)" appended when the year is known and not already in the title;
    -1 (padding) gives ""."""
    out = []
    for i in np.asarray(item_idx).reshape(-1):
        if i < 0:
            out.append("")
            continue
        title = str(catalog.title[i])
        year = catalog.year[i]
        if year == year and year is not None and f"({int(year)})" not in title:  # year == year: not NaN
            title = f"{title} ({int(year)})"
        out.append(title)
    return out


def item_genres(catalog: ItemCatalog, item_idx: np.ndarray | Sequence[int]) -> list[str]:
    """Genres of item indices joined with ", "; -1 (padding) gives ""."""
    return [", ".join(catalog.genres[i]) if i >= 0 else "" for i in np.asarray(item_idx).reshape(-1)]


# ------------------------------------------------------------------------------------------ members and fusion


def member_evaluations(session: LiveSession, k: int) -> dict[str, Evaluation]:
    """Each member's own evaluation at k, in the session's member order (computed once per member and k)."""
    return {name: session.member_evaluation(name, k) for name in session.members}


def metric_table(session: LiveSession, result: LiveResult | None, k: int) -> pd.DataFrame:
    """Rows: ``FUSION`` (when there is a result; after a re-ranker, also ``BEFORE_RERANK``) then each member;
    columns: every metric key at k (means of per-user metrics, global values as they are)."""
    rows = {}
    if result is not None:
        rows[FUSION] = result.evaluation.values()
        if result.fused_ranking is not None:  # re-ranked: the fused list it started from, for comparison
            rows[BEFORE_RERANK] = session.fused_evaluation(result).values()
    for name, ev in member_evaluations(session, k).items():
        rows[name] = ev.values()
    return pd.DataFrame.from_dict(rows, orient="index")


def rankings_at(session: LiveSession, result: LiveResult | None, k: int) -> dict[str, Ranking]:
    """The fused top-k (as ``FUSION``, when there is a result) and each member's top-k, for the session's
    users."""
    out: dict[str, Ranking] = {}
    if result is not None:
        out[FUSION] = result.ranking.head(k)
    for name in session.members:
        out[name] = session.member_ranking(name).head(k)
    return out


def ablation_table(
    session: LiveSession,
    weights: Sequence[float] | Mapping[str, float],
    fusion: FusionSpec,
    keys: Sequence[str],
    full: Evaluation | None = None,
) -> pd.DataFrame:
    """The fusion with each member removed (its weight set to 0, the others kept): one row per member
    (index ``without``), and per metric key its value and ``change in <key>`` = value - the full fusion's.

    ``full`` is the full fusion's evaluation (recomputed from ``weights`` and ``fusion`` when not given). A
    row is NaN where nothing is left to fuse without the member (every other weight is 0).
    """
    if full is None:
        full = session.apply(weights, fusion).evaluation
    without = session.ablation(
        weights, fusion.method, fusion.normaliser, fusion.k, seed=fusion.seed, params=fusion.param_map
    )
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


# ------------------------------------------------------------------------------------------ user segments


def activity_segments(train: Interactions, user_idx: np.ndarray) -> np.ndarray:
    """Segment index (0 light, 1 medium, 2 heavy; see ``SEGMENTS``) of each user by training-activity tercile.

    The cuts are the 1/3 and 2/3 quantiles of the training counts of ``user_idx`` (the evaluated users), so
    each segment holds about a third of them; a count equal to a cut goes to the heavier segment.
    """
    counts = train.user_counts()[np.asarray(user_idx)]
    if len(counts) == 0:
        return np.zeros(0, dtype=np.int64)
    cuts = np.quantile(counts, [1 / 3, 2 / 3])
    return np.asarray(np.searchsorted(cuts, counts, side="right"), dtype=np.int64)


def activity_ranges(train: Interactions, user_idx: np.ndarray) -> dict[str, str]:
    """Each segment's range of training interactions ("light" -> "3-45"), "none" for an empty segment."""
    counts = train.user_counts()[np.asarray(user_idx)]
    seg = activity_segments(train, user_idx)
    out = {}
    for s, label in enumerate(SEGMENTS):
        c = counts[seg == s]
        out[label] = f"{int(c.min())}-{int(c.max())}" if c.size else "none"
    return out


def segment_table(train: Interactions, evaluations: Mapping[str, Evaluation], key: str) -> pd.DataFrame:
    """Mean of the per-user metric ``key`` by activity segment for each series (segments taken over each
    evaluation's own users): columns segment, series, value (NaN for an empty segment), n (users).
    A series without ``key`` is left out."""
    rows = []
    for series, ev in evaluations.items():
        if key not in ev.per_user:
            continue
        seg = activity_segments(train, ev.user_idx)
        for s, label in enumerate(SEGMENTS):
            mask = seg == s
            values = ev.per_user[key][mask]
            rows.append((label, series, float(values.mean()) if values.size else np.nan, int(mask.sum())))
    return pd.DataFrame(rows, columns=["segment", "series", "value", "n"])


# ------------------------------------------------------------------------------------------ what the lists hold


def head_items(train: Interactions, head_frac: float = 0.2) -> np.ndarray:
    """Boolean mask over items of the head: the ``round(head_frac * n_items)`` (at least 1) most popular items
    by training interactions, ties to the lower item index."""
    counts = train.item_counts()
    n_head = max(1, round(head_frac * len(counts)))
    order = np.argsort(-counts, kind="stable")
    mask = np.zeros(len(counts), dtype=bool)
    mask[order[:n_head]] = True
    return mask


def tail_share(train: Interactions, rankings: Mapping[str, Ranking], head_frac: float = 0.2) -> pd.DataFrame:
    """Share of recommended slots holding head vs tail items, per series (padding left out; NaN for a series
    with no slot), and last the ``TRAINING`` row: the share of training interactions on head and tail items.
    Index series, columns head and tail."""
    head = head_items(train, head_frac)
    rows = []
    for series, r in rankings.items():
        items = r.item_idx[r.item_idx >= 0]
        h = float(head[items].mean()) if items.size else np.nan
        rows.append((series, h, 1 - h if items.size else np.nan))
    counts = train.item_counts()
    train_head = float(counts[head].sum() / max(counts.sum(), 1))
    rows.append((TRAINING, train_head, 1 - train_head))
    return pd.DataFrame(rows, columns=["series", "head", "tail"]).set_index("series")


def genre_share(train: Interactions, catalog: ItemCatalog, rankings: Mapping[str, Ranking]) -> pd.DataFrame:
    """Per genre (index, ``catalog.genre_names`` order): the share of each series' recommended slots whose item
    has that genre, and the ``TRAINING`` column, the same share of training interactions. An item with several
    genres counts in each, so a column can sum to more than 1. Empty when the catalogue has no genres."""
    gm = catalog.genre_matrix()
    names = catalog.genre_names
    if gm.shape[1] == 0:
        return pd.DataFrame()
    out = {}
    for series, r in rankings.items():
        items = r.item_idx[r.item_idx >= 0]
        counts = np.bincount(items, minlength=gm.shape[0]).astype(np.float64)
        out[series] = np.asarray(gm.T @ counts).ravel() / max(len(items), 1)
    train_counts = train.item_counts().astype(np.float64)
    out[TRAINING] = np.asarray(gm.T @ train_counts).ravel() / max(train_counts.sum(), 1)
    return pd.DataFrame(out, index=names)


# ------------------------------------------------------------------------------------------ one user's list


@dataclass(frozen=True)
class UserView:
    """One person's fused list and what explains it.

    ``user_index`` is None for a profile the models have not seen (edited or new). ``history``: the items the
    list was made from (excluded from it). ``scores``: each member's raw score row (float32 [n_items]; the
    history's items -inf, NaN = cannot score). ``fusion`` holds one row (the fused top-k, contributions per
    member); ``held_out`` the user's held-out items (empty for a new profile).
    """

    user_index: int | None
    history: np.ndarray
    scores: dict[str, np.ndarray]
    fusion: FusionResult
    held_out: np.ndarray

    @property
    def items(self) -> np.ndarray:
        return np.asarray(self.fusion.ranking.item_idx[0])

    def member_list(self, name: str, k: int) -> np.ndarray:
        """The member's own top-k (history items excluded), -1 padded."""
        return np.asarray(top_k(self.scores[name][None, :], k).item_idx[0])


def normalised_rows(view: UserView, normaliser: str) -> dict[str, np.ndarray]:
    """Each member's row after the normaliser (history items and unscorable items NaN)."""
    out = {}
    for name, row in view.scores.items():
        out[name] = normalise(row[None, :], normaliser)[0]
    return out


def slot_table(
    view: UserView, members: Mapping[str, Scorer[Any]], catalog: ItemCatalog, because: int = 2
) -> pd.DataFrame:
    """Slot provenance: one row per fused slot with rank, title, genres, ``held out`` (a hit), ``brought in
    by`` (which member brought the item in, and why), ``<member> share`` (its share of the fused score),
    ``because you liked`` and the item index.

    Who brought an item in: the member that placed the slot (interleaving); else the only member whose own
    top-k holds it (without it the item would not be here); else the member with the largest contribution.
    "Because you liked": up to ``because`` history items most similar to the item (positive similarity),
    from the member that brought it when it can relate items, else the next of ``members`` that can
    (named in brackets); "" when none can.
    """
    contrib = explain.contributions(view.fusion, 0)
    names = list(view.fusion.member_names)
    k = view.fusion.ranking.k
    own = {n: set(view.member_list(n, k).tolist()) for n in names}
    rows = []
    for _, part in contrib.groupby("rank", sort=True):
        item = int(part["item"].iloc[0])
        by_member = part.set_index("member")
        share_of = {str(m): float(v) for m, v in by_member["share"].items()}  # NaN when the slot's total is 0
        placed = [str(m) for m in by_member.index[by_member["placed"]]]
        listed = [n for n in names if item in own[n]]
        if placed:
            brought, why = placed[0], "its turn in the interleaving"
        elif len(listed) == 1 and len(names) > 1:
            brought = listed[0]
            share = share_of.get(brought, np.nan)
            why = f"only in its own top-{k}" + (f"; {share:.0%} of the score" if share == share else "")
        else:
            brought = str(by_member["contribution"].idxmax())
            share = share_of[brought]
            why = f"{share:.0%} of the score" if share == share else "largest part"
            if not listed:
                why += f"; in no member's own top-{k}"
        row: dict[str, Any] = {
            "rank": int(part["rank"].iloc[0]),
            "title": item_titles(catalog, np.array([item]))[0],
            "genres": item_genres(catalog, np.array([item]))[0],
            "held out": bool(np.isin(item, view.held_out)),
            "brought in by": f"{brought} ({why})",
        }
        for n in names:
            row[f"{n} share"] = share_of.get(n, np.nan)
        row["because you liked"] = _because(view, item, brought, because, members, catalog)
        row["item"] = item
        rows.append(row)
    return pd.DataFrame(rows)


def _because(
    view: UserView, item: int, first: str, n: int, members: Mapping[str, Scorer[Any]], catalog: ItemCatalog
) -> str:
    """ "Title A; Title B (member)" from the first member (``first``, then the others in order) that can relate
    items; "" if none can or the history is empty."""
    if view.history.size == 0:
        return ""
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
            return "; ".join(item_titles(catalog, np.array([i for i, _ in pairs]))) + f" ({name})"
    return ""
