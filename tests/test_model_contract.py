"""One contract, every registered model (DESIGN.md section 3).

Parametrised over ``MODELS`` after importing ``reco_core.models``, so a family added later is
checked without touching this file. The fixture is tiny and deterministic: 12 users x 10 items,
a checkerboard-like pattern with ratings 1..5, one user with no training interactions, a catalogue
(title, year, genres, text) and a user table (age, gender, occupation) so content and hybrid
models can fit.

NaN policy checked here: a model may answer NaN ("cannot score") only for a user or profile with
no interactions; every other cell is finite. No model ever returns inf.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from numeric import assert_scores_close

import reco_core.models as models
from reco_core.data import Interactions, ItemCatalog, UserTable, item_text
from reco_core.errors import ConfigError, NotFittedError
from reco_core.ids import IdMap
from reco_core.models.base import MODELS, Context, HasEmbeddings, ModelConfig, ParamSpec, Scorer, SimilarItems

N_USERS, N_ITEMS = 12, 10
COLD_USER = N_USERS - 1  # no training interactions

# Small settings for slow models, applied to whichever model has a field of that name (clamped to the
# field's range), so a model added later is also kept fast without editing this table.
SMALL_SETTINGS: dict[str, int] = {
    "iterations": 3,
    "epochs": 2,
    "n_epochs": 2,
    "factors": 8,
    "embedding_dim": 8,
    "dim": 8,
    "hidden": 8,
    "hidden_dim": 8,
}
NAMES = sorted(MODELS)


def _frame() -> pd.DataFrame:
    rows = []
    for u in range(N_USERS - 1):
        for i in range(N_ITEMS):
            # Two taste blocks (even/odd items) with some overlap, so neighbours and factors mean something.
            if (u + i) % 2 == 0 or (u * 3 + i) % 7 == 0:
                rows.append((f"u{u:02d}", f"i{i:02d}", float(1 + (u * 7 + i * 3) % 5)))
    return pd.DataFrame(rows, columns=["user", "item", "value"])


@pytest.fixture(scope="module")
def data() -> tuple[Interactions, Context]:
    users = IdMap.from_values([f"u{u:02d}" for u in range(N_USERS)])
    items = IdMap.from_values([f"i{i:02d}" for i in range(N_ITEMS)])
    train = Interactions.from_frame(_frame(), users=users, items=items)
    genre_pool = ("Action", "Comedy", "Drama", "Romance", "Sci-Fi")
    genres = tuple((genre_pool[i % 5], genre_pool[(i + 2) % 5]) if i % 3 else (genre_pool[i % 5],) for i in range(10))
    titles = np.asarray([f"Film number {i}" for i in range(N_ITEMS)], dtype=object)
    years = np.asarray([1990.0 + i for i in range(N_ITEMS)])
    text = np.asarray([item_text(t, y, g) for t, y, g in zip(titles, years, genres, strict=True)], dtype=object)
    catalog = ItemCatalog(items, titles, years, genres, text)
    frame = pd.DataFrame(
        {
            "age": [18 + 4 * u for u in range(N_USERS)],
            "gender": ["M" if u % 2 else "F" for u in range(N_USERS)],
            "occupation": [("student", "engineer", "artist")[u % 3] for u in range(N_USERS)],
        }
    )
    return train, Context(catalog=catalog, users=UserTable(users, frame))


@pytest.fixture(scope="module")
def context(data: tuple[Interactions, Context], tmp_path_factory: pytest.TempPathFactory) -> Context:
    base = data[1]
    return Context(catalog=base.catalog, users=base.users, cache_dir=tmp_path_factory.mktemp("model-cache"))


def _small_params(name: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for p in MODELS[name].config_cls.params():
        if p.name in SMALL_SETTINGS and p.type in (int, float):
            v = SMALL_SETTINGS[p.name]
            v = max(v, p.low) if p.low is not None else v
            v = min(v, p.high) if p.high is not None else v
            out[p.name] = p.type(v)
    return out


def _new(name: str, **extra: object) -> Scorer:
    return models.make_model(name, **{**_small_params(name), **extra})


_FITTED: dict[str, Scorer] = {}


@pytest.fixture
def fitted(request: pytest.FixtureRequest, data: tuple[Interactions, Context], context: Context) -> Scorer:
    """One fitted model per name, shared by the read-only checks of this module."""
    name = request.param
    if name not in _FITTED:
        _FITTED[name] = _new(name).fit(data[0], context)
    return _FITTED[name]


def _assert_nan_policy(scores: np.ndarray, empty_rows: np.ndarray, name: str) -> None:
    assert not np.isinf(scores).any(), f"{name} returned inf"
    assert np.isfinite(scores[~empty_rows]).all(), f"{name} returned NaN for a user with a history"


# ---------------------------------------------------------------- registry and configs


def test_every_family_is_registered() -> None:
    assert {"pop", "itemknn", "userknn", "als", "bpr", "ease"} <= set(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_spec_is_described(name: str) -> None:
    spec = models.get_spec(name)
    assert spec.name == name and spec.cls.name == name
    assert spec.kind in ("user", "item", "hybrid")
    assert spec.label and spec.description
    assert issubclass(spec.config_cls, ModelConfig)
    assert spec.config_cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def _defaults_ok(p: ParamSpec) -> bool:
    if p.choices is not None:
        return p.default in p.choices
    if p.type is bool:
        return isinstance(p.default, bool)
    if p.type in (int, float):
        lo = -math.inf if p.low is None else p.low
        hi = math.inf if p.high is None else p.high
        return isinstance(p.default, (int, float)) and lo <= p.default <= hi
    return True


@pytest.mark.parametrize("name", NAMES)
def test_config_defaults_lie_in_their_ranges(name: str) -> None:
    cls = MODELS[name].config_cls
    cls().validate()
    for p in cls.params():
        assert _defaults_ok(p), f"{name}.{p.name} default {p.default!r} is outside its range/choices"
        assert p.help, f"{name}.{p.name} has no help text for the UI"
        if p.type in (int, float) and p.choices is None:
            assert p.low is not None and p.high is not None, f"{name}.{p.name} needs low/high for a UI slider"
            assert p.low < p.high


def _bad_values(p: ParamSpec) -> list[object]:
    if p.choices is not None:
        return ["--not-a-choice--"]
    if p.type is bool:
        return ["yes"]
    if p.type in (int, float):
        out: list[object] = ["ten"]
        if p.low is not None:
            out.append(p.type(p.low - 1))
        if p.high is not None:
            out.append(p.type(p.high + 1))
        if p.type is int:
            out.append(float(p.default) + 0.5)
        return out
    return []


@pytest.mark.parametrize("name", NAMES)
def test_validate_rejects_out_of_range_values(name: str) -> None:
    cls = MODELS[name].config_cls
    for p in cls.params():
        for bad in _bad_values(p):
            cfg = dataclasses.replace(cls(), **{p.name: bad})
            with pytest.raises(ConfigError, match=p.name):
                cfg.validate()
            with pytest.raises(ConfigError):
                models.make_model(name, **{p.name: bad})


@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameter_raises(name: str) -> None:
    with pytest.raises(ConfigError, match="no_such_param"):
        models.make_model(name, no_such_param=1)


def test_unknown_model_raises() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        models.make_model("no-such-model")


# ---------------------------------------------------------------- fitting and scoring


@pytest.mark.parametrize("name", NAMES)
def test_score_before_fit_raises(name: str) -> None:
    model = _new(name)
    assert not model.fitted
    with pytest.raises(NotFittedError):
        model.score([0])
    with pytest.raises(NotFittedError):
        model.score_profile([0])


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_score_shape_dtype_and_nan_policy(fitted: Scorer, data: tuple[Interactions, Context]) -> None:
    train = data[0]
    users = np.arange(N_USERS)
    scores = fitted.score(users)
    assert scores.shape == (N_USERS, N_ITEMS) and scores.dtype == np.float32
    _assert_nan_policy(scores, train.user_counts() == 0, fitted.name)
    # A block of some users equals the same rows of the full block, to float32 rounding: a product of
    # another shape may sum in another order (docs/numerics.md). The same call again is exact.
    some = np.array([3, 0, 7])
    assert_scores_close(fitted.score(some), scores[some], err_msg=fitted.name)
    np.testing.assert_array_equal(fitted.score(users), scores)


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_score_profile_shape_dtype_and_nan_policy(fitted: Scorer) -> None:
    out = fitted.score_profile([0, 3, 4], np.array([5.0, 3.0, 4.0]))
    assert out.shape == (N_ITEMS,) and out.dtype == np.float32
    _assert_nan_policy(out[None, :], np.array([False]), fitted.name)
    unrated = fitted.score_profile(np.array([1, 2]))
    assert unrated.shape == (N_ITEMS,) and np.isfinite(unrated).all()


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_empty_profile_is_finite_or_nan(fitted: Scorer) -> None:
    out = fitted.score_profile(np.array([], dtype=np.int64))
    assert out.shape == (N_ITEMS,) and out.dtype == np.float32
    assert not np.isinf(out).any()


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_out_of_range_indices_raise(fitted: Scorer) -> None:
    for bad in ([N_USERS], [-1], [0, N_USERS + 5]):
        with pytest.raises(ConfigError, match="user index"):
            fitted.score(bad)
    with pytest.raises(ConfigError, match="item index"):
        fitted.score_profile([N_ITEMS])


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_optional_abilities_have_the_right_shapes(fitted: Scorer) -> None:
    if isinstance(fitted, SimilarItems):
        sim = fitted.similar_items(np.array([0, 5, 2]), np.array([1, 2, 3, 9]))
        assert sim.shape == (3, 4) and sim.dtype == np.float32 and np.isfinite(sim).all()
    if isinstance(fitted, HasEmbeddings):
        emb = fitted.item_embeddings()
        assert emb.ndim == 2 and emb.shape[0] == N_ITEMS and emb.dtype == np.float32
        assert np.isfinite(emb).all()


@pytest.mark.parametrize("name", NAMES)
def test_fit_is_deterministic_for_a_seed(name: str, data: tuple[Interactions, Context], context: Context) -> None:
    train = data[0]
    reports: list[float] = []
    ctx = dataclasses.replace(context, progress=lambda f, _msg: reports.append(f))
    a, b = _new(name).fit(train, ctx), _new(name).fit(train, context)
    np.testing.assert_array_equal(a.score(np.arange(N_USERS)), b.score(np.arange(N_USERS)))
    profile = np.array([1, 4, 8])
    np.testing.assert_array_equal(a.score_profile(profile), b.score_profile(profile))
    assert all(0.0 <= f <= 1.0 for f in reports), f"{name} reported progress outside [0, 1]: {reports}"


@pytest.mark.parametrize("name", NAMES)
def test_refit_replaces_the_previous_fit(name: str, data: tuple[Interactions, Context], context: Context) -> None:
    train = data[0]
    # Drop user 0's interactions: a refit on the smaller matrix must forget the first fit's data.
    smaller = train.with_matrix(train.matrix.multiply((np.arange(N_USERS) != 0)[:, None].astype(np.float32)))
    model = _new(name).fit(train, context).fit(smaller, context)
    fresh = _new(name).fit(smaller, context)
    np.testing.assert_array_equal(model.score(np.arange(N_USERS)), fresh.score(np.arange(N_USERS)))
