"""One call from a protocol and a list of members to fitted models, sessions and results.

This is the layer the CLI and the dashboard share: load -> split -> fit members -> live session
-> evaluate. It owns no algorithm; it wires the modules together and turns failures into
RecoErrors that name the member or argument at fault.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reco_core import datasets, splitting
from reco_core.checks import check_whole
from reco_core.config import MemberSpec, Protocol
from reco_core.data import Dataset
from reco_core.errors import ConfigError, FitError, RecoError
from reco_core.metrics import EvalContext, Evaluation, evaluate
from reco_core.models import Context, Scorer
from reco_core.ranking import Ranking, check_k, top_k
from reco_core.scale import auto_block_size
from reco_core.splitting import Split

Progress = Callable[[float, str], None]


def parse_members(text: str | Sequence[str]) -> list[MemberSpec]:
    """ "als,itemknn,text" (or a list) -> MemberSpecs; duplicates and unknown names raise ConfigError."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n and n.strip()]
    if not names:
        raise ConfigError("no models given: name at least one, e.g. --models als,itemknn")
    if len(set(names)) != len(names):
        raise ConfigError(f"model list {','.join(names)} names a model twice: give each once")
    return [MemberSpec.of(n) for n in names]


def load_dataset(protocol: Protocol) -> Dataset:
    """The protocol's dataset, with threshold and k-core applied (both counted in the report)."""
    # data_dir only locates MovieLens files; a synthetic dataset is generated and ignores it.
    return datasets.load(
        protocol.dataset, data_dir=protocol.data_dir, threshold=protocol.threshold, kcore=protocol.kcore
    )


def make_split(dataset: Dataset, protocol: Protocol, validation: bool = False) -> Split:
    """The protocol's split; with ``validation`` the train part is further split into train and valid."""
    split = splitting.make_split(
        dataset.interactions,
        protocol.split,
        test_frac=protocol.test_frac,
        seed=protocol.seed,
        n_last=protocol.n_last,
    )
    return validation_split(split, protocol) if validation else split


def validation_split(split: Split, protocol: Protocol) -> Split:
    """``split`` with the protocol's validation part carved from its train (valid_frac, seed)."""
    return splitting.with_validation(split, valid_frac=protocol.valid_frac, seed=protocol.seed)


def model_context(dataset: Dataset, progress: Progress | None = None) -> Context:
    return Context(catalog=dataset.catalog, users=dataset.users, progress=progress)


def fit_member(
    member: MemberSpec, split: Split, dataset: Dataset, seed: int, progress: Progress | None = None
) -> Scorer:
    """Fit one member on ``split.train``; any failure becomes a FitError that names the member."""
    model = member.build(seed)
    try:
        return model.fit(split.train, model_context(dataset, progress))
    except RecoError:
        raise
    except Exception as exc:  # a model's own bug or a library failure: name it, keep the others going
        raise FitError(f"model {member.label!r} failed to fit: {type(exc).__name__}: {exc}") from exc


@dataclass
class FittedMembers:
    """Members that fitted, members that failed (label -> one-line reason), and fit seconds."""

    models: dict[str, Scorer] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def fit_members(
    members: Sequence[MemberSpec],
    split: Split,
    dataset: Dataset,
    seed: int,
    progress: Progress | None = None,
) -> FittedMembers:
    """Fit every member; one that fails is reported by name while the others are kept."""
    out = FittedMembers()
    for i, member in enumerate(members):
        if progress:
            progress(i / max(len(members), 1), f"fitting {member.label}")
        start = time.perf_counter()
        try:
            out.models[member.label] = fit_member(member, split, dataset, seed)
        except RecoError as exc:
            out.failed[member.label] = str(exc)
        out.seconds[member.label] = time.perf_counter() - start
    if progress:
        progress(1.0, "members fitted")
    return out


def item_vectors(dataset: Dataset, progress: Progress | None = None) -> np.ndarray:
    """L2-normalised text embeddings of the catalogue (disk-cached), for ild_text and explanations."""
    from reco_core.embeddings import encode_texts  # loads torch models lazily

    return encode_texts(list(dataset.catalog.text), progress=progress)


def eval_context(
    split: Split, dataset: Dataset, with_text: bool = True, progress: Progress | None = None
) -> EvalContext:
    """Popularity, genres and (with ``with_text``) text vectors for the beyond-accuracy metrics.

    A catalogue with no real text (every item only its placeholder name "Item <id>", as when no items
    file was given) gets no text vectors: distances between embedded ids would mean nothing, so
    ``ild_text`` is left out with a note, as ``ild_genre`` is without genres.
    """
    has_text = bool(dataset.catalog.described().any())
    vectors = item_vectors(dataset, progress) if with_text and has_text else None
    return EvalContext.from_train(split.train, dataset.catalog, vectors)


def evaluate_scorer(
    model: Scorer,
    split: Split,
    ctx: EvalContext,
    ks: Sequence[int] = (10,),
    part: str = "test",
    block_size: int | None = None,
) -> Evaluation:
    """Rank every evaluated user (training items excluded) in blocks and evaluate against ``part``.

    ``block_size`` users per block; by default ``scale.auto_block_size(n_items)``, about
    ``scale.DEFAULT_BLOCK_CELLS`` score cells (4 MB) whatever the catalogue's width: 488 users at 2,048
    items, 10 at 100,000. Only each block's top-k is kept, so memory does not grow with users x items.
    """
    block_size = auto_block_size(split.train.n_items) if block_size is None else check_whole(block_size, "block_size")
    if part not in ("test", "valid"):
        raise ConfigError(f"part={part!r} is not valid: choose test or valid")
    target = split.test if part == "test" else split.valid
    if target is None:
        raise ConfigError(f"the split has no {part} part: add a validation fraction to evaluate on it")
    users = split.eval_users(part)
    if len(users) == 0:
        raise ConfigError(f"the {part} part is empty: no user has held-out items; use a larger test fraction")
    k = max(ks)
    check_k(k, split.train.n_items)
    # Only train is excluded, also on valid: valid is carved from train, so test items stay unseen and may be
    # recommended, as in any protocol.
    rankings = [
        top_k(scores, k, rows, exclude=split.train.matrix) for rows, scores in model.score_blocks(users, block_size)
    ]
    return evaluate(Ranking.concat(rankings), target, ctx, ks=ks)


def evaluation_table(evaluations: Mapping[str, Evaluation], with_ci: bool = False, seed: int = 0) -> pd.DataFrame:
    """Models as rows, metrics as columns (means / global values); with ``with_ci`` also 95% bounds."""
    rows = []
    for name, ev in evaluations.items():
        row: dict[str, Any] = {"model": name}
        if with_ci:
            summ = ev.summary(seed=seed)
            for _, r in summ.iterrows():
                row[r["metric"]] = r["value"]
                row[f"{r['metric']} lo"] = r["ci_low"]
                row[f"{r['metric']} hi"] = r["ci_high"]
        else:
            row.update(ev.values())
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")
