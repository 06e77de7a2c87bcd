"""reco_core.embeddings: disk cache (hit, corruption, truncation, unwritable folder), dedup, progress.

Most tests replace the sentence model with a small fake so they run in milliseconds; one test
loads the packaged all-MiniLM-L6-v2 to check real vectors (shape, unit length, determinism).
"""

from __future__ import annotations

import hashlib
import warnings
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
