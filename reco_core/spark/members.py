"""Members as Spark evaluates them: item-side state on the driver (broadcast), user-side state per block.

Every member is a ``BlockMember``: ``score_block(block)`` gives float32 [n, n_items] scores for the users of
one block, from what the block carries (user indices, each user's training items and values as arrays) and
what was broadcast. Kinds:

- ``pop``: training interaction counts from a Spark ``groupBy`` (the local model's scores exactly);
- ``spark-als``: Spark MLlib ``ALS(implicitPrefs=True)`` trained inside Spark; user factors travel with the
  block, item factors are broadcast; score = u . v;
- ``spark-itemknn``: cosine item-item similarities from ``RowMatrix.columnSimilarities`` (computed by Spark
  over the item columns), pruned to the K most similar per item and broadcast as a sparse matrix;
  score = the user's training row @ S;
- ``text``: item texts embedded by sentence-transformers inside Spark (one model per executor, loaded once
  and kept by the Python worker), then the local text model's own profile and cosine code;
- any other registered model: fitted on the driver by the local engine's code, then broadcast (refused with
  the figure when the arrays it holds weigh more than the broadcast limit).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import scipy.sparse as sp

from reco_core.errors import ConfigError, ScaleError
from reco_core.models.base import ModelConfig, ParamSpec, Scorer, param

# What one broadcast may weigh by default. Spark ships a broadcast to every executor once and keeps it in
# memory there: 2 GB is Spark's own limit for one serialized block.
DEFAULT_BROADCAST_BYTES = 2_000_000_000


@dataclass(frozen=True)
class Block:
    """One block of users, as a member scores it: global user indices and each user's training row."""

    user_idx: np.ndarray  # int64 [n]
    train: sp.csr_matrix  # float32 [n, n_items]: the block's training items with their values
    columns: dict[str, np.ndarray]  # extra per-user arrays a member asked for (e.g. "als_factors": [n, f])


class BlockMember(Protocol):
    name: str

    def score_block(self, block: Block) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------------ configs


@dataclass(frozen=True)
class SparkALSConfig(ModelConfig):
    """Spark MLlib ALS with implicit preferences; the same names and defaults as the local ``als``."""

    factors: int = param(64, low=2, high=512, step=1, help="Number of latent factors (MLlib rank).")
    regularization: float = param(0.05, low=0.0, high=10.0, step=0.01, help="L2 penalty (MLlib regParam).")
    iterations: int = param(15, low=1, high=200, step=1, help="Alternating least-squares sweeps (MLlib maxIter).")
    alpha: float = param(1.0, low=0.01, high=100.0, step=0.1, log=True, help="Confidence scale (MLlib alpha).")
    use_ratings: bool = param(False, help="Use rating values as preferences instead of 1 per interaction.")


@dataclass(frozen=True)
class SparkItemKNNConfig(ModelConfig):
    """Cosine item-kNN from RowMatrix.columnSimilarities, pruned to k neighbours per item."""

    k: int = param(100, low=1, high=2000, step=1, help="Neighbours kept per item.")
    threshold: float = param(
        0.0, low=0.0, high=1.0, step=0.01, help="DIMSUM sampling threshold (0 = exact; higher is faster, approximate)."
    )


SPARK_MODELS: dict[str, type[ModelConfig]] = {"spark-als": SparkALSConfig, "spark-itemknn": SparkItemKNNConfig}
"""Members that train inside Spark, with their declared parameters (as ``models.MODELS`` declares theirs)."""
NATIVE = ("pop", "text", *SPARK_MODELS)
"""Members Spark computes itself; every other registered model is fitted on the driver and broadcast."""


def spark_params(name: str) -> list[ParamSpec]:
    """The declared parameters of a Spark-trained member (``spark-als``, ``spark-itemknn``)."""
    if name not in SPARK_MODELS:
        raise ConfigError(f"{name!r} is not a Spark-trained member: choose one of {', '.join(SPARK_MODELS)}")
    return SPARK_MODELS[name].params()


def spark_config(name: str, params: dict[str, Any], seed: int) -> ModelConfig:
    cls = SPARK_MODELS[name]
    known = {f.name for f in dataclasses.fields(cls)}
    stray = sorted(set(params) - known)
    if stray:
        raise ConfigError(f"{name} has no parameter {stray[0]!r}: its parameters are {', '.join(sorted(known))}")
    cfg = cls(**{"seed": seed, **params})
    cfg.validate()
    return cfg


# ------------------------------------------------------------------------------------------------ members


@dataclass
class PopMember:
    counts: np.ndarray  # float32 [n_items]
    name: str = "pop"

    def score_block(self, block: Block) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(block.user_idx), len(self.counts))).copy()


@dataclass
class FactorMember:
    """u . v with user factors carried per block (column ``column``) and item factors broadcast."""

    item_factors: np.ndarray  # float32 [n_items, f]; zero rows for items MLlib never saw
    column: str
    name: str = "spark-als"
    needs: ClassVar[str] = "factors"

    def score_block(self, block: Block) -> np.ndarray:
        users = block.columns[self.column].astype(np.float32)
        return (users @ self.item_factors.T).astype(np.float32)


@dataclass
class SimilarityMember:
    """The user's training row times a pruned item-item similarity matrix (broadcast, CSR)."""

    similarity: sp.csr_matrix  # float32 [n_items, n_items]
    name: str = "spark-itemknn"

    def score_block(self, block: Block) -> np.ndarray:
        x = block.train.copy()
        x.data[:] = 1.0  # cosine over who interacted, as the local item-kNN without ratings
        return np.asarray((x @ self.similarity).toarray(), dtype=np.float32)


@dataclass
class TextMember:
    """The local text model's scoring (mean profile of the history's vectors, cosine) on broadcast vectors."""

    vectors: np.ndarray  # unit rows, centred as the local model centres them
    rating_weighted: bool
    name: str = "text"

    def score_block(self, block: Block) -> np.ndarray:
        from reco_core.models.content import cosine_scores, mean_profiles

        return cosine_scores(mean_profiles(block.train, self.vectors, self.rating_weighted), self.vectors)


@dataclass
class DriverMember:
    """A registered model fitted on the driver (the local engine's code), broadcast; scores by user index."""

    model: Scorer
    name: str

    def score_block(self, block: Block) -> np.ndarray:
        return np.asarray(self.model.score(block.user_idx), dtype=np.float32)


def memory_bytes(obj: object, _seen: set[int] | None = None) -> int:
    """Bytes held by the arrays inside ``obj`` (numpy, scipy sparse, torch), walking attributes and containers.

    What a broadcast copy weighs on each executor, within the few kB of Python objects around the arrays.
    """
    seen = set() if _seen is None else _seen
    if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if sp.issparse(obj):
        return sum(int(getattr(obj, a).nbytes) for a in ("data", "indices", "indptr", "row", "col") if hasattr(obj, a))
    nbytes = getattr(obj, "element_size", None)
    if callable(nbytes) and hasattr(obj, "nelement"):  # a torch tensor, without importing torch here
        return int(obj.element_size() * obj.nelement())  # type: ignore[attr-defined]
    if isinstance(obj, dict):
        return sum(memory_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(memory_bytes(v, seen) for v in obj)
    state = getattr(obj, "__dict__", None)
    return memory_bytes(state, seen) if isinstance(state, dict) else 0


def broadcast_size(member: object, limit: int = DEFAULT_BROADCAST_BYTES) -> int:
    """Bytes ``member`` holds in arrays (what every executor receives and keeps); over ``limit``: ScaleError."""
    size = memory_bytes(member)
    if size > limit:
        raise ScaleError(
            f"member {getattr(member, 'name', '?')!r} needs {size / 1e6:,.0f} MB on every executor, over the"
            f" {limit / 1e6:,.0f} MB broadcast limit: use a Spark-trained member (spark-als, spark-itemknn),"
            " fewer factors or neighbours, or raise --broadcast-mb with larger executors"
        )
    return size
