"""Feature-level fusion: a two-tower whose towers take ids *and* content/demographic features.

    item tower  v_i = E_item[i] + [genres_i | text_i] W_item
    user tower  u   = E_user[u] + [age_u | gender_u | occupation_u | histtext_u] W_user
    score(u, i) = u . v_i + b_i

- genres_i: the catalogue's genre multi-hot (``use_genres``).
- text_i: the item's all-MiniLM-L6-v2 vector, centred on the catalogue mean and unit length, as in
  the ``text`` model (``use_text``); W_item projects its 384 numbers to ``factors``.
- age/gender/occupation: one-hot buckets from ``Context.users`` (``use_demographics``). Ages go in
  the buckets <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+; a missing or unreadable value, or a user
  absent from the table, falls in an "unknown" bucket of its column.
- histtext_u: the unit-length mean of text_j over the user's training items (``use_history_text``).

With every flag off the model is the ``neural`` two-tower on ids alone, the same weights for the
same seed and training settings, which is the comparison docs/models.md reports. Training,
regularisation and determinism are those of ``reco_core.models.neural`` (softmax or BPR, Adam, CPU,
one thread, seeded generator). Projection weights start at zero: a feature column that never occurs
in training (an "unknown" bucket when no training user lacks the value) keeps a zero weight and
adds nothing at scoring time, instead of a random vector.

Unseen profile: the user features are "unknown" demographics plus the history text of the profile
items; the id part is fitted by fold-in (see ``neural.fold_in``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from reco_core import embeddings
from reco_core.data import Interactions, UserTable
from reco_core.ids import IdMap
from reco_core.models.base import Context, param, register
from reco_core.models.content import catalog_for, mean_profiles, profile_of, unit_rows
from reco_core.models.neural import (
    TwoTowerConfig,
    TwoTowerScorer,
    TwoTowerState,
    export_state,
    fold_in,
    train_two_tower,
)
from reco_core.models.text import item_vectors

AGE_EDGES = (18, 25, 35, 45, 50, 56)
AGE_LABELS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class HybridConfig(TwoTowerConfig):
    use_genres: bool = param(True, help="Item tower: add the genre multi-hot.")
    use_text: bool = param(True, help="Item tower: add the MiniLM text embedding (projected).")
    use_demographics: bool = param(True, help="User tower: add age bucket, gender and occupation.")
    use_history_text: bool = param(True, help="User tower: add the mean text embedding of the user's history.")
    text_model: str = param(
        embeddings.DEFAULT_MODEL, choices=tuple(embeddings.SENTENCE_MODELS), help="Packaged sentence model."
    )


def age_bucket(age: object) -> str:
    """The age bucket label of a value; "unknown" for missing, non-numeric or negative ages."""
    try:
        a = float(age)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return UNKNOWN
    if a != a or a < 0:
        return UNKNOWN
    return AGE_LABELS[int(np.searchsorted(AGE_EDGES, a, side="right"))]


def demographic_columns(users: UserTable | None, train_users: IdMap) -> tuple[np.ndarray, list[str]]:
    """One-hot (float32 [n_users, width]) of age bucket, gender and occupation, and column names.

    Rows follow ``train_users``; users missing from the table, missing values and absent columns all
    go to the "unknown" bucket of their column. Each column has exactly one 1 per user.
    """
    n = len(train_users)
    if users is None:
        frame = pd.DataFrame(index=range(n))
    else:
        pos = users.users.index_of(train_users.ids, missing="mask", what="user")
        # Label -1 is not in the table's 0..n-1 index, so users absent from it get an all-NaN row.
        frame = users.frame.reset_index(drop=True).reindex(np.where(pos >= 0, pos, -1)).reset_index(drop=True)
    blocks, names = [], []
    for col in ("age", "gender", "occupation"):
        raw = frame[col] if col in frame.columns else pd.Series([np.nan] * n)
        if col == "age":
            labels = np.array([age_bucket(v) for v in raw], dtype=object)
            vocab = [*AGE_LABELS, UNKNOWN]
        else:
            labels = np.array(
                [UNKNOWN if (v is None or v != v or not str(v).strip()) else str(v).strip().lower() for v in raw],
                dtype=object,
            )
            vocab = [*sorted(set(labels) - {UNKNOWN}), UNKNOWN]
        index = {v: j for j, v in enumerate(vocab)}
        block = np.zeros((n, len(vocab)), dtype=np.float32)
        block[np.arange(n), [index[v] for v in labels]] = 1.0
        blocks.append(block)
        names += [f"{col}={v}" for v in vocab]
    return np.hstack(blocks), names


@register
class HybridTwoTower(TwoTowerScorer[HybridConfig]):
    """Two-tower over ids + genres + text (items) and ids + demographics + history text (users)."""

    name = "hybrid"
    label = "Hybrid two-tower (feature fusion)"
    kind = "hybrid"
    config_cls = HybridConfig
    description = (
        "A two-tower whose item side also reads genres and the title's text embedding, and whose user side"
        " also reads age, gender, occupation and the text of the user's history."
    )

    def _fit(self, train: Interactions, context: Context) -> None:
        cfg = self.config
        item_blocks: list[np.ndarray] = []
        user_blocks: list[np.ndarray] = []
        self._text: np.ndarray | None = None
        if cfg.use_genres:
            cat = catalog_for(train, context, self.name)
            item_blocks.append(cat.genre_matrix().toarray().astype(np.float32))
        if cfg.use_text or cfg.use_history_text:
            raw = item_vectors(train, context, self.name, cfg.text_model)
            self._text = unit_rows(raw - raw.mean(axis=0, keepdims=True)) if len(raw) else raw
        if cfg.use_text:
            item_blocks.append(self._text)  # type: ignore[arg-type]
        if cfg.use_demographics:
            if context.users is None:
                warnings.warn(
                    "hybrid: no user table in the context, so every user's demographics are 'unknown'",
                    UserWarning,
                    stacklevel=2,
                )
            demo, self.demographic_names = demographic_columns(context.users, train.users)
            user_blocks.append(demo)
            # The profile of a new person: the "unknown" bucket of each demographic column.
            self._unknown_demo = np.array([n.endswith("=" + UNKNOWN) for n in self.demographic_names], np.float32)
        if cfg.use_history_text:
            user_blocks.append(unit_rows(mean_profiles(train.matrix, self._text, weighted=False)))  # type: ignore[arg-type]
        user_features = np.hstack(user_blocks) if user_blocks else np.zeros((train.n_users, 0), np.float32)
        item_features = np.hstack(item_blocks) if item_blocks else np.zeros((train.n_items, 0), np.float32)
        self._net = train_two_tower(train.matrix, user_features, item_features, cfg, context, self.name)
        self._state: TwoTowerState = export_state(self._net, train.matrix)

    def _profile_features(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The user-tower feature row of an unseen profile (unknown demographics, profile history text)."""
        parts: list[np.ndarray] = []
        if self.config.use_demographics:
            parts.append(self._unknown_demo)
        if self.config.use_history_text:
            hist = profile_of(item_idx, np.ones_like(values), self._text, weighted=False)  # type: ignore[arg-type]
            parts.append(unit_rows(hist[None, :])[0])
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        feats = torch.from_numpy(self._profile_features(item_idx, values)[None, :])
        with torch.no_grad():
            part = self._net.user_feature_part(feats).numpy()[0]
        return fold_in(self._state, part, item_idx, self.config)
