"""What the dashboard needs from the Spark engine without Spark: the command line, and the run's summary JSON.

``spark_command(config)`` is the exact command that runs a configuration with ``--engine spark``.
``write_summary``/``read_summary`` are the summary a Spark run writes with ``--summary-json F``; its format
is the configuration JSON (``reco_core.config``, so ``config.loads`` reads it as it is) with three more keys:

```json
{
  "reco_fusion_lab_config": 2,
  "protocol": {"dataset": "ml-100k", "split": "random", "test_frac": 0.2, "seed": 42, "...": 0},
  "members": [{"model": "als", "params": {}, "weight": 0.5}, {"model": "itemknn", "params": {}, "weight": 0.5}],
  "method": "wsum", "normaliser": "minmax", "k": 10, "top_n": 100, "method_params": {},
  "metrics": {"fusion": {"ndcg@10": 0.40, "...": 0}, "als": {"ndcg@10": 0.35}, "itemknn": {"ndcg@10": 0.39}},
  "reco_fusion_lab_spark_summary": 1,
  "run": {"engine": "spark", "master": "local[2]", "command": "fuse", "data": "100,000 rows read ...",
          "split": "random per-user holdout ...", "n_users": 943, "n_items": 1682, "n_evaluated": 943,
          "seconds": {"load": 3.1, "split": 4.2, "members": 6.0, "evaluate": 9.8, "summarise": 2.2},
          "members": ["als", "itemknn"], "created": "2026-12-03T12:00:00+00:00"}
}
```

``metrics`` has the shape of the dashboard's own export: "fusion" for the fused lists (absent for
``evaluate``, which fuses nothing), then one entry per member label. Members that train inside Spark
(spark-als, spark-itemknn) are not registered models, so the configuration part cannot list them; they are
in ``run.members`` and ``metrics``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reco_core import config as config_mod
from reco_core.config import ExperimentConfig, Protocol
from reco_core.errors import ConfigError, quote

SUMMARY_VERSION = 1
SUMMARY_KEY = "reco_fusion_lab_spark_summary"
FUSION_KEY = "fusion"


def spark_command(
    config: ExperimentConfig,
    *,
    command: str = "fuse",
    master: str = "local[2]",
    config_path: str | None = None,
    interactions: str | None = None,
    output_dir: str | None = None,
    summary_path: str | None = "spark-summary.json",
) -> str:
    """The exact ``python -m reco_core`` command that runs ``config`` with ``--engine spark``.

    With every member at its default parameters, everything is a flag, so the command stands alone. A member
    with its own parameters can only travel in a configuration file: then the command reads ``config_path``
    (default ``fusion-config.json``, the Fusion Lab's export) and the flags repeat nothing from it.
    ``interactions`` replaces the protocol's dataset with a path or URI Spark reads (the data at scale).
    """
    if config.rerank is not None and command == "fuse":
        raise ConfigError(
            f"re-ranking after fusion ({config.rerank.method}) runs on the local engine only: set the re-ranker to"
            " none for a command that runs on Spark"
        )
    if command not in ("evaluate", "fuse", "optimise"):
        raise ConfigError(f"command={command!r} is not valid: choose evaluate, fuse or optimise")
    args = ["python", "-m", "reco_core", command, "--engine", "spark", "--spark-master", master]
    needs_file = config_path is not None or any(m.params for m in config.members)
    if needs_file:
        args += ["--config", config_path or "fusion-config.json"]
    else:
        args += _protocol_flags(config.protocol)
        if config.members:
            args += ["--models", ",".join(m.model for m in config.members)]
        if command == "fuse" and config.members:
            args += ["--weights", ",".join(f"{w:g}" for w in config.weights)]
        if command != "evaluate":
            args += ["--method", config.method, "--norm", config.normaliser, "--top-n", str(config.fusion.top_n)]
            for name, value in config.fusion.params:
                args += ["--" + name.replace("_", "-"), _flag_value(value)]
        args += ["--k", str(config.k)]
    if interactions:
        args += ["--interactions", interactions]
    if output_dir:
        args += ["--output-dir", output_dir]
    if summary_path:
        args += ["--summary-json", summary_path]
    return shlex.join(args)


def _flag_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def _protocol_flags(p: Protocol) -> list[str]:
    default = Protocol()
    out: list[str] = []
    pairs = (
        ("--dataset", p.dataset, default.dataset),
        ("--data-dir", p.data_dir, default.data_dir),
        ("--threshold", p.threshold, default.threshold),
        ("--kcore", p.kcore, default.kcore),
        ("--split", p.split, default.split),
        ("--test-frac", p.test_frac, default.test_frac),
        ("--n-last", p.n_last, default.n_last),
        ("--seed", p.seed, default.seed),
    )
    # The seed and the dataset are always written: they are what a reader checks first.
    for flag, value, base in pairs:
        if value is not None and (value != base or flag in ("--dataset", "--seed")):
            out += [flag, _flag_value(value)]
    return out


def summary_dict(
    config: ExperimentConfig,
    table: Mapping[str, Mapping[str, float]],
    run: Mapping[str, Any],
) -> dict[str, Any]:
    """The summary as a dict: ``config``'s JSON, ``metrics`` from ``table`` (model -> metric -> value; the fused
    row is named "fused" or "fusion"), and ``run`` (engine, master, data, split, sizes, seconds, members)."""
    metrics: dict[str, dict[str, float]] = {}
    for model, values in table.items():
        key = FUSION_KEY if model in ("fused", FUSION_KEY) else str(model)
        metrics[key] = {str(k): float(v) for k, v in values.items()}
    info = {"engine": "spark", "created": datetime.now(UTC).isoformat(timespec="seconds"), **dict(run)}
    out = config.to_dict()
    out.update({"metrics": metrics, SUMMARY_KEY: SUMMARY_VERSION, "run": info})
    return out


def write_summary(
    path: str | Path, config: ExperimentConfig, table: Mapping[str, Mapping[str, float]], run: Mapping[str, Any]
) -> Path:
    """Write the summary JSON (format in the module docstring) to ``path``; returns the path."""
    target = Path(path)
    target.write_text(json.dumps(summary_dict(config, table, run), indent=2, default=_plain) + "\n")
    return target


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass(frozen=True)
class SparkSummary:
    """A Spark run's summary as read back: its configuration, metrics per model, and the run's facts."""

    config: ExperimentConfig
    metrics: dict[str, dict[str, float]]
    run: dict[str, Any]

    @property
    def fusion(self) -> dict[str, float]:
        """The fused lists' metrics (empty for an ``evaluate`` run)."""
        return self.metrics.get(FUSION_KEY, {})

    def label(self) -> str:
        """A short name for a list of runs: "spark fuse, 943 users, 2026-12-03T12:00:00+00:00"."""
        run = self.run
        return f"spark {run.get('command', 'run')}, {run.get('n_evaluated', '?')} users, {run.get('created', '')}"


def read_summary(source: str | bytes | Path) -> SparkSummary:
    """A summary JSON (text, bytes or a path) -> ``SparkSummary``; anything else is a one-line ConfigError."""
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"summary file {quote(str(path))} does not exist: give the --summary-json file")
        text: str | bytes = path.read_bytes()
    else:
        text = source
    data = config_mod.parse_json(text, "Spark summary")
    if data.get(SUMMARY_KEY) != SUMMARY_VERSION:
        raise ConfigError(
            f"this JSON is not a Spark run summary (no {SUMMARY_KEY!r}: {SUMMARY_VERSION}): write one with"
            " --engine spark --summary-json F"
        )
    cfg = config_mod.loads(text)
    raw = data.get("metrics")
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError("the Spark summary has no 'metrics' object of model -> {metric: value}: rewrite it")
    metrics = {str(m): {str(k): float(v) for k, v in vals.items()} for m, vals in raw.items()}
    run = data.get("run") if isinstance(data.get("run"), dict) else {}
    return SparkSummary(cfg, metrics, dict(run or {}))
