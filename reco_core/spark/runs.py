"""External runs with ``--engine spark``: ``evaluate-run`` and ``fuse``/``optimise --runs``, as the local engine.

A run file (user, item, rank or score rows: ``reco_core.runs``) is read on the driver by the local reader's
first half (``runs.parse_run``: the same column aliases, id cleaning, checks and one-line messages) into a
pandas frame, and
handed to Spark as a DataFrame: a run must fit in the driver's memory (a top-100 run of 10M users is 1e9 rows,
which does not; a top-100 run of a million users, 1e8 rows of a few strings and numbers, does on a large driver).
The driver keeps the file's row order, which breaks ties in a user's list as ``read_run`` does ("file order").

Everything else is Spark, with ``read_run``'s rules in ``read_run``'s order:

1. joins: the run's users to the split's users (unknown user: dropped, counted), its items to the catalogue
   (broadcast; unknown item, among known users: dropped, counted);
2. a window per (user, item) ordered by (key, file row): of duplicate rows the best-placed is kept;
3. an anti-join with the training part: the user's training items are dropped before the cut, as ``top_k``
   never recommends them (for ``part="valid"`` that is train minus validation, as locally);
4. a window per user ordered by (key, file row): the place in the user's list; rows past ``depth`` dropped,
   rows tied with the row above counted.

The key is the rank (ascending), else minus the score. The counts make the local ``RunReport`` (one aggregate
job), worded by its own ``summary()``. Each user's list travels with that user's row as two arrays (items and
scores, in list order), so a block of users rebuilds exactly what the local engine has:

- ``RunScores`` (fuse, optimise): the local ``RunMember``'s score rows (a listed item: the run's score, every other
  item NaN, "cannot score"), to the bit; the block then masks, ranks (``top_k``: ties by the lower item index)
  and fuses (``scale.fuse_masked_block``) as it does for any member, so every fusion method (rrf, borda, combsum,
  combmnz, interleave, team_draft, and the score-level ones) gives the local engine's lists;
- ``RunList`` (evaluate-run): the run's own top-k as given, as ``cli_commands.cmd_evaluate_run`` judges it (users
  the run never lists get an empty list and score 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from reco_core.ranking import Ranking, check_k
from reco_core.runs import RunReport, parse_run

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from reco_core.spark.data import SparkSplit
    from reco_core.spark.members import Block


@dataclass(frozen=True)
class RunFile:
    """A run file read on the driver. ``rows``: user, item (the cleaned id texts), key (rank, or minus the score;
    smaller is better), value (the ranking's score: the run's score, or minus the rank), row (file order)."""

    label: str  # the member's row in the table: "run:<stem>" for fuse, the path for evaluate-run
    name: str  # the report's name: the file's stem
    source: str  # "run file '<path>'"
    order_by: str  # "rank" or "score"
    rows: pd.DataFrame


def read_run_file(path: str | Path, label: str | None = None) -> RunFile:
    """The run file at ``path`` read and checked by the local reader (``runs.parse_run``: its aliases, its
    checks, its messages)."""
    parsed = parse_run(Path(path))
    value = parsed.score if parsed.score is not None else -parsed.key
    rows = pd.DataFrame(
        {
            "user": pd.Series(parsed.user, dtype=object),
            "item": pd.Series(parsed.item, dtype=object),
            # + 0.0 turns -0.0 into 0.0: numpy orders them as equal, and so must the Spark sort.
            "key": parsed.key.astype(np.float64) + 0.0,
            "value": value.astype(np.float64),
            "row": np.arange(parsed.rows_read, dtype=np.int64),
        }
    )
    return RunFile(label or f"run:{parsed.name}", parsed.name, parsed.source, parsed.order_by, rows)


@dataclass
class PreparedRun:
    """A run matched to a split: one row per user with a list (user_idx, ``<prefix>_items``, ``<prefix>_scores``),
    the report, and the offset the local ``RunMember`` shifts its scores by."""

    lists: DataFrame
    report: RunReport
    offset: float


def prepare_run(
    spark: SparkSession, run: RunFile, split: SparkSplit, depth: int, prefix: str, train_part: str = "train"
) -> PreparedRun:
    """``run`` as ``read_run(path, users, items, depth, exclude=<the training part>)`` reads it (module docstring)."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    n_items = len(split.items)
    check_k(depth, n_items)
    frame = spark.createDataFrame(
        run.rows, schema="user string, item string, key double, value double, row long"
    ).withColumnRenamed("user", "_user")
    users = split.rows.select(F.col("user").alias("_user"), "user_idx").distinct()
    item_table = spark.createDataFrame(
        pd.DataFrame({"item": split.items.ids.astype(str), "item_idx": np.arange(n_items, dtype=np.int32)})
    )
    joined = frame.join(users, "_user", "left").join(F.broadcast(item_table), "item", "left")
    known = F.col("user_idx").isNotNull() & F.col("item_idx").isNotNull()
    placed = [F.col("key"), F.col("row")]
    first = Window.partitionBy("user_idx", "item_idx").orderBy(*placed)
    training = (
        split.rows.filter(F.col("part") == train_part).select("user_idx", "item_idx").withColumn("_train", F.lit(True))
    )
    marked = (
        joined.withColumn("_first", known & (F.row_number().over(first) == 1))
        .join(training, ["user_idx", "item_idx"], "left")
        .withColumn("_kept", F.col("_first") & F.col("_train").isNull())
    )
    # Places among the kept rows only: the window's partition separates them from the others.
    in_list = Window.partitionBy("user_idx", "_kept").orderBy(*placed)
    marked = (
        marked.withColumn("_pos", F.row_number().over(in_list) - 1)
        .withColumn("_tied", F.lag("key").over(in_list) == F.col("key"))
        .persist()
    )
    kept, used = F.col("_kept"), F.col("_kept") & (F.col("_pos") < depth)

    def n_of(cond: Column) -> Column:
        return F.sum(F.when(cond, 1).otherwise(0))

    counts = marked.agg(
        n_of(F.col("user_idx").isNull()).alias("unknown_user"),
        n_of(F.col("user_idx").isNotNull() & F.col("item_idx").isNull()).alias("unknown_item"),
        n_of(known & ~F.col("_first")).alias("duplicate"),
        n_of(F.col("_first") & F.col("_train").isNotNull()).alias("training"),
        n_of(kept & F.col("_tied")).alias("tied"),
        n_of(kept & (F.col("_pos") >= depth)).alias("beyond"),
        n_of(used).alias("used"),
        F.countDistinct(F.when(used, F.col("user_idx"))).alias("users"),
        F.min(F.when(used, F.col("value"))).alias("lowest"),
    ).collect()[0]
    c = {key: value for key, value in counts.asDict().items()}

    def examples(unknown: Column, column: str) -> tuple[str, ...]:
        """The first three distinct unknown ids in file order, as ``pd.unique(...)[:3]``; asked only when any."""
        firsts = marked.filter(unknown).groupBy(column).agg(F.min("row").alias("_r")).orderBy("_r").limit(3)
        return tuple(str(r[0]) for r in firsts.collect())

    report = RunReport(
        source=run.source,
        name=run.name,
        order_by=run.order_by,
        k=int(depth),
        rows_read=len(run.rows),
        rows_used=int(c["used"]),
        unknown_user_rows=int(c["unknown_user"]),
        unknown_item_rows=int(c["unknown_item"]),
        duplicate_rows=int(c["duplicate"]),
        training_item_rows=int(c["training"]),
        beyond_k_rows=int(c["beyond"]),
        tied_rows=int(c["tied"]),
        users_in_run=int(c["users"]),
        users_without_list=int(split.n_users - c["users"]),
        unknown_user_examples=examples(F.col("user_idx").isNull(), "_user") if c["unknown_user"] else (),
        unknown_item_examples=examples(F.col("user_idx").isNotNull() & F.col("item_idx").isNull(), "item")
        if c["unknown_item"]
        else (),
    )
    assert report.balanced(), report
    # RunMember: scores are float32 (read_run's array), its offset the lowest listed score (as float64) minus 1.
    lowest = c["lowest"]
    offset = float(np.float32(lowest)) - 1.0 if lowest is not None else 0.0
    pairs = F.array_sort(F.collect_list(F.struct("_pos", "item_idx", "value")))
    lists = (
        marked.filter(used)
        .groupBy("user_idx")
        .agg(pairs.alias("_l"))
        .select(
            "user_idx",
            F.col("_l.item_idx").alias(f"{prefix}_items"),
            F.col("_l.value").alias(f"{prefix}_scores"),
        )
    )
    return PreparedRun(lists, report, offset)


def _flat(block: Block, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row in the block, place in the list, item, float32 score) of every listed item of the block's users."""
    items = block.columns[f"{prefix}_items"]
    scores = block.columns[f"{prefix}_scores"]
    lengths = np.fromiter((len(x) for x in items), dtype=np.int64, count=len(items))
    rows = np.repeat(np.arange(len(items)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    places = np.arange(int(lengths.sum())) - starts
    if not len(rows):
        return rows, places, np.zeros(0, np.int64), np.zeros(0, np.float32)
    flat_items = np.concatenate([np.asarray(x, dtype=np.int64) for x in items])
    # read_run keeps scores in a float32 array: the same rounding here.
    flat_scores = np.concatenate([np.asarray(x, dtype=np.float64) for x in scores]).astype(np.float32)
    return rows, places, flat_items, flat_scores


@dataclass
class RunScores:
    """A run as a fusion member: ``RunMember``'s scores (listed item: the run's score, other items NaN)."""

    prefix: str  # the block's columns <prefix>_items and <prefix>_scores
    n_items: int
    offset: float
    name: str

    def score_block(self, block: Block) -> np.ndarray:
        rows, _, items, scores = _flat(block, self.prefix)
        out = np.full((len(block.user_idx), self.n_items), np.nan, dtype=np.float32)
        # RunMember stores score - offset (float64) in a sparse matrix and adds the offset back: the same sums.
        shifted = scores.astype(np.float64) - self.offset
        out[rows, items] = shifted + self.offset
        return out


@dataclass
class RunList:
    """evaluate-run: the run's top-k as given (``read_run``'s Ranking rows); ``ranking_block`` replaces ranking."""

    prefix: str  # the block's columns <prefix>_items and <prefix>_scores
    name: str

    def score_block(self, block: Block) -> np.ndarray:  # pragma: no cover - never scored, ranked as given
        raise NotImplementedError("a run judged as given is ranked by ranking_block, never scored")

    def ranking_block(self, block: Block, k: int) -> Ranking:
        rows, places, items, scores = _flat(block, self.prefix)
        n = len(block.user_idx)
        item_idx = np.full((n, k), -1, dtype=np.int32)
        score = np.full((n, k), np.nan, dtype=np.float32)
        item_idx[rows, places] = items
        score[rows, places] = scores
        return Ranking(np.asarray(block.user_idx, dtype=np.int32), item_idx, score)
