"""What each CLI subcommand does, kept apart from argument parsing so it can be tested directly.

Each command takes the parsed arguments and returns (table, extra lines) for the printer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from reco_core import datasets, experiment, splitting
from reco_core.data import Dataset
from reco_core.errors import ConfigError, FitError
from reco_core.experiment import FittedMembers, MemberSpec, Protocol
from reco_core.metrics import EvalContext, evaluate
from reco_core.ranking import Ranking
from reco_core.splitting import Split

Result = tuple[pd.DataFrame | None, dict[str, Any]]


def _protocol(args: argparse.Namespace) -> Protocol:
    return Protocol(
        dataset=args.dataset,
        data_dir=args.data_dir,
        threshold=args.threshold,
        kcore=args.kcore,
        split=args.split,
        test_frac=args.test_frac,
        n_last=args.n_last,
        seed=args.seed,
        valid_frac=getattr(args, "valid_frac", 0.1),
    )


def data_and_split(args: argparse.Namespace, validation: bool = False) -> tuple[Dataset, Split, list[str]]:
    """Dataset and split from --train/--test files, --interactions, or a named dataset; plus report lines."""
    protocol = _protocol(args)
    notes: list[str] = []
    if bool(args.train) != bool(args.test):
        raise ConfigError("--train and --test go together: give both files, or neither")
    if args.train:
        dataset, split = splitting.split_from_files(
            args.train, args.test, items=args.items, users=args.users, threshold=args.threshold
        )
        if validation:
            split = splitting.with_validation(split, valid_frac=protocol.valid_frac, seed=protocol.seed)
    else:
        if args.interactions:
            dataset = datasets.load_files(
                args.interactions, items=args.items, users=args.users, threshold=args.threshold, kcore=args.kcore
            )
        else:
            dataset = experiment.load_dataset(protocol)
        split = experiment.make_split(dataset, protocol, validation=validation)
    notes.append(dataset.report.summary())
    if split.description:
        notes.append(split.description)
    return dataset, split, notes


def _fit(members: list[MemberSpec], split: Split, dataset: Dataset, seed: int) -> FittedMembers:
    fitted = experiment.fit_members(members, split, dataset, seed)
    if not fitted.models:
        raise FitError("no model could be fitted: " + "; ".join(f"{k}: {v}" for k, v in fitted.failed.items()))
    return fitted


def _ks(args: argparse.Namespace) -> list[int]:
    from reco_core.__main__ import _parse_ks

    return _parse_ks(args.k)


def _ctx(args: argparse.Namespace, split: Split, dataset: Dataset) -> EvalContext:
    return experiment.eval_context(split, dataset, with_text=not getattr(args, "no_text_metrics", False))


def _extra(notes: list[str], fitted: FittedMembers | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"data": " | ".join(notes)}
    if fitted is not None:
        extra["fit seconds"] = {k: round(v, 3) for k, v in fitted.seconds.items()}
        if fitted.failed:
            extra["failed"] = fitted.failed
    return extra


def cmd_evaluate(args: argparse.Namespace) -> Result:
    ks = _ks(args)
    members = experiment.parse_members(args.models)
    dataset, split, notes = data_and_split(args)
    fitted = _fit(members, split, dataset, args.seed)
    ctx = _ctx(args, split, dataset)
    evals = {name: experiment.evaluate_scorer(model, split, ctx, ks) for name, model in fitted.models.items()}
    return experiment.evaluation_table(evals, with_ci=args.ci, seed=args.seed), _extra(notes, fitted)


def cmd_evaluate_run(args: argparse.Namespace) -> Result:
    from reco_core.runs import read_run

    ks = _ks(args)
    dataset, split, notes = data_and_split(args)
    # Training items are dropped from the run before the cut at k, as our own ranker excludes them,
    # so an external system is judged on the same footing. Users the run never lists score 0.
    ranking, report = read_run(args.run, split.train.users, split.train.items, max(ks), exclude=split.train.matrix)
    keep = np.isin(ranking.user_idx, split.eval_users())
    ranking = Ranking(ranking.user_idx[keep], ranking.item_idx[keep], ranking.score[keep])
    notes.append(report.summary())
    ev = evaluate(ranking, split.test, _ctx(args, split, dataset), ks=ks)
    name = str(args.run)
    return experiment.evaluation_table({name: ev}, with_ci=args.ci, seed=args.seed), _extra(notes)


COMMANDS: dict[str, Callable[[argparse.Namespace], Result]] = {
    "evaluate": cmd_evaluate,
    "evaluate-run": cmd_evaluate_run,
}
