"""What each CLI subcommand does, kept apart from argument parsing so it can be tested directly.

Each command takes the parsed arguments and returns (table, extra lines) for the printer.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reco_core import config, datasets, experiment, explain, fusion, search, splitting, stats
from reco_core.checks import check_whole
from reco_core.config import ExperimentConfig, RerankSpec
from reco_core.data import Dataset
from reco_core.errors import ConfigError, FitError, quote
from reco_core.experiment import FittedMembers, MemberSpec
from reco_core.live import DEFAULT_MAX_BYTES, LiveResult, LiveSession, check_session_size
from reco_core.metrics import EvalContext, Evaluation, evaluate
from reco_core.models import Scorer
from reco_core.models.run_member import RunMember
from reco_core.ranking import Ranking
from reco_core.runs import read_run
from reco_core.splitting import Split

Result = tuple[pd.DataFrame | None, dict[str, Any]]


# --models when neither the flag nor a --config names members (evaluate only; fusion commands need members).
DEFAULT_EVALUATE_MODELS = "pop,itemknn,als,ease"
# Protocol field <- its flag's dest; a flag left out (None) keeps the --config file's value or the default.
_PROTOCOL_FLAGS = ("dataset", "data_dir", "threshold", "kcore", "split", "test_frac", "n_last", "seed", "valid_frac")


RERANKING_COMMANDS = frozenset({"fuse"})
"""The commands that apply a configuration's re-ranker; the others say so when the file has one."""


def experiment_config(args: argparse.Namespace, keep_rerank: bool | None = None) -> ExperimentConfig:
    """The configuration a command line describes: the ``--config`` file (or the defaults), then every flag
    given beside it, which overrides that field.

    ``--models`` replaces the members: a model the file also has keeps the file's parameters, and the
    weights are the file's when every named model is in it, else equal. A method parameter flag
    (``--rrf-k``) must belong to the chosen method. The re-ranker (the file's, with the ``--rerank`` flags over
    it) is attached last, so a flag that changes k or the depth is read before the two are checked together;
    it is kept for the commands that apply it (``RERANKING_COMMANDS``, or ``keep_rerank``) and left out for the
    others, which report that they did not apply it (``unapplied_rerank``).
    """
    from_file = bool(getattr(args, "config", None))
    base = config.load(args.config) if from_file else ExperimentConfig()
    given = {f: getattr(args, f) for f in _PROTOCOL_FLAGS if getattr(args, f, None) is not None}
    protocol = replace(base.protocol, **given)
    if protocol.dataset.startswith("upload:") and not (args.interactions or args.train):
        raise ConfigError(
            "this configuration uses data uploaded to the dashboard: give the same files with --interactions"
            " (and --items) or --train/--test"
        )
    members, weights = base.members, base.weights
    models_flag = getattr(args, "models", None)
    if models_flag is None and not from_file and args.command == "evaluate":
        models_flag = DEFAULT_EVALUATE_MODELS
    if models_flag is not None:
        in_file = {m.model: (m, w) for m, w in zip(base.members, base.weights, strict=True)}
        named = experiment.parse_members(models_flag) if models_flag.strip() else []
        members = tuple(in_file.get(m.model, (m, 1.0))[0] for m in named)
        all_known = all(m.model in in_file for m in named)
        weights = tuple(in_file[m.model][1] if all_known else 1.0 for m in named)
    cfg = ExperimentConfig(protocol, members, weights, base.fusion)
    changes: dict[str, Any] = {}
    for flag, field_name in (("method", "method"), ("norm", "normaliser"), ("top_n", "top_n")):
        if getattr(args, flag, None) is not None:
            changes[field_name] = getattr(args, flag)
    if getattr(args, "k", None) is not None:
        changes["k"] = max(parse_ks(args.k))
    if changes:
        cfg = cfg.with_fusion(**changes)
    flags = {
        n.removeprefix("method_param_"): v
        for n, v in vars(args).items()
        if n.startswith("method_param_") and v is not None
    }
    if flags:
        declared = {ps.name for ps in fusion.check_method(cfg.method).params}
        stray = sorted(set(flags) - declared)
        if stray:
            raise ConfigError(
                f"--{stray[0].replace('_', '-')} is not a parameter of method {cfg.method!r}: drop it, or choose"
                " a method that takes it"
            )
        cfg = cfg.with_fusion(params=tuple({**cfg.fusion.param_map, **flags}.items()))
    rerank = _rerank_from_flags(args, base.rerank)
    keep = args.command in RERANKING_COMMANDS if keep_rerank is None else keep_rerank
    return replace(cfg, rerank=rerank) if keep else cfg


_RERANK_OPTIONS = {"lam": "--rerank-lambda", "similarity": "--rerank-similarity", "candidates": "--rerank-candidates"}


def _rerank_from_flags(args: argparse.Namespace, base: RerankSpec | None) -> RerankSpec | None:
    """The file's re-ranker (``base``) with the --rerank flags over it, field by field.

    ``--rerank none`` removes it; ``--rerank X`` with another re-ranker than the file's starts from X's defaults.
    An option that would have no effect (without a re-ranker, beside ``none``, MMR's similarity for another
    re-ranker) is refused rather than ignored."""
    name = getattr(args, "rerank", None)
    flags: dict[str, Any] = {
        "lam": getattr(args, "rerank_lambda", None),
        "similarity": getattr(args, "rerank_similarity", None),
        "candidates": getattr(args, "rerank_candidates", None),
    }
    given: dict[str, Any] = {key: value for key, value in flags.items() if value is not None}
    first = _RERANK_OPTIONS[next(iter(given))] if given else ""
    if name == "none":
        if given:
            raise ConfigError(f"{first} has no effect with --rerank none: drop one of them")
        return None
    if name is None and base is None:
        if given:
            raise ConfigError(f"{first} needs a re-ranker: add --rerank mmr|calibrated|popularity")
        return None
    if name is not None and (base is None or name != base.method):
        base = RerankSpec(str(name))
    assert base is not None
    if "similarity" in given and base.method != "mmr":
        raise ConfigError(f"--rerank-similarity is MMR's option, not {base.method}'s: drop it, or use --rerank mmr")
    return replace(base, **given) if given else base


def unapplied_rerank(args: argparse.Namespace, cfg: ExperimentConfig) -> str | None:
    """The re-ranker a command was given but does not apply (its name), or None: the configuration's own when
    the command keeps it but does something else with it (learned fusion), else the ``--config`` file's for a
    command outside ``RERANKING_COMMANDS``."""
    if cfg.rerank is not None:
        return cfg.rerank.method
    if getattr(args, "config", None) and args.command not in RERANKING_COMMANDS:
        file_rerank = config.load(args.config).rerank
        return file_rerank.method if file_rerank is not None else None
    return None


def dump_config(args: argparse.Namespace) -> str:
    """``--dump-config``: the JSON of the configuration this command line describes (nothing is fitted)."""
    cfg = experiment_config(args, keep_rerank=True)  # the file a command line describes keeps its re-ranker
    if getattr(args, "weights", None) is not None:
        cfg = cfg.with_weights(_weights(args, list(cfg.labels), cfg))
    return config.dumps(cfg)


def _load_and_split(args: argparse.Namespace, cfg: ExperimentConfig) -> tuple[Dataset, Split]:
    """Dataset and split from --train/--test files, --interactions, or the protocol's named dataset."""
    protocol = cfg.protocol
    if bool(args.train) != bool(args.test):
        raise ConfigError("--train and --test go together: give both files, or neither")
    limit = _max_decoded_bytes(args)
    if args.train:
        return splitting.split_from_files(
            args.train,
            args.test,
            items=args.items,
            users=args.users,
            threshold=protocol.threshold,
            max_decoded_bytes=limit,
        )
    if args.interactions:
        dataset = datasets.load_files(
            args.interactions,
            items=args.items,
            users=args.users,
            threshold=protocol.threshold,
            kcore=protocol.kcore,
            max_decoded_bytes=limit,
        )
        return dataset, experiment.make_split(dataset, protocol)
    dataset = experiment.load_dataset(protocol)
    return dataset, experiment.make_split(dataset, protocol)


def _max_decoded_bytes(args: argparse.Namespace) -> int:
    """``--max-decoded-mb`` in bytes (default ``datasets.MAX_DECODED_BYTES``, 2,000 MB)."""
    mb = getattr(args, "max_decoded_mb", None)
    if mb is None:
        return datasets.MAX_DECODED_BYTES
    if not math.isfinite(mb) or mb <= 0:
        raise ConfigError(f"--max-decoded-mb {mb:g} is not valid: give a positive number of MB, e.g. 2000")
    return max(1, int(mb * 1e6))


def _notes(dataset: Dataset, split: Split) -> list[str]:
    return [dataset.report.summary(), *([split.description] if split.description else [])]


def _fit(members: Sequence[MemberSpec], split: Split, dataset: Dataset, seed: int) -> FittedMembers:
    fitted = experiment.fit_members(members, split, dataset, seed)
    if not fitted.models:
        raise FitError("no model could be fitted: " + "; ".join(f"{k}: {v}" for k, v in fitted.failed.items()))
    return fitted


def parse_ks(text: str) -> list[int]:
    try:
        ks = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--k {quote(text)} is not valid: give whole numbers such as 10 or 5,10,20") from None
    if not ks or min(ks) < 1:
        raise ConfigError(f"--k {quote(text)} is not valid: give whole numbers of at least 1")
    return sorted(set(ks))


def _ks(args: argparse.Namespace, cfg: ExperimentConfig) -> list[int]:
    """Every --k given (evaluate reports several), or the configuration's k."""
    return parse_ks(args.k) if getattr(args, "k", None) is not None else [cfg.k]


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


def note_unapplied_rerank(
    extra: dict[str, Any], args: argparse.Namespace, cfg: ExperimentConfig, what: str
) -> dict[str, Any]:
    """Say so when the configuration carries a re-ranker that this command does not apply (only fuse does)."""
    name = unapplied_rerank(args, cfg)
    if name is not None:
        extra["re-ranking"] = f"the configuration's re-ranker ({name}) is not applied: {what}"
    return extra


def cmd_evaluate(args: argparse.Namespace) -> Result:
    cfg = experiment_config(args)
    if not cfg.members:
        raise ConfigError("no models to evaluate: name them with --models pop,itemknn or give a --config")
    ks = _ks(args, cfg)
    dataset, split = _load_and_split(args, cfg)
    fitted = _fit(cfg.members, split, dataset, cfg.protocol.seed)
    ctx = _ctx(args, split, dataset)
    evals = {name: experiment.evaluate_scorer(model, split, ctx, ks) for name, model in fitted.models.items()}
    table = experiment.evaluation_table(evals, with_ci=args.ci, seed=cfg.protocol.seed)
    extra = _extra(_notes(dataset, split), fitted, evals.values())
    return table, note_unapplied_rerank(extra, args, cfg, "evaluate scores each member alone; fuse applies it")


def cmd_evaluate_run(args: argparse.Namespace) -> Result:
    cfg = experiment_config(args)
    ks = _ks(args, cfg)
    dataset, split = _load_and_split(args, cfg)
    notes = _notes(dataset, split)
    # Training items are dropped from the run before the cut at k, as our own ranker excludes them,
    # so an external system is judged on the same footing. Users the run never lists score 0.
    ranking, report = read_run(args.run, split.train.users, split.train.items, max(ks), exclude=split.train.matrix)
    keep = np.isin(ranking.user_idx, split.eval_users())
    ranking = Ranking(ranking.user_idx[keep], ranking.item_idx[keep], ranking.score[keep])
    notes.append(report.summary())
    ev = evaluate(ranking, split.test, _ctx(args, split, dataset), ks=ks)
    name = str(args.run)
    table = experiment.evaluation_table({name: ev}, with_ci=args.ci, seed=cfg.protocol.seed)
    return table, note_unapplied_rerank(
        _extra(notes, evaluations=[ev]), args, cfg, "evaluate-run scores the run as given"
    )


def _weights(args: argparse.Namespace, names: list[str], cfg: ExperimentConfig) -> list[float]:
    """--weights for every member (models then runs); without it the configuration's, runs getting equal shares."""
    if getattr(args, "weights", None) is None:
        if len(names) == len(cfg.weights) and any(w > 0 for w in cfg.weights):
            return list(cfg.weights)
        return [1.0 / len(names)] * len(names)
    try:
        weights = [float(w) for w in str(args.weights).split(",")]
    except ValueError:
        raise ConfigError(f"--weights {quote(args.weights)} is not valid: give numbers such as 0.5,0.3,0.2") from None
    if len(weights) != len(names):
        raise ConfigError(
            f"--weights gives {len(weights)} numbers for {len(names)} models ({', '.join(names)}): give one each"
        )
    return weights


@dataclass(frozen=True)
class _Members:
    """What --models (or the configuration) and --runs name, checked before any data is loaded or model fitted."""

    models: tuple[MemberSpec, ...]
    run_files: list[str]


def run_paths(args: argparse.Namespace) -> list[str]:
    """The run files ``--runs`` names, in order."""
    return [f.strip() for f in str(getattr(args, "runs", "") or "").split(",") if f.strip()]


def run_member_name(path: str, taken: Collection[str]) -> str:
    """A run file's member name, ``run:<file stem>`` (both engines); refused when a member already has it."""
    name = f"run:{Path(path).stem}"
    if name in taken:
        raise ConfigError(f"two run files are both named {quote(Path(path).stem)}: rename one")
    return name


def _members(args: argparse.Namespace, cfg: ExperimentConfig) -> _Members:
    run_files = run_paths(args)
    if not cfg.members and not run_files:
        raise ConfigError(
            "no members given: name models with --models als,itemknn, run files with --runs, or give a --config"
        )
    return _Members(cfg.members, run_files)


def _session(
    args: argparse.Namespace,
    cfg: ExperimentConfig,
    members: _Members,
    dataset: Dataset,
    split: Split,
    part: str = "test",
    max_bytes: int = DEFAULT_MAX_BYTES,
    fitted_out: dict[str, Scorer] | None = None,
) -> tuple[LiveSession, list[str]]:
    """Fit the members on ``split.train`` and open a live session on ``part``; plus report lines.

    ``fitted_out``, when given, receives the fitted models (learned fusion scores candidates with them).

    The session's memory is checked before anything is fitted (``live.check_session_size``), so a catalogue
    too wide for a whole-matrix session is refused at once, with the figure and the fixes.
    """
    notes = _notes(dataset, split)
    n_members = len(members.models) + len(members.run_files)
    check_session_size(n_members, len(split.eval_users(part)), split.train.n_items, cfg.fusion.top_n, max_bytes)
    models: dict[str, Scorer] = {}
    if members.models:
        fitted = _fit(members.models, split, dataset, cfg.protocol.seed)
        if fitted.failed:
            # A fusion with a member missing is a different fusion: say so rather than silently renormalise.
            raise FitError("; ".join(f"{k}: {v}" for k, v in fitted.failed.items()))
        models.update(fitted.models)
    for path in members.run_files:
        # Lists as deep as the live session's candidate depth; training items removed like our own.
        depth = min(cfg.fusion.top_n, split.train.n_items)
        ranking, report = read_run(path, split.train.users, split.train.items, depth, exclude=split.train.matrix)
        name = run_member_name(path, models)
        models[name] = RunMember(ranking, name).fit(split.train)
        notes.append(f"{name}: {report.summary()}")
    ctx = _ctx(args, split, dataset)
    session = LiveSession(models, split, ctx, part=part, top_n=cfg.fusion.top_n, max_bytes=max_bytes)
    if fitted_out is not None:
        fitted_out.update(models)
    return session, notes


def _test_session(args: argparse.Namespace) -> tuple[ExperimentConfig, LiveSession, Dataset, list[str]]:
    """The configuration, and its members (plus --runs) fitted on the split's train in a live session on test."""
    cfg = experiment_config(args)
    members = _members(args, cfg)
    dataset, split = _load_and_split(args, cfg)
    session, notes = _session(args, cfg, members, dataset, split)
    return cfg, session, dataset, notes


def _fusion_table(session: LiveSession, result: LiveResult, k: int) -> pd.DataFrame:
    evals = {name: session.member_evaluation(name, k) for name in session.members}
    evals["fused"] = result.evaluation
    return experiment.evaluation_table(evals)


def _describe_fusion(cfg: ExperimentConfig, names: Sequence[str], weights: Sequence[float]) -> str:
    params = "".join(f", {n} {v:g}" for n, v in cfg.fusion.params)
    return f"{cfg.method} / {cfg.normaliser}{params}, weights " + ", ".join(
        f"{n}={w:g}" for n, w in zip(names, weights, strict=True)
    )


def cmd_fuse(args: argparse.Namespace) -> Result:
    if getattr(args, "method", None) == LEARNED:
        return cmd_fuse_learned(args)
    cfg, session, _, notes = _test_session(args)
    weights = _weights(args, list(session.members), cfg)
    result = session.apply(weights, cfg.fusion)
    extra = _extra(notes, evaluations=[result.evaluation])
    extra["fusion"] = _describe_fusion(cfg, list(session.members), weights)
    extra["versus best member"] = result.comparison_sentence()
    table = _fusion_table(session, result, cfg.k)
    if cfg.rerank is not None:
        table, lines = _rerank_report(cfg, cfg.rerank, session, weights, result, table)
        extra.update(lines)
    return table, extra


# ------------------------------------------------------------------------------- re-ranking after fusion

# Per-user metrics the re-ranking report compares, fused against re-ranked, Holm-corrected together.
RERANK_REPORT_METRICS = ("ndcg", "recall", "ild_genre", "ild_text", "novelty", "miscalibration", "long_tail_share")


def _rerank_report(
    cfg: ExperimentConfig,
    spec: RerankSpec,
    session: LiveSession,
    weights: Sequence[float],
    result: LiveResult,
    table: pd.DataFrame,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The fused top-N re-ranked to the top-k (``LiveSession.apply`` with the re-ranker): a table row, how far
    the lists moved, and the paired tests of re-ranked against fused."""
    from reco_core.stats import paired_table

    reranked = session.apply(weights, cfg.fusion, spec)
    ev = reranked.evaluation
    row = experiment.evaluation_table({f"fused + {spec.method}": ev})
    table = pd.concat([table, row.reindex(columns=table.columns)])
    moved = session.movement(reranked)
    keys = [f"{m}@{cfg.k}" for m in RERANK_REPORT_METRICS if f"{m}@{cfg.k}" in ev.per_user]
    paired = paired_table(result.evaluation.per_user, ev.per_user, keys, seed=cfg.protocol.seed)
    lines: dict[str, Any] = {
        "re-ranking": f"{spec.describe(reranked.fusion.ranking.k)}, to the top-{cfg.k}",
        "re-ranked list moved": "; ".join(
            f"vs {who.removesuffix(' list')}: {r['slots changed']:.1%} of slots changed, RBO {r['RBO']:.3f}"
            for who, r in moved.iterrows()
        ),
        f"re-ranked vs fused (paired, p Holm-corrected over {len(keys)} metrics)": "; ".join(
            f"{r['metric']} {r['B - A']:+.4f} (p {stats.p_words(r['p (Holm)'])}: {r['verdict']})"
            for r in paired.to_dict("records")
        ),
    }
    return table, lines


# ---------------------------------------------------------------------------------------- learned fusion

LEARNED = "learned"
"""``fuse --method learned``: not a registry method (it is trained, not configured), handled here."""


def _progress_line(fraction: float, text: str) -> None:
    print(f"[{fraction:4.0%}] {text}", file=sys.stderr, flush=True)


@dataclass
class _TwoSessions:
    """Members fitted twice, as optimise does: on train minus validation (search) and on train (report)."""

    dataset: Dataset
    valid: LiveSession
    test: LiveSession
    valid_models: dict[str, Scorer]
    test_models: dict[str, Scorer]
    notes: list[str]


def _two_sessions(args: argparse.Namespace, cfg: ExperimentConfig, members: _Members, top_n: int) -> _TwoSessions:
    if members.run_files:
        raise ConfigError("--runs cannot be used here: a run file cannot be refitted on train minus validation")
    dataset, split = _load_and_split(args, cfg)
    valid_split = experiment.validation_split(split, cfg.protocol)
    half = DEFAULT_MAX_BYTES // 2
    cfg = cfg.with_fusion(top_n=max(cfg.fusion.top_n, top_n))
    fv: dict[str, Scorer] = {}
    ft: dict[str, Scorer] = {}
    valid, notes = _session(args, cfg, members, dataset, valid_split, part="valid", max_bytes=half, fitted_out=fv)
    test, _ = _session(args, cfg, members, dataset, split, max_bytes=half, fitted_out=ft)
    return _TwoSessions(dataset, valid, test, fv, ft, notes)


def cmd_fuse_learned(args: argparse.Namespace) -> Result:
    """Learned fusion (reco_core.learned): trained on validation, reported once on test."""
    from reco_core.learned import DEFAULT_TOP_N, run_learned

    learned_args = argparse.Namespace(**{**vars(args), "method": None})
    cfg = experiment_config(learned_args)
    members = _members(args, cfg)
    top_n = check_whole(getattr(args, "learned_candidates", None) or DEFAULT_TOP_N, "--learned-candidates")
    two = _two_sessions(args, cfg, members, top_n)
    if getattr(args, "learned_candidates", None) is None:
        top_n = min(top_n, two.valid.top_n)  # a catalogue smaller than the default list length
    # Fit on validation, search weights there for the comparison, report once on test with Holm's correction over
    # the two comparisons: the same call as the dashboard's Learned fusion tab, so both give the same p-values.
    run = run_learned(
        two.valid,
        two.test,
        two.valid_models,
        two.test_models,
        two.dataset.catalog.year,
        top_n,
        cfg.k,
        seed=cfg.protocol.seed,
        progress=_progress_line,
    )
    model = run.model
    evals = {name: two.test.member_evaluation(name, cfg.k) for name in two.test.members}
    evals[LEARNED] = run.evaluation
    table = experiment.evaluation_table(evals)
    extra = note_unapplied_rerank(
        _extra(two.notes, evaluations=[run.evaluation]), args, cfg, "learned fusion ranks the candidates itself"
    )
    extra["learned fusion"] = (
        f"LightGBM LambdaRank over the members' top-{top_n} union, {model.best_iteration} trees (early-stopped on"
        f" {model.stop_users} validation users, trained on {model.train_users}), boosted from {model.anchor}"
    )
    extra.update(run.sentences())
    imp = model.importances().head(6)
    extra["feature importances (gain share)"] = ", ".join(f"{r.feature} {r.gain_share:.1%}" for r in imp.itertuples())
    return table, extra


def cmd_optimise(args: argparse.Namespace) -> Result:
    cfg = experiment_config(args)
    members = _members(args, cfg)
    # The search plan is checked before any fitting: a step that is too fine costs nothing.
    search.plan_points(len(members.models) + len(members.run_files), args.step, seed=cfg.protocol.seed)
    # One load and one split: validation is carved from the same split's train (members are fitted twice,
    # on train minus validation for the search and on the whole train for the report).
    dataset, split = _load_and_split(args, cfg)
    valid_split = experiment.validation_split(split, cfg.protocol)
    # Two sessions live at once: each gets half of one session's memory budget.
    half = DEFAULT_MAX_BYTES // 2
    valid_session, notes = _session(args, cfg, members, dataset, valid_split, part="valid", max_bytes=half)
    test_session, _ = _session(args, cfg, members, dataset, split, max_bytes=half)
    if getattr(args, "per_segment", False):
        return _per_segment_report(args, cfg, valid_session, test_session, notes)
    out = search.optimise(
        valid_session,
        test_session,
        metric=args.metric,
        floor=args.floor,
        step=args.step,
        method=cfg.method,
        normaliser=cfg.normaliser,
        seed=cfg.protocol.seed,
        params=cfg.fusion.param_map,
    )
    extra = note_unapplied_rerank(
        _extra(notes), args, cfg, "the search weighs the fused lists; fuse re-ranks its result"
    )
    extra["search"] = out.message
    if out.weights is None or out.test is None:
        return out.search.table.head(10), extra
    extra["chosen weights (on validation)"] = ", ".join(f"{n}={w:.2f}" for n, w in out.weights.items())
    extra["on test, versus best member"] = out.test.comparison_sentence(args.metric if "@" in args.metric else None)
    return _fusion_table(test_session, out.test, cfg.k), extra


def _per_segment_report(
    args: argparse.Namespace,
    cfg: ExperimentConfig,
    valid_session: LiveSession,
    test_session: LiveSession,
    notes: list[str],
) -> Result:
    """optimise --per-segment: weights per history segment (reco_core.segments) against one global set."""
    from reco_core.segments import search_segment_weights

    if args.floor:
        raise ConfigError("--floor is not supported with --per-segment: drop one of them")
    thresholds = None
    if getattr(args, "segment_thresholds", None):
        try:
            thresholds = [float(x) for x in str(args.segment_thresholds).split(",")]
        except ValueError:
            raise ConfigError(
                f"--segment-thresholds {quote(args.segment_thresholds)} is not valid: give two numbers, e.g. 30,90"
            ) from None
    out = search_segment_weights(
        valid_session,
        test_session,
        metric=args.metric,
        step=args.step,
        method=cfg.method,
        normaliser=cfg.normaliser,
        thresholds=thresholds,
        seed=cfg.protocol.seed,
        params=cfg.fusion.param_map,
    )
    extra = note_unapplied_rerank(
        _extra(notes), args, cfg, "the search weighs the fused lists; fuse re-ranks its result"
    )
    t1, t2 = out.thresholds
    extra["segments"] = f"light: <= {t1:g} training interactions; medium: <= {t2:g}; heavy: more"
    extra["global weights (on validation)"] = ", ".join(f"{n}={w:.2f}" for n, w in out.global_weights.items())
    # The dashboard's family: all users, then each segment's users, Holm-corrected together (same verdict in both).
    tests = stats.comparison_table(out.tests())
    extra["per-segment weights versus global, on test"] = out.comparison.sentence(
        "global weights", "per-segment weights", float(tests["p (Holm)"].iloc[0]), len(tests)
    ) + (" (the tests: all users, then each segment)" if len(tests) > 1 else "")
    return out.table().set_index("segment"), extra


def cmd_explain(args: argparse.Namespace) -> Result:
    cfg, session, dataset, notes = _test_session(args)
    user_index = int(session.train.users.index_of([args.user], what="user")[0])
    rows = np.flatnonzero(session.users == user_index)
    if not len(rows):
        raise ConfigError(
            f"user {quote(args.user)} has no held-out items in this split, so it is not evaluated: pick another"
        )
    weights = _weights(args, list(session.members), cfg)
    result = session.apply(weights, cfg.fusion)
    table = explain.contributions(result.fusion, int(rows[0]))
    wide = table.pivot_table(index=["rank", "item"], columns="member", values="contribution", aggfunc="sum")
    wide = wide.reset_index()
    held_out = set(session.target.items_of(user_index).tolist())
    wide.insert(2, "title", dataset.catalog.title[wide["item"].to_numpy()])
    wide.insert(3, "hit", [int(i) in held_out for i in wide["item"]])
    wide["item"] = session.train.items.ids_of(wide["item"].to_numpy())
    extra = note_unapplied_rerank(_extra(notes), args, cfg, "explain shows the fused list's contributions")
    extra["user"] = f"{args.user}: {session.train.user_counts()[user_index]} training items, {len(held_out)} held out"
    return wide.set_index("rank"), extra


COMMANDS: dict[str, Callable[[argparse.Namespace], Result]] = {
    "evaluate": cmd_evaluate,
    "evaluate-run": cmd_evaluate_run,
    "fuse": cmd_fuse,
    "optimise": cmd_optimise,
    "explain": cmd_explain,
}
