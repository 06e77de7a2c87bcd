"""The Scorer contract, typed configs with UI ranges, and the model registry.

A model is a ``Scorer`` subclass with a frozen ``ModelConfig`` dataclass. Config fields declare
their UI range with ``param(...)``, so the dashboard builds its forms from the config and a new
model appears there without touching the UI. Training items are excluded by the ranker, never by
the models. NaN in a score block means "cannot score this item".
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar, cast, runtime_checkable

import numpy as np

from reco_core.data import Interactions, ItemCatalog, UserTable
from reco_core.errors import ConfigError, NotFittedError, quote

ModelKind = Literal["user", "item", "hybrid"]
Progress = Callable[[float, str], None]


def param(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    step: float | None = None,
    choices: tuple[Any, ...] | None = None,
    log: bool = False,
    help: str = "",
) -> Any:
    """A config field with its UI range (``low``/``high``/``step``) or ``choices`` and a help text."""
    meta = {"low": low, "high": high, "step": step, "choices": choices, "log": log, "help": help}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamSpec:
    """One config field as the UI and validation see it."""

    name: str
    type: type
    default: Any
    low: float | None
    high: float | None
    step: float | None
    choices: tuple[Any, ...] | None
    log: bool
    help: str
    label: str = ""  # what a form shows; empty: the name, with spaces, capitalised

    @property
    def display(self) -> str:
        """The label a form shows for this parameter."""
        return self.label or self.name.replace("_", " ").capitalize()

    def check(self, value: Any, owner: str) -> Any:
        """``value`` as this parameter takes it (an int for an int, one of the choices), else a ConfigError
        naming ``owner.name``, the value and what is accepted. For values read from a file or a flag."""
        where = f"{owner}.{self.name}={quote(value)}"
        number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        if self.type is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"{where} is not valid: give true or false")
            return bool(value)
        if self.choices is not None:
            for choice in self.choices:
                if isinstance(value, type(choice)) and value == choice:
                    return choice
            raise ConfigError(f"{where} is not valid: choose one of {', '.join(map(str, self.choices))}")
        if self.type in (int, float):
            if not number or not np.isfinite(value):
                raise ConfigError(f"{where} is not a number: give a {self.type.__name__}")
            if self.type is int and int(value) != value:
                raise ConfigError(f"{where} is not valid: give a whole number")
            value = self.type(value)
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise ConfigError(f"{where} is out of range: choose between {self.low:g} and {self.high:g}")
            return value
        if not isinstance(value, self.type):
            raise ConfigError(f"{where} is not valid: give a {self.type.__name__}")
        return value


@dataclass(frozen=True)
class ModelConfig:
    """Base of every model config. The seed is part of the config, so fitting is reproducible."""

    seed: int = param(42, low=0, high=2**31 - 1, step=1, help="Random seed for initialisation and sampling.")

    @classmethod
    def params(cls) -> list[ParamSpec]:
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
        out = []
        for f in dataclasses.fields(cls):
            t = {"int": int, "float": float, "bool": bool, "str": str}.get(str(hints[f.name]), type(f.default))
            m = f.metadata
            out.append(
                ParamSpec(
                    f.name,
                    t,
                    f.default,
                    m.get("low"),
                    m.get("high"),
                    m.get("step"),
                    m.get("choices"),
                    bool(m.get("log", False)),
                    m.get("help", ""),
                )
            )
        return out

    def validate(self) -> None:
        """Raise ConfigError naming the field, the value and the accepted range."""
        model = type(self).__name__.removesuffix("Config")
        for p in self.params():
            v = getattr(self, p.name)
            if p.type is bool:
                if not isinstance(v, (bool, np.bool_)):
                    raise ConfigError(f"{model}.{p.name}={quote(v)} is not valid: give true or false")
                continue
            if p.choices is not None:
                # Unhashable values (lists, arrays) are refused first: ``array in tuple`` has no single truth value.
                if not isinstance(v, Hashable) or v not in p.choices:
                    raise ConfigError(
                        f"{model}.{p.name}={quote(v)} is not valid: choose one of {', '.join(map(str, p.choices))}"
                    )
                continue
            if p.type in (int, float):
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or v != v:
                    raise ConfigError(f"{model}.{p.name}={quote(v)} is not a number: give a {p.type.__name__}")
                if p.type is int and int(v) != v:
                    raise ConfigError(f"{model}.{p.name}={quote(v)} is not valid: give a whole number")
                if (p.low is not None and v < p.low) or (p.high is not None and v > p.high):
                    raise ConfigError(
                        f"{model}.{p.name}={quote(v)} is out of range: choose between {p.low} and {p.high}"
                    )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Context:
    """What a model may use besides the training matrix."""

    catalog: ItemCatalog | None = None
    users: UserTable | None = None
    cache_dir: Path | None = None
    progress: Progress | None = None

    def report(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress(float(fraction), message)


def as_indices(values: object, what: str) -> np.ndarray:
    """``values`` as a 1-d int64 array of indices; anything but whole numbers raises ConfigError naming ``what``.

    Whole-valued floats (3.0) are accepted; 1.5, NaN, text and booleans are refused rather than cast, since a
    silent cast would score the wrong user or item.
    """
    try:
        arr = np.asarray(values)
        if arr.dtype.kind == "O":
            arr = arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError):
        arr = None
    if arr is not None and arr.dtype.kind in "iu":
        return arr.astype(np.int64).reshape(-1)
    if arr is not None and (arr.size == 0 or arr.dtype.kind == "f"):
        flat = arr.astype(np.float64).reshape(-1)
        if np.isfinite(flat).all() and (flat == np.round(flat)).all() and (np.abs(flat) < 2**62).all():
            return flat.astype(np.int64)
    raise ConfigError(f"{what} {quote(values)} is not valid: give whole numbers (0-based indices)")


ConfigT = TypeVar("ConfigT", bound=ModelConfig)


class Scorer(ABC, Generic[ConfigT]):
    """Base of every model. Subclasses implement ``_fit``, ``_score`` and ``_score_profile``.

    Generic over its config type, so ``self.config`` is typed in each model: ``class ItemKNN(Scorer[ItemKNNConfig])``
    with ``config_cls = ItemKNNConfig`` (the class variable checks and builds it at run time; a ClassVar cannot
    name the type variable). An unparametrised ``Scorer`` subclass takes a plain ``ModelConfig``.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    kind: ClassVar[ModelKind]
    config_cls: ClassVar[type[ModelConfig]] = ModelConfig
    description: ClassVar[str] = ""

    def __init__(self, config: ConfigT | None = None) -> None:
        chosen = config if config is not None else self.config_cls()
        if not isinstance(chosen, self.config_cls):
            raise ConfigError(f"{self.name} takes a {self.config_cls.__name__}, not {type(chosen).__name__}")
        chosen.validate()
        # config_cls is the run-time form of ConfigT: the isinstance check above is what makes this cast true.
        self.config: ConfigT = cast(ConfigT, chosen)
        self.train: Interactions | None = None

    # -- public API (checks once, here, so every model behaves the same) --
    def fit(self, train: Interactions, context: Context | None = None) -> Self:
        self.train = None
        self._fit(train, context or Context())
        self.train = train
        return self

    @property
    def fitted(self) -> bool:
        return self.train is not None

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return self.train.n_items  # type: ignore[union-attr]

    def score(self, user_idx: np.ndarray | list[int]) -> np.ndarray:
        """float32 [len(user_idx), n_items]; NaN = cannot score."""
        self._check_fitted()
        idx = as_indices(user_idx, "user index")
        n_users = self.train.n_users  # type: ignore[union-attr]
        if idx.size and (idx.min() < 0 or idx.max() >= n_users):
            raise ConfigError(f"user index out of range for {self.name}: indices must be in 0..{n_users - 1}")
        out = np.asarray(self._score(idx), dtype=np.float32)
        if out.shape != (len(idx), self.n_items):
            raise AssertionError(f"{self.name}._score returned shape {out.shape}")  # a bug in the model
        return out

    def score_blocks(self, user_idx: np.ndarray, block_size: int = 1024) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (user_idx block, score block) so memory stays bounded at any catalogue size."""
        idx = np.asarray(user_idx, dtype=np.int64)
        for start in range(0, len(idx), block_size):
            rows = idx[start : start + block_size]
            yield rows, self.score(rows)

    def score_profile(self, item_idx: np.ndarray | list[int], values: np.ndarray | None = None) -> np.ndarray:
        """Scores (float32 [n_items]) for a profile the model has not seen: liked items, optional ratings."""
        self._check_fitted()
        items = as_indices(item_idx, "item index")
        if items.size and (items.min() < 0 or items.max() >= self.n_items):
            raise ConfigError(f"item index out of range in profile: indices must be in 0..{self.n_items - 1}")
        if values is None:
            vals = np.ones(len(items), dtype=np.float32)
        else:
            try:
                vals = np.asarray(values, dtype=np.float32).reshape(-1)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"profile ratings {quote(values)} are not numbers: give one number per item"
                ) from None
            if vals.shape != items.shape or not np.isfinite(vals).all():
                raise ConfigError("profile ratings must be finite and one per item")
        out = np.asarray(self._score_profile(items, vals), dtype=np.float32).reshape(-1)
        if out.shape != (self.n_items,):
            raise AssertionError(f"{self.name}._score_profile returned shape {out.shape}")
        return out

    def _check_fitted(self) -> None:
        if self.train is None:
            raise NotFittedError(f"model {self.name!r} is not fitted: call fit(train) before scoring")

    # -- what each model implements --
    @abstractmethod
    def _fit(self, train: Interactions, context: Context) -> None: ...

    @abstractmethod
    def _score(self, user_idx: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class SimilarItems(Protocol):
    """Item-item similarity, for "because you liked" explanations."""

    def similar_items(self, item_idx: np.ndarray, to_items: np.ndarray) -> np.ndarray:
        """float32 [len(item_idx), len(to_items)] similarities."""
        ...


@runtime_checkable
class HasEmbeddings(Protocol):
    def item_embeddings(self) -> np.ndarray:
        """float32 [n_items, dim]."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    kind: ModelKind
    cls: type[Scorer]
    config_cls: type[ModelConfig]
    description: str


MODELS: dict[str, ModelSpec] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: add a Scorer subclass to ``MODELS`` under ``cls.name``."""
    if cls.name in MODELS and MODELS[cls.name].cls is not cls:
        raise ValueError(f"model name {cls.name!r} registered twice")
    MODELS[cls.name] = ModelSpec(cls.name, cls.label, cls.kind, cls, cls.config_cls, cls.description)
    return cls


def get_spec(name: str) -> ModelSpec:
    from reco_core import models  # noqa: F401  (imports every family, filling MODELS)

    key = str(name).strip().lower()
    if key not in MODELS:
        raise ConfigError(f"unknown model {quote(name)}: choose one of {', '.join(sorted(MODELS))}")
    return MODELS[key]


def make_model(name: str, **params: Any) -> Scorer:
    """A new, unfitted model by registry name; unknown or out-of-range parameters raise ConfigError."""
    spec = get_spec(name)
    known = {f.name for f in dataclasses.fields(spec.config_cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            f"model {spec.name!r} has no parameter {quote(', '.join(unknown))}: known are {', '.join(sorted(known))}"
        )
    return spec.cls(spec.config_cls(**params))
