"""reco_core.embeddings: disk cache (hit, corruption, truncation, unwritable folder), dedup, progress.

Most tests replace the sentence model with a small fake so they run in milliseconds; one test
loads the packaged all-MiniLM-L6-v2 to check real vectors (shape, unit length, determinism).
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from reco_core import embeddings
from reco_core.errors import ConfigError, DataError

DIM = 8


class FakeModel:
    """Deterministic stand-in for SentenceTransformer: a vector from the text's sha256."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def get_embedding_dimension(self) -> int:
        return DIM

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        self.encoded.extend(texts)
        out = np.array(
            [np.frombuffer(hashlib.sha256(t.encode()).digest()[:DIM], dtype=np.uint8) for t in texts], dtype=np.float32
        )
        out = out - 127.5
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _refuse(_: str) -> object:
    raise AssertionError("the model was loaded although the cache should have answered")


@pytest.fixture(autouse=True)
def _fresh_memory():
    embeddings.clear_memory_cache()
    yield
    embeddings.clear_memory_cache()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeModel:
    model = FakeModel()
    monkeypatch.setattr(embeddings, "_load_model", lambda name: model)
    return model


TEXTS = ["Toy Story (1995). Genres: Animation", "GoldenEye (1995). Genres: Action", "Heat (1995)"]


def _files(folder: Path) -> tuple[Path, Path]:
    (npy,) = folder.glob("*.npy")
    return npy, npy.with_suffix(".json")


def test_cache_hit_avoids_the_model(tmp_path: Path, fake: FakeModel, monkeypatch: pytest.MonkeyPatch) -> None:
    first = embeddings.encode_texts(TEXTS, cache_dir=tmp_path)
    assert first.shape == (3, DIM) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    embeddings.clear_memory_cache()
    monkeypatch.setattr(embeddings, "_load_model", _refuse)
    seen: list[float] = []
    again = embeddings.encode_texts(TEXTS, cache_dir=tmp_path, progress=lambda f, m: seen.append(f))
    np.testing.assert_array_equal(first, again)
    assert seen == [1.0]
    assert not list(tmp_path.glob("*.tmp")), "temporary files must be renamed or removed"


def test_memory_cache_returns_copies(tmp_path: Path, fake: FakeModel) -> None:
    a = embeddings.encode_texts(TEXTS, cache_dir=tmp_path)
    a[:] = 0.0
    b = embeddings.encode_texts(TEXTS, cache_dir=tmp_path)
    assert np.abs(b).sum() > 0, "a caller's edit leaked into the cache"


@pytest.mark.parametrize("damage", ["flip", "truncate", "no_sidecar", "garbage_sidecar"])
def test_damaged_cache_is_recomputed(tmp_path: Path, fake: FakeModel, damage: str) -> None:
    good = embeddings.encode_texts(TEXTS, cache_dir=tmp_path)
    embeddings.clear_memory_cache()
    npy, meta = _files(tmp_path)
    raw = npy.read_bytes()
    if damage == "flip":
        npy.write_bytes(raw[:-5] + bytes([raw[-5] ^ 0xFF]) + raw[-4:])
    elif damage == "truncate":
        npy.write_bytes(raw[: len(raw) // 2])
    elif damage == "no_sidecar":
        meta.unlink()
    else:
        meta.write_text("{not json")
    fake.encoded.clear()
    with pytest.warns(embeddings.CacheWarning, match="damaged"):
        fixed = embeddings.encode_texts(TEXTS, cache_dir=tmp_path)
    np.testing.assert_array_equal(fixed, good)
    assert sorted(fake.encoded) == sorted(TEXTS), "the damaged entry must be recomputed by the model"
    # The entry was rewritten: a fresh process (empty memory) reads it without warnings.
    embeddings.clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(embeddings.encode_texts(TEXTS, cache_dir=tmp_path), good)


def test_unwritable_folder_falls_back_to_memory(tmp_path: Path, fake: FakeModel) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    folder = blocker / "embeddings"  # cannot be created, even by root
    with pytest.warns(embeddings.CacheWarning, match="not writable"):
        first = embeddings.encode_texts(TEXTS, cache_dir=folder)
    fake.encoded.clear()
    second = embeddings.encode_texts(TEXTS, cache_dir=folder)
    np.testing.assert_array_equal(first, second)
    assert fake.encoded == [], "the memory cache should answer the second call"


def test_identical_texts_encoded_once_and_equal(tmp_path: Path, fake: FakeModel) -> None:
    texts = ["b", "a", "b", "a", "c"]
    out = embeddings.encode_texts(texts, cache_dir=tmp_path, batch_size=2)
    assert sorted(fake.encoded) == ["a", "b", "c"]
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[1], out[3])
    assert not np.array_equal(out[0], out[1])


def test_progress_reports_each_batch(tmp_path: Path, fake: FakeModel) -> None:
    seen: list[float] = []
    embeddings.encode_texts(
        [f"text {i}" for i in range(5)], cache_dir=tmp_path, batch_size=2, progress=lambda f, m: seen.append(f)
    )
    assert seen == pytest.approx([0.4, 0.8, 1.0])


def test_key_covers_whole_list_and_model() -> None:
    assert embeddings.texts_key(["ab", "c"]) != embeddings.texts_key(["a", "bc"])
    assert embeddings.texts_key(["a", "b"]) != embeddings.texts_key(["b", "a"])
    assert embeddings.texts_key(["a"]) == embeddings.texts_key(["a"])


def test_bad_arguments_are_named() -> None:
    with pytest.raises(DataError, match=r"texts\[1\]"):
        embeddings.encode_texts(["ok", None])  # type: ignore[list-item]
    with pytest.raises(DataError, match="not one string"):
        embeddings.encode_texts("one string")
    with pytest.raises(ConfigError, match="batch_size=0"):
        embeddings.encode_texts(["a"], batch_size=0)
    with pytest.raises(ConfigError, match="unknown text model"):
        embeddings.encode_texts(["a"], model_name="no-such-model")
    with pytest.raises(ConfigError, match="empty"):
        embeddings.encode_query("   ")


def test_real_model_vectors_are_deterministic(tmp_path: Path) -> None:
    texts = ["Toy Story (1995). Genres: Animation, Children's, Comedy", "Heat (1995). Genres: Action, Crime"]
    a = embeddings.encode_texts([*texts, texts[0]], cache_dir=tmp_path / "a")
    embeddings.clear_memory_cache()
    b = embeddings.encode_texts([*texts, texts[0]], cache_dir=tmp_path / "b")  # a cold run in a new folder
    assert a.shape == (3, 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], a[2])
    q = embeddings.encode_query(texts[0])
    assert q.shape == (384,)
    np.testing.assert_allclose(q, a[0], atol=1e-5)
    # Related texts are closer than unrelated ones: the vectors mean something.
    kids = embeddings.encode_query("an animated film for children")
    assert float(kids @ a[0]) > float(kids @ a[1])


# -- planted and hostile cache entries ------------------------------------------------------------


def _plant(npy: Path, meta: Path, arr: np.ndarray) -> None:
    """Write ``arr`` as the cache entry with a sidecar recomputed to match it, as an attacker could."""
    np.save(npy, arr, allow_pickle=False)
    info = {"model": embeddings.DEFAULT_MODEL, "shape": list(arr.shape), "dtype": str(arr.dtype)}
    info["sha256"] = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
    meta.write_text(json.dumps(info))


def _assert_rebuilt(tmp_path: Path, fake: FakeModel, texts: list[str], good: np.ndarray, match: str) -> None:
    """One call warns once (one line) and re-encodes; the next cold call reads the rewritten entry silently."""
    fake.encoded.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fixed = embeddings.encode_texts(texts, cache_dir=tmp_path)
    assert [w.category for w in caught] == [embeddings.CacheWarning], [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert "\n" not in message and len(message) < 600, message
    assert re.search(match, message), message
    np.testing.assert_array_equal(fixed, good)
    assert sorted(fake.encoded) == sorted(set(texts)), "the planted entry must be re-encoded by the model"
    embeddings.clear_memory_cache()
    fake.encoded.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(embeddings.encode_texts(texts, cache_dir=tmp_path), good)
    assert fake.encoded == [], "the rebuilt entry must be served from the disk cache"


@pytest.mark.parametrize("sidecar", ["untouched", "claims_the_same_shape"])
def test_a_header_claiming_a_huge_shape_is_refused_before_reading(
    tmp_path: Path, fake: FakeModel, sidecar: str
) -> None:
    good = embeddings.encode_texts(TEXTS, cache_dir=tmp_path)
    embeddings.clear_memory_cache()
    npy, meta = _files(tmp_path)
    huge = (10**12, 384)  # 1.4 PiB of float32: reading it raised MemoryError
    with npy.open("wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": huge})
        fh.write(b"\0" * 64)
    if sidecar != "untouched":
        info = json.loads(meta.read_text())
        meta.write_text(json.dumps({**info, "shape": list(huge)}))
    _assert_rebuilt(tmp_path, fake, TEXTS, good, r"shape [\[(]1000000000000, 384[\])] is not")


@pytest.mark.parametrize("depth", [100_000, 1_500])  # over the size bound; under it but too deep to parse
def test_a_deeply_nested_sidecar_is_refused_before_parsing(tmp_path: Path, fake: FakeModel, depth: int) -> None:
    good = embeddings.encode_texts(TEXTS, cache_dir=tmp_path)
    embeddings.clear_memory_cache()
    _, meta = _files(tmp_path)
    meta.write_text("[" * depth + "]" * depth)
    _assert_rebuilt(tmp_path, fake, TEXTS, good, "sidecar")


PLANTS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    # name: (what the warning names, how to make the planted array from the good one)
    "zeros": ("norm", lambda good: np.zeros_like(good)),
    "unnormalised": ("norm", lambda good: good * 2.0),
    "wrong_columns": ("shape", lambda good: (np.hstack([good, good]) / np.sqrt(2.0)).astype(np.float32)),
    "too_few_rows": ("shape", lambda good: good[:-1]),
    "all_nan": ("finite", lambda good: np.full_like(good, np.nan)),
    "one_inf": ("finite", lambda good: np.where(np.arange(good.size).reshape(good.shape) == 0, np.inf, good)),
    "float64": ("dtype", lambda good: good.astype(np.float64)),
    "fortran_order": ("order", lambda good: np.asfortranarray(good)),
}


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_a_planted_array_with_a_matching_sidecar_is_rebuilt(tmp_path: Path, fake: FakeModel, plant: str) -> None:
    good = embeddings.encode_texts(TEXTS, cache_dir=tmp_path)
    embeddings.clear_memory_cache()
    npy, meta = _files(tmp_path)
    match, make = PLANTS[plant]
    planted = np.asarray(make(good))
    _plant(npy, meta, planted)
    _assert_rebuilt(tmp_path, fake, TEXTS, good, match)


def test_planted_rows_that_differ_for_identical_texts_are_rebuilt(tmp_path: Path, fake: FakeModel) -> None:
    texts = [*TEXTS, TEXTS[0]]
    good = embeddings.encode_texts(texts, cache_dir=tmp_path)
    embeddings.clear_memory_cache()
    npy, meta = _files(tmp_path)
    planted = good.copy()
    planted[3] = good[1]  # unit length, right shape, but not the vector of texts[3] == texts[0]
    _plant(npy, meta, planted)
    _assert_rebuilt(tmp_path, fake, texts, good, "identical texts")


def test_vectors_that_would_not_pass_the_checks_are_not_written(
    tmp_path: Path, fake: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that returns a zero vector: kept in memory, never written (it would be rebuilt every run)."""
    real_encode = fake.encode

    def encode(texts: list[str], **kw: object) -> np.ndarray:
        out = real_encode(texts, **kw)
        out[[t == "Heat (1995)" for t in texts]] = 0.0
        return out

    monkeypatch.setattr(fake, "encode", encode)
    with pytest.warns(embeddings.CacheWarning, match="not written"):
        out = embeddings.encode_texts(TEXTS, cache_dir=tmp_path)
    assert not np.any(out[2]) and np.all(np.linalg.norm(out[:2], axis=1) > 0.99)
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob("*.json"))
