"""``--engine spark`` for the CLI's evaluate, fuse and optimise: the same configuration, run by Spark.

The configuration comes from the same place as the local engine's (``cli_commands.experiment_config``: the
``--config`` file, then the flags). Members that train inside Spark (spark-als, spark-itemknn) are not
registered models, so they are taken out of ``--models`` before the configuration is built and put back in
their place in the order of members (and of ``--weights``).

Run files (``evaluate-run --run``, ``fuse``/``optimise --runs``) are read on the driver before Spark starts and
matched to the split inside Spark (``reco_core.spark.runs``); as locally, ``--runs`` members come after the
models, are named ``run:<file stem>``, and take their place in ``--weights``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reco_core import cli_commands, datasets, search
from reco_core.config import ExperimentConfig
from reco_core.data import ItemCatalog
from reco_core.errors import ConfigError
from reco_core.spark import members as mem
from reco_core.spark.runs import RunFile, read_run_file
from reco_core.spark.summary import write_summary

Result = tuple[pd.DataFrame | None, dict[str, Any]]


def _specs(
    args: argparse.Namespace, with_runs: bool = False
) -> tuple[ExperimentConfig, list[tuple[str, str, dict[str, Any]]]]:
    """The configuration (Spark-trained members left out) and every member in order as (label, model, params).

    ``with_runs``: run files are members too, so no model at all is allowed."""
    given = getattr(args, "models", None)
    names = [n.strip() for n in str(given).split(",") if n.strip()] if given is not None else None
    if names is not None:
        registered = [n for n in names if n not in mem.SPARK_MODELS]
        args = argparse.Namespace(**{**vars(args), "models": ",".join(registered)})
        if not registered:
            # experiment_config needs a name to parse: keep the configuration's members out of it instead.
            args.models = ""
    cfg = cli_commands.experiment_config(args)
    if cfg.rerank is not None:  # only fuse keeps it (cli_commands.RERANKING_COMMANDS)
        raise ConfigError(
            f"the configuration re-ranks the fused list ({cfg.rerank.method}), which the Spark engine does not do:"
            " add --rerank none to fuse without it, or run with --engine local"
        )
    by_model = {m.model: m for m in cfg.members}
    specs: list[tuple[str, str, dict[str, Any]]] = []
    for name in names if names is not None else [m.model for m in cfg.members]:
        if name in mem.SPARK_MODELS:
            specs.append((name, name, {}))
        else:
            m = by_model[name]
            specs.append((m.label, m.model, dict(m.params)))
    if not specs and not with_runs:
        raise ConfigError(
            "no members given: name them with --models pop,spark-als,itemknn, run files with --runs, or give a --config"
        )
    return cfg, specs


def _run_files(args: argparse.Namespace, labels: list[str]) -> list[RunFile]:
    """``--runs``, each read on the driver and named run:<stem> after the models (``labels``), as locally."""
    out: list[RunFile] = []
    for path in cli_commands.run_paths(args):
        taken = [*labels, *(r.label for r in out)]
        out.append(read_run_file(path, label=cli_commands.run_member_name(path, taken)))
    return out


def _run_notes(extra: dict[str, Any], result: Any, named: bool) -> None:
    """The run reports after the data line, as the local commands write them (``run:<stem>: ...`` for members)."""
    lines = [f"run:{r.name}: {r.summary()}" if named else r.summary() for r in result.run_reports]
    if lines:
        extra["data"] = " | ".join([extra["data"], *lines])


def _no_ci(args: argparse.Namespace) -> None:
    """evaluate and evaluate-run: the local engine adds bootstrap intervals with --ci; Spark refuses rather than
    print a table without them (fuse and optimise ignore --ci in both engines)."""
    if getattr(args, "ci", False):
        raise ConfigError(
            "--ci is not available with --engine spark (the bootstrap needs every user's values on one machine):"
            " drop it, or use --engine local"
        )


def _data(args: argparse.Namespace, cfg: ExperimentConfig, spark: Any) -> tuple[Any, ItemCatalog | None, Any]:
    """(interactions source, catalogue, supplied split or None) from --interactions, --train/--test or --dataset."""
    from reco_core.spark.data import item_vocabulary, read_interactions, split_from_frames

    if bool(args.train) != bool(args.test):
        raise ConfigError("--train and --test go together: give both files, or neither")
    catalog = None
    if args.train:
        train = read_interactions(spark, args.train, threshold=cfg.protocol.threshold)
        test = read_interactions(spark, args.test, threshold=cfg.protocol.threshold)
        items = item_vocabulary(train, [r[0] for r in test.frame.select("item").distinct().collect()])
        split, _ = split_from_frames(spark, train, test, items)
        return None, None, split
    if args.interactions:
        if cfg.protocol.kcore > 1:
            raise ConfigError(
                f"--kcore {cfg.protocol.kcore} with --engine spark and --interactions is not available yet: filter"
                " the data before, or use --kcore 0"
            )
        data = read_interactions(spark, args.interactions, threshold=cfg.protocol.threshold)
        if args.items:
            # The catalogue is item-sized: read on the driver by the local engine's own items reader.
            frame, notes = datasets.read_items_frame(args.items, None)
            data.report.notes.extend(notes)
            items = item_vocabulary(data, list(frame["item"].astype(str)))
            catalog = datasets.catalog_from_items(items, frame, data.report)
        return data, catalog, None
    # A named dataset (MovieLens, synthetic): loaded by the local loaders on the driver, handed to Spark as a
    # DataFrame. At scale, give --interactions with a path Spark reads instead.
    ds = datasets.load(cfg.protocol.dataset, data_dir=cfg.protocol.data_dir, threshold=None, kcore=cfg.protocol.kcore)
    frame = ds.interactions.to_frame()
    keep = [c for c in ("user", "item", "value", "timestamp") if c in frame.columns]
    return spark.createDataFrame(frame[keep]), ds.catalog, None


def _session(args: argparse.Namespace) -> Any:
    from reco_core.spark.session import spark_session

    return spark_session(getattr(args, "spark_master", None) or "local[2]")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    mb = getattr(args, "broadcast_mb", None)
    out: dict[str, Any] = {"output_dir": getattr(args, "output_dir", None)}
    if mb is not None:
        if not np.isfinite(mb) or mb <= 0:
            raise ConfigError(f"--broadcast-mb {mb:g} is not valid: give a positive number of MB, e.g. 2000")
        out["broadcast_limit"] = int(mb * 1e6)
    return out


def _extra(result: Any, master: str) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "engine": f"spark ({master})",
        "data": " | ".join(x for x in (result.report.summary(), result.split_description) if x),
        "stage seconds": {k: round(v, 1) for k, v in result.seconds.items()},
    }
    if result.notes:
        extra["notes"] = " | ".join(result.notes)
    return extra


def _summary(args: argparse.Namespace, cfg: ExperimentConfig, result: Any, extra: dict[str, Any]) -> None:
    path = getattr(args, "summary_json", None)
    if not path:
        return
    table = {str(m): {k: float(v) for k, v in row.items() if pd.notna(v)} for m, row in result.table.iterrows()}
    run = {
        "command": args.command,
        "master": getattr(args, "spark_master", "local[2]"),
        "data": extra["data"],
        "n_users": result.n_users,
        "n_items": result.n_items,
        "n_evaluated": result.n_evaluated,
        "seconds": result.seconds,
        "members": [m for m in result.table.index if m != "fused"],
    }
    write_summary(path, cfg, table, run)
    extra["summary"] = str(Path(path))


def _unfused(
    args: argparse.Namespace,
    cfg: ExperimentConfig,
    members: list[tuple[str, str, dict[str, Any]]],
    runs: list[Any],
    why_no_rerank: str,
) -> Result:
    """evaluate and evaluate-run: each member (or the run, judged as given) alone, nothing fused."""
    from reco_core.spark.engine import run

    spark = _session(args)
    source, catalog, split = _data(args, cfg, spark)
    result = run(
        spark,
        cfg,
        source,
        members=members,
        catalog=catalog,
        split=split,
        ks=cli_commands._ks(args, cfg),
        fuse_members=False,
        runs=runs,
        runs_as_given=bool(runs),
        **_options(args),
    )
    extra = _extra(result, args.spark_master)
    if runs:
        _run_notes(extra, result, named=False)
    cli_commands.note_unapplied_rerank(extra, args, cfg, why_no_rerank)
    _summary(args, cfg, result, extra)
    return result.table, extra


def cmd_evaluate(args: argparse.Namespace) -> Result:
    _no_ci(args)
    cfg, specs = _specs(args)
    return _unfused(args, cfg, specs, [], "evaluate scores each member alone")


def cmd_fuse(args: argparse.Namespace) -> Result:
    from reco_core.spark.engine import run

    cfg, specs = _specs(args, with_runs=bool(getattr(args, "runs", "")))
    runs = _run_files(args, [label for label, _, _ in specs])
    names = [label for label, _, _ in specs] + [r.label for r in runs]
    # The local CLI's reading of --weights (one per member, models then runs, the configuration's, or equal).
    weights = cli_commands._weights(args, names, cfg)
    spark = _session(args)
    source, catalog, split = _data(args, cfg, spark)
    result = run(
        spark,
        cfg,
        source,
        members=specs,
        catalog=catalog,
        split=split,
        weights=weights,
        ks=[cfg.k],
        runs=runs,
        **_options(args),
    )
    extra = _extra(result, args.spark_master)
    _run_notes(extra, result, named=True)
    extra["fusion"] = cli_commands._describe_fusion(cfg, names, weights)
    _summary(args, cfg, result, extra)
    return result.table, extra


def cmd_optimise(args: argparse.Namespace) -> Result:
    """Every weight point of the search is one more fused list in the same pass over validation blocks; the
    best point is chosen, and worded, by the local search's own ``search.pick_best``, then run on test."""
    from reco_core.spark.data import SparkData, item_vocabulary, read_interactions, split_frame
    from reco_core.spark.engine import Fusion, run

    cfg, specs = _specs(args, with_runs=bool(getattr(args, "runs", "")))
    runs = _run_files(args, [label for label, _, _ in specs])
    names = [label for label, _, _ in specs] + [r.label for r in runs]
    # The local search's checks, before anything is read: the plan, the floor, and both metrics at one k.
    points, how = search.plan_points(len(names), args.step, seed=cfg.protocol.seed)
    metric = args.metric
    bound, k = search.check_objective(metric, args.floor)
    spark = _session(args)
    source, catalog, supplied = _data(args, cfg, spark)
    if supplied is not None:
        raise ConfigError("optimise with --engine spark needs a split it makes: give --interactions or --dataset")
    data = (
        source if isinstance(source, SparkData) else read_interactions(spark, source, threshold=cfg.protocol.threshold)
    )
    items = item_vocabulary(data, None if catalog is None else list(catalog.items.ids))
    p = cfg.protocol
    valid_split = split_frame(spark, data, items, p.split, p.test_frac, p.seed, p.valid_frac, p.n_last)  # kept
    params = tuple(sorted(cfg.fusion.param_map.items()))
    fusions = [
        Fusion(f"w{i}", np.asarray(w, dtype=np.float64), cfg.method, cfg.normaliser, params)
        for i, w in enumerate(points)
    ]
    valid = run(
        spark,
        cfg,
        load_report=data.report,
        members=specs,
        catalog=catalog,
        split=valid_split,
        fusions=fusions,
        part="valid",
        ks=[k],
        runs=runs,
        **_options(args),
    )
    search.check_metric_keys(valid.table.columns, metric, bound)
    table = pd.DataFrame(
        [
            {
                **{f"w:{n}": float(x) for n, x in zip(names, f.weights, strict=True)},
                **{str(key): float(v) for key, v in valid.table.loc[f.label].items()},
            }
            for f in fusions
        ]
    )
    picked = search.pick_best(table, names, metric, bound, how)
    extra: dict[str, Any] = {"search": picked.message}
    if picked.best_weights is None:
        return picked.table.head(10), extra
    weights = [picked.best_weights[n] for n in names]
    # The test run refits the members on the whole training part (train + valid), as the local engine does.
    test_split = replace(
        valid_split,
        rows=valid_split.rows.replace("valid", "train", subset=["part"]),
        description=valid_split.description.split("; validation")[0],
    )
    result = run(
        spark,
        cfg,
        load_report=data.report,
        members=specs,
        catalog=catalog,
        split=test_split,
        weights=weights,
        ks=sorted({cfg.k, k}),
        runs=runs,
        **_options(args),
    )
    # The local optimise's sentence; the best member is the one with the highest ndcg@k on test, as
    # LiveSession.best_member picks it (the local paired comparison needs per-user values on one machine).
    member_ndcg = [result.value(n, f"ndcg@{k}") for n in names]
    best = names[int(np.argmax(member_ndcg))]
    extra["search"] = (
        f"chosen on validation: {picked.message}. On test: fused {metric} = {result.value('fused', metric):.4f}"
        f" vs {best} {result.value(best, metric):.4f}"
    )
    extra.update(_extra(result, args.spark_master))
    # As locally, the run reports are those of the validation read (train minus validation excluded).
    _run_notes(extra, valid, named=True)
    cli_commands.note_unapplied_rerank(extra, args, cfg, "the search weighs the fused lists")
    extra["chosen weights (on validation)"] = ", ".join(f"{n}={w:.2f}" for n, w in picked.best_weights.items())
    _summary(
        args, cfg.with_weights(weights[: len(cfg.members)]) if len(cfg.members) == len(specs) else cfg, result, extra
    )
    return result.table, extra


def cmd_evaluate_run(args: argparse.Namespace) -> Result:
    """The run's own top-k (training items dropped before the cut, as locally), judged by the engine's blocks."""
    _no_ci(args)
    cfg = cli_commands.experiment_config(args)
    run_file = read_run_file(args.run, label=str(args.run))  # the local table's row: the path as given
    return _unfused(args, cfg, [], [run_file], "evaluate-run scores the run as given")


COMMANDS = {"evaluate": cmd_evaluate, "fuse": cmd_fuse, "optimise": cmd_optimise, "evaluate-run": cmd_evaluate_run}
