"""Interactions into Spark with the local loaders' rules, and the same splits as ``reco_core.splitting``.

Reading: Parquet (a file or a folder of parts) or CSV/TSV paths, any URI Spark reads, or a DataFrame. Columns
are recognised by the local loaders' own alias table (``datasets.columns``), so ``userId``/``movie_id``/
``rating`` are found the same way. Validation gives the local loaders' one-line errors (missing column, an
empty id, a rating that is not a number), naming the column and an example row. Every row is accounted for in
a ``LoadReport`` like the local one: rating 0 dropped, a repeated (user, item) pair merged, a rating under the
threshold dropped.

One convention differs from the local loaders, because Spark has no row order: of a repeated (user, item)
pair the row with the latest timestamp is kept (then the highest rating), where a local load keeps the last
row of the file. Data without repeated pairs (MovieLens) loads identically.

Splitting: every split of ``splitting.SPLITTERS`` (random, temporal, leave-last), with the local engine's rows,
descriptions and refusals. The random split groups the users into buckets of about ``USERS_PER_SPLIT_CALL`` (by
user index) and calls ``splitting.holdout_rows`` once per bucket over all its users (``applyInPandas``; the
function works on rows in any order, grouped by a user code), with item hashes broadcast and each user's hash
computed there, so the random split (and the validation part, carved the same way after any split) equals the
local engine's row for row. One call per user cost a pandas frame per user (MovieLens-1M's split took about
twice as long). A bucket is a group, so Spark keeps all of its rows in one call whatever it does to partitions:
``repartition("user")`` + ``mapInPandas`` was tried and is wrong, because the optimizer drops that repartition
after a join on the user (the data looks partitioned already) while adaptive execution may have split a skewed
join partition, so a user's rows met two calls. The temporal cut is the exact "lower" quantile
(``exact_lower_quantile``: a count gives the rank, sorting gives the value); leave-last is a window per user,
latest first, ties by item index (the higher index is the later).

The item vocabulary (``IdMap``) is collected to the driver: a catalogue has
thousands to millions of items, a few MB; users never are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reco_core import splitting
from reco_core.checks import MUST_BE, check_whole
from reco_core.data import LoadReport
from reco_core.datasets import columns as cols
from reco_core.errors import ConfigError, DataError, quote
from reco_core.ids import IdMap

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}


@dataclass
class SparkData:
    """Interactions as a Spark DataFrame (user string, item string, value double, timestamp double or null)."""

    frame: DataFrame
    report: LoadReport
    has_timestamps: bool
    named_items: DataFrame | None = None  # every item a row names, kept or not (the catalogue, as locally)


@dataclass
class SparkSplit:
    """Per-interaction rows (user, user_idx, item_idx, value, part) and the vocabularies.

    ``part`` is "train", "test" or "valid". ``users`` is the number of users (indices 0..users-1, in
    ``IdMap`` order: the local engine's indices); ``items`` the item vocabulary, collected.
    """

    rows: DataFrame
    items: IdMap
    n_users: int
    description: str
    counts: dict[str, int] = field(default_factory=dict)


def _reader(spark: SparkSession, path: str) -> DataFrame:
    lower = path.lower().rstrip("/")
    suffix = "." + lower.rsplit(".", 1)[-1] if "." in lower.rsplit("/", 1)[-1] else ""
    if suffix in CSV_SUFFIXES:
        # Every column as text, as the local CSV reader does: ids stay ids ("007" is not 7), numbers are parsed
        # and checked below with the same messages.
        return spark.read.csv(path, header=True, sep=CSV_SUFFIXES[suffix], inferSchema=False)
    if suffix in PARQUET_SUFFIXES or suffix == "":
        return spark.read.parquet(path)
    raise ConfigError(
        f"interactions path {quote(path)} has suffix {suffix!r}: give .parquet (or a folder of Parquet parts),"
        " .csv or .tsv"
    )


def read_interactions(
    spark: SparkSession,
    source: str | DataFrame,
    columns: dict[str, str | None] | None = None,
    threshold: float | None = None,
) -> SparkData:
    """Interactions from a path/URI or a DataFrame, checked and counted like ``datasets.load_files``.

    ``columns`` maps roles (user, item, rating, timestamp) to column names when the aliases do not find them.
    """
    from pyspark.sql import DataFrame as SparkFrame
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    if isinstance(source, SparkFrame):
        df, name = source, "DataFrame"
    else:
        name = str(source)
        df = _reader(spark, name)
    found, notes = cols._resolve_columns(pd.DataFrame(columns=list(df.columns)), "interactions", columns, name, True)
    report = LoadReport(source=name, notes=list(notes))
    ucol, icol = found["user"], found["item"]
    rcol, tcol = found.get("rating"), found.get("timestamp")
    missing = list(cols._MISSING_TEXT)

    def empty(c: str) -> Any:
        text = F.lower(F.trim(F.col(c).cast("string")))
        return F.col(c).isNull() | text.isin(missing)

    value = F.col(rcol).try_cast("double") if rcol else F.lit(1.0)
    ts = F.col(tcol).try_cast("double") if tcol else F.lit(None).cast("double")
    checks = [F.count(F.lit(1)).alias("rows")]
    checks += [F.sum(empty(c).cast("long")).alias(f"empty_{i}") for i, c in enumerate((ucol, icol))]
    if rcol:
        # Empty or not a number (try_cast gives null): the local loaders refuse both, naming the column.
        checks.append(F.sum((F.col(rcol).isNull() | value.isNull()).cast("long")).alias("bad_rating"))
        checks.append(F.sum((F.isnan(value) | (F.abs(value) == float("inf"))).cast("long")).alias("nonfinite"))
    if tcol:
        checks.append(F.sum((F.col(tcol).isNotNull() & ts.isNull()).cast("long")).alias("bad_ts"))
    stats = df.agg(*checks).collect()[0].asDict()
    report.rows_read = int(stats["rows"] or 0)
    if report.rows_read == 0:
        raise DataError(f"{name}: no rows; check the path or the DataFrame")
    for i, c in enumerate((ucol, icol)):
        n = int(stats[f"empty_{i}"] or 0)
        if n:
            example = df.filter(empty(c)).limit(1).collect()[0].asDict()
            raise DataError(
                f"{name}: column {quote(c)} has {n:,} empty ids, e.g. the row {_row_text(example)}:"
                " fill or drop those rows"
            )
    if rcol and int(stats["bad_rating"] or 0):
        example = df.filter(F.col(rcol).isNull() | (value.isNull())).limit(1).collect()[0].asDict()
        raise DataError(
            f"{name}: column {quote(rcol)} has {int(stats['bad_rating']):,} values that are not numbers,"
            f" e.g. the row {_row_text(example)}: fix them, or name another rating column"
        )
    if rcol and int(stats["nonfinite"] or 0):
        example = df.filter(F.isnan(value) | (F.abs(value) == float("inf"))).limit(1).collect()[0].asDict()
        raise DataError(
            f"{name}: column {quote(rcol)} has {int(stats['nonfinite']):,} values that are NaN or infinite,"
            f" e.g. the row {_row_text(example)}: give finite ratings"
        )
    if tcol and int(stats["bad_ts"] or 0):
        example = df.filter(F.col(tcol).isNotNull() & ts.isNull()).limit(1).collect()[0].asDict()
        raise DataError(
            f"{name}: column {quote(tcol)} has {int(stats['bad_ts']):,} values that are not numeric timestamps,"
            f" e.g. the row {_row_text(example)}: give Unix seconds, or name no timestamp column"
        )
    # Kept (memory, spilling to disk) because the vocabulary, the user index and the split all read it: the
    # source is read and parsed once.
    tidy = df.select(
        F.trim(F.col(ucol).cast("string")).alias("user"),
        F.trim(F.col(icol).cast("string")).alias("item"),
        value.alias("value"),
        ts.alias("timestamp"),
    ).persist()
    # Same order of rules as datasets.usable_rows: zeros, then duplicates among the rest, then the threshold.
    pick = Window.partitionBy("user", "item").orderBy(
        F.col("timestamp").desc_nulls_last(), F.col("value").desc(), F.col("timestamp")
    )
    ranked = tidy.filter(F.col("value") != 0).withColumn("_n", F.row_number().over(pick))
    counts = ranked.agg(
        F.count(F.lit(1)).alias("nonzero"),
        F.sum((F.col("_n") > 1).cast("long")).alias("dups"),
        F.sum(((F.col("_n") == 1) & (F.col("value") < F.lit(threshold))).cast("long")).alias("below")
        if threshold is not None
        else F.lit(0).alias("below"),
        F.sum(((F.col("_n") == 1) & (F.col("value") < 0)).cast("long")).alias("negative"),
    ).collect()[0]
    report.drop("rating is 0 (a sparse matrix stores 0 as 'no interaction')", report.rows_read - int(counts["nonzero"]))
    report.duplicates_merged = int(counts["dups"] or 0)
    kept = ranked.filter(F.col("_n") == 1).drop("_n")
    if threshold is not None:
        report.drop(f"rating below the threshold {float(threshold):g}", int(counts["below"] or 0))
        kept = kept.filter(F.col("value") >= F.lit(float(threshold)))
    report.rows_kept = report.rows_read - report.duplicates_merged - report.rows_dropped
    if report.rows_kept == 0:
        raise DataError(f"{name}: no interactions are left ({report.summary()}); lower the threshold")
    return SparkData(kept, report, has_timestamps=tcol is not None, named_items=tidy.select("item").distinct())


def _row_text(row: dict[str, Any]) -> str:
    return quote(", ".join(f"{k}={v}" for k, v in row.items()), 160)


def item_vocabulary(data: SparkData, extra: list[str] | None = None) -> IdMap:
    """Every item the data names (plus ``extra``, e.g. an items file's), in ``IdMap`` order, on the driver.

    As the local loaders: an item whose every row was dropped (rating 0, under the threshold) stays in the
    catalogue with no interaction.
    """
    named = data.named_items if data.named_items is not None else data.frame.select("item").distinct()
    ids = [r[0] for r in named.collect()]
    return IdMap.from_values([*ids, *(extra or [])])


def with_indices(spark: SparkSession, frame: DataFrame, items: IdMap) -> tuple[DataFrame, int]:
    """``frame`` plus item_idx (the IdMap's) and user_idx (users in IdMap order: integers numerically, else
    by text, as ``IdMap.from_values``), and the number of users."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    item_table = spark.createDataFrame(
        pd.DataFrame({"item": items.ids.astype(str), "item_idx": np.arange(len(items), dtype=np.int32)})
    )
    frame = frame.join(F.broadcast(item_table), "item")
    users = frame.select("user").distinct()
    numeric = users.agg(F.min(F.col("user").rlike(r"^[+-]?\d+$").cast("int"))).collect()[0][0] == 1
    # Whole numbers sort by value first (then by text, so "07" and "7" keep IdMap's order); anything else by
    # text, which Spark compares by UTF-8 bytes, the same order as Python's code points.
    keys = [F.col("user").cast("decimal(38,0)"), F.col("user")] if numeric else [F.col("user")]
    # One window over all distinct users: a sort of the user ids only (tens of MB for 10M users), in one task.
    indexed = users.withColumn("user_idx", (F.row_number().over(Window.orderBy(*keys)) - 1).cast("int"))
    n_users = users.count()
    return frame.join(indexed, "user"), int(n_users)


USERS_PER_SPLIT_CALL = 1000
"""Users per pandas call of the split: enough to amortise a call, few enough that a bucket's rows stay small
(a thousand heavy users of a few thousand interactions each: millions of rows, tens of MB)."""


_SPLIT_SCHEMA = "user string, user_idx int, item_idx int, value double, timestamp double, part string"
_SPLIT_COLUMNS = ["user", "user_idx", "item_idx", "value", "timestamp", "part"]


def lower_quantile_rank(n: int, q: float) -> int:
    """The 0-based rank, in ascending order, of the value ``np.quantile(values, q, method="lower")`` picks from n
    values: numpy's own formula, floor((n - 1) * q) in float64."""
    return int(np.floor(np.float64(n - 1) * np.float64(q)))


def exact_lower_quantile(frame: DataFrame, column: str, q: float) -> float:
    """``np.quantile(values of column, q, method="lower")`` computed exactly by Spark (no approxQuantile error).

    How: the rank from a count (``lower_quantile_rank``), then the value at that rank by sorting. The column's
    distinct values are counted (``groupBy``) and sorted by a range-partitioned ``orderBy``: each sorted partition
    holds one range of values, and one job reports each partition's (lowest, highest, interactions). The driver
    adds those up to find the range that holds the rank, and a second job collects only that range's distinct
    values (a filter by value, so it does not depend on how the first job partitioned), which the driver walks in
    order. The driver holds one partition's distinct values at most, never the column.
    """
    from pyspark.sql import functions as F

    counts = frame.groupBy(F.col(column).alias("_v")).agg(F.count(F.lit(1)).alias("_n"))
    ranges = (
        counts.orderBy("_v")
        .withColumn("_p", F.spark_partition_id())
        .groupBy("_p")
        .agg(F.min("_v").alias("lo"), F.max("_v").alias("hi"), F.sum("_n").alias("n"))
        .collect()
    )
    spans = sorted((float(r["lo"]), float(r["hi"]), int(r["n"])) for r in ranges)
    total = sum(n for _, _, n in spans)
    rank = lower_quantile_rank(total, q)
    before = 0
    for lo, hi, n in spans:
        if rank < before + n:
            values = counts.filter((F.col("_v") >= lo) & (F.col("_v") <= hi)).collect()
            for value, count in sorted((float(r["_v"]), int(r["_n"])) for r in values):
                before += count
                if rank < before:
                    return value
        before += n
    raise AssertionError(f"rank {rank} is outside the {total} values")  # cannot happen: 0 <= rank < total


def split_frame(
    spark: SparkSession,
    data: SparkData,
    items: IdMap,
    method: str = "random",
    test_frac: float = 0.2,
    seed: int = 42,
    valid_frac: float = 0.0,
    n_last: int = 1,
) -> SparkSplit:
    """The named split, equal to ``splitting.make_split`` (+ ``with_validation``) on the same data, row for row.

    - random: per user, ``splitting.holdout_rows`` in buckets of users (module docstring);
    - temporal: one global cut at the (1 - test_frac) "lower" quantile of the timestamps, computed exactly
      (``exact_lower_quantile``); test = interactions strictly later;
    - leave-last: per user, a window ordered by time then item index, both descending (the local tie rule: of
      equal times the higher item index counts as later); the first min(n_last, n_u - 1) rows are test.

    Timestamps are compared as the local loaders store them (ts + 1), so the cut and the ties are the local
    engine's to the bit. A validation part (``valid_frac`` > 0) is carved from the training rows of each user with
    ``holdout_rows``, as ``with_validation`` does. The description and the refusals are ``splitting``'s words.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    name = str(method).strip().lower().replace("_", "-")
    if name not in splitting.SPLITTERS:
        choices = ", ".join(f"{k} ({v.help})" for k, v in splitting.SPLITTERS.items())
        raise ConfigError(f"split method {quote(method)} is unknown; choose one of {choices}")
    # The local checks, in the local order (make_split, then the splitter, then with_validation).
    vfrac = splitting._check_frac("valid_frac", valid_frac, allow_zero=True)
    frac = 0.0
    if name == "leave-last":
        n = check_whole(n_last, "n_last", message=MUST_BE)
    else:
        frac = splitting._check_frac("test_frac", test_frac)
    if name == "random":
        seed = check_whole(seed, "seed", 0, MUST_BE)
    frame, n_users = with_indices(spark, data.frame, items)
    # As the local loaders store them (ts + 1): the same doubles, so the same cut and the same ties.
    frame = frame.withColumn("_ts", F.col("timestamp") + F.lit(1.0))
    when = ""
    if name != "random":
        if not data.has_timestamps:
            raise splitting.needs_timestamps(name)
        # Read by the checks, the cut and the split below: indexed once (released once the split is kept).
        frame = frame.persist()
        missing = frame.filter(F.col("timestamp").isNull()).count()
        if missing:
            raise ConfigError(
                f"a {name} split needs a timestamp on every interaction and {missing:,} have none: fill them,"
                " or use split='random'"
            )
    if name == "temporal":
        cut = exact_lower_quantile(frame, "_ts", 1.0 - frac)
        when = splitting.cut_time_text(cut)
        frame = frame.withColumn("_test", F.col("_ts") > F.lit(cut))
    elif name == "leave-last":
        latest = Window.partitionBy("user_idx").orderBy(F.col("_ts").desc(), F.col("item_idx").desc())
        n_u = F.count(F.lit(1)).over(Window.partitionBy("user_idx"))
        frame = frame.withColumn("_test", F.row_number().over(latest) <= F.least(F.lit(n), n_u - 1))
    if vfrac > 0:
        seed = check_whole(seed, "seed", 0, MUST_BE)
    if name == "random" or vfrac > 0:
        rows = _holdout_in_buckets(spark, frame, items, n_users, name == "random", frac, vfrac, seed)
    else:
        rows = frame.select(
            *_SPLIT_COLUMNS[:-1], F.when(F.col("_test"), F.lit("test")).otherwise(F.lit("train")).alias("part")
        )
    # Kept: the counts below, the engine's members and blocks all read it (the split is computed once).
    rows = rows.persist()
    stats = _split_counts(rows)
    if name != "random":
        frame.unpersist()
    counts = {part: stats[part] for part in ("train", "valid", "test") if stats[part]}
    if not stats["test"]:
        why = {"random": splitting.RANDOM_EMPTY, "leave-last": splitting.LEAVE_LAST_EMPTY}.get(name)
        raise splitting.empty_part("test", why or splitting.temporal_empty(when))
    if vfrac > 0 and not stats["valid"]:
        raise splitting.empty_part("validation", splitting.VALID_EMPTY)
    total = stats["train"] + stats["valid"] + stats["test"]
    held = splitting.counts_text(stats["test"], total, stats["test_users"], "test")
    if name == "random":
        desc = splitting.random_description(frac, seed, held, stats["singles"])
    elif name == "temporal":
        # Items whose every interaction is in test (one more job; users are counted with the rest).
        only_test = F.min((F.col("part") == "test").cast("int")).alias("_cold")
        cold_items = rows.groupBy("item_idx").agg(only_test).agg(F.sum("_cold")).collect()[0][0]
        desc = splitting.temporal_description(when, frac, held, stats["cold_users"], int(cold_items or 0))
    else:
        desc = splitting.leave_last_description(n, held, stats["singles"])
    if vfrac > 0:
        valid = splitting.counts_text(stats["valid"], total - stats["test"], stats["valid_users"], "valid")
        desc = splitting.validation_description(desc, vfrac, seed, valid, stats["train_singles"])
    return SparkSplit(rows, items, n_users, desc, counts)


def _holdout_in_buckets(
    spark: SparkSession,
    frame: DataFrame,
    items: IdMap,
    n_users: int,
    random_test: bool,
    frac: float,
    vfrac: float,
    seed: int,
) -> DataFrame:
    """Rows with their part, from ``splitting.holdout_rows`` called once per bucket of users (module docstring):
    the test part when ``random_test`` (else the frame's ``_test`` column says it), then the validation part
    carved from each user's training rows when ``vfrac`` > 0."""
    from pyspark.sql import functions as F

    item_hash = spark.sparkContext.broadcast(splitting.id_hashes(items.ids, seed))

    def per_bucket(pdf: pd.DataFrame) -> pd.DataFrame:
        # Arrow-backed strings may arrive chunked, which Spark's Arrow writer refuses on the way back: objects.
        pdf = pdf.assign(user=pdf["user"].to_numpy(dtype=object))
        codes, users = pd.factorize(pdf["user"])
        uh = splitting.id_hashes(users, seed)[codes]
        idx = pdf["item_idx"].to_numpy(np.int64)
        ih = item_hash.value[idx]
        test = splitting.holdout_rows(codes, uh, ih, idx, frac) if random_test else pdf["_test"].to_numpy(bool)
        part = np.where(test, "test", "train").astype(object)
        if vfrac > 0:
            train = np.flatnonzero(~test)
            part[train[splitting.holdout_rows(codes[train], uh[train], ih[train], idx[train], vfrac)]] = "valid"
        return pdf.assign(part=part)[_SPLIT_COLUMNS]

    buckets = max(1, -(-n_users // USERS_PER_SPLIT_CALL))
    grouped = frame.withColumn("_bucket", F.col("user_idx") % buckets).groupBy("_bucket")
    return grouped.applyInPandas(per_bucket, schema=_SPLIT_SCHEMA)


def _split_counts(rows: DataFrame) -> dict[str, int]:
    """Everything the descriptions count, in one job: rows per part; users with test (valid) rows; users with one
    interaction (singles); users with one interaction before validation was carved (train_singles); users whose
    every interaction is in test (cold_users)."""
    from pyspark.sql import functions as F

    def n_of(part: str) -> Any:
        return F.sum((F.col("part") == part).cast("long"))

    per_user = rows.groupBy("user_idx").agg(
        F.count(F.lit(1)).alias("n"), n_of("test").alias("t"), n_of("valid").alias("v")
    )

    def users(cond: Any) -> Any:
        return F.sum(cond.cast("long"))

    n, t, v = F.col("n"), F.col("t"), F.col("v")
    row = per_user.agg(
        F.sum(n - t - v).alias("train"),
        F.sum(v).alias("valid"),
        F.sum(t).alias("test"),
        users(t > 0).alias("test_users"),
        users(v > 0).alias("valid_users"),
        users(n == 1).alias("singles"),
        users(n - t == 1).alias("train_singles"),
        users((t > 0) & (t == n)).alias("cold_users"),
    ).collect()[0]
    return {key: int(value or 0) for key, value in row.asDict().items()}


def split_from_frames(
    spark: SparkSession, train: SparkData, test: SparkData, items: IdMap
) -> tuple[SparkSplit, LoadReport]:
    """A split supplied as a train and a test frame: test rows of users unknown to train, or repeating a
    training (user, item) pair, are dropped and counted, as ``splitting.split_from_files`` does."""
    from pyspark.sql import functions as F

    frame, n_users = with_indices(spark, train.frame, items)
    users = frame.select("user", "user_idx").distinct()
    t = test.frame.join(
        spark.createDataFrame(pd.DataFrame({"item": items.ids.astype(str), "item_idx": np.arange(len(items))})),
        "item",
    )
    known = t.join(users, "user")
    fresh = known.join(frame.select("user", "item_idx"), ["user", "item_idx"], "left_anti")
    report = test.report
    n_test = t.count()
    n_known = known.count()
    n_fresh = fresh.count()
    report.drop("user not in the train file (no history to recommend from)", n_test - n_known)
    report.drop("(user, item) already in the train file", n_known - n_fresh)
    report.rows_kept = n_fresh
    if n_fresh == 0:
        raise DataError(f"{report.source}: no test row is usable ({report.summary()}); check the test file")
    cols_ = ["user", "user_idx", "item_idx", "value", "timestamp"]
    rows = (
        frame.select(*cols_)
        .withColumn("part", F.lit("train"))
        .unionByName(fresh.select(*cols_).withColumn("part", F.lit("test")))
    )
    desc = f"user-supplied split: train {train.report.source}, test {report.source} ({report.summary()})"
    return SparkSplit(rows, items, n_users, desc, {"train": train.report.rows_kept, "test": n_fresh}), report
