"""Command line: python -m reco_core evaluate | evaluate-run | fuse | optimise | explain.

``--engine spark`` (evaluate, evaluate-run, fuse, optimise) runs the same configuration with Apache Spark
(``reco_core.spark``; ``--spark-master``, default local[2]).

Every bad argument or file ends in one line on stderr that names it, and exit code 2; no traceback.
``--config F`` runs a configuration exported by the dashboard (flags beside it override its fields);
``--dump-config`` prints the configuration a command line describes, in the same JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from reco_core.errors import RecoError, not_a_file, quote

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line (its default prints usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


# Flags that a --config file also sets default to None here, so a flag given beside --config can be told
# from one left out: given flags override the file's fields, the rest come from the file (or the defaults
# in cli_commands.DEFAULTS when there is no file).


def _add_protocol(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and split")
    g.add_argument(
        "--config",
        default=None,
        help="a configuration JSON (the dashboard's export, or --dump-config); flags given beside it override it",
    )
    g.add_argument(
        "--dump-config", action="store_true", help="print the configuration this command line describes and stop"
    )
    g.add_argument("--dataset", default=None, help="ml-100k, ml-1m, synthetic-1m... (default ml-100k)")
    g.add_argument(
        "--data-dir", default=None, help="a folder holding the dataset's files (RecBole or GroupLens layout)"
    )
    g.add_argument("--interactions", default=None, help="your own interactions file (CSV, TSV or Parquet)")
    g.add_argument("--items", default=None, help="an items file (item, title, genres separated by |)")
    g.add_argument("--users", default=None, help="a users file (user, age, gender, occupation)")
    g.add_argument("--train", default=None, help="a training file: use with --test for a split you supply")
    g.add_argument("--test", default=None, help="a test file: use with --train")
    g.add_argument("--split", default=None, choices=_split_names(), help="(default random)")
    g.add_argument("--test-frac", type=float, default=None, help="(default 0.2)")
    g.add_argument(
        "--n-last", type=int, default=None, help="held-out items per user for --split leave-last (default 1)"
    )
    g.add_argument("--seed", type=int, default=None, help="(default 42)")
    g.add_argument("--threshold", type=float, default=None, help="ratings >= this are positives (default: all)")
    g.add_argument(
        "--kcore", type=int, default=None, help="keep users and items with at least this many interactions (default 0)"
    )
    g.add_argument(
        "--max-decoded-mb",
        type=float,
        default=None,
        help="refuse a Parquet file whose values decode to more than this many MB, estimated before reading"
        " (default 2000; a few kB of Parquet can hold gigabytes)",
    )
    g.add_argument("--no-text-metrics", action="store_true", help="skip ild_text (avoids computing text embeddings)")


def _add_engine(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine (docs/scale-out.md)")
    g.add_argument(
        "--engine",
        default="local",
        choices=["local", "spark"],
        help="local: this machine (default); spark: Apache Spark, the same block code over partitions of users",
    )
    g.add_argument(
        "--spark-master",
        default="local[2]",
        help="with --engine spark: local[N], spark://host:7077, yarn or k8s://... (default local[2])",
    )
    g.add_argument(
        "--output-dir", default=None, help="with --engine spark: write top-k and per-user metrics as Parquet"
    )
    g.add_argument("--summary-json", default=None, help="with --engine spark: write the run's summary JSON here")
    g.add_argument(
        "--broadcast-mb",
        type=float,
        default=None,
        help="with --engine spark: the most a member fitted on the driver may weigh on each executor (default 2000)",
    )


def _split_names() -> list[str]:
    from reco_core.config import split_names

    return list(split_names())


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", default=None, help="list length(s), e.g. 10 or 5,10,20 (default 10)")
    p.add_argument("--format", default="table", choices=["table", "json", "csv"])
    p.add_argument("--ci", action="store_true", help="add bootstrap 95%% intervals")


def _add_fusion(p: argparse.ArgumentParser, weights: bool = True) -> None:
    from reco_core.fusion import METHODS, NORMALISERS

    p.add_argument("--models", default=None, help="comma-separated members, e.g. als,itemknn,text")
    p.add_argument("--runs", default="", help="comma-separated run files of other systems to fuse as members")
    if weights:
        p.add_argument("--weights", default=None, help="comma-separated weights (default: equal)")
    p.add_argument("--method", default=None, help=f"{', '.join(METHODS)}, or learned with fuse (default wsum)")
    p.add_argument("--norm", default=None, help=f"{', '.join(NORMALISERS)} (default minmax)")
    p.add_argument("--top-n", type=int, default=None, help="each member's list length for list methods (default 100)")
    _add_method_params(p)


def _add_method_params(p: argparse.ArgumentParser) -> None:
    """One flag per parameter that a fusion method declares in its registry record (``--rrf-k`` for rrf)."""
    from reco_core.fusion import METHODS
    from reco_core.models.base import ParamSpec

    g = p.add_argument_group("fusion method parameters (from the methods' registry)")
    seen: dict[str, list[str]] = {}
    specs: dict[str, ParamSpec] = {}
    parsers: dict[type, Callable[[str], Any]] = {bool: _bool, int: int, float: float}
    for method in METHODS.values():
        for ps in method.params:
            seen.setdefault(ps.name, []).append(method.name)
            specs.setdefault(ps.name, ps)
    for name, ps in specs.items():
        kind = parsers.get(ps.type, str)
        choices = list(ps.choices) if ps.choices is not None else None
        g.add_argument(
            "--" + name.replace("_", "-"),
            dest=f"method_param_{name}",
            type=kind,
            choices=choices,
            default=None,
            help=f"{ps.help} (method {', '.join(seen[name])}; default {ps.default})",
        )


def _add_after_fusion(p: argparse.ArgumentParser) -> None:
    """fuse: re-ranking after fusion (docs/reranking.md) and learned fusion's options (docs/learned.md)."""
    from reco_core.rerank import RERANKERS, SIMILARITIES

    g = p.add_argument_group("re-ranking after fusion, learned fusion")
    g.add_argument(
        "--rerank",
        default=None,
        choices=[*RERANKERS, "none"],
        help="re-rank the fused list (default: the --config file's re-ranker, else none)",
    )
    g.add_argument(
        "--rerank-lambda", type=float, default=None, help="weight of the re-ranker's goal, 0 to 1 (default 0.3)"
    )
    g.add_argument(
        "--rerank-similarity", default=None, choices=SIMILARITIES, help="MMR's item similarity (default genre)"
    )
    g.add_argument(
        "--rerank-candidates", type=int, default=None, help="how much of the fused list to re-rank (default 50)"
    )
    g.add_argument(
        "--learned-candidates",
        type=int,
        default=None,
        help="with --method learned: each member's list length whose union is ranked (default 50)",
    )


# Flags only the local engine reads (re-ranking, learned fusion, per-segment search, the decoded-size limit).
LOCAL_ONLY_FLAGS = (
    "rerank",
    "rerank_lambda",
    "rerank_similarity",
    "learned_candidates",
    "rerank_candidates",
    "per_segment",
    "segment_thresholds",
    "max_decoded_mb",
    "users",
)


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{text!r} is not true or false")
    return text.lower() == "true"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m reco_core", description="Reco Fusion Lab engine")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ev = sub.add_parser("evaluate", help="fit models and evaluate them on a split")
    ev.add_argument("--models", default=None, help="comma-separated registry names (default pop,itemknn,als,ease)")
    _add_protocol(ev)
    _add_output(ev)
    _add_engine(ev)

    run = sub.add_parser("evaluate-run", help="judge another system's run file against a split")
    run.add_argument("--run", required=True, help="CSV/TSV with user, item and rank or score columns")
    _add_protocol(run)
    _add_output(run)
    _add_engine(run)

    fu = sub.add_parser("fuse", help="fuse members and compare with the best single member")
    _add_fusion(fu)
    _add_after_fusion(fu)
    _add_protocol(fu)
    _add_output(fu)
    _add_engine(fu)

    op = sub.add_parser("optimise", help="search fusion weights on validation, report on test")
    _add_fusion(op, weights=False)
    op.add_argument("--metric", default="ndcg@10", help="objective, e.g. ndcg@10")
    op.add_argument("--floor", default=None, help="a constraint, e.g. coverage@10=0.3")
    op.add_argument("--step", type=float, default=0.1, help="simplex grid step")
    op.add_argument("--valid-frac", type=float, default=None, help="(default 0.1)")
    op.add_argument(
        "--per-segment",
        action="store_true",
        help="search weights separately for light, medium and heavy users (docs/learned.md)",
    )
    op.add_argument(
        "--segment-thresholds", default=None, help="with --per-segment: the two history-length cuts, e.g. 30,90"
    )
    _add_protocol(op)
    _add_output(op)
    _add_engine(op)

    ex = sub.add_parser("explain", help="one user's fused list with each member's contribution")
    ex.add_argument("--user", required=True, help="external user id")
    _add_fusion(ex)
    _add_protocol(ex)
    ex.add_argument("--k", default=None, help="list length (default 10)")
    return parser


def _emit(frame: pd.DataFrame, fmt: str, extra: dict[str, Any] | None = None) -> None:
    if fmt == "json":
        payload = {"results": json.loads(frame.reset_index().to_json(orient="records"))}
        payload.update(extra or {})
        print(json.dumps(payload, indent=2))
    elif fmt == "csv":
        print(frame.to_csv(float_format="%.6f"), end="")
    else:
        with pd.option_context(
            "display.max_columns", None, "display.width", 200, "display.float_format", "{:.4f}".format
        ):
            print(frame.to_string())
        for key, value in (extra or {}).items():
            print(f"{key}: {value}")


def _os_error(exc: OSError) -> str:
    """One line for a file that could not be read: what the path is when it is no file (a folder, a device),
    else why it could not be read."""
    if exc.filename is None:
        return f"cannot read a file: {exc.strerror or exc}; check the paths given"
    problem = not_a_file(exc.filename)
    if problem is not None:
        return problem
    return f"cannot read {quote(str(exc.filename), 300)}: {exc.strerror or type(exc).__name__}; check the path"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from reco_core import cli_commands  # heavy imports only after the arguments are known to be valid

    try:
        if args.dump_config:
            print(cli_commands.dump_config(args))
            return 0
        if getattr(args, "engine", "local") == "spark":
            # Flags the Spark engine does not read: refused, so a run never silently differs from what was asked.
            for flag in LOCAL_ONLY_FLAGS:
                # "--rerank none" asks for nothing the Spark engine lacks: it drops a configuration file's re-ranker.
                if getattr(args, flag, None) not in (None, False, "", *(("none",) if flag == "rerank" else ())):
                    raise RecoError(f"--{flag.replace('_', '-')} is not available with --engine spark: drop it")
            if getattr(args, "method", None) == "learned":
                raise RecoError("--method learned is not available with --engine spark: use the local engine")
            from reco_core.spark import cli as spark_cli  # pyspark is loaded only for --engine spark

            frame, extra = spark_cli.COMMANDS[args.command](args)
        else:
            for flag in ("output_dir", "summary_json", "broadcast_mb"):
                if getattr(args, flag, None) is not None:
                    raise RecoError(f"--{flag.replace('_', '-')} needs --engine spark: add it, or drop the flag")
            frame, extra = cli_commands.COMMANDS[args.command](args)
    except RecoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: {_os_error(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if frame is not None:
        _emit(frame, getattr(args, "format", "table"), extra)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
