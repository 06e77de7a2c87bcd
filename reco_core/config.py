"""The experiment configuration: one typed, immutable, versioned value from the dashboard to the command line.

An experiment is a ``Protocol`` (which data, which positives, which split, which seed), its members
(``MemberSpec``: a registered model and its non-default hyperparameters, each with a weight) and a
``FusionSpec`` (method, normaliser, k, the members' list length top_n, the seed, and the method's own
parameters as data). Every value validates itself when it is made, so a configuration that exists is a
configuration that runs.

The fusion methods and normalisers declare their parameters in their registries
(``reco_core.fusion.METHODS[name].params``: name, type, range, default, label, help); a FusionSpec takes
exactly those, so a method added with a parameter is read from JSON, written back, offered as a CLI flag
and drawn in the dashboard's sidebar without any edit here.

One JSON format (``dumps``/``loads``, ``dump``/``load``), written by the dashboard's exports and read by
the CLI's ``--config``; ``--dump-config`` writes it from a command line. Version 2 holds the method's
parameters under ``method_params``; version 1 (the dashboard's earlier exports, with ``rrf_k`` at the top
level) is still read. Extra top-level keys (the metrics an export carries) are ignored by ``loads`` and
kept by ``read_extra``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from reco_core.checks import check_whole
from reco_core.errors import ConfigError, not_a_file, quote
from reco_core.models import get_spec, make_model
from reco_core.models.base import ParamSpec, Scorer
from reco_core.rerank import SIMILARITIES

WeightDefault = float | Callable[[str], float]  # a member's weight when the JSON gives none

CONFIG_VERSION = 2
VERSION_KEY = "reco_fusion_lab_config"
MAX_CONFIG_BYTES = 1_000_000  # a configuration is a few hundred bytes; anything near this is not one
_CONFIG_KEYS = frozenset(
    {"protocol", "members", "method", "normaliser", "k", "top_n", "method_params", "rrf_k", "rerank"}
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------------------------------ protocol


def split_names() -> tuple[str, ...]:
    """The split methods' names, from the splitters' registry."""
    from reco_core.splitting import SPLITTERS

    return tuple(SPLITTERS)


@dataclass(frozen=True)
class Protocol:
    """How data becomes a split: which dataset, which positives, which split, which seed.

    ``dataset`` is a dataset name (``datasets.dataset_names()``), or what the dashboard records for an upload
    (``upload:<hash>``); ``data_dir`` a folder holding the MovieLens files. ``valid_frac`` is carved from
    train only when weights are searched. Invalid values raise ConfigError naming the field.
    """

    dataset: str = "ml-100k"
    data_dir: str | None = None
    threshold: float | None = None
    kcore: int = 0
    split: str = "random"
    test_frac: float = 0.2
    n_last: int = 1
    seed: int = 42
    valid_frac: float = 0.1

    def __post_init__(self) -> None:
        def bad(name: str, fix: str) -> ConfigError:
            return ConfigError(f"protocol.{name}={quote(getattr(self, name))} is not valid: {fix}")

        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise bad("dataset", "give a dataset name such as ml-100k")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise bad("data_dir", "give a folder path, or null")
        if self.threshold is not None and not _is_number(self.threshold):
            raise bad("threshold", "give a rating such as 4, or null for every rating")
        if self.split not in split_names():
            raise bad("split", f"choose one of {', '.join(split_names())}")
        for name in ("test_frac", "valid_frac"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 < value < 1.0:
                raise bad(name, "give a fraction between 0 and 1, e.g. 0.2")
        for name, low in (("kcore", 0), ("n_last", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))
            elif isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise bad(name, f"give a whole number of at least {low}")

    def describe(self) -> str:
        pos = "every rating is a positive" if self.threshold is None else f"ratings >= {self.threshold:g} are positives"
        how = {
            "random": f"per-user random {1 - self.test_frac:.0%}/{self.test_frac:.0%} split",
            "temporal": f"global temporal cut, last {self.test_frac:.0%} of time as test",
            "leave-last": f"per-user leave-last-{self.n_last} split",
        }.get(self.split, self.split)
        core = f", {self.kcore}-core" if self.kcore else ""
        return f"{self.dataset}: {pos}{core}; {how}; seed {self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(Protocol)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Protocol:
        if not isinstance(data, Mapping):
            raise ConfigError("configuration field 'protocol' must be an object (dataset, split, test_frac, seed...)")
        known = {f.name for f in fields(Protocol)}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise ConfigError(
                f"protocol has no field {quote(', '.join(unknown))}: known are {', '.join(sorted(known))}"
            )
        return cls(**{str(k): v for k, v in data.items()})


# ------------------------------------------------------------------------------------------ members


@dataclass(frozen=True)
class MemberSpec:
    """A member of a fusion: a registered model name and its non-default parameters."""

    model: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, model: str, params: Mapping[str, Any] | None = None) -> MemberSpec:
        spec = get_spec(model)  # validates the name early, with the list of choices
        return cls(spec.name, tuple(sorted((params or {}).items())))

    @property
    def label(self) -> str:
        if not self.params:
            return self.model
        return f"{self.model}(" + ", ".join(f"{k}={v}" for k, v in self.params) + ")"

    def build(self, seed: int | None = None) -> Scorer:
        params = dict(self.params)
        if seed is not None:
            params.setdefault("seed", seed)
        return make_model(self.model, **params)


@dataclass(frozen=True)
class Member:
    """One member as the JSON holds it: the model with its parameters, and its weight."""

    spec: MemberSpec
    weight: float


# ------------------------------------------------------------------------------------------ fusion


def method_params(method: str) -> tuple[ParamSpec, ...]:
    """The parameters a fusion method declares in its registry record."""
    from reco_core.fusion import check_method

    return tuple(check_method(method).params)


@dataclass(frozen=True)
class FusionSpec:
    """How the members are fused: method, normaliser, list length k, the members' list length top_n, the seed
    (team-draft's coin flips), and the method's own parameters (``params``: name -> value, only the ones the
    method declares; a missing one takes its declared default)."""

    method: str = "wsum"
    normaliser: str = "minmax"
    k: int = 10
    top_n: int = 100
    seed: int = 0
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        from reco_core.fusion import check_method, check_normaliser

        method = check_method(self.method)
        object.__setattr__(self, "method", method.name)
        object.__setattr__(self, "normaliser", check_normaliser(self.normaliser))
        object.__setattr__(self, "k", check_whole(self.k, "k", 1))
        object.__setattr__(self, "top_n", check_whole(self.top_n, "top_n", 1))
        object.__setattr__(self, "seed", check_whole(self.seed, "seed", 0))
        given = dict(self.params)
        declared = {ps.name: ps for ps in method.params}
        unknown = sorted(str(n) for n in set(given) - set(declared))
        if unknown:
            accepted = ", ".join(declared) or "none"
            raise ConfigError(
                f"fusion method {method.name!r} has no parameter {quote(', '.join(unknown))}: it takes {accepted}"
            )
        values = {name: ps.check(given.get(name, ps.default), method.name) for name, ps in declared.items()}
        object.__setattr__(self, "params", tuple(values.items()))

    def param(self, name: str) -> Any:
        """The value of one of the method's parameters."""
        values = dict(self.params)
        if name not in values:
            raise ConfigError(f"fusion method {self.method!r} has no parameter {quote(name)}")
        return values[name]

    @property
    def param_map(self) -> dict[str, Any]:
        return dict(self.params)


# ------------------------------------------------------------------------------------------ re-ranking

RERANK_SIMILARITIES = SIMILARITIES  # reco_core.rerank's, named here for the configuration
DEFAULT_RERANK_LAMBDA = 0.3
DEFAULT_RERANK_CANDIDATES = 50


@dataclass(frozen=True)
class RerankSpec:
    """A re-ranker after fusion (``reco_core.rerank``): its name, the weight ``lam`` of its goal (0 leaves the fused
    list as it is, 1 ignores relevance), MMR's item ``similarity`` (genre or text) and how deep into the fused
    list it reaches (``candidates``; a session caps it at its members' list length)."""

    method: str
    lam: float = DEFAULT_RERANK_LAMBDA
    similarity: str = "genre"
    candidates: int = DEFAULT_RERANK_CANDIDATES

    def __post_init__(self) -> None:
        from reco_core.rerank import check_lambda, check_reranker

        object.__setattr__(self, "method", check_reranker(self.method).name)
        object.__setattr__(self, "lam", check_lambda(self.lam))
        if self.similarity not in RERANK_SIMILARITIES:
            raise ConfigError(
                f"re-rank similarity {quote(self.similarity)} is unknown: choose {' or '.join(RERANK_SIMILARITIES)}"
            )
        if self.method != "mmr":  # only MMR compares items; one value for the others keeps equal specs equal
            object.__setattr__(self, "similarity", "genre")
        object.__setattr__(self, "candidates", check_whole(self.candidates, "re-rank candidates", 1))

    def describe(self, depth: int | None = None) -> str:
        """In words, e.g. "re-ranked by MMR (diversity; genre similarity, lambda 0.3) from the fused top-50";
        ``depth``: how deep it actually reached, when a session capped ``candidates``."""
        from reco_core.rerank import RERANKERS

        sim = f"{self.similarity} similarity, " if self.method == "mmr" else ""
        top = self.candidates if depth is None else depth
        details = f"{sim}lambda {self.lam:g}"
        label = RERANKERS[self.method].label  # "MMR (diversity)": the details join its brackets
        named = f"{label[:-1]}; {details})" if label.endswith(")") else f"{label} ({details})"
        return f"re-ranked by {named} from the fused top-{top}"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "lambda": self.lam, "similarity": self.similarity, "candidates": self.candidates}

    @classmethod
    def from_dict(cls, data: Any) -> RerankSpec | None:
        """The ``rerank`` object of a configuration JSON (null or absent: no re-ranking)."""
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise ConfigError("configuration field 'rerank' must be an object (method, lambda, similarity, candidates)")
        known = {"method", "lambda", "similarity", "candidates"}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise ConfigError(f"rerank has no field {quote(', '.join(unknown))}: known are {', '.join(sorted(known))}")
        if "method" not in data:
            raise ConfigError("rerank needs a 'method' (mmr, calibrated or popularity), or remove the rerank object")
        lam = data.get("lambda", DEFAULT_RERANK_LAMBDA)
        if not _is_number(lam):
            raise ConfigError(f"rerank.lambda={quote(lam)} is not a number: give a number from 0 to 1")
        return cls(
            method=str(data["method"]),
            lam=lam,
            similarity=data.get("similarity", "genre"),
            candidates=_whole_json(data.get("candidates", DEFAULT_RERANK_CANDIDATES)),
        )


# ------------------------------------------------------------------------------------------ the experiment


@dataclass(frozen=True)
class ExperimentConfig:
    """Protocol, members with one weight each (``weights[i]`` belongs to ``members[i]``) and the fusion.

    Weights are finite and >= 0 and are divided by their sum by the fusion; all-zero weights are allowed
    here (a page can then say so), the fusion itself refuses them. The fusion's seed is the protocol's:
    one seed for the whole experiment.
    """

    protocol: Protocol = field(default_factory=Protocol)
    members: tuple[MemberSpec, ...] = ()
    weights: tuple[float, ...] = ()
    fusion: FusionSpec = field(default_factory=FusionSpec)
    rerank: RerankSpec | None = None

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.members):
            raise ConfigError(
                f"{len(self.weights)} weights for {len(self.members)} members: give exactly one weight per member"
            )
        for m, w in zip(self.members, self.weights, strict=True):
            if not _is_number(w) or w < 0:
                raise ConfigError(f"weight of {m.model!r} is {quote(w)}: weights must be finite numbers >= 0")
        if len({m.model for m in self.members}) != len(self.members):
            raise ConfigError("a model is listed twice among the members: give each model once")
        if self.fusion.seed != self.protocol.seed:
            object.__setattr__(self, "fusion", replace(self.fusion, seed=self.protocol.seed))
        if self.rerank is not None and self.rerank.candidates < self.fusion.k:
            depth = self.rerank.candidates
            raise ConfigError(
                f"re-ranking reaches {depth} fused candidate{'s' if depth != 1 else ''},"
                f" fewer than k={self.fusion.k}: give"
                f" at least {self.fusion.k} candidates or a smaller k"
            )

    # -- views --
    @property
    def method(self) -> str:
        return self.fusion.method

    @property
    def normaliser(self) -> str:
        return self.fusion.normaliser

    @property
    def k(self) -> int:
        return self.fusion.k

    @property
    def labels(self) -> tuple[str, ...]:
        """Member labels (``MemberSpec.label``): the names used by fitted members, sessions and tables."""
        return tuple(m.label for m in self.members)

    @property
    def weighted_members(self) -> tuple[Member, ...]:
        """Each member with its weight, as the JSON lists them."""
        return tuple(Member(m, w) for m, w in zip(self.members, self.weights, strict=True))

    @property
    def weight_map(self) -> dict[str, float]:
        """Member label -> weight."""
        return dict(zip(self.labels, self.weights, strict=True))

    @property
    def all_zero(self) -> bool:
        return not any(w > 0 for w in self.weights)

    @property
    def shares(self) -> tuple[float, ...]:
        """Weights divided by their sum (all zero when every weight is zero).

        Divided by the largest first, so huge weights (1e308) do not overflow the sum into inf and zero.
        """
        top = max(self.weights, default=0.0)
        if top <= 0:
            return tuple(0.0 for _ in self.weights)
        scaled = [w / top for w in self.weights]
        total = sum(scaled)
        return tuple(w / total for w in scaled)

    @property
    def uses_normaliser(self) -> bool:
        from reco_core.fusion import METHODS

        return METHODS[self.method].uses_normaliser

    def with_weights(self, weights: Mapping[str, float] | Sequence[float]) -> ExperimentConfig:
        """The same configuration with other weights (a mapping by label or model name, or a sequence)."""
        if isinstance(weights, Mapping):
            by_name = {str(k): float(v) for k, v in weights.items()}
            new = tuple(
                by_name.get(m.label, by_name.get(m.model, w)) for m, w in zip(self.members, self.weights, strict=True)
            )
        else:
            new = tuple(float(w) for w in weights)
        return replace(self, weights=new)

    def with_fusion(self, **changes: Any) -> ExperimentConfig:
        """The same configuration with fusion fields changed (method, normaliser, k, top_n, params)."""
        if "method" in changes and "params" not in changes:
            # Parameters belong to a method: keep the ones the new method also declares.
            keep = {ps.name for ps in method_params(changes["method"])}
            changes["params"] = tuple((n, v) for n, v in self.fusion.params if n in keep)
        return replace(self, fusion=replace(self.fusion, **changes))

    def describe(self) -> str:
        """The configuration in words (one paragraph, plain text)."""
        from reco_core.fusion import METHODS, NORMALISERS

        if not self.members:
            return f"{self.protocol.describe()}. No members chosen."
        parts = [f"{m.label} {s:.0%}" for m, s in zip(self.members, self.shares, strict=True)]
        method = METHODS[self.method]
        how = method.label
        if self.uses_normaliser:
            how += f" {NORMALISERS[self.normaliser].words}"
        if self.fusion.params:
            how += (
                " (" + ", ".join(f"{ps.display.lower()} = {self.fusion.param(ps.name):g}" for ps in method.params) + ")"
            )
        weights = "all weights are zero" if self.all_zero else "weights " + ", ".join(parts)
        after = f"; {self.rerank.describe()}" if self.rerank is not None else ""
        return f"{self.protocol.describe()}. Top-{self.k} lists fused by {how.lower()}; {weights}{after}."

    # -- JSON --
    def to_dict(self) -> dict[str, Any]:
        return {
            VERSION_KEY: CONFIG_VERSION,
            "protocol": self.protocol.to_dict(),
            "members": [
                {"model": m.spec.model, "params": dict(m.spec.params), "weight": m.weight}
                for m in self.weighted_members
            ],
            "method": self.method,
            "normaliser": self.normaliser,
            "k": self.k,
            "top_n": self.fusion.top_n,
            "method_params": self.fusion.param_map,
        } | ({"rerank": self.rerank.to_dict()} if self.rerank is not None else {})

    def to_json(self, extra: Mapping[str, Any] | None = None) -> str:
        """``dumps(self, extra)``."""
        return dumps(self, extra)

    @classmethod
    def from_json(cls, text: str | bytes, default_weight: WeightDefault = 1.0) -> ExperimentConfig:
        """``loads(text, default_weight)``."""
        return loads(text, default_weight)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_weight: WeightDefault = 1.0) -> ExperimentConfig:
        """Inverse of ``to_dict`` (version 1 or 2); anything malformed raises ConfigError naming the field.

        A member without a weight gets ``default_weight`` (a number, or a function of the model's name).
        """
        if not isinstance(data, Mapping):
            raise ConfigError("configuration must be a JSON object with protocol, members, method, normaliser and k")
        version = data.get(VERSION_KEY, CONFIG_VERSION)
        if version not in (1, CONFIG_VERSION):
            raise ConfigError(
                f"configuration version {quote(version)} is not known: this version reads 1 and {CONFIG_VERSION}"
            )
        protocol = Protocol.from_dict(data.get("protocol", {}))
        members_in = data.get("members", [])
        if not isinstance(members_in, list):
            raise ConfigError("configuration field 'members' must be a list of {model, params, weight} objects")
        members, weights = [], []
        for i, m in enumerate(members_in):
            if not isinstance(m, Mapping) or "model" not in m:
                raise ConfigError(f"members[{i}] must be an object with a 'model' name (and optional params, weight)")
            params = m.get("params") or {}
            if not isinstance(params, Mapping):
                raise ConfigError(f"members[{i}].params must be an object of hyperparameter values")
            spec = MemberSpec.of(str(m["model"]), dict(params))
            spec.build(protocol.seed)  # validates parameter names and ranges now, with the model's own message
            members.append(spec)
            fallback = default_weight(spec.model) if callable(default_weight) else default_weight
            weight = m.get("weight", fallback)
            if not _is_number(weight):
                raise ConfigError(f"members[{i}].weight={quote(weight)} is not a number: give a finite number")
            weights.append(float(weight))
        method = data.get("method", "wsum")
        if not isinstance(method, str):
            raise ConfigError(f"method={quote(method)} is not valid: give a fusion method's name")
        given = data.get("method_params", {})
        if not isinstance(given, Mapping):
            raise ConfigError("configuration field 'method_params' must be an object of the method's parameters")
        declared = {ps.name for ps in method_params(method)}
        params = {str(n): v for n, v in given.items()}
        if "rrf_k" in data and "rrf_k" in declared and "rrf_k" not in params:  # version 1 kept it at the top
            params["rrf_k"] = data["rrf_k"]
        fusion = FusionSpec(
            method=method,
            normaliser=str(data.get("normaliser", "minmax")),
            k=_whole_json(data.get("k", 10)),
            top_n=_whole_json(data.get("top_n", 100)),
            seed=protocol.seed,
            params=tuple(params.items()),
        )
        return cls(protocol, tuple(members), tuple(weights), fusion, RerankSpec.from_dict(data.get("rerank")))


def _whole_json(value: Any) -> Any:
    """JSON writes 10 as 10.0 in some tools: a whole float is read as an int (other values are checked later)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def dumps(config: ExperimentConfig, extra: Mapping[str, Any] | None = None) -> str:
    """JSON text of ``config``; ``extra`` (e.g. the metrics an export carries) is added under its own keys."""
    out = config.to_dict()
    for key, value in (extra or {}).items():
        if key in out:
            raise ConfigError(f"extra key {quote(key)} would overwrite a configuration field: name it otherwise")
        out[key] = value
    return json.dumps(out, indent=2, default=_json_default)


def parse_json(text: str | bytes, what: str = "configuration file") -> dict[str, Any]:
    """The JSON object in ``text``, with size and depth limits; ConfigError in one line otherwise."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{what} is {len(text):,} bytes, more than a configuration can be ({MAX_CONFIG_BYTES:,}): "
            "give a file saved by this app or written by --dump-config"
        )
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} is not valid JSON ({quote(str(exc), 80)}): give a file saved by this app") from None
    except RecursionError:  # thousands of nested brackets: Python's parser gives up before finding an error
        raise ConfigError(f"{what} nests its JSON too deeply to be read: give a file saved by this app") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must hold a JSON object with protocol, members, method, normaliser and k")
    return data


def loads(text: str | bytes, default_weight: WeightDefault = 1.0) -> ExperimentConfig:
    """Parse a configuration JSON (keys other than the configuration's, such as metrics, are ignored)."""
    data = parse_json(text)
    return ExperimentConfig.from_dict(
        {k: v for k, v in data.items() if k in _CONFIG_KEYS or k == VERSION_KEY}, default_weight
    )


def read_extra(text: str | bytes) -> dict[str, Any]:
    """The keys of a configuration JSON that are not the configuration (an export's metrics, best member...)."""
    data = parse_json(text)
    return {k: v for k, v in data.items() if k not in _CONFIG_KEYS and k != VERSION_KEY}


def load(path: str | Path) -> ExperimentConfig:
    """A configuration from a JSON file (``--config``); a missing or unreadable file is a one-line ConfigError."""
    p = Path(path)
    # A folder, a device (/dev/zero reads forever, and its size says 0) or a pipe is named for what it is.
    problem = not_a_file(p)
    if problem is not None:
        raise ConfigError(f"configuration file {problem}") from None
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"configuration file {str(p)!r} is {size:,} bytes, more than a configuration can be: check the path"
            )
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {str(p)!r}: {exc.strerror or exc}; check the path") from None
    try:
        return loads(text)
    except ConfigError as exc:
        raise ConfigError(f"{p.name}: {exc}") from None


def dump(config: ExperimentConfig, path: str | Path, extra: Mapping[str, Any] | None = None) -> None:
    Path(path).write_text(dumps(config, extra) + "\n")
