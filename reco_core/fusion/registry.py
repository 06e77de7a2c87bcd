"""The registry of fusion methods: ``METHODS`` maps each name to its :class:`FusionMethod`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from reco_core.errors import ConfigError, quote
from reco_core.fusion.inputs import _Inputs, _Output
from reco_core.fusion.interleaving import _interleaving
from reco_core.fusion.list_methods import _list_method, _ListRule, _points_borda, _points_comb, _points_rrf
from reco_core.fusion.score_methods import _vote, _wsum
from reco_core.models.base import ParamSpec

Level = Literal["score", "result"]


@dataclass(frozen=True)
class FusionMethod:
    """A fusion method: its level, whether it has a dense fused score, and what it does."""

    name: str
    label: str
    level: Level
    run: Callable[[_Inputs], _Output]
    uses_normaliser: bool
    dense_scores: bool  # False: the fused order has no single score (vote, interleaving)
    description: str
    # The method's own parameters: name, type, range, default, label and help. The CLI makes a flag of each,
    # the sidebar an input, and a FusionSpec (and its JSON) holds their values; ``run`` reads them from
    # ``_Inputs.params``.
    params: tuple[ParamSpec, ...] = ()


METHODS: dict[str, FusionMethod] = {
    m.name: m
    for m in (
        FusionMethod(
            "wsum",
            "Weighted sum",
            "score",
            _wsum,
            True,
            True,
            "sum_m w_m * norm_m(s_m(u, i)) over the full catalogue; a member's NaN contributes 0",
        ),
        FusionMethod(
            "vote",
            "Weighted vote",
            "score",
            _vote,
            True,
            False,
            "sum of the weights of the members whose top-N holds the item; ties by the weighted sum of "
            "normalised scores, then item index",
        ),
        FusionMethod(
            "rrf",
            "Reciprocal rank fusion",
            "result",
            _list_method(_ListRule(_points_rrf)),
            False,
            True,
            "sum_m w_m / (rrf_k + rank_m(i)) over the lists holding i",
            params=(
                ParamSpec(
                    "rrf_k",
                    float,
                    60.0,
                    0.0,
                    1000.0,
                    1.0,
                    None,
                    False,
                    "score = w / (k + rank); a larger k flattens the gap between ranks (60 is usual)",
                    "RRF k",
                ),
            ),
        ),
        FusionMethod(
            "borda",
            "Borda count",
            "result",
            _list_method(_ListRule(_points_borda)),
            False,
            True,
            "sum_m w_m * points_m(i): |C| - rank + 1 if listed, (|C| - len_m + 1) / 2 otherwise (ranx BordaFuse)",
        ),
        FusionMethod(
            "combsum",
            "CombSUM",
            "result",
            _list_method(_ListRule(_points_comb)),
            True,
            True,
            "sum_m w_m * norm(top-N score of i in m), 0 if unlisted",
        ),
        FusionMethod(
            "combmnz",
            "CombMNZ",
            "result",
            _list_method(_ListRule(_points_comb, mnz=True)),
            True,
            True,
            "CombSUM times the number of (weighted) lists holding i",
        ),
        FusionMethod(
            "interleave",
            "Weighted round robin",
            "result",
            _interleaving(team_draft=False),
            False,
            False,
            "members take slots in proportion to their weights, skipping duplicates; ties to the earlier member",
        ),
        FusionMethod(
            "team_draft",
            "Team-draft interleaving",
            "result",
            _interleaving(team_draft=True),
            False,
            False,
            "as round robin, but ties between members are settled by seeded coin flips",
        ),
    )
}


def register_method(method: FusionMethod) -> FusionMethod:
    """Add a fusion method to ``METHODS``; it then appears in the CLI, the sidebar and the JSON format."""
    if not isinstance(method, FusionMethod):
        raise ConfigError(f"{method!r} is not a FusionMethod: build one with its name, level, run and params")
    if method.name in METHODS:
        raise ConfigError(f"a fusion method named {method.name!r} is already registered: choose another name")
    names = [ps.name for ps in method.params]
    if len(set(names)) != len(names):
        raise ConfigError(f"fusion method {method.name!r} declares a parameter twice: {', '.join(names)}")
    METHODS[method.name] = method
    return method


def unregister_method(name: str) -> None:
    """Remove a method added with ``register_method`` (tests clean up with it)."""
    METHODS.pop(name, None)


def check_method(name: str) -> FusionMethod:
    key = str(name).strip().lower()
    if key not in METHODS:
        raise ConfigError(f"unknown fusion method {quote(name)}: choose one of {', '.join(METHODS)}")
    return METHODS[key]
