"""The Spark engine: the local engine's block function mapped over partitions of users.

Stages (each reported on stderr): load -> split -> members -> evaluate -> summarise.

- Users are rows of one DataFrame (user_idx, training items and values as arrays, held-out items as an
  array): never a users x items matrix. ``mapInPandas`` hands each Python worker batches of
  ``auto_block_size(n_items)`` users (Arrow batches), and each batch is one block of ``reco_core.scale``:
  members score it, training items are masked (``ranking.mask_rows``), ``scale.fuse_masked_block``
  normalises, fuses and ranks it, and ``metrics.evaluate`` gives the per-user values. The same code as the
  local engine, so the same numbers.
- Item-side state (pop counts, item factors, the pruned similarity matrix, text vectors, driver-fitted
  models, the ``EvalContext``) is broadcast once per executor.
- External runs (``reco_core.spark.runs``) are matched to the split with joins and windows; each user's list
  joins that user's row as two arrays, and the block scores it as the local ``RunMember`` (a fusion member) or
  ranks it as given (evaluate-run).
- The training part's item counts are collected once (one job) for the pop member and the ``EvalContext``.
- Per-user metric means are Spark aggregates. Coverage and Gini come from item counts aggregated in Spark,
  every k in one job; personalisation from the lists of the same user pairs the local engine draws
  (``metrics.user_pairs``: all pairs when there are few users, else ``personalisation_pairs`` seeded draws
  over users in index order), collected by position. The formulas are ``metrics``' own
  (``gini_of_counts``, ``personalisation_of_pairs``). The driver holds item-sized arrays and at most
  2 x pairs lists: its memory does not grow with the number of users.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reco_core import experiment, fusion, metrics
from reco_core.config import ExperimentConfig, MemberSpec
from reco_core.data import Dataset, Interactions, ItemCatalog, LoadReport
from reco_core.datasets import csr_from_sorted_pairs
from reco_core.errors import ConfigError, FitError, ScaleError
from reco_core.eval_context import EvalContext
from reco_core.ids import IdMap
from reco_core.metric_specs import METRICS
from reco_core.ranking import Ranking, mask_rows, top_k
from reco_core.runs import RunReport
from reco_core.scale import auto_block_size, fuse_masked_block
from reco_core.spark import members as mem
from reco_core.spark.data import SparkData, SparkSplit, item_vocabulary, read_interactions, split_frame
from reco_core.spark.runs import RunFile, RunList, RunScores, prepare_run
from reco_core.spark.session import log_path_of, spark_bytes, spark_errors
from reco_core.splitting import Split

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Progress = Callable[[str], None]
FUSED = "fused"


def _pandas(frame: DataFrame) -> pd.DataFrame:
    """``frame.toPandas()``, typed (pyspark declares a protocol type for it)."""
    return cast(pd.DataFrame, frame.toPandas())


def stderr_progress(line: str) -> None:
    print(f"[spark] {line}", file=sys.stderr, flush=True)


@dataclass
class SparkRun:
    """What a Spark evaluation returns: a table (models x metric means), its parts, and what was measured."""

    table: pd.DataFrame
    report: LoadReport
    split_description: str
    n_users: int
    n_items: int
    n_evaluated: int
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    per_user: DataFrame | None = None
    run_reports: list[RunReport] = field(default_factory=list)  # one per external run, as read against the split

    def value(self, model: str, key: str) -> float:
        return float(self.table.loc[model, key])


# ----------------------------------------------------------------------------------------- progress


class _StageWatch:
    """Prints "stage: tasks done/total" on stderr while Spark jobs run (a thread polling the status tracker)."""

    def __init__(self, spark: SparkSession, label: str, progress: Progress | None, every_s: float = 2.0) -> None:
        self.spark, self.label, self.progress, self.every_s = spark, label, progress, every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _StageWatch:
        if self.progress is not None:
            self.progress(f"{self.label}: started")
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def _run(self) -> None:
        tracker = self.spark.sparkContext.statusTracker()
        last = ""
        while not self._stop.wait(self.every_s):
            try:
                infos = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            except Exception:  # the context is stopping; progress is best effort
                return
            parts = [f"{i.numCompletedTasks}/{i.numTasks} blocks" for i in infos if i is not None]
            line = ", ".join(parts)
            if line and line != last and self.progress is not None:
                self.progress(f"{self.label}: {line}")
                last = line

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.seconds = time.perf_counter() - self._t0
        if self.progress is not None and exc[0] is None:
            self.progress(f"{self.label}: done in {self.seconds:.1f} s")


# ---------------------------------------------------------------------------------------- the block


@dataclass(frozen=True)
class Fusion:
    """One fused list to compute per block: its row label, weights per member, method, normaliser, parameters."""

    label: str
    weights: np.ndarray
    method: str
    normaliser: str
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class BlockPlan:
    """Everything a worker needs for a block, broadcast once."""

    members: tuple[Any, ...]  # BlockMembers
    names: tuple[str, ...]
    fusions: tuple[Fusion, ...]  # empty: evaluate the members only
    k: int
    ks: tuple[int, ...]
    n_items: int
    top_n: int
    seed: int
    user_metrics: tuple[str, ...]
    ctx: EvalContext
    columns: tuple[str, ...]  # extra per-user array columns the members read
    list_columns: tuple[str, ...] = ()  # per-user arrays of any length (a run's items and scores), kept as they are


_ITEMS_CACHE: dict[int, IdMap] = {}


def _index_map(n: int) -> IdMap:
    """An IdMap 0..n-1, built once per worker process (metrics.evaluate only needs the matrix's shape)."""
    if n not in _ITEMS_CACHE:
        _ITEMS_CACHE[n] = IdMap(np.arange(n).astype(str).astype(object))
    return _ITEMS_CACHE[n]


def _csr(lists: Sequence[Any], n_items: int, values: Sequence[Any] | None = None) -> sp.csr_matrix:
    """Rows from per-user arrays of sorted item indices (and their values): float32 [n, n_items]."""
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    idx = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists]) if len(lists) else np.zeros(0, np.int64)
    data: np.ndarray
    if values is None:
        data = np.ones(len(idx), dtype=np.float32)
    else:
        data = np.concatenate([np.asarray(v, dtype=np.float32) for v in values]) if len(lists) else np.zeros(0)
    rows = np.repeat(np.arange(len(lists)), lengths)
    return csr_from_sorted_pairs(rows, idx, data, (len(lists), n_items), np.float32)


def evaluate_block(plan: BlockPlan, batch: pd.DataFrame) -> pd.DataFrame:
    """One block: score, mask, (fuse), rank, per-user metrics. One output row per (user, model).

    ``batch`` columns: user_idx, train_items, train_values, test_items (arrays), plus ``plan.columns``.
    """
    n = len(batch)
    user_idx = batch["user_idx"].to_numpy(np.int64)
    train = _csr(batch["train_items"].tolist(), plan.n_items, batch["train_values"].tolist())
    test = _csr(batch["test_items"].tolist(), plan.n_items)
    columns = {c: np.stack([np.asarray(v, dtype=np.float32) for v in batch[c]]) for c in plan.columns}
    columns.update({c: batch[c].to_numpy(dtype=object) for c in plan.list_columns})
    block = mem.Block(user_idx, train, columns)
    local = np.arange(n)
    k = plan.k
    masked: dict[int, np.ndarray] = {}
    rankings: dict[str, Ranking] = {}
    for j, (name, m) in enumerate(zip(plan.names, plan.members, strict=True)):
        as_given = getattr(m, "ranking_block", None)
        if as_given is not None:  # a run judged as given (evaluate-run): its own list, not re-ranked
            rankings[name] = as_given(block, k)
            continue
        masked[j] = mask_rows(np.array(m.score_block(block), dtype=np.float32, copy=True), train, local)
        rankings[name] = top_k(masked[j], k, user_idx)
    for f in plan.fusions:
        keep = np.flatnonzero(f.weights > 0)
        params = dict(f.params)
        rankings[f.label] = fuse_masked_block(
            [masked[int(i)] for i in keep],
            user_idx,
            f.weights[keep],
            [plan.names[i] for i in keep],
            f.method,
            f.normaliser,
            k,
            rrf_k=float(params.get("rrf_k", 60)),
            top_n=plan.top_n,
            seed=plan.seed,
            params=params,
        )
    target = Interactions(_index_map(n), _index_map(plan.n_items), test)
    # Metrics that compare a list with the user's own history read it from the context, by row: the block's
    # rows are its users, so the block's training rows are that history.
    ctx = dataclasses.replace(plan.ctx, history=train)
    out = []
    for name, ranking in rankings.items():
        local_ranking = Ranking(local.astype(np.int32), ranking.item_idx, ranking.score)
        ev = metrics.evaluate(local_ranking, target, ctx, ks=plan.ks, metrics=plan.user_metrics)
        # object dtype: pandas 3's Arrow-backed strings reach pyspark as chunked arrays, which it cannot send.
        frame = pd.DataFrame({"user_idx": user_idx, "model": pd.Series([name] * n, dtype=object)})
        frame["items"] = list(ranking.item_idx.astype(np.int32))
        frame["scores"] = list(ranking.score.astype(np.float32))
        for key in _user_keys(plan):
            frame[key] = ev.per_user[key]
        out.append(frame)
    return pd.concat(out, ignore_index=True)


def _user_keys(plan: BlockPlan) -> list[str]:
    return [f"{m}@{k}" for m in plan.user_metrics for k in plan.ks]


def _col(key: str) -> str:
    """A metric key as a Spark column name ("ndcg@10" -> "ndcg_at_10")."""
    return key.replace("@", "_at_")


# ------------------------------------------------------------------------------------------ helpers


def _members_of(config: ExperimentConfig, extra: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, model name, params) per member: the configuration's, then Spark-trained names given apart."""
    out = [(m.label, m.model, dict(m.params)) for m in config.members]
    out += [(name, name, {}) for name in extra]
    labels = [x[0] for x in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"members {', '.join(labels)} name one twice: give each once")
    if not out:
        raise ConfigError("no members given: name models with --models pop,spark-als or give a --config")
    return out


def user_frame(split: SparkSplit, part: str) -> DataFrame:
    """One row per user with held-out items in ``part``: user_idx, train_items, train_values, test_items."""
    from pyspark.sql import functions as F

    rows = split.rows
    train = rows.filter(F.col("part") == "train")
    trained = train.groupBy("user_idx").agg(F.array_sort(F.collect_list(F.struct("item_idx", "value"))).alias("_pairs"))
    trained = trained.select(
        "user_idx",
        F.col("_pairs.item_idx").alias("train_items"),
        F.col("_pairs.value").cast("array<float>").alias("train_values"),
    )
    held = (
        rows.filter(F.col("part") == part)
        .groupBy("user_idx")
        .agg(F.array_sort(F.collect_list("item_idx")).alias("test_items"))
    )
    # A user whose every interaction is held out cannot exist (h <= n - 1), but a supplied split may have one:
    # an empty history, as the local engine gives it.
    return held.join(trained, "user_idx", "left").select(
        "user_idx",
        F.coalesce("train_items", F.array().cast("array<int>")).alias("train_items"),
        F.coalesce("train_values", F.array().cast("array<float>")).alias("train_values"),
        "test_items",
    )


def _train_counts(split: SparkSplit, train_part: str = "train") -> np.ndarray:
    """Interactions per item (int64, one entry per catalogue item) in ``train_part``: one Spark job."""
    from pyspark.sql import functions as F

    counts = _pandas(split.rows.filter(F.col("part") == train_part).groupBy("item_idx").count())
    out = np.zeros(len(split.items), dtype=np.int64)
    out[counts["item_idx"].to_numpy(np.int64)] = counts["count"].to_numpy(np.int64)
    return out


# Bytes per interaction collected for driver-fitted members (user and item index, value, timestamp, part).
_COLLECTED_ROW_BYTES = 25


def _collect_limit(spark: SparkSession) -> int:
    """Bytes the driver may take in one collection: ``spark.driver.maxResultSize`` (Spark's default 1g)."""
    return spark_bytes(str(spark.conf.get("spark.driver.maxResultSize", "1g")), default=2**30) or 2**62  # 0: none


def _local_split(split: SparkSplit, part: str) -> tuple[Split, IdMap]:
    """The split on the driver (for members fitted there): needs the data to fit on one machine.

    Refused before anything is collected when the rows would exceed what the driver may collect, with the
    figure and the fix. The users' ids come once per user, the parts as a byte, so a row is about 25 bytes.
    """
    from pyspark.sql import functions as F

    spark = split.rows.sparkSession
    rows = sum(split.counts.values())
    need = rows * _COLLECTED_ROW_BYTES
    limit = _collect_limit(spark)
    if need > limit:
        raise ScaleError(
            f"members fitted on the driver need the training data there: {rows:,} interactions, about"
            f" {need / 2**20:,.0f} MiB, over the driver's collection limit of {limit / 2**20:,.0f} MiB: give the"
            " driver more memory (spark-submit --driver-memory and --conf spark.driver.maxResultSize), or use the"
            " members Spark trains (pop, spark-als, spark-itemknn, text)"
        )
    parts = ("train", "valid", "test")
    code = F.when(F.col("part") == "train", 0).when(F.col("part") == "valid", 1).otherwise(2).cast("tinyint")
    pdf = _pandas(split.rows.select("user_idx", "item_idx", "value", "timestamp", code.alias("part")))
    users_frame = _pandas(split.rows.select("user_idx", "user").dropDuplicates(["user_idx"])).sort_values("user_idx")
    users = IdMap(users_frame["user"].to_numpy(dtype=object))
    shape = (split.n_users, len(split.items))
    has_ts = pdf["timestamp"].notna().all()

    def part_of(name: str) -> Interactions:
        sel = pdf[pdf["part"] == parts.index(name)].sort_values(["user_idx", "item_idx"])
        r, c = sel["user_idx"].to_numpy(np.int64), sel["item_idx"].to_numpy(np.int64)
        m = csr_from_sorted_pairs(r, c, sel["value"].to_numpy(np.float64), shape, np.float32)
        ts = csr_from_sorted_pairs(r, c, sel["timestamp"].to_numpy(np.float64) + 1.0, shape, np.float64)
        return Interactions(users, split.items, m, ts if has_ts else None)

    valid = part_of("valid") if part == "valid" or (pdf["part"] == parts.index("valid")).any() else None
    return Split(part_of("train"), part_of("test"), valid, split.description), users


# ----------------------------------------------------------------------------------- building members


def _fit_spark_als(spark: SparkSession, split: SparkSplit, cfg: mem.SparkALSConfig) -> tuple[Any, DataFrame]:
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    train = split.rows.filter(F.col("part") == "train")
    rating = F.col("value").cast("float") if cfg.use_ratings else F.lit(1.0).cast("float")
    data = train.select(F.col("user_idx").alias("u"), F.col("item_idx").alias("i"), rating.alias("r"))
    als = ALS(
        rank=cfg.factors,
        maxIter=cfg.iterations,
        regParam=cfg.regularization,
        alpha=cfg.alpha,
        implicitPrefs=True,
        userCol="u",
        itemCol="i",
        ratingCol="r",
        seed=cfg.seed,
        coldStartStrategy="nan",
        nonnegative=False,
    )
    model = als.fit(data)
    n_items = len(split.items)
    item_factors = np.zeros((n_items, cfg.factors), dtype=np.float32)
    pdf = _pandas(model.itemFactors)
    if len(pdf):
        item_factors[pdf["id"].to_numpy(np.int64)] = np.stack(pdf["features"].to_numpy()).astype(np.float32)
    users = model.userFactors.select(F.col("id").alias("user_idx"), F.col("features").alias("_f"))
    return item_factors, users


def _fit_spark_itemknn(spark: SparkSession, split: SparkSplit, cfg: mem.SparkItemKNNConfig) -> sp.csr_matrix:
    """Cosine item-item similarities with RowMatrix.columnSimilarities (rows = users, columns = items)."""
    from pyspark.mllib.linalg import Vectors
    from pyspark.mllib.linalg.distributed import RowMatrix
    from pyspark.sql import functions as F

    n_items = len(split.items)
    train = split.rows.filter(F.col("part") == "train")
    per_user = train.groupBy("user_idx").agg(F.array_sort(F.collect_list("item_idx")).alias("items"))
    rows = per_user.rdd.map(lambda r: Vectors.sparse(n_items, list(r["items"]), [1.0] * len(r["items"])))
    sims = RowMatrix(rows, numCols=n_items).columnSimilarities(threshold=float(cfg.threshold))
    entries = sims.entries.toDF(["i", "j", "s"])
    # columnSimilarities gives the upper triangle (i < j): both directions, then the K best per item with
    # ties broken by the lower item index, as the local kNN prunes.
    both = entries.unionByName(entries.select(F.col("j").alias("i"), F.col("i").alias("j"), "s"))
    from pyspark.sql.window import Window

    w = Window.partitionBy("i").orderBy(F.col("s").desc(), F.col("j"))
    kept = _pandas(both.withColumn("_r", F.row_number().over(w)).filter(F.col("_r") <= cfg.k).drop("_r"))
    # S[j, i]: score(u, i) = sum over the user's items j of sim(j, i), keeping i's K nearest neighbours j.
    return sp.csr_matrix(
        (kept["s"].to_numpy(np.float32), (kept["j"].to_numpy(np.int64), kept["i"].to_numpy(np.int64))),
        shape=(n_items, n_items),
    )


def text_vectors_in_spark(spark: SparkSession, texts: Sequence[str], model_name: str | None = None) -> np.ndarray:
    """Embed ``texts`` inside Spark: each partition encodes its texts with sentence-transformers, loaded once
    per Python worker (``embeddings`` keeps the loaded model) and reused for every later partition."""
    from reco_core import embeddings

    name = model_name or embeddings.DEFAULT_MODEL
    frame = spark.createDataFrame(pd.DataFrame({"i": np.arange(len(texts)), "text": [str(t) for t in texts]}))
    parts = max(1, min(spark.sparkContext.defaultParallelism, len(texts) // 256 + 1))

    def encode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from reco_core import embeddings as emb

        for b in batches:
            vecs = emb.encode_texts(b["text"].tolist(), name)
            yield pd.DataFrame({"i": b["i"].to_numpy(), "v": list(np.asarray(vecs, dtype=np.float32))})

    pdf = _pandas(frame.repartition(parts).mapInPandas(encode, "i long, v array<float>"))
    out = np.zeros((len(texts), len(pdf["v"].iloc[0])), dtype=np.float32)
    out[pdf["i"].to_numpy(np.int64)] = np.stack(pdf["v"].to_numpy())
    return out


@dataclass
class _Built:
    members: list[Any]
    names: list[str]
    columns: list[str]
    user_columns: list[DataFrame]
    notes: list[str]
    seconds: dict[str, float]
    list_columns: list[str] = field(default_factory=list)


def build_members(
    spark: SparkSession,
    split: SparkSplit,
    specs: Sequence[tuple[str, str, dict[str, Any]]],
    catalog: ItemCatalog,
    seed: int,
    part: str,
    broadcast_limit: int = mem.DEFAULT_BROADCAST_BYTES,
    progress: Progress | None = None,
    train_counts: np.ndarray | None = None,
) -> _Built:
    """Fit each member where it belongs (module docstring of ``members``); report driver memory needs.

    ``train_counts``: interactions per item in the training part (``_train_counts``), when the caller has them
    already; else collected here when a member needs them.
    """
    built = _Built([], [], [], [], [], {})
    local: tuple[Split, IdMap] | None = None
    for label, name, params in specs:
        t0 = time.perf_counter()
        if progress:
            progress(f"members: fitting {label}")
        if name == "pop":
            if train_counts is None:
                train_counts = _train_counts(split)
            member: Any = mem.PopMember(train_counts.astype(np.float32), label)
        elif name == "spark-als":
            cfg = mem.spark_config(name, params, seed)
            assert isinstance(cfg, mem.SparkALSConfig)
            item_factors, users = _fit_spark_als(spark, split, cfg)
            column = f"_f{len(built.columns)}"
            built.columns.append(column)
            built.user_columns.append(users.withColumnRenamed("_f", column))
            member = mem.FactorMember(item_factors, column, label)
        elif name == "spark-itemknn":
            cfg_knn = mem.spark_config(name, params, seed)
            assert isinstance(cfg_knn, mem.SparkItemKNNConfig)
            member = mem.SimilarityMember(_fit_spark_itemknn(spark, split, cfg_knn), label)
        elif name == "text":
            from reco_core.models.content import unit_rows
            from reco_core.models.text import TextConfig

            tcfg = TextConfig(**{"seed": seed, **params})
            if not catalog.described().any():
                raise ConfigError(
                    "model 'text' needs item titles or descriptions, and this dataset has none: give an items file"
                    " with a title column, or leave the text model out"
                )
            raw = unit_rows(text_vectors_in_spark(spark, list(catalog.text), tcfg.model_name))
            mean = raw.mean(axis=0) if tcfg.center else np.zeros(raw.shape[1], dtype=np.float32)
            member = mem.TextMember(unit_rows(raw - mean), tcfg.rating_weighted, label)
        else:
            if local is None:
                local = _local_split(split, part)
            lsplit = local[0]
            fit_split = lsplit
            dataset = Dataset("spark", lsplit.train, catalog, None, LoadReport())
            fitted = experiment.fit_members([MemberSpec.of(name, params)], fit_split, dataset, seed)
            if fitted.failed:
                raise FitError("; ".join(f"{k}: {v}" for k, v in fitted.failed.items()))
            member = mem.DriverMember(next(iter(fitted.models.values())), label)
        size = mem.broadcast_size(member, broadcast_limit)
        built.notes.append(f"{label}: {size / 1e6:,.1f} MB broadcast")
        built.members.append(member)
        built.names.append(label)
        built.seconds[label] = time.perf_counter() - t0
    return built


# ------------------------------------------------------------------------------------------- global metrics


def global_metrics(results: DataFrame, names: Sequence[str], ks: Sequence[int], ctx: EvalContext, n: int) -> dict:
    """coverage, gini (item counts aggregated in Spark) and personalisation (the sampled pairs' lists).

    One Spark job counts every item at every k (an item at 0-based place p counts for each k > p); a second
    collects the lists of the user pairs ``metrics.user_pairs`` draws. The formulas are ``metrics``' own
    (``gini_of_counts``, ``personalisation_of_pairs``) on those inputs.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    wanted = [m for m in ("coverage", "gini", "personalisation") if m in METRICS]
    out: dict[str, dict[str, float]] = {name: {} for name in names}
    k_list = sorted(set(ks))
    if "coverage" in wanted or "gini" in wanted:
        exploded = results.select("model", F.posexplode(F.slice("items", 1, k_list[-1])).alias("pos", "item"))
        per_k = [F.sum((F.col("pos") < k).cast("long")).alias(f"c{k}") for k in k_list]
        counts = _pandas(exploded.filter(F.col("item") >= 0).groupBy("model", "item").agg(*per_k))
        for name in names:
            sel = counts[counts["model"] == name]
            idx = sel["item"].to_numpy(np.int64)
            for k in k_list:
                c = np.zeros(ctx.n_items, dtype=np.int64)
                c[idx] = sel[f"c{k}"].to_numpy(np.int64)
                if "coverage" in wanted:
                    out[name][f"coverage@{k}"] = float(np.count_nonzero(c) / ctx.n_items)
                if "gini" in wanted:
                    out[name][f"gini@{k}"] = metrics.gini_of_counts(c)
    if "personalisation" in wanted:
        if n < 2:
            for name in names:
                for k in k_list:
                    out[name][f"personalisation@{k}"] = float("nan")
            return out
        a, b = metrics.user_pairs(n, ctx.personalisation_pairs, ctx.seed)
        need = np.unique(np.concatenate([a, b]))
        positions = results.withColumn("_pos", F.row_number().over(Window.partitionBy("model").orderBy("user_idx")) - 1)
        spark = results.sparkSession
        wanted_pos = spark.createDataFrame(pd.DataFrame({"_pos": need.astype(np.int64)}))
        picked = _pandas(positions.join(F.broadcast(wanted_pos), "_pos").select("model", "_pos", "items"))
        for name in names:
            sel = picked[picked["model"] == name].set_index("_pos")["items"]
            lists = np.full((int(need.max()) + 1, k_list[-1]), -1, dtype=np.int64)
            lists[sel.index.to_numpy(np.int64)] = np.stack(sel.to_numpy()).astype(np.int64)[:, : k_list[-1]]
            for k in k_list:
                out[name][f"personalisation@{k}"] = metrics.personalisation_of_pairs(lists[a, :k], lists[b, :k])
    return out


# ------------------------------------------------------------------------------------------- the run


def run(
    spark: SparkSession,
    config: ExperimentConfig,
    interactions: str | DataFrame | SparkData | None = None,
    *,
    spark_members: Sequence[str] = (),
    catalog: ItemCatalog | None = None,
    split: SparkSplit | None = None,
    ks: Sequence[int] | None = None,
    weights: Sequence[float] | None = None,
    fuse_members: bool = True,
    fusions: Sequence[Fusion] | None = None,
    members: Sequence[tuple[str, str, dict[str, Any]]] | None = None,
    part: str = "test",
    metrics_wanted: Sequence[str] | None = None,
    item_vectors: np.ndarray | None = None,
    output_dir: str | None = None,
    broadcast_limit: int = mem.DEFAULT_BROADCAST_BYTES,
    load_report: LoadReport | None = None,
    progress: Progress | None = stderr_progress,
    runs: Sequence[RunFile] = (),
    runs_as_given: bool = False,
) -> SparkRun:
    """Evaluate ``config``'s members (and their fusion, when ``fuse_members``) with Spark.

    ``interactions``: a path/URI, a DataFrame or a ``SparkData`` (ignored when ``split`` is given). ``catalog``
    gives titles and genres (genre diversity, the text member); without it, a bare catalogue.
    ``item_vectors`` enables ild_text. ``weights`` default to the configuration's. ``fusions`` computes
    several fused lists in the same pass (each its own row); ``members`` gives (label, model, params) in
    order instead of the configuration's members plus ``spark_members``.

    ``runs``: external run files (``reco_core.spark.runs``), members after the others, matched to the split's
    training part of ``part``. As fusion members (default) each is the local ``RunMember``, with lists as deep as
    ``config.fusion.top_n``; with ``runs_as_given`` (evaluate-run) each is judged on its own top-k as given, and
    nothing is fused.
    """
    log = log_path_of(spark)
    seconds: dict[str, float] = {}
    proto = config.protocol
    with spark_errors(log, "loading and splitting the data"):
        report = load_report if load_report is not None else LoadReport(source="a split made before")
        if split is None:
            if interactions is None:
                raise ConfigError("no data: give an interactions path, a DataFrame, or a split")
            with _StageWatch(spark, "load", progress) as w:
                data = (
                    interactions
                    if isinstance(interactions, SparkData)
                    else read_interactions(spark, interactions, threshold=proto.threshold)
                )
                items = item_vocabulary(data, None if catalog is None else list(catalog.items.ids))
            seconds["load"] = w.seconds
            report = data.report
            with _StageWatch(spark, "split", progress) as w:
                valid_frac = proto.valid_frac if part == "valid" else 0.0
                split = split_frame(
                    spark, data, items, proto.split, proto.test_frac, proto.seed, valid_frac, proto.n_last
                )
            seconds["split"] = w.seconds
    items = split.items
    n_items = len(items)
    if catalog is None:
        catalog = ItemCatalog.bare(items)
    elif catalog.items != items:
        raise ConfigError(
            f"the catalogue has {len(catalog.items)} items and the data {n_items}: give the items file of the same"
            " data (every interaction's item must be in it)"
        )
    k_list = sorted(set(ks or [config.k]))
    k = max(k_list)
    specs = list(members) if members is not None else _members_of(config, spark_members)
    with spark_errors(log, "fitting the members"), _StageWatch(spark, "members", progress) as w:
        # Collected once: the pop member and the evaluation context (novelty, ARP, ...) both read them.
        train_counts = _train_counts(split)
        built = build_members(
            spark, split, specs, catalog, proto.seed, part, broadcast_limit, progress, train_counts=train_counts
        )
    seconds["members"] = w.seconds
    run_reports: list[RunReport] = []
    if runs:
        if runs_as_given and (fuse_members or fusions):
            raise ConfigError("a run judged as given cannot be fused: fuse it as a member (runs_as_given=False)")
        # evaluate-run cuts the run at the largest k; a fusion member's list is as deep as the fusion reads.
        depth = k if runs_as_given else min(config.fusion.top_n, n_items)
        with spark_errors(log, "reading the run files"), _StageWatch(spark, "runs", progress) as w:
            for i, run_file in enumerate(runs):
                column = f"_run{i}"
                prepared = prepare_run(spark, run_file, split, depth, column, train_part="train")
                run_member: Any = (
                    RunList(column, run_file.label)
                    if runs_as_given
                    else RunScores(column, n_items, prepared.offset, run_file.label)
                )
                built.members.append(run_member)
                built.names.append(run_file.label)
                built.list_columns += [f"{column}_items", f"{column}_scores"]
                built.user_columns.append(prepared.lists)
                run_reports.append(prepared.report)
        seconds["runs"] = w.seconds
    if len(set(built.names)) != len(built.names):
        raise ConfigError(f"members {', '.join(built.names)} name one twice: give each once")
    genres = catalog.genre_matrix()
    ctx = EvalContext(
        n_items,
        train_counts,
        genres if genres.shape[1] > 0 and genres.nnz > 0 else None,
        item_vectors,
        seed=0,
    )
    # Availability as the blocks will have it: each block's context gets its users' history (evaluate_block).
    probe = dataclasses.replace(ctx, history=sp.csr_matrix((1, n_items), dtype=np.float32))
    names_all, notes = metrics._select_metrics(metrics_wanted, probe)
    user_metrics = tuple(m for m in names_all if METRICS[m].scope == "user")
    plan_fusions: list[Fusion] = list(fusions or [])
    if fuse_members and not plan_fusions:
        given = list(weights) if weights is not None else list(config.weights) + [1.0] * len(spark_members)
        if len(given) != len(built.names) or not any(x > 0 for x in given):
            given = [1.0] * len(built.names)
        w_arr = fusion.check_weights(given, len(built.names), tuple(built.names))
        params = tuple(sorted(config.fusion.param_map.items()))
        plan_fusions = [Fusion(FUSED, w_arr, config.method, config.normaliser, params)]
    for f in plan_fusions:
        fusion.check_method(f.method)
        fusion.check_normaliser(f.normaliser)
    plan = BlockPlan(
        tuple(built.members),
        tuple(built.names),
        tuple(plan_fusions),
        k,
        tuple(k_list),
        n_items,
        config.fusion.top_n,
        proto.seed,
        user_metrics,
        ctx,
        tuple(built.columns),
        tuple(built.list_columns),
    )
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    users = user_frame(split, part)
    for extra in built.user_columns:
        users = users.join(extra, "user_idx", "left")
    if built.columns:
        # MLlib leaves a user it never saw without factors: zeros then, so the row scores 0 everywhere.
        for c in built.columns:
            dim = len(plan.members[[getattr(m, "column", None) for m in plan.members].index(c)].item_factors[0])
            users = users.withColumn(c, F.coalesce(F.col(c), F.array_repeat(F.lit(0.0).cast("float"), dim)))
    for c in built.list_columns:
        # A user the run never lists: an empty list, as read_run pads it.
        kind = "array<int>" if c.endswith("_items") else "array<double>"
        users = users.withColumn(c, F.coalesce(F.col(c), F.array().cast(kind)))
    bs = auto_block_size(n_items)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(bs))
    plan_b = spark.sparkContext.broadcast(plan)
    keys = _user_keys(plan)
    fields = [
        T.StructField("user_idx", T.LongType()),
        T.StructField("model", T.StringType()),
        T.StructField("items", T.ArrayType(T.IntegerType())),
        T.StructField("scores", T.ArrayType(T.FloatType())),
        *[T.StructField(_col(key), T.DoubleType()) for key in keys],
    ]
    schema = T.StructType(fields)

    def blocks(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from reco_core.spark.session import silence_pandas_warning

        silence_pandas_warning()
        p = plan_b.value
        for batch in batches:
            if len(batch):
                yield evaluate_block(p, batch).rename(columns={key: _col(key) for key in keys})

    n_parts = max(spark.sparkContext.defaultParallelism * 2, 1)
    with spark_errors(log, "evaluating the blocks"), _StageWatch(spark, "evaluate", progress) as w:
        results = users.repartition(n_parts, "user_idx").mapInPandas(blocks, schema).persist()
        n_eval = results.filter(F.col("model") == plan.names[0]).count()
        means = _pandas(results.groupBy("model").agg(*[F.avg(_col(key)).alias(key) for key in keys]))
    seconds["evaluate"] = w.seconds
    model_names = [*plan.names, *(f.label for f in plan.fusions)]
    with spark_errors(log, "summarising"), _StageWatch(spark, "summarise", progress) as w:
        globals_ = global_metrics(results, model_names, k_list, ctx, n_eval)
    seconds["summarise"] = w.seconds
    means = means.set_index("model").reindex(model_names)
    table = means.copy()
    for name in model_names:
        for key, v in globals_[name].items():
            table.loc[name, key] = v
    order = sorted(table.columns, key=metrics._key_order)
    table = table[order]
    table.index.name = "model"
    if output_dir is not None:
        with spark_errors(log, "writing the output"):
            results.select("user_idx", "model", "items", "scores").write.mode("overwrite").parquet(
                f"{output_dir.rstrip('/')}/topk"
            )
            results.drop("items", "scores").write.mode("overwrite").parquet(f"{output_dir.rstrip('/')}/per_user")
    return SparkRun(
        table,
        report,
        split.description,
        split.n_users,
        n_items,
        int(n_eval),
        seconds,
        [*notes, *built.notes],
        results,
        run_reports,
    )
