"""What each CLI subcommand does, kept apart from argument parsing so it can be tested directly.

Each command takes the parsed arguments and returns (table, extra lines) for the printer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reco_core import datasets, experiment, explain, fusion, search, splitting
from reco_core.data import Dataset
from reco_core.errors import ConfigError, FitError
from reco_core.experiment import FittedMembers, MemberSpec, Protocol
from reco_core.live import LiveResult, LiveSession
from reco_core.metrics import EvalContext, Evaluation, evaluate
from reco_core.models import Scorer
from reco_core.models.run_member import RunMember
from reco_core.ranking import Ranking
from reco_core.runs import read_run
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


def data_and_split(args: argparse.Namespace) -> tuple[Dataset, Split, list[str]]:
    """Dataset and split from --train/--test files, --interactions, or a named dataset; plus report lines."""
    dataset, split = _load_and_split(args)
    return dataset, split, _notes(dataset, split)


def _load_and_split(args: argparse.Namespace) -> tuple[Dataset, Split]:
    if bool(args.train) != bool(args.test):
        raise ConfigError("--train and --test go together: give both files, or neither")
    if args.train:
        return splitting.split_from_files(
            args.train, args.test, items=args.items, users=args.users, threshold=args.threshold
        )
    if args.interactions:
        dataset = datasets.load_files(
            args.interactions, items=args.items, users=args.users, threshold=args.threshold, kcore=args.kcore
        )
        return dataset, experiment.make_split(dataset, _protocol(args))
    protocol = _protocol(args)
    dataset = experiment.load_dataset(protocol)
    return dataset, experiment.make_split(dataset, protocol)


def _notes(dataset: Dataset, split: Split) -> list[str]:
    return [dataset.report.summary(), *([split.description] if split.description else [])]


def _fit(members: list[MemberSpec], split: Split, dataset: Dataset, seed: int) -> FittedMembers:
    fitted = experiment.fit_members(members, split, dataset, seed)
    if not fitted.models:
        raise FitError("no model could be fitted: " + "; ".join(f"{k}: {v}" for k, v in fitted.failed.items()))
    return fitted


def parse_ks(text: str) -> list[int]:
    try:
        ks = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--k {text!r} is not valid: give whole numbers such as 10 or 5,10,20") from None
    if not ks or min(ks) < 1:
        raise ConfigError(f"--k {text!r} is not valid: give whole numbers of at least 1")
    return sorted(set(ks))


def _ks(args: argparse.Namespace) -> list[int]:
    return parse_ks(args.k)


def _ctx(args: argparse.Namespace, split: Split, dataset: Dataset) -> EvalContext:
    return experiment.eval_context(split, dataset, with_text=not getattr(args, "no_text_metrics", False))


def _extra(
    notes: list[str], fitted: FittedMembers | None = None, evaluations: Iterable[Evaluation] = ()
) -> dict[str, Any]:
    extra: dict[str, Any] = {"data": " | ".join(notes)}
    # What the evaluations left out and why (a metric the data cannot support), each note once.
    metric_notes = list(dict.fromkeys(note for ev in evaluations for note in ev.notes))
    if metric_notes:
        extra["metrics"] = " | ".join(metric_notes)
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
    return experiment.evaluation_table(evals, with_ci=args.ci, seed=args.seed), _extra(notes, fitted, evals.values())


def cmd_evaluate_run(args: argparse.Namespace) -> Result:
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
    return experiment.evaluation_table({name: ev}, with_ci=args.ci, seed=args.seed), _extra(notes, evaluations=[ev])


def _weights(args: argparse.Namespace, names: list[str]) -> list[float]:
    if getattr(args, "weights", None) is None:
        return [1.0 / len(names)] * len(names)
    try:
        weights = [float(w) for w in str(args.weights).split(",")]
    except ValueError:
        raise ConfigError(f"--weights {args.weights!r} is not valid: give numbers such as 0.5,0.3,0.2") from None
    if len(weights) != len(names):
        raise ConfigError(
            f"--weights gives {len(weights)} numbers for {len(names)} models ({', '.join(names)}): give one each"
        )
    return weights


@dataclass(frozen=True)
class _Members:
    """What --models and --runs name, checked before any data is loaded or model fitted."""

    models: list[MemberSpec]
    run_files: list[str]


def _members(args: argparse.Namespace) -> _Members:
    # Names are checked before any fitting, so a typo costs nothing.
    fusion.check_method(args.method)
    fusion.check_normaliser(args.norm)
    run_files = [f.strip() for f in str(getattr(args, "runs", "") or "").split(",") if f.strip()]
    if not args.models.strip() and not run_files:
        raise ConfigError("no members given: name models with --models als,itemknn and/or run files with --runs")
    return _Members(experiment.parse_members(args.models) if args.models.strip() else [], run_files)


def _session(
    args: argparse.Namespace, members: _Members, dataset: Dataset, split: Split, part: str = "test"
) -> tuple[LiveSession, list[str]]:
    """Fit the members on ``split.train`` and open a live session on ``part``; plus report lines."""
    notes = _notes(dataset, split)
    models: dict[str, Scorer] = {}
    if members.models:
        fitted = _fit(members.models, split, dataset, args.seed)
        if fitted.failed:
            # A fusion with a member missing is a different fusion: say so rather than silently renormalise.
            raise FitError("; ".join(f"{k}: {v}" for k, v in fitted.failed.items()))
        models.update(fitted.models)
    for path in members.run_files:
        # Lists as deep as the live session's candidate depth; training items removed like our own.
        depth = min(100, split.train.n_items)
        ranking, report = read_run(path, split.train.users, split.train.items, depth, exclude=split.train.matrix)
        name = f"run:{Path(path).stem}"
        if name in models:
            raise ConfigError(f"two run files are both named {Path(path).stem!r}: rename one")
        models[name] = RunMember(ranking, name).fit(split.train)
        notes.append(f"{name}: {report.summary()}")
    return LiveSession(models, split, _ctx(args, split, dataset), part=part), notes


def _test_session(args: argparse.Namespace) -> tuple[LiveSession, Dataset, list[str]]:
    """The --models/--runs members fitted on the split's train, in a live session on test."""
    members = _members(args)
    dataset, split = _load_and_split(args)
    session, notes = _session(args, members, dataset, split)
    return session, dataset, notes


def _fusion_table(session: LiveSession, result: LiveResult, k: int) -> pd.DataFrame:
    evals = {name: session.member_evaluation(name, k) for name in session.members}
    evals["fused"] = result.evaluation
    return experiment.evaluation_table(evals)


def cmd_fuse(args: argparse.Namespace) -> Result:
    k = max(_ks(args))
    session, _, notes = _test_session(args)
    weights = _weights(args, list(session.members))
    result = session.update(weights, args.method, args.norm, k, args.rrf_k, seed=args.seed)
    extra = _extra(notes, evaluations=[result.evaluation])
    extra["fusion"] = f"{args.method} / {args.norm}, weights " + ", ".join(
        f"{n}={w:g}" for n, w in zip(session.members, weights, strict=True)
    )
    extra["versus best member"] = result.comparison_sentence()
    return _fusion_table(session, result, k), extra


def cmd_optimise(args: argparse.Namespace) -> Result:
    k = max(_ks(args))
    members = _members(args)
    # The search plan is checked before any fitting: a step that is too fine costs nothing.
    search.plan_points(len(members.models) + len(members.run_files), args.step, seed=args.seed)
    # One load and one split: validation is carved from the same split's train (members are fitted twice,
    # on train minus validation for the search and on the whole train for the report).
    dataset, split = _load_and_split(args)
    valid_split = experiment.validation_split(split, _protocol(args))
    valid_session, notes = _session(args, members, dataset, valid_split, part="valid")
    test_session, _ = _session(args, members, dataset, split)
    out = search.optimise(
        valid_session,
        test_session,
        metric=args.metric,
        floor=args.floor,
        step=args.step,
        method=args.method,
        normaliser=args.norm,
        rrf_k=args.rrf_k,
        seed=args.seed,
    )
    extra = _extra(notes)
    extra["search"] = out.message
    if out.weights is None or out.test is None:
        return out.search.table.head(10), extra
    extra["chosen weights (on validation)"] = ", ".join(f"{n}={w:.2f}" for n, w in out.weights.items())
    extra["on test, versus best member"] = out.test.comparison_sentence(args.metric if "@" in args.metric else None)
    return _fusion_table(test_session, out.test, k), extra


def cmd_explain(args: argparse.Namespace) -> Result:
    k = max(_ks(args))
    session, dataset, notes = _test_session(args)
    user_index = int(session.train.users.index_of([args.user], what="user")[0])
    rows = np.flatnonzero(session.users == user_index)
    if not len(rows):
        raise ConfigError(
            f"user {args.user!r} has no held-out items in this split, so it is not evaluated: pick another"
        )
    weights = _weights(args, list(session.members))
    result = session.update(weights, args.method, args.norm, k, args.rrf_k, seed=args.seed)
    table = explain.contributions(result.fusion, int(rows[0]))
    wide = table.pivot_table(index=["rank", "item"], columns="member", values="contribution", aggfunc="sum")
    wide = wide.reset_index()
    held_out = set(session.target.items_of(user_index).tolist())
    wide.insert(2, "title", dataset.catalog.title[wide["item"].to_numpy()])
    wide.insert(3, "hit", [int(i) in held_out for i in wide["item"]])
    wide["item"] = session.train.items.ids_of(wide["item"].to_numpy())
    extra = _extra(notes)
    extra["user"] = f"{args.user}: {session.train.user_counts()[user_index]} training items, {len(held_out)} held out"
    return wide.set_index("rank"), extra


COMMANDS: dict[str, Callable[[argparse.Namespace], Result]] = {
    "evaluate": cmd_evaluate,
    "evaluate-run": cmd_evaluate_run,
    "fuse": cmd_fuse,
    "optimise": cmd_optimise,
    "explain": cmd_explain,
}
