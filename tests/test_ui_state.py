"""ui.state: the sidebar's widget values, the URL and the engine's ExperimentConfig agree (no running app)."""

from __future__ import annotations

import pytest

from reco_core.config import ExperimentConfig, FusionSpec, MemberSpec, Protocol
from reco_core.errors import ConfigError
from ui import state


def _cfg(fusion: FusionSpec) -> ExperimentConfig:
    members = (MemberSpec.of("als"), MemberSpec.of("itemknn", {"k": 50}))
    return ExperimentConfig(Protocol(seed=7), members, (0.25, 0.75), fusion)


def test_a_method_parameter_goes_to_the_url_under_its_method_and_back() -> None:
    cfg = _cfg(FusionSpec("rrf", "minmax", 20, params=(("rrf_k", 30.0),)))
    params = state.to_query_params(cfg)
    assert params["rrf.rrf_k"] == "30" and "rrf_k" not in params
    assert state.config_from_query_params(params) == cfg
    # At its default it is left out of the URL, like every widget value.
    assert "rrf.rrf_k" not in state.to_query_params(_cfg(FusionSpec("rrf")))


def test_a_link_written_before_the_parameter_was_declared_still_reads() -> None:
    cfg = state.config_from_query_params({"fusion": "Reciprocal rank fusion", "rrf_k": "12"})
    assert cfg.method == "rrf" and cfg.fusion.param("rrf_k") == 12.0


def test_another_methods_parameter_stays_out_of_the_configuration() -> None:
    values = state.widget_values(_cfg(FusionSpec("wsum")))
    values[state.param_key("rrf", "rrf_k")] = 5.0  # a value the sidebar keeps while rrf is not chosen
    cfg = state.config_from_values(values)
    assert cfg.method == "wsum" and cfg.fusion.params == ()


def test_widget_values_round_trip_and_dashboard_checks() -> None:
    cfg = _cfg(FusionSpec("team_draft", "none", 5))
    assert state.config_from_values(state.widget_values(cfg)) == cfg
    assert state.check_for_dashboard(cfg) is cfg
    with pytest.raises(ConfigError, match=r"test_frac=0\.7 is not valid: give a number from 0\.05 to 0\.5"):
        state.check_for_dashboard(ExperimentConfig(Protocol(test_frac=0.7)))
    with pytest.raises(ConfigError, match="k=60 is not valid"):
        state.check_for_dashboard(ExperimentConfig(fusion=FusionSpec(k=60)))


def test_split_and_normaliser_choices_come_from_the_engine_registries() -> None:
    from reco_core.fusion import NORMALISERS
    from reco_core.splitting import SPLITTERS

    assert tuple(SPLITTERS) == state.SPLITS
    assert [state.normaliser_label(n) for n in NORMALISERS] == [n.label for n in NORMALISERS.values()]


def test_a_method_registered_after_import_reads_back_from_a_link(rank_power) -> None:
    cfg = _cfg(FusionSpec("rank_power", params=(("power", 2.0),)))
    params = state.to_query_params(cfg)
    assert params[state.K_METHOD] == "Rank power"  # the label, as the bound selectbox writes it
    assert state.config_from_query_params(params) == cfg
