"""Python entry points: ``evaluate(spark, config, data)`` and ``fuse(spark, config, data)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reco_core.config import ExperimentConfig
from reco_core.spark.engine import Progress, SparkRun, run, stderr_progress

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from reco_core.spark.data import SparkData, SparkSplit


def evaluate(
    spark: SparkSession,
    config: ExperimentConfig,
    interactions: str | DataFrame | SparkData | None = None,
    *,
    spark_members: Sequence[str] = (),
    ks: Sequence[int] | None = None,
    split: SparkSplit | None = None,
    progress: Progress | None = stderr_progress,
    **options: Any,
) -> SparkRun:
    """Each member of ``config`` (plus ``spark_members`` such as "spark-als") evaluated alone, with Spark.

    ``interactions``: a Parquet/CSV path or URI, or a DataFrame with user and item columns (recognised as the
    local loaders recognise them). The table equals ``python -m reco_core evaluate`` on the same data and
    split (docs/scale-out.md). ``options`` are ``engine.run``'s (catalog, item_vectors, output_dir...).
    """
    return run(
        spark,
        config,
        interactions,
        spark_members=spark_members,
        ks=ks,
        split=split,
        fuse_members=False,
        progress=progress,
        **options,
    )


def fuse(
    spark: SparkSession,
    config: ExperimentConfig,
    interactions: str | DataFrame | SparkData | None = None,
    *,
    spark_members: Sequence[str] = (),
    weights: Sequence[float] | None = None,
    split: SparkSplit | None = None,
    progress: Progress | None = stderr_progress,
    **options: Any,
) -> SparkRun:
    """``config``'s fusion (method, normaliser, weights, k) and each member, with Spark: rows "fused" and one per
    member, as ``python -m reco_core fuse`` prints them."""
    return run(
        spark,
        config,
        interactions,
        spark_members=spark_members,
        weights=weights,
        split=split,
        fuse_members=True,
        progress=progress,
        **options,
    )
