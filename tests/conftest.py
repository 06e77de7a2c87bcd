"""Settings every test runs under, and fixtures shared by the fusion, live-session and weight-search tests.

Every test process (and the Streamlit servers the browser tests start, which inherit the environment)
uses a throw-away ``RECO_CACHE_DIR``, set before any test runs, so no test reads or writes the user's
cache (``~/.cache/reco-fusion-lab``). One folder per session keeps the embedding cache warm across tests.

Hypothesis never keeps an example database (a failure found locally becomes an ``@example``), and under
``CI=true`` it is derandomised, so CI explores the same examples on every run.

``fixed_scorer`` is a model whose scores are a given matrix, so an expected fusion or evaluation can be
recomputed by hand from the same numbers. ``toy_interactions`` (30 users x 40 items, 10 items each) and
``toy_members`` (three fixed-score members over it) are the small world those tests fuse. ``ml100k`` is
MovieLens-100K from the local copy, and ``spark`` a ``local[2]`` session, one per test module that asks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

from reco_core.data import Interactions
from reco_core.models.base import Scorer

TOY_USERS, TOY_ITEMS, TOY_PER_USER = 30, 40, 10

settings.register_profile("local", database=None)
settings.register_profile("ci", database=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "local")

_TEST_CACHE = Path(tempfile.mkdtemp(prefix="reco-test-cache-"))


def pytest_configure(config: pytest.Config) -> None:
    # Set in the process environment (not monkeypatched per test) so subprocesses such as the browser
    # tests' Streamlit server see it too; tests that need an empty cache still point it elsewhere.
    os.environ["RECO_CACHE_DIR"] = str(_TEST_CACHE)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_TEST_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _cache_outside_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with RECO_CACHE_DIR on the session's throw-away folder, whatever an earlier test set."""
    monkeypatch.setenv("RECO_CACHE_DIR", str(_TEST_CACHE))


class FixedScorer(Scorer):
    """A test model whose scores are a fixed matrix (fit ignores the data but counts its calls)."""

    name = "fixed"
    label = "Fixed"
    kind = "user"

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__()
        self.matrix = np.asarray(scores, dtype=np.float32)
        self.fit_calls = 0

    def _fit(self, train, context) -> None:
        self.fit_calls += 1

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.matrix[user_idx]

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        return self.matrix[item_idx].mean(axis=0)


@pytest.fixture(scope="session")
def fixed_scorer() -> type[FixedScorer]:
    """The FixedScorer class: ``fixed_scorer(matrix).fit(train)``."""
    return FixedScorer


@pytest.fixture(scope="session")
def toy_interactions() -> Interactions:
    """30 users ("u00".."u29") with 10 distinct items each out of 40 ("i00".."i39"), seeded."""
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u:02d}", f"i{i:02d}", 1.0)
        for u in range(TOY_USERS)
        for i in rng.choice(TOY_ITEMS, TOY_PER_USER, replace=False)
    ]
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "value"]))


def _toy_members(train: Interactions, seed: int = 1) -> dict[str, Scorer]:
    """Members a (uniform scores), b (scores in [-5, 5)) and pop (training counts), fitted on ``train``."""
    rng = np.random.default_rng(seed)
    shape = (train.n_users, train.n_items)
    pop = np.tile(train.item_counts().astype(np.float32), (train.n_users, 1))
    mats = {"a": rng.random(shape), "b": rng.random(shape) * 10 - 5, "pop": pop}
    return {name: FixedScorer(m).fit(train) for name, m in mats.items()}


@pytest.fixture(scope="session")
def toy_members() -> Callable[..., dict[str, Scorer]]:
    """``toy_members(train, seed=1)``: fresh fitted members a, b and pop over ``train``."""
    return _toy_members


@pytest.fixture()
def rank_power() -> Iterator[object]:
    """A result-level fusion method with one numeric parameter ("power"), registered as one record for the
    test and removed after: ``sum_m w_m * rank_m(i) ** -power`` over the members' lists."""
    from reco_core.fusion import register_method, unregister_method
    from reco_core.fusion.list_methods import _list_method, _ListRule
    from reco_core.fusion.registry import FusionMethod
    from reco_core.models.base import ParamSpec

    def points(inp, r, ctx):
        rank = np.arange(1, r.k + 1, dtype=np.float64)[None, :]
        return np.broadcast_to(rank ** -inp.params["power"], r.item_idx.shape), None

    method = FusionMethod(
        "rank_power",
        "Rank power",
        "result",
        _list_method(_ListRule(points)),
        False,
        True,
        "sum_m w_m * rank_m(i) ** -power",
        params=(ParamSpec("power", float, 1.0, 0.1, 4.0, 0.1, None, False, "Exponent of the rank.", "Power"),),
    )
    register_method(method)
    yield method
    unregister_method(method.name)


@pytest.fixture(scope="module")
def ml100k():
    from reco_core import datasets

    return datasets.load("ml-100k", allow_download=False)


@pytest.fixture(scope="module")
def spark():
    from reco_core.spark.session import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()
