"""Section: hyperparameters chosen on the validation split, then the test NDCG@10 of each choice, once.

``python -m bench.tuning`` (or ``python -m bench --only tuning``; not part of ``--quick``).

The protocol is the engine's default (DESIGN.md section 6): MovieLens-100K, every rating a positive,
per-user random 80/20 split with seed 42, full ranking over the items not rated in train, NDCG@10.
The validation split is the engine's own (``experiment.validation_split``: valid_frac 0.1, seed 42):
10% of each user's training interactions become the valid part, and the rest is the fit part.

1. Every candidate is fitted on the fit part (train minus valid) and scored by NDCG@10 on valid.
   A study is a sequence of stages; each stage varies one parameter (or a tuple of them) with the
   earlier stages' choices fixed. The best mean valid NDCG@10 wins, except that a tie keeps the
   current default (the value in the model's config). A tie is a difference from the default that
   could be chance: ``stats.paired_comparison`` over the valid users (paired bootstrap 95% interval
   and Wilcoxon signed-rank test) does not call it significant. So a default changes only when a
   candidate beats it clearly on validation, never by a noise-sized margin.
2. Only the chosen configuration of each study is refitted on the full train and scored on test,
   once. No other candidate is ever evaluated on test.

Studies: ``neural`` with the softmax loss (reg, then epochs at the chosen reg, then factors), ``neural``
with the BPR loss (reg), ``itemknn``'s neighbour-pruning rule (target or source), ``genre`` and ``text``
(the four combinations of center x rating_weighted).
About a minute on the 2-core machine (49-69 s measured; 23 fits on valid, 5 on test). The text
embeddings are encoded once (seconds, cold) and then come from the disk cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common import Options, fmt_s, ml100k, save_section
from reco_core.stats import paired_comparison

METRIC = "ndcg@10"


@dataclass(frozen=True)
class Stage:
    """One step of a study: ``names`` varied together over ``values`` (tuples in the same order)."""

    names: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Study:
    """A model, parameters fixed for the whole study, and the stages searched in order."""

    label: str
    model: str
    fixed: tuple[tuple[str, Any], ...]
    stages: tuple[Stage, ...]
    sets_defaults: bool = True  # False for a variant (neural with loss="bpr" shares the softmax's defaults)


def _one(name: str, values: Sequence[Any]) -> Stage:
    return Stage((name,), tuple((v,) for v in values))


def _both(a: str, b: str, values: Sequence[Any]) -> Stage:
    return Stage((a, b), tuple((x, y) for x in values for y in values))


STUDIES: tuple[Study, ...] = (
    Study(
        "neural (softmax)",
        "neural",
        (("loss", "softmax"),),
        (
            _one("reg", (0.001, 0.01, 0.05, 0.07, 0.1, 0.2)),
            _one("epochs", (20, 40, 80)),
            _one("factors", (64, 128)),
        ),
    ),
    Study("neural (bpr)", "neural", (("loss", "bpr"),), (_one("reg", (0.001, 0.01, 0.05, 0.1)),), sets_defaults=False),
    Study("itemknn", "itemknn", (), (_one("prune", ("target", "source")),)),
    Study("genre", "genre", (), (_both("center", "rating_weighted", (False, True)),)),
    Study("text", "text", (), (_both("center", "rating_weighted", (False, True)),)),
)


def defaults(model: str) -> dict[str, Any]:
    """The current defaults of a registered model's config."""
    from reco_core.models import get_spec

    return {f.name: f.default for f in dataclasses.fields(get_spec(model).config_cls)}


def _label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "(defaults)"


def _choose(per_user: list[np.ndarray], values: Sequence[tuple[Any, ...]], default: tuple[Any, ...]) -> int:
    """Index of the best mean; the default's index instead when the best does not beat it significantly."""
    means = [float(v.mean()) for v in per_user]
    best = int(np.argmax(means))
    if default not in values:
        return best
    d = values.index(default)
    if best != d and not paired_comparison(per_user[d], per_user[best], METRIC).significant:
        return d
    return best


def run(opts: Options) -> dict[str, Any]:
    from reco_core import experiment
    from reco_core.metrics import EvalContext

    s = ml100k()
    dataset, split, protocol = s.dataset, s.split, s.protocol
    vsplit = experiment.validation_split(split, protocol)
    assert vsplit.valid is not None
    valid_ctx = EvalContext.from_train(vsplit.train, dataset.catalog)
    n_valid_users = len(vsplit.eval_users("valid"))
    opts.log(
        f"  fit part {vsplit.train.nnz:,} interactions, valid {vsplit.valid.nnz:,} ({n_valid_users} users),"
        f" test {split.test.nnz:,}"
    )

    def evaluate(model: str, params: dict[str, Any], on: Any, ctx: Any, part: str) -> tuple[np.ndarray, float]:
        """Per-user NDCG@10 on ``part`` of ``on`` after a fit on ``on.train``, and the fit seconds."""
        member = experiment.MemberSpec.of(model, params)
        t0 = time.perf_counter()
        fitted = experiment.fit_member(member, on, dataset, protocol.seed)
        seconds = time.perf_counter() - t0
        return experiment.evaluate_scorer(fitted, on, ctx, ks=(10,), part=part).per_user[METRIC], seconds

    candidates: list[dict[str, Any]] = []
    chosen: dict[str, dict[str, Any]] = {}
    for study in STUDIES:
        base = defaults(study.model)
        current = dict(study.fixed)
        seen: dict[tuple[tuple[str, Any], ...], np.ndarray] = {}  # a candidate met again in a later stage
        for stage_no, stage in enumerate(study.stages, 1):
            per_user, rows = [], []
            for values in stage.values:
                params = {**current, **dict(zip(stage.names, values, strict=True))}
                key = tuple(sorted({**base, **params}.items()))
                if key in seen:
                    scores, seconds = seen[key], None
                else:
                    scores, seconds = evaluate(study.model, params, vsplit, valid_ctx, "valid")
                    seen[key] = scores
                per_user.append(scores)
                rows.append(
                    {
                        "study": study.label,
                        "stage": stage_no,
                        "varied": list(stage.names),
                        "params": params,
                        "is_default": values == tuple(base[n] for n in stage.names),
                        "valid_ndcg@10": float(scores.mean()),
                        "fit_s": seconds,
                    }
                )
                opts.log(f"  {study.label} [{_label(params)}]: valid {METRIC} {scores.mean():.4f}")
            default = tuple(base[n] for n in stage.names)
            pick = _choose(per_user, stage.values, default)
            if default in stage.values:
                d = stage.values.index(default)
                for row, scores in zip(rows, per_user, strict=True):
                    if row["is_default"]:
                        continue
                    cmp = paired_comparison(per_user[d], scores, METRIC)
                    row["vs_default"] = {
                        "diff": cmp.mean_diff,
                        "ci": [cmp.ci_low, cmp.ci_high],
                        "p": cmp.p_value,
                        "significant": cmp.significant,
                    }
            for i, row in enumerate(rows):
                row["chosen_in_stage"] = i == pick
            candidates += rows
            current.update(dict(zip(stage.names, stage.values[pick], strict=True)))
        full = {**base, **current}
        changed = {k: v for k, v in full.items() if v != base[k] and k not in dict(study.fixed)}
        test, seconds = evaluate(study.model, current, split, s.ctx, "test")
        chosen[study.label] = {
            "model": study.model,
            "params": current,
            "valid_ndcg@10": float(seen[tuple(sorted(full.items()))].mean()),
            "test_ndcg@10": float(test.mean()),
            "test_users": len(test),
            "test_fit_s": seconds,
            "sets_defaults": study.sets_defaults,
            "differs_from_default": changed,
        }
        if not study.sets_defaults:
            verdict = "; a variant: the defaults are not set by it"
        elif changed:
            verdict = f"; CHANGE the default to {_label(changed)}"
        else:
            verdict = "; the current default"
        opts.log(
            f"  {study.label}: chose [{_label(current)}]; test {METRIC} {test.mean():.4f}"
            f" (fit {fmt_s(seconds)}){verdict}"
        )

    opts.log("\n" + markdown(candidates, chosen))
    return {
        "protocol": protocol.describe(),
        "validation": vsplit.description,
        "fit_interactions": int(vsplit.train.nnz),
        "valid_interactions": int(vsplit.valid.nnz),
        "valid_users": n_valid_users,
        "test_users": len(split.eval_users("test")),
        "candidates": candidates,
        "chosen": chosen,
    }


def _vs_default(row: dict[str, Any]) -> str:
    cmp = row.get("vs_default")
    if row["is_default"]:
        return "(default)"
    if cmp is None:
        return ""
    verdict = "significant" if cmp["significant"] else "could be chance"
    return f"{cmp['diff']:+.4f} [{cmp['ci'][0]:+.4f}, {cmp['ci'][1]:+.4f}], p = {cmp['p']:.2g}: {verdict}"


def markdown(candidates: list[dict[str, Any]], chosen: dict[str, dict[str, Any]]) -> str:
    """The validation table (every candidate) and the test table (the chosen configurations only)."""
    lines = [
        "Validation NDCG@10 (fit on train minus valid; * = chosen in its stage). Against the default:"
        " mean paired difference, its 95% bootstrap interval and the Wilcoxon p over the valid users.",
        "",
        "| model | stage | settings | valid NDCG@10 | against the default |",
        "|---|---|---|---|---|",
    ]
    for row in candidates:
        mark = " *" if row.get("chosen_in_stage") else ""
        lines.append(
            f"| {row['study']} | {row['stage']}: {' x '.join(row['varied'])} | {_label(row['params'])}"
            f" | {row['valid_ndcg@10']:.4f}{mark} | {_vs_default(row)} |"
        )
    lines += [
        "",
        "Test NDCG@10 of the chosen configurations (refitted on the full train, evaluated once)",
        "",
        "| model | chosen settings | valid NDCG@10 | test NDCG@10 | default changed |",
        "|---|---|---|---|---|",
    ]
    for label, c in chosen.items():
        if not c["sets_defaults"]:
            change = "variant, sets no default"
        else:
            change = _label(c["differs_from_default"]) if c["differs_from_default"] else "no"
        lines.append(
            f"| {label} | {_label(c['params'])} | {c['valid_ndcg@10']:.4f} | {c['test_ndcg@10']:.4f} | {change} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tuning", description=__doc__.split("\n\n")[0])
    p.add_argument("--save", action="store_true", help="also write the 'tuning' section of bench/results.json")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    data = run(Options(log=lambda text: print(text, flush=True)))
    print(f"\ntuning took {fmt_s(time.perf_counter() - t0)}", flush=True)
    if args.save:
        save_section("tuning", {**data, "section_s": time.perf_counter() - t0}, quick=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
