"""Saved configurations for the Compare page: a small store of named snapshots, their table, export and import.

Streamlit-free: the page keeps the store (a dict name -> ``SavedConfig``) in session_state and calls these
functions. A snapshot holds the configuration as the JSON that ``LabConfig.to_json()`` wrote (so loading it
back goes through ``LabConfig.from_json`` and its validation), the metric means at save time, and the
per-user values of the per-user metrics, so two snapshots evaluated on the same users can be compared with
a paired test. Exports are plain JSON (``json.dumps``); imports are parsed with ``json.loads`` and checked
field by field: nothing in a file is executed.

Several paired tests shown at once (every metric of two snapshots, the weight search against every member, the
per-segment weights against the global ones) carry Holm's correction: ``paired_metric_table`` (two snapshots,
many metrics; many ``PairedComparison``s go through ``reco_core.stats.comparison_table``); ``ui.tests_table``
draws such tables and ``PairedComparison.sentence(..., p_adjusted, tests)`` words one of their rows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from reco_core.errors import ConfigError, DataError
from reco_core.metrics import METRICS, Evaluation

# The summary module is plain JSON handling: importing it starts no Spark and loads no pyspark.
from reco_core.spark.summary import FUSION_KEY, read_summary
from reco_core.spark.summary import SUMMARY_KEY as SPARK_SUMMARY_KEY
from reco_core.stats import paired_table

EXPORT_FORMAT = "reco-fusion-lab/saved-configurations"
EXPORT_VERSION = 1
MAX_NAME = 60
MAX_SAVED = 50  # a session's store is bounded like every cache (issue 6)
MAX_IMPORT_BYTES = 5_000_000


@dataclass(frozen=True)
class SavedConfig:
    """A named snapshot: configuration JSON, metric means, per-user values, the protocol it was evaluated on."""

    name: str
    config_json: str
    metrics: Mapping[str, float]
    protocol: str = ""
    user_ids: tuple[str, ...] = ()
    per_user: Mapping[str, np.ndarray] = field(default_factory=dict)  # float32, one value per user id
    saved_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": json.loads(self.config_json),
            "metrics": {k: _finite_or_none(v) for k, v in self.metrics.items()},
            "protocol": self.protocol,
            "saved_at": self.saved_at,
            "user_ids": list(self.user_ids),
            "per_user": {k: [_finite_or_none(x) for x in v] for k, v in self.per_user.items()},
        }


def _frozen(values: object) -> np.ndarray:
    out = np.array(values, dtype=np.float32)
    out.setflags(write=False)
    return out


def _finite_or_none(x: float) -> float | None:
    # JSON has no NaN; None keeps "not defined" (for example Gini of empty lists) distinct from 0.
    return float(x) if x is not None and math.isfinite(float(x)) else None


def clean_name(name: object) -> str:
    """A snapshot name: one line, trimmed, 1..MAX_NAME characters."""
    s = " ".join(str(name or "").split())
    if not s:
        raise ConfigError("give the configuration a name before saving it")
    if len(s) > MAX_NAME:
        raise ConfigError(f"the name {s[:20]!r}... has {len(s)} characters: use at most {MAX_NAME}")
    return s


def snapshot(
    name: str,
    config_json: str,
    evaluation: Evaluation,
    protocol: str,
    user_ids: Sequence[str],
    now: datetime | None = None,
) -> SavedConfig:
    """A snapshot of the current result. ``user_ids`` are the external ids of ``evaluation.user_idx``."""
    name = clean_name(name)
    try:
        json.loads(config_json)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"configuration of {name!r} is not JSON ({exc}): save it with LabConfig.to_json()") from None
    if len(user_ids) != evaluation.n:
        raise ConfigError(f"{len(user_ids)} user ids for {evaluation.n} evaluated users: pass the ids of user_idx")
    when = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    # float32 arrays: a session may hold MAX_SAVED snapshots of thousands of users each.
    per_user = {k: _frozen(v) for k, v in evaluation.per_user.items()}
    return SavedConfig(
        name, config_json, evaluation.values(), protocol, tuple(str(u) for u in user_ids), per_user, when
    )


def add(store: dict[str, SavedConfig], entry: SavedConfig, overwrite: bool = False) -> None:
    """Put ``entry`` in ``store`` (in place); an existing name needs ``overwrite``; the store is bounded."""
    if entry.name in store and not overwrite:
        raise ConfigError(f"a configuration named {entry.name!r} is already saved: pick another name or replace it")
    if entry.name not in store and len(store) >= MAX_SAVED:
        raise ConfigError(f"{MAX_SAVED} configurations are saved already: delete some before saving more")
    store[entry.name] = entry


def metric_order(key: str) -> tuple[int, int, str]:
    name, _, k = key.partition("@")
    order = list(METRICS)
    return (order.index(name) if name in order else len(order), int(k) if k.isdigit() else 0, key)


def metric_keys(entries: Iterable[SavedConfig]) -> list[str]:
    """Every metric key of the entries, in METRICS order then by k."""
    keys: set[str] = set()
    for e in entries:
        keys.update(e.metrics)
    return sorted(keys, key=metric_order)


def comparison_frame(entries: Sequence[SavedConfig], keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Configurations as rows, metric keys as columns (NaN where a snapshot lacks a key)."""
    keys = list(keys) if keys is not None else metric_keys(entries)
    rows = {e.name: [float(e.metrics.get(k, np.nan)) for k in keys] for e in entries}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=keys)
    frame.index.name = "configuration"
    return frame


def best_per_metric(frame: pd.DataFrame) -> dict[str, str]:
    """metric key -> name of the best configuration (highest, or lowest where lower is better)."""
    out = {}
    for key in frame.columns:
        col = frame[key].dropna()
        if col.empty:
            continue
        spec = METRICS.get(key.partition("@")[0])
        lower = spec is not None and not spec.higher_is_better
        out[key] = str(col.idxmin() if lower else col.idxmax())
    return out


def long_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Tidy (configuration, metric, value) rows for a grouped bar chart."""
    out = frame.reset_index().melt(id_vars="configuration", var_name="metric", value_name="value")
    return out.dropna(subset=["value"])


def comparable(a: SavedConfig, b: SavedConfig, key: str) -> str | None:
    """Why a paired test of ``key`` between ``a`` and ``b`` is not possible, or None when it is."""
    if key not in a.per_user or key not in b.per_user:
        return f"{key} is not a per-user metric of both configurations"
    if a.protocol != b.protocol or a.user_ids != b.user_ids:
        return "they were evaluated on different data or users (another protocol), so values cannot be paired"
    return None


def export_json(entries: Iterable[SavedConfig]) -> str:
    """Every snapshot as one JSON document (indent 2), loadable with ``import_json``."""
    doc = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "configurations": [e.to_dict() for e in entries]}
    return json.dumps(doc, indent=2, allow_nan=False)


def import_json(data: bytes | str, source: str = "the file") -> list[SavedConfig]:
    """Snapshots from an ``export_json`` document; a DataError names the entry and field that is wrong."""
    if isinstance(data, bytes):
        if len(data) > MAX_IMPORT_BYTES:
            raise DataError(f"{source} is {len(data):,} bytes: at most {MAX_IMPORT_BYTES:,} are accepted")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{source} is not UTF-8 text (byte {exc.start}): upload the JSON that Export wrote"
            ) from None
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise DataError(f"{source} is not valid JSON ({exc}): upload the file that Export wrote") from None
    except RecursionError:  # thousands of nested brackets: Python's parser gives up before finding an error
        raise DataError(f"{source} nests its JSON too deeply to be read: upload the file that Export wrote") from None
    if isinstance(doc, dict) and SPARK_SUMMARY_KEY in doc:
        return import_spark_summary(data, source)
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise DataError(f"{source} is not a saved-configurations export (no format {EXPORT_FORMAT!r})")
    if doc.get("version") != EXPORT_VERSION:
        raise DataError(f"{source} has version {doc.get('version')!r}: this app reads version {EXPORT_VERSION}")
    items = doc.get("configurations")
    if not isinstance(items, list):
        raise DataError(f"{source}: 'configurations' must be a list")
    out = []
    for i, item in enumerate(items, start=1):
        where = f"{source}, configuration {i}"
        if not isinstance(item, dict):
            raise DataError(f"{where} is not an object")
        name = clean_name(item.get("name"))
        config = item.get("config")
        if not isinstance(config, dict):
            raise DataError(f"{where} ({name!r}): 'config' must be an object")
        metrics = _numbers(item.get("metrics", {}), f"{where} ({name!r}) metrics")
        per_user_raw = item.get("per_user", {})
        if not isinstance(per_user_raw, dict):
            raise DataError(f"{where} ({name!r}): 'per_user' must be an object")
        user_ids = item.get("user_ids", [])
        if not isinstance(user_ids, list):
            raise DataError(f"{where} ({name!r}): 'user_ids' must be a list")
        per_user = {}
        for key, values in per_user_raw.items():
            if not isinstance(values, list) or len(values) != len(user_ids):
                raise DataError(f"{where} ({name!r}): per_user {key!r} must list one value per user id")
            per_user[str(key)] = _frozen([_number(v, f"{where} per_user {key!r}") for v in values])
        out.append(
            SavedConfig(
                name,
                json.dumps(config),
                metrics,
                str(item.get("protocol", "")),
                tuple(str(u) for u in user_ids),
                per_user,
                str(item.get("saved_at", "")),
            )
        )
    return out


def import_spark_summary(data: str, source: str = "the file") -> list[SavedConfig]:
    """A ``--engine spark --summary-json`` file as saved configurations: the fused lists' metrics for a fuse or
    optimise run, one entry per model for an evaluate run. They hold means only (a Spark run keeps its
    per-user values in ``--output-dir``), so they sit in the table and charts but not in paired tests."""
    summary = read_summary(data)
    run = summary.run
    protocol = f"{summary.config.protocol.describe()} (Spark, {run.get('n_evaluated', '?')} users)"
    parts = {FUSION_KEY: summary.fusion} if summary.fusion else summary.metrics
    if not parts:
        raise DataError(f"{source} is a Spark summary without metrics: rerun with --summary-json")
    when = str(run.get("created", ""))
    out = []
    for model, metrics in parts.items():
        label = "fused" if model == FUSION_KEY else model
        name = clean_name(f"spark {run.get('command', 'run')} {label} {when}"[:MAX_NAME])
        out.append(SavedConfig(name, summary.config.to_json(), dict(metrics), protocol, (), {}, when))
    return out


def _number(v: object, where: str) -> float:
    if v is None:
        return float("nan")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise DataError(f"{where}: {v!r} is not a number")
    return float(v)


def _numbers(obj: object, where: str) -> dict[str, float]:
    if not isinstance(obj, dict):
        raise DataError(f"{where} must be an object of metric -> number")
    return {str(k): _number(v, f"{where} {k!r}") for k, v in obj.items()}


def safe_filename(text: str) -> str:
    """A download file name from free text: letters, digits, dash and underscore only."""
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    return s[:60] or "configurations"


# ------------------------------------------------------------------------------------------ several tests at once
# Testing several metrics (or several pairs) at once and reading each raw p against 0.05 finds a "real
# difference" by chance far more often than 1 time in 20. Holm's step-down correction (reco_core.stats.holm_adjust)
# keeps the chance of any false finding in the family at 0.05; its adjusted p is never below the raw p.


def testable_keys(a: SavedConfig, b: SavedConfig, keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """The keys a paired test can use between ``a`` and ``b`` (per-user in both, every value a number), and the
    keys left out (a per-user metric of both with a missing value, such as one read from a file with null)."""
    usable, left_out = [], []
    for key in keys:
        if comparable(a, b, key) is not None:
            continue
        if np.isfinite(a.per_user[key]).all() and np.isfinite(b.per_user[key]).all():
            usable.append(key)
        else:
            left_out.append(key)
    return usable, left_out


def paired_metric_table(a: SavedConfig, b: SavedConfig, keys: Sequence[str], alpha: float = 0.05) -> pd.DataFrame:
    """B against A on every key of ``keys`` at once (``reco_core.stats.paired_table``: means, B - A with its
    paired bootstrap interval, raw Wilcoxon p, Holm-adjusted p over the keys, verdict on the adjusted p).

    ``keys`` must be testable (``testable_keys``); a ConfigError says which is not.
    """
    for key in keys:
        why = comparable(a, b, key)
        if why is not None:
            raise ConfigError(f"no paired test of {key}: {why}")
    av = {k: np.asarray(a.per_user[k], dtype=np.float64) for k in keys}
    bv = {k: np.asarray(b.per_user[k], dtype=np.float64) for k in keys}
    return paired_table(av, bv, list(keys), alpha=alpha)
