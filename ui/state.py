"""The dashboard's state: the one typed ``LabConfig``, and the only place that knows widget, URL and session keys.

Every sidebar widget has a key, and that key is also its URL query-parameter name (Streamlit 1.67 binds
a keyed widget to the URL with ``bind="query-params"``). The mapping between a ``LabConfig`` and the
widget values lives here, once, so that the sidebar, the URL, the configuration JSON and the tests all
agree:

    LabConfig  --widget_values()-->  {key: value}  --encode-->  query string
    LabConfig  <--config_from_values()--  {key: value}  <--decode--  query string

Keys (URL names): ``data`` dataset, ``pos`` positives threshold ("any" or a rating), ``split``,
``test`` test fraction, ``nlast`` leave-last n, ``kcore``, ``seed``, ``k``, ``user_models`` /
``item_models`` / ``hybrid_models`` (the members, by kind), ``fusion`` method, ``norm`` normaliser,
``w.<model>`` one weight per member, ``<model>.<param>`` a member's hyperparameter, and
``<method>.<param>`` a fusion method's declared parameter (``rrf.rrf_k``; links written before it was
declared say ``rrf_k``, which is still read), and the re-ranker after fusion: ``rerank`` (its label, or
"None"), ``rerank.lambda``, ``rerank.sim`` (MMR's similarity) and ``rerank.depth`` (fused candidates).

The configuration itself is the engine's ``reco_core.config.ExperimentConfig`` (``LabConfig`` here), with its
JSON; this module adds only what the dashboard's widgets can hold (``check_for_dashboard``).
A value equal to its default is left out of the URL, as Streamlit does for bound widgets.

Streamlit notes (1.67, verified in a real browser): bound widgets keep a value the person changed when
they switch pages, but a value that only came from the URL on first load is dropped by the page link;
``keep_across_pages`` re-asserts such values from session state before the widgets are drawn.
Widget values cannot be set after the widget is drawn in a run, so other pages *queue* a configuration
or weights (``queue_config`` / ``queue_weights``) and the sidebar applies the queue before drawing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reco_core import config as engine_config
from reco_core.config import ExperimentConfig, FusionSpec, MemberSpec, Protocol, split_names
from reco_core.data import Dataset
from reco_core.errors import ConfigError, quote
from reco_core.fusion import DEFAULT_TOP_N, METHODS, NORMALISERS
from reco_core.models import MODELS, get_spec
from reco_core.models.base import ModelKind, ParamSpec

# ------------------------------------------------------------------------------------------ widget keys

K_DATASET = "data"
K_POSITIVES = "pos"
K_SPLIT = "split"
K_TEST_FRAC = "test"
K_N_LAST = "nlast"
K_KCORE = "kcore"
K_SEED = "seed"
K_K = "k"
K_METHOD = "fusion"
K_NORMALISER = "norm"
K_RERANK = "rerank"  # the re-ranker after fusion ("none" or a reco_core.rerank.RERANKERS name)
K_RERANK_LAMBDA = "rerank.lambda"
K_RERANK_SIM = "rerank.sim"
K_RERANK_DEPTH = "rerank.depth"
RERANK_NONE = "none"
LEGACY_KEYS = {"rrf_k": "rrf.rrf_k"}  # URL names from before a parameter was declared by its method
MEMBER_KEYS: dict[ModelKind, str] = {"user": "user_models", "item": "item_models", "hybrid": "hybrid_models"}
KIND_LABELS: dict[ModelKind, str] = {
    "user": "User models (collaborative)",
    "item": "Item models (content)",
    "hybrid": "Hybrid models (feature-level fusion)",
}

# Session-state keys that are not widgets (namespaced so they never collide with a widget key).
UPLOAD_KEY = "lab:uploaded"  # an UploadedData, set by the "Your data" page
_QUEUE_KEY = "lab:queued"  # widget values to apply before the sidebar is drawn
_LAST_CONFIG_KEY = "lab:config"  # the LabConfig of the last sidebar render
_LAST_PROTOCOL_KEY = "lab:protocol"  # its protocol, kept even when no member is chosen
_NOTICE_KEY = "lab:notice"  # one message to show once on the next render (e.g. "weights loaded")
_PAGE_PREFIX = "page:"  # remember()/recall() values of a page

# ------------------------------------------------------------------------------------------ defaults

DATASETS: tuple[str, ...] = ("ml-100k", "ml-1m", "synthetic-1m")
DEFAULT_DATASET = "ml-100k"
DATASET_UPLOAD = "your-data"  # the option shown when an upload is in session state
DATASET_LABELS = {
    "ml-100k": "MovieLens 100K",
    "ml-1m": "MovieLens 1M",
    "synthetic-1m": "Synthetic, MovieLens-1M size",
    DATASET_UPLOAD: "Your data",
}
POSITIVES: tuple[str, ...] = ("any", "3", "4", "5")
SPLITS: tuple[str, ...] = split_names()  # from the splitters' registry
DEFAULT_MEMBERS: tuple[str, ...] = ("als", "itemknn", "text")
DEFAULT_WEIGHTS: dict[str, float] = {"als": 0.4, "itemknn": 0.4, "text": 0.2}
FALLBACK_WEIGHT = 0.3  # the slider's starting value for a member without its own default
DEFAULT_METHOD = "wsum"
DEFAULT_NORMALISER = "minmax"
DEFAULT_K = 10
MAX_K = 50  # the live session keeps each member's top-N for N >= this
WEIGHT_STEP = 0.05
HIDDEN_PARAMS = frozenset({"seed"})  # one seed for the whole lab, set in the protocol
# The values the sidebar's protocol widgets can hold (ui/sidebar.py draws them with these bounds). An uploaded
# configuration outside them is refused: a slider raises on such a value, a number input resets it silently.
TEST_FRAC_RANGE = (0.05, 0.5)
N_LAST_RANGE = (1, 20)
KCORE_RANGE = (0, 50)
SEED_RANGE = (0, 2**31 - 1)

_BASE_DEFAULTS: dict[str, Any] = {
    K_DATASET: DEFAULT_DATASET,
    K_POSITIVES: "any",
    K_SPLIT: "random",
    K_TEST_FRAC: 0.2,
    K_N_LAST: 1,
    K_KCORE: 0,
    K_SEED: 42,
    K_K: DEFAULT_K,
    K_METHOD: DEFAULT_METHOD,
    K_NORMALISER: DEFAULT_NORMALISER,
    K_RERANK: RERANK_NONE,
    K_RERANK_LAMBDA: engine_config.DEFAULT_RERANK_LAMBDA,
    K_RERANK_SIM: "genre",
    K_RERANK_DEPTH: engine_config.DEFAULT_RERANK_CANDIDATES,
}


def weight_key(model: str) -> str:
    """Widget/URL key of a member's weight slider."""
    return f"w.{model}"


def param_key(model: str, name: str) -> str:
    """Widget/URL key of one hyperparameter of a member."""
    return f"{model}.{name}"


def default_weight(model: str) -> float:
    return DEFAULT_WEIGHTS.get(model, FALLBACK_WEIGHT)


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


def method_label(name: str) -> str:
    return METHODS[name].label if name in METHODS else name


def normaliser_label(name: str) -> str:
    return NORMALISERS[name].label if name in NORMALISERS else name


def reranker_label(name: str) -> str:
    from reco_core.rerank import RERANKERS

    return RERANKERS[name].label if name in RERANKERS else "None" if name == RERANK_NONE else name


def reranker_names() -> tuple[str, ...]:
    """The re-ranker choices: none first, then the engine's re-rankers in their registry's order."""
    from reco_core.rerank import RERANKERS

    return (RERANK_NONE, *RERANKERS)


# Selectboxes drawn with these labels put the label (not the name) in the URL; the codec follows.
FORMATTERS = {
    K_DATASET: dataset_label,
    K_METHOD: method_label,
    K_NORMALISER: normaliser_label,
    K_RERANK: reranker_label,
}


def _options(key: str) -> tuple[str, ...]:
    """The choices of a formatted selectbox, read from the registries now (a method registered after import too)."""
    return {
        K_DATASET: (*DATASETS, DATASET_UPLOAD),
        K_METHOD: tuple(METHODS),
        K_NORMALISER: tuple(NORMALISERS),
        K_RERANK: reranker_names(),
    }[key]


def models_of_kind(kind: ModelKind) -> list[str]:
    """Registered model names of one kind, in registry order."""
    get_spec("pop")  # importing the models package fills the registry
    return [name for name, spec in MODELS.items() if spec.kind == kind]


def member_params(model: str) -> list[ParamSpec]:
    """The hyperparameters the sidebar shows for a model (its config fields minus the shared seed)."""
    return [p for p in get_spec(model).config_cls.params() if p.name not in HIDDEN_PARAMS]


def method_param_keys() -> dict[str, tuple[str, ParamSpec]]:
    """Widget/URL key -> (method, parameter) for every parameter a fusion method declares."""
    return {param_key(name, ps.name): (name, ps) for name, m in METHODS.items() for ps in m.params}


def default_values() -> dict[str, Any]:
    """Every fixed widget's default value (member and weight keys included for the default members)."""
    out = dict(_BASE_DEFAULTS)
    for kind, key in MEMBER_KEYS.items():
        known = set(models_of_kind(kind))
        out[key] = [m for m in DEFAULT_MEMBERS if m in known]
    return out


# ------------------------------------------------------------------------------------------ the config

# The configuration is the engine's: protocol, members with weights, and the FusionSpec (method, normaliser,
# k, the method's declared parameters). Pages read ``cfg.method``, ``cfg.k``, ``cfg.fusion.param(...)``.
LabConfig = ExperimentConfig


def check_for_dashboard(cfg: LabConfig) -> LabConfig:
    """``cfg`` if the sidebar's widgets can hold every value of it, else ConfigError naming the field.

    A slider raises on a value outside its range and a number input or selectbox resets it silently, so a
    loaded configuration (a file, a saved snapshot) is checked here before it is queued into the widgets:
    each protocol field by ``PROTOCOL_FIELDS``, and k up to ``MAX_K``.
    """
    for name, check in PROTOCOL_FIELDS.items():
        check(getattr(cfg.protocol, name))
    if cfg.k > MAX_K:
        raise ConfigError(f"k={cfg.k!r} is not valid: choose a whole number from 1 to {MAX_K}")
    if cfg.rerank is not None and cfg.rerank.candidates > MAX_K:
        raise ConfigError(
            f"configuration field rerank.candidates={cfg.rerank.candidates} is more than the dashboard's {MAX_K}:"
            f" give a number from k to {MAX_K}"
        )
    return cfg


def config_from_json(text: str | bytes) -> LabConfig:
    """A configuration JSON (the Fusion Lab's export, a snapshot, ``--dump-config``) as the dashboard takes it."""
    return check_for_dashboard(engine_config.loads(text, default_weight))


def to_query_params(cfg: LabConfig) -> dict[str, str | list[str]]:
    """The URL query parameters that reproduce this configuration (defaults left out)."""
    return encode_values(widget_values(cfg))


def config_from_query_params(
    params: Mapping[str, str | Sequence[str]], uploaded: UploadedData | None = None
) -> LabConfig:
    """Inverse of ``to_query_params``; missing keys take their defaults, bad values raise ConfigError."""
    return config_from_values(decode_values(params), uploaded)


def _protocol_error(name: str, value: Any, fix: str) -> ConfigError:
    return ConfigError(f"configuration field protocol.{name}={quote(value)} is not valid: {fix}")


def _whole_in(name: str, low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _protocol_error(name, value, f"give a whole number from {low} to {high:,}")
        return value

    return check


def _number_in(name: str, low: float, high: float, low_open: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not (low < value if low_open else low <= value) or value > high:
            interval = f"above {low:g} and up to {high:g}" if low_open else f"from {low:g} to {high:g}"
            raise _protocol_error(name, value, f"give a number {interval}")
        return float(value)

    return check


def _dataset_field(value: Any) -> str:
    if not isinstance(value, str) or not (value in DATASETS or value.startswith("upload:")):
        raise _protocol_error("dataset", value, f"choose one of {', '.join(DATASETS)} (or data uploaded here)")
    return value


def _threshold_field(value: Any) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or f"{value:g}" not in POSITIVES:
        raise _protocol_error("threshold", value, f"give null (every rating) or one of {', '.join(POSITIVES[1:])}")
    return float(value)


def _split_field(value: Any) -> str:
    if not isinstance(value, str) or value not in SPLITS:
        raise _protocol_error("split", value, f"choose one of {', '.join(SPLITS)}")
    return value


def _data_dir_field(value: Any) -> None:
    # The dashboard never takes a folder path from a person: data comes from the server's RECO_DATA_DIR.
    if value is not None:
        raise _protocol_error(
            "data_dir", value, "the dashboard reads data only from the server's own folder; remove this field"
        )
    return None


# Protocol field -> its check for an uploaded configuration; a field missing here is refused as unknown.
PROTOCOL_FIELDS: dict[str, Callable[[Any], Any]] = {
    "dataset": _dataset_field,
    "data_dir": _data_dir_field,
    "threshold": _threshold_field,
    "kcore": _whole_in("kcore", *KCORE_RANGE),
    "split": _split_field,
    "test_frac": _number_in("test_frac", *TEST_FRAC_RANGE),
    "n_last": _whole_in("n_last", *N_LAST_RANGE),
    "seed": _whole_in("seed", *SEED_RANGE),
    "valid_frac": _number_in("valid_frac", 0.0, 0.5, low_open=True),
}


# ------------------------------------------------------------------------------------------ uploads


@dataclass(frozen=True)
class UploadedData:
    """A dataset built from the person's files; ``content_hash`` (of the files' bytes and column map) keys caches."""

    dataset: Dataset
    content_hash: str
    name: str = "your data"

    @property
    def protocol_name(self) -> str:
        """What ``Protocol.dataset`` holds for this upload (cache keys change when the content does)."""
        return f"upload:{self.content_hash[:16]}"


# ------------------------------------------------------------------------------------------ values <-> config


def widget_values(cfg: LabConfig) -> dict[str, Any]:
    """Every widget value that reproduces ``cfg`` (including ones equal to their default)."""
    p = cfg.protocol
    dataset = DATASET_UPLOAD if p.dataset.startswith("upload:") else p.dataset
    out: dict[str, Any] = {
        K_DATASET: dataset,
        K_POSITIVES: "any" if p.threshold is None else f"{p.threshold:g}",
        K_SPLIT: p.split,
        K_TEST_FRAC: float(p.test_frac),
        K_N_LAST: int(p.n_last),
        K_KCORE: int(p.kcore),
        K_SEED: int(p.seed),
        K_K: int(cfg.k),
        K_METHOD: cfg.method,
        K_NORMALISER: cfg.normaliser,
    }
    rr = cfg.rerank
    out[K_RERANK] = rr.method if rr is not None else RERANK_NONE
    out[K_RERANK_LAMBDA] = float(rr.lam) if rr is not None else engine_config.DEFAULT_RERANK_LAMBDA
    out[K_RERANK_SIM] = rr.similarity if rr is not None else "genre"
    out[K_RERANK_DEPTH] = int(rr.candidates) if rr is not None else engine_config.DEFAULT_RERANK_CANDIDATES
    for name, value in cfg.fusion.params:
        out[param_key(cfg.method, name)] = value
    for kind, key in MEMBER_KEYS.items():
        out[key] = [m.model for m in cfg.members if get_spec(m.model).kind == kind]
    for m, w in zip(cfg.members, cfg.weights, strict=True):
        out[weight_key(m.model)] = float(w)
        given = dict(m.params)
        for ps in member_params(m.model):
            out[param_key(m.model, ps.name)] = given.get(ps.name, ps.default)
    return out


def protocol_from_values(values: Mapping[str, Any], uploaded: UploadedData | None = None) -> Protocol:
    """The data protocol described by widget values (missing keys take defaults); ConfigError if invalid."""
    d = default_values()
    get = lambda key: values.get(key, d.get(key))  # noqa: E731
    dataset = str(get(K_DATASET))
    data_name = dataset
    if dataset == DATASET_UPLOAD:
        if uploaded is None:
            raise ConfigError("'Your data' is selected but nothing is uploaded: upload files on the Your data page")
        data_name = uploaded.protocol_name
    elif dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    pos = str(get(K_POSITIVES))
    if pos not in POSITIVES and not _is_number(pos):
        raise ConfigError(f"positives={pos!r} is not valid: choose 'any' or a rating such as 4")
    split = str(get(K_SPLIT))
    if split not in SPLITS:
        raise ConfigError(f"split={split!r} is not valid: choose one of {', '.join(SPLITS)}")
    test_frac = float(get(K_TEST_FRAC))
    if not 0.0 < test_frac < 1.0:
        raise ConfigError(f"test fraction {test_frac!r} is not valid: choose a fraction between 0 and 1, e.g. 0.2")
    return Protocol(
        dataset=data_name,
        threshold=None if pos == "any" else float(pos),
        kcore=int(get(K_KCORE)),
        split=split,
        test_frac=test_frac,
        n_last=int(get(K_N_LAST)),
        seed=int(get(K_SEED)),
    )


def config_from_values(values: Mapping[str, Any], uploaded: UploadedData | None = None) -> LabConfig:
    """Build the LabConfig from widget values (missing keys take defaults); ConfigError if invalid."""
    d = default_values()
    get = lambda key: values.get(key, d.get(key))  # noqa: E731
    protocol = protocol_from_values(values, uploaded)
    members, weights = [], []
    for kind, key in MEMBER_KEYS.items():
        names = get(key) or []
        if isinstance(names, str):
            names = [names]
        known = set(models_of_kind(kind))
        for name in names:
            if name not in known:
                raise ConfigError(
                    f"{key} lists {name!r}, which is not a {kind} model: choose from {', '.join(sorted(known))}"
                )
            params = {}
            for ps in member_params(name):
                v = values.get(param_key(name, ps.name), ps.default)
                v = _coerce(v, ps)
                if v != ps.default:
                    params[ps.name] = v
            members.append(MemberSpec.of(name, params))
            weights.append(float(values.get(weight_key(name), default_weight(name))))
    k = int(get(K_K))
    if not 1 <= k <= MAX_K:
        raise ConfigError(f"k={k!r} is not valid: choose a whole number from 1 to {MAX_K}")
    method = str(get(K_METHOD))
    if method not in METHODS:
        raise ConfigError(f"unknown fusion method {method!r}: choose one of {', '.join(METHODS)}")
    params = {ps.name: _coerce(values.get(param_key(method, ps.name), ps.default), ps) for ps in METHODS[method].params}
    fusion = FusionSpec(
        method=method,
        normaliser=str(get(K_NORMALISER)),
        k=k,
        top_n=DEFAULT_TOP_N,
        seed=protocol.seed,
        params=tuple(params.items()),
    )
    return LabConfig(
        protocol=protocol, members=tuple(members), weights=tuple(weights), fusion=fusion, rerank=_rerank(get)
    )


def _rerank(get: Callable[[str], Any]) -> engine_config.RerankSpec | None:
    """The re-ranker the widget values describe (None for "none"); ConfigError naming a bad value."""
    name = str(get(K_RERANK))
    if name == RERANK_NONE:
        return None
    depth = _parse_float(K_RERANK_DEPTH, str(get(K_RERANK_DEPTH)))
    if not depth.is_integer() or not 1 <= depth <= MAX_K:
        raise ConfigError(
            f"re-rank depth {get(K_RERANK_DEPTH)!r} is not valid: choose a whole number from k to {MAX_K}"
        )
    return engine_config.RerankSpec(
        name,
        lam=_parse_float(K_RERANK_LAMBDA, str(get(K_RERANK_LAMBDA))),
        similarity=str(get(K_RERANK_SIM)),
        candidates=int(depth),
    )


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _coerce(value: Any, ps: ParamSpec) -> Any:
    """A widget or URL value as the parameter's type; ConfigError naming the parameter if it is not one."""
    try:
        if ps.type is bool:
            if isinstance(value, str):
                if value.lower() not in {"true", "false"}:
                    raise ValueError(value)
                return value.lower() == "true"
            return bool(value)
        if ps.choices is not None:
            for c in ps.choices:
                if str(c) == str(value):
                    return c
            raise ValueError(value)
        if ps.type is int:
            f = float(value)
            if not f.is_integer():
                raise ValueError(value)
            return int(f)
        if ps.type is float:
            return float(value)
        return type(ps.default)(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"parameter {ps.name}={value!r} is not a valid {ps.type.__name__}") from exc


# ------------------------------------------------------------------------------------------ URL encoding


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else repr(value)
    return str(value)


def encode_values(values: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Widget values -> query parameters, leaving out values equal to their widget's default."""
    defaults = default_values()
    out: dict[str, str | list[str]] = {}
    for key, value in values.items():
        default = _widget_default(key, defaults)
        if _same(value, default):
            continue
        if key in FORMATTERS:
            value = FORMATTERS[key](value)
        if isinstance(value, (list, tuple)):
            # An empty list is written as "key=" (Streamlit's "cleared" value), so it is not read as the default.
            out[key] = [_fmt(v) for v in value] if value else ""
        else:
            out[key] = _fmt(value)
    return out


def decode_values(params: Mapping[str, str | Sequence[str]]) -> dict[str, Any]:
    """Query parameters -> widget values (list keys stay lists, numbers become numbers)."""
    out: dict[str, Any] = {}
    list_keys = set(MEMBER_KEYS.values())
    for key, raw in params.items():
        key = LEGACY_KEYS.get(key, key)
        vals = [raw] if isinstance(raw, str) else list(raw)
        if key in list_keys:
            out[key] = [v for v in vals if v != ""]
            continue
        v = vals[-1] if vals else ""
        if key in (K_TEST_FRAC, K_RERANK_LAMBDA) or key.startswith("w."):
            out[key] = _parse_float(key, v)
        elif key in (K_N_LAST, K_KCORE, K_SEED, K_K, K_RERANK_DEPTH):
            f = _parse_float(key, v)
            if not f.is_integer():
                raise ConfigError(f"URL parameter {key}={v!r} is not a whole number")
            out[key] = int(f)
        elif key in FORMATTERS:
            by_label = {FORMATTERS[key](o): o for o in _options(key)}
            out[key] = by_label.get(v, v)  # a label as the widget writes it, or the plain name
        else:
            out[key] = v  # hyperparameters are coerced by config_from_values with their ParamSpec
    return out


def _parse_float(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"URL parameter {key}={text!r} is not a number") from exc
    if not math.isfinite(value):
        raise ConfigError(f"URL parameter {key}={text!r} is not a finite number")
    return value


def _widget_default(key: str, defaults: Mapping[str, Any]) -> Any:
    if key in defaults:
        return defaults[key]
    if key.startswith("w."):
        return default_weight(key[2:])
    model, _, name = key.partition(".")
    if model in MODELS:
        for ps in member_params(model):
            if ps.name == name:
                return ps.default
    if key in method_param_keys():
        return method_param_keys()[key][1].default
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a or []) == list(b or [])
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return a == b


# ------------------------------------------------------------------------------------------ session helpers
# These touch st.session_state; streamlit is imported lazily so the pure parts above stay importable
# (and testable) without a running app.


def _session() -> Any:
    import streamlit as st

    return st.session_state


def get_uploaded() -> UploadedData | None:
    """The uploaded dataset of this session, if any."""
    value = _session().get(UPLOAD_KEY)
    return value if isinstance(value, UploadedData) else None


def set_uploaded(dataset: Dataset, content_hash: str, name: str = "your data", select: bool = True) -> UploadedData:
    """Keep an uploaded dataset in this session; with ``select`` the sidebar switches to it on the next run."""
    up = UploadedData(dataset, str(content_hash), name)
    _session()[UPLOAD_KEY] = up
    if select:
        queue_values({K_DATASET: DATASET_UPLOAD})
    return up


def clear_uploaded() -> None:
    """Forget the upload; the sidebar falls back to MovieLens-100K if it was selected."""
    ss = _session()
    ss.pop(UPLOAD_KEY, None)
    if ss.get(K_DATASET) == DATASET_UPLOAD:
        queue_values({K_DATASET: DEFAULT_DATASET})


def queue_values(values: Mapping[str, Any]) -> None:
    """Widget values to apply before the sidebar is drawn next (call ``st.rerun()`` after, unless in a callback)."""
    ss = _session()
    pending = dict(ss.get(_QUEUE_KEY, {}))
    pending.update(values)
    ss[_QUEUE_KEY] = pending


def queue_config(cfg: LabConfig, notice: str | None = None) -> None:
    """Load a whole configuration into the sidebar on the next run (for an uploaded configuration JSON)."""
    # The weight sliders run from 0 to 1 (and raise on a value above): only proportions matter, so a
    # configuration with larger weights is scaled by its largest weight.
    top = max(cfg.weights, default=0.0)
    values = widget_values(cfg.with_weights([w / top for w in cfg.weights]) if top > 1 else cfg)
    # Members not in cfg are switched off by the member lists; their weights/params stay as they were.
    queue_values(values)
    if notice:
        set_notice(notice)


def queue_weights(weights: Mapping[str, float], notice: str | None = None) -> None:
    """Move the weight sliders on the next run; keys are model names or member labels."""
    values = {}
    for name, w in weights.items():
        model = str(name).split("(", 1)[0]
        values[weight_key(model)] = _snap(float(w))
    queue_values(values)
    if notice:
        set_notice(notice)


def _snap(w: float) -> float:
    """Weights on the slider's grid (the slider refuses values off its step)."""
    return round(round(max(0.0, min(1.0, w)) / WEIGHT_STEP) * WEIGHT_STEP, 4)


def apply_queued() -> dict[str, Any]:
    """Write queued widget values into session state; the sidebar calls this before drawing its widgets."""
    ss = _session()
    pending = ss.pop(_QUEUE_KEY, None) or {}
    for key, value in pending.items():
        ss[key] = value
    return pending


def keep_across_pages(keys: Iterable[str], url_params: Mapping[str, Any]) -> None:
    """Re-assert values of bound widgets whose URL parameter the page link dropped, on a page's first run only.

    Streamlit 1.67 keeps a bound widget's value across a page switch only when the person changed it
    in this session; a value that came from a shared link would reset to the default on the next page.
    Assigning the session value to itself before the widget is drawn marks it as set by code, which
    wins over the (missing) URL value and is written back to the URL.

    Only the first run on a page (a page switch, or the first load) does this (``_first_run_on_page``).
    Streamlit reads the address bar into ``st.query_params`` on a page change only, so on later runs of the same
    page ``url_params`` lacks every value the person changed since; re-asserting then marked each such widget
    as set by code on every rerun, so the server sent its value back over the browser's (a slider's
    ``set_value``), and a key pressed while that run was going could be undone and never rerun (issue 16).
    """
    keys = list(keys)
    if not _first_run_on_page(keys):
        return
    ss = _session()
    defaults = default_values()
    for key in keys:
        if key in ss and key not in url_params and not _same(ss[key], _widget_default(key, defaults)):
            ss[key] = ss[key]


_PAGE_MARK_PREFIX = "lab:page_of:"  # + a digest of the keys: the page on which keep_across_pages last ran


def _first_run_on_page(keys: Sequence[str]) -> bool:
    """True on the first run of a page for this set of keys (then remembered), and outside a script run."""
    import zlib

    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None:
        return True
    mark = f"{_PAGE_MARK_PREFIX}{zlib.crc32(chr(31).join(sorted(keys)).encode()):08x}"
    ss = _session()
    first = ss.get(mark) != ctx.page_script_hash
    ss[mark] = ctx.page_script_hash
    return first


def set_notice(message: str) -> None:
    _session()[_NOTICE_KEY] = str(message)


def pop_notice() -> str | None:
    return _session().pop(_NOTICE_KEY, None)


_SIDEBAR_PROBLEM_KEY = "lab:sidebar_problem"  # why the sidebar could not describe a configuration in this run


def set_sidebar_problem(message: str | None) -> None:
    """Why the sidebar's values describe no configuration (None: they do, or no member is chosen)."""
    _session()[_SIDEBAR_PROBLEM_KEY] = message


def sidebar_problem() -> str | None:
    value = _session().get(_SIDEBAR_PROBLEM_KEY)
    return value if isinstance(value, str) else None


def set_last_config(cfg: LabConfig | None) -> None:
    _session()[_LAST_CONFIG_KEY] = cfg


def set_last_protocol(protocol: Protocol | None) -> None:
    _session()[_LAST_PROTOCOL_KEY] = protocol


def last_protocol() -> Protocol | None:
    """The data protocol the sidebar describes in this run (set even when no member is chosen)."""
    value = _session().get(_LAST_PROTOCOL_KEY)
    return value if isinstance(value, Protocol) else None


def last_config() -> LabConfig | None:
    """The configuration the sidebar returned in this run (None before it ran, or when it had no members)."""
    value = _session().get(_LAST_CONFIG_KEY)
    return value if isinstance(value, LabConfig) else None


def remember(page: str, name: str, value: Any) -> None:
    """Keep a page's own value for this session (e.g. the previous fused list of a user)."""
    _session()[f"{_PAGE_PREFIX}{page}:{name}"] = value


def recall(page: str, name: str, default: Any = None) -> Any:
    return _session().get(f"{_PAGE_PREFIX}{page}:{name}", default)
