"""genre, text, mf, neural and hybrid on tiny hand-checkable data (fast: few epochs, fake text vectors)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from numeric import assert_scores_close

from reco_core import embeddings
from reco_core.data import Interactions, ItemCatalog, UserTable
from reco_core.errors import ConfigError
from reco_core.ids import IdMap
from reco_core.models.base import Context, make_model
from reco_core.models.content import GenreConfig, GenreProfile
from reco_core.models.hybrid import HybridConfig, HybridTwoTower, age_bucket, demographic_columns
from reco_core.models.mf import MatrixFactorization, MFConfig
from reco_core.models.neural import NeuralConfig, NeuralTwoTower
from reco_core.models.text import TextConfig, TextEmbedding

S2 = np.sqrt(2.0)


def interactions(rows: list[tuple[str, str, float]], users: list[str], items: list[str]) -> Interactions:
    frame = pd.DataFrame(rows, columns=["user", "item", "value"])
    return Interactions.from_frame(frame, IdMap(np.array(users, dtype=object)), IdMap(np.array(items, dtype=object)))


def catalog(items: list[str], genres: list[tuple[str, ...]], texts: list[str] | None = None) -> ItemCatalog:
    ids = IdMap(np.array(items, dtype=object))
    text = np.array(texts or [f"film {i}" for i in items], dtype=object)
    return ItemCatalog(ids, text.copy(), np.full(len(items), np.nan), tuple(genres), text)


# -- genre ---------------------------------------------------------------------------------------

ITEMS3 = ["A", "B", "C"]
GENRES3 = [("x",), ("x", "y"), ("y",)]  # multi-hot rows A=[1,0], B=[1,1], C=[0,1]


def test_genre_cosine_by_hand() -> None:
    train = interactions([("u", "A", 1.0), ("v", "A", 4.0), ("v", "C", 2.0)], ["u", "v", "w"], ITEMS3)
    ctx = Context(catalog=catalog(ITEMS3, GENRES3))
    plain = GenreProfile(GenreConfig(rating_weighted=False, center=False)).fit(train, ctx)
    s = plain.score([0, 1, 2])
    # u liked A: profile [1,0]; cos with A=1, B=1/sqrt2, C=0.
    np.testing.assert_allclose(s[0], [1.0, 1 / S2, 0.0], rtol=1e-6)
    # v: unweighted profile [1/2,1/2]: cos A = 1/sqrt2, B = 1, C = 1/sqrt2.
    np.testing.assert_allclose(s[1], [1 / S2, 1.0, 1 / S2], rtol=1e-6)
    assert np.isnan(s[2]).all(), "a user without history cannot be scored"
    weighted = GenreProfile(GenreConfig(rating_weighted=True, center=False)).fit(train, ctx)
    # v weighted: (4*[1,0] + 2*[0,1]) / 6 = [2/3, 1/3]; cos with B = 1/(sqrt(5)/3 * sqrt2) = 3/sqrt10.
    np.testing.assert_allclose(weighted.score([1])[0, 1], 3 / np.sqrt(10), rtol=1e-6)
    # Centred: mean row [2/3, 2/3]; X_A = [1/3,-2/3], X_B = [1/3,1/3], X_C = [-2/3,1/3].
    centred = GenreProfile(GenreConfig(rating_weighted=False, center=True)).fit(train, ctx)
    np.testing.assert_allclose(centred.score([0])[0], [1.0, -1 / np.sqrt(10), -0.8], rtol=1e-5)


def test_genre_profile_matches_history_and_items_without_genres_score_zero() -> None:
    items = ["A", "B", "C", "D"]
    train = interactions([("u", "A", 5.0), ("u", "B", 3.0)], ["u"], items)
    ctx = Context(catalog=catalog(items, [*GENRES3, ()]))
    m = GenreProfile(GenreConfig(center=False)).fit(train, ctx)
    np.testing.assert_allclose(m.score_profile([0, 1], [5.0, 3.0]), m.score([0])[0], rtol=1e-6)
    assert m.score([0])[0, 3] == 0.0
    assert np.isnan(m.score_profile([])).all()
    np.testing.assert_allclose(m.similar_items(np.array([0]), np.array([1, 2])), [[1 / S2, 0.0]], rtol=1e-6)


def test_content_models_need_a_catalogue() -> None:
    train = interactions([("u", "A", 1.0)], ["u"], ITEMS3)
    for name in ("genre", "text", "hybrid"):
        with pytest.raises(ConfigError, match="catalogue"):
            make_model(name).fit(train, Context())


def test_catalogue_in_another_order_is_realigned_and_missing_items_counted() -> None:
    train = interactions([("u", "A", 1.0)], ["u"], ITEMS3)
    shuffled = catalog(["C", "A"], [("y",), ("x",)])  # B is missing, order differs
    with pytest.warns(UserWarning, match="1 of 3 items have no catalogue entry"):
        m = GenreProfile(GenreConfig(center=False)).fit(train, Context(catalog=shuffled))
    np.testing.assert_allclose(m.score([0])[0], [1.0, 0.0, 0.0])


# -- text (fake vectors: the real model is exercised in test_embeddings) ------------------------

VECS = np.array([[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0], [0, 0, 1]], dtype=np.float32)


@pytest.fixture
def fake_text(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    calls: dict[str, object] = {}

    def encode_texts(texts, model_name="all-MiniLM-L6-v2", batch_size=64, progress=None, cache_dir=None):
        calls["texts"], calls["cache_dir"] = list(texts), cache_dir
        return VECS[: len(texts)].copy()

    monkeypatch.setattr(embeddings, "encode_texts", encode_texts)
    monkeypatch.setattr(embeddings, "encode_query", lambda text, model_name="": np.array([0, 0, 1], np.float32))
    return calls


def test_text_profile_is_mean_of_history_vectors(fake_text: dict[str, object], tmp_path: Path) -> None:
    items = ["A", "B", "C", "D"]
    train = interactions([("u", "A", 5.0), ("u", "B", 1.0)], ["u", "v"], items)
    ctx = Context(catalog=catalog(items, [()] * 4, ["ta", "tb", "tc", "td"]), cache_dir=tmp_path)
    m = TextEmbedding(TextConfig(rating_weighted=False, center=False)).fit(train, ctx)
    assert fake_text["texts"] == ["ta", "tb", "tc", "td"]
    assert fake_text["cache_dir"] == tmp_path / "embeddings"
    mean = (VECS[0] + VECS[1]) / 2
    expected = VECS @ mean / np.linalg.norm(mean)
    np.testing.assert_allclose(m.score([0])[0], expected, rtol=1e-6)
    assert np.isnan(m.score([1])).all()
    np.testing.assert_allclose(m.score_profile([0, 1]), expected, rtol=1e-6)
    # Rating-weighted: (5 v_A + 1 v_B) / 6.
    w = TextEmbedding(TextConfig(rating_weighted=True, center=False)).fit(train, ctx)
    p = (5 * VECS[0] + VECS[1]) / 6
    np.testing.assert_allclose(w.score([0])[0], VECS @ p / np.linalg.norm(p), rtol=1e-6)
    np.testing.assert_allclose(m.score_text("space"), [0, 0, 0, 1], atol=1e-7)
    np.testing.assert_allclose(m.item_embeddings(), VECS)
    np.testing.assert_allclose(m.similar_items(np.array([0]), np.array([2, 3])), [[0.6, 0.0]], rtol=1e-6)


def test_text_centering_subtracts_the_catalogue_mean(fake_text: dict[str, object]) -> None:
    items = ["A", "B", "C", "D"]
    train = interactions([("u", "C", 1.0)], ["u"], items)
    m = TextEmbedding(TextConfig(center=True)).fit(train, Context(catalog=catalog(items, [()] * 4)))
    x = VECS - VECS.mean(axis=0)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(m.score([0])[0], x @ x[2], rtol=1e-5, atol=1e-6)


# -- mf ------------------------------------------------------------------------------------------


def test_mf_recovers_a_rank_one_rating_matrix() -> None:
    rng = np.random.default_rng(0)
    n_u, n_i = 30, 20
    a, b = rng.uniform(0, 1, n_u), rng.uniform(0, 1, n_i)
    full = 1.0 + 4.0 * np.outer(a, b)
    seen = rng.uniform(size=full.shape) < 0.7
    users, items = [f"u{i}" for i in range(n_u)], [f"i{j}" for j in range(n_i)]
    rows = [(users[i], items[j], float(full[i, j])) for i, j in zip(*np.nonzero(seen), strict=True)]
    train = interactions(rows, users, items)
    cfg = MFConfig(factors=4, epochs=150, lr=0.02, reg=0.001, batch_size=64, seed=1)
    m = MatrixFactorization(cfg).fit(train)
    pred = m.score(np.arange(n_u))
    held = ~seen
    rmse = float(np.sqrt(np.mean((pred[held] - full[held]) ** 2)))
    baseline = float(np.sqrt(np.mean((full[seen].mean() - full[held]) ** 2)))
    assert rmse < 0.35 * baseline, (rmse, baseline)
    # Folding in user 0's own ratings predicts close to the fitted row.
    cols = np.flatnonzero(seen[0])
    prof = m.score_profile(cols, full[0, cols])
    assert float(np.sqrt(np.mean((prof[held[0]] - full[0, held[0]]) ** 2))) < 0.5 * baseline
    # Same seed, same numbers; another seed, other numbers.
    np.testing.assert_array_equal(MatrixFactorization(cfg).fit(train).score(np.arange(n_u)), pred)
    assert not np.array_equal(
        MatrixFactorization(MFConfig(**{**cfg.as_dict(), "seed": 2})).fit(train).score([0]), pred[:1]
    )


def test_mf_profile_without_ratings_reads_as_liked() -> None:
    train = interactions([("u", "A", 5.0), ("u", "B", 1.0), ("v", "C", 4.0), ("v", "A", 5.0)], ["u", "v"], ITEMS3)
    m = MatrixFactorization(MFConfig(factors=2, epochs=5, batch_size=16)).fit(train)
    liked = m.score_profile([0])
    np.testing.assert_allclose(liked, m.score_profile([0], [5.0]), rtol=1e-6)
    assert np.isfinite(m.score_profile([])).all()


# -- neural and hybrid -------------------------------------------------------------------------


def random_data(n_users: int = 24, n_items: int = 18, seed: int = 3) -> tuple[Interactions, Context]:
    rng = np.random.default_rng(seed)
    users, items = [f"u{i}" for i in range(n_users)], [f"i{j}" for j in range(n_items)]
    cells = rng.uniform(size=(n_users, n_items)) < 0.3
    cells[:, 0] = True  # every user has a history
    cells[-1, :] = False  # ... but the last one: a user with no training items
    rows = [(users[i], items[j], float(rng.integers(1, 6))) for i, j in zip(*np.nonzero(cells), strict=True)]
    genre_pool = ["Drama", "Comedy", "Action"]
    genres = [tuple(g for k, g in enumerate(genre_pool) if (j >> k) & 1) for j in range(n_items)]
    demo = pd.DataFrame(
        {
            "age": [rng.integers(10, 70) if i % 5 else np.nan for i in range(n_users)],
            "gender": [["M", "F", None][i % 3] for i in range(n_users)],
            "occupation": [["writer", "artist"][i % 2] for i in range(n_users)],
        }
    )
    ctx = Context(
        catalog=catalog(items, genres),
        users=UserTable(IdMap(np.array(users, dtype=object)), demo),
    )
    return interactions(rows, users, items), ctx


@pytest.fixture
def fake_item_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def encode_texts(texts, model_name="all-MiniLM-L6-v2", batch_size=64, progress=None, cache_dir=None):
        rng = np.random.default_rng(len(texts))
        v = rng.normal(size=(len(texts), 16)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    monkeypatch.setattr(embeddings, "encode_texts", encode_texts)


FAST = {"factors": 8, "epochs": 4, "batch_users": 8, "batch_pairs": 32, "fold_in_steps": 5}
OFF = {"use_genres": False, "use_text": False, "use_demographics": False, "use_history_text": False}


@pytest.mark.parametrize("loss", ["softmax", "bpr"])
def test_neural_is_deterministic_and_finite(loss: str) -> None:
    train, ctx = random_data()
    cfg = NeuralConfig(loss=loss, **FAST)
    a = NeuralTwoTower(cfg).fit(train, ctx)
    b = NeuralTwoTower(cfg).fit(train, ctx)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(a.score(users), b.score(users))
    assert np.isfinite(a.score(users)).all()
    np.testing.assert_array_equal(a.score_profile([1, 2]), b.score_profile([1, 2]))
    assert np.isfinite(a.score_profile([1, 2])).all() and np.isfinite(a.score_profile([])).all()
    other = NeuralTwoTower(NeuralConfig(loss=loss, **{**FAST, "seed": 7})).fit(train, ctx)
    assert not np.array_equal(other.score(users), a.score(users))


def test_neural_learns_a_block_structure() -> None:
    # Two groups of users, each watching its own half of the catalogue: a held-out item of the own
    # half must outrank every item of the other half.
    users, items = [f"u{i}" for i in range(20)], [f"i{j}" for j in range(10)]
    rows = [(u, items[j], 1.0) for k, u in enumerate(users) for j in range(10) if (j < 5) == (k < 10) and j != k % 5]
    train = interactions(rows, users, items)
    m = NeuralTwoTower(NeuralConfig(factors=8, epochs=60, batch_users=20, reg=0.01)).fit(train)
    s = m.score([0, 10])
    assert s[0, 0 % 5] > s[0, 5:].max()
    assert s[1, 5 + 0] > s[1, :5].max()
    prof = m.score_profile([1, 2, 3])
    assert prof[:5].min() > prof[5:].max()


def test_hybrid_fits_with_features_on_and_off(fake_item_text: None) -> None:
    train, ctx = random_data()
    users = np.arange(train.n_users)
    on = HybridTwoTower(HybridConfig(**FAST)).fit(train, ctx)
    off = HybridTwoTower(HybridConfig(**FAST, **OFF)).fit(train, ctx)
    for m in (on, off):
        s = m.score(users)
        assert s.shape == (train.n_users, train.n_items) and np.isfinite(s).all()
        assert np.isfinite(m.score_profile([0, 3])).all()
    assert not np.allclose(on.score(users), off.score(users))
    np.testing.assert_array_equal(on.score(users), HybridTwoTower(HybridConfig(**FAST)).fit(train, ctx).score(users))
    # With every feature off, the hybrid is the ids-only two-tower: the same numbers as ``neural`` to float32
    # rounding (another code path may sum in another order: docs/numerics.md).
    neural = NeuralTwoTower(NeuralConfig(**FAST)).fit(train, ctx)
    assert_scores_close(off.score(users), neural.score(users))
    assert_scores_close(off.score_profile([0, 3]), neural.score_profile([0, 3]))


def test_hybrid_each_feature_group_alone(fake_item_text: None) -> None:
    train, ctx = random_data()
    for flag in OFF:
        m = HybridTwoTower(HybridConfig(**FAST, **{**OFF, flag: True})).fit(train, ctx)
        assert np.isfinite(m.score(np.arange(train.n_users))).all(), flag


def test_hybrid_without_user_table_warns(fake_item_text: None) -> None:
    train, ctx = random_data()
    with pytest.warns(UserWarning, match="no user table"):
        HybridTwoTower(HybridConfig(**FAST)).fit(train, Context(catalog=ctx.catalog))


def test_demographic_buckets_with_missing_values() -> None:
    assert [age_bucket(a) for a in (7, 18, 24, 25, 49.5, 56, 90)] == [
        "<18",
        "18-24",
        "18-24",
        "25-34",
        "45-49",
        "56+",
        "56+",
    ]
    assert age_bucket(None) == age_bucket(np.nan) == age_bucket("old") == age_bucket(-3) == "unknown"
    table = UserTable(
        IdMap(np.array(["1", "2"], dtype=object)),
        pd.DataFrame({"age": [30, np.nan], "gender": ["F", ""]}),  # no occupation column
    )
    onehot, names = demographic_columns(table, IdMap(np.array(["2", "1", "9"], dtype=object)))
    assert onehot.sum(axis=1).tolist() == [3.0, 3.0, 3.0], "one bucket per column per user"
    as_dict = [{n for n, v in zip(names, row, strict=True) if v} for row in onehot]
    assert as_dict[0] == {"age=unknown", "gender=unknown", "occupation=unknown"}
    assert as_dict[1] == {"age=25-34", "gender=f", "occupation=unknown"}
    assert as_dict[2] == {"age=unknown", "gender=unknown", "occupation=unknown"}  # "9" is not in the table


def test_concurrent_fits_match_sequential_and_restore_threads() -> None:
    train, ctx = random_data()
    cfg = NeuralConfig(**FAST)
    before = torch.get_num_threads()
    alone = NeuralTwoTower(cfg).fit(train, ctx).score(np.arange(train.n_users))
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(lambda: NeuralTwoTower(cfg).fit(train, ctx).score(np.arange(train.n_users))) for _ in range(2)
        ]
        results = [f.result() for f in futures]
    for r in results:
        assert_scores_close(r, alone)  # threads may pick other kernels: equal to float32 rounding
    assert torch.get_num_threads() == before


def test_cold_items_are_placed_by_features_alone(fake_item_text: None) -> None:
    train, ctx = random_data()
    # Rebuild with one extra catalogue item that nobody interacted with.
    frame = train.to_frame()
    items = [*train.items.ids, "cold"]
    cold_train = interactions(
        list(frame[["user", "item", "value"]].itertuples(index=False)), list(train.users.ids), items
    )
    cat = catalog(items, [*ctx.catalog.genres, ("Drama",)])
    cold_ctx = Context(catalog=cat, users=ctx.users)
    neural = NeuralTwoTower(NeuralConfig(**FAST)).fit(cold_train, cold_ctx)
    np.testing.assert_array_equal(neural.item_embeddings()[-1], 0.0)
    hybrid = HybridTwoTower(HybridConfig(**FAST)).fit(cold_train, cold_ctx)
    v = hybrid.item_embeddings()
    assert np.abs(v[-1]).sum() > 0, "the cold item's features must place it"
    assert np.isfinite(hybrid.score(np.arange(cold_train.n_users))).all()


def test_content_models_refuse_a_catalogue_with_nothing_to_read():
    """Without titles or genres (interactions only), text and genre say so instead of fitting noise."""
    import pandas as pd
    import pytest as _pytest

    from reco_core.data import Interactions, ItemCatalog
    from reco_core.errors import DataError
    from reco_core.models import Context, make_model

    frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["1", "2", "2"], "value": [1.0, 1.0, 1.0]})
    train = Interactions.from_frame(frame)
    context = Context(catalog=ItemCatalog.bare(train.items))
    with _pytest.raises(DataError, match="needs item titles"):
        make_model("text").fit(train, context)
    with _pytest.raises(DataError, match="needs item genres"):
        make_model("genre").fit(train, context)
