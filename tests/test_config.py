"""The experiment configuration (reco_core.config): validation, the JSON format, and the CLI's --config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reco_core import config
from reco_core.__main__ import build_parser, main
from reco_core.config import ExperimentConfig, FusionSpec, MemberSpec, Protocol
from reco_core.errors import ConfigError
from reco_core.fusion import METHODS


def _config(**fusion: object) -> ExperimentConfig:
    return ExperimentConfig(
        Protocol(dataset="ml-100k", seed=7, test_frac=0.25),
        (MemberSpec.of("als", {"factors": 16}), MemberSpec.of("pop")),
        (0.7, 0.3),
        FusionSpec(**{"method": "rrf", "normaliser": "none", "k": 5, **fusion}),  # type: ignore[arg-type]
    )


def test_json_round_trip_keeps_every_field() -> None:
    cfg = _config(params=(("rrf_k", 30.0),))
    back = config.loads(config.dumps(cfg, extra={"metrics": {"fusion": {"ndcg@5": 0.4}}}))
    assert back == cfg
    assert back.fusion.param("rrf_k") == 30.0 and back.fusion.seed == 7  # one seed: the protocol's
    data = json.loads(cfg.to_json())
    assert data["reco_fusion_lab_config"] == 2 and data["method_params"] == {"rrf_k": 30.0}


def test_a_version_1_export_is_still_read() -> None:
    v1 = {
        "reco_fusion_lab_config": 1,
        "protocol": {"dataset": "ml-100k", "seed": 42},
        "members": [{"model": "pop", "params": {}, "weight": 1.0}],
        "method": "rrf",
        "normaliser": "minmax",
        "k": 10.0,
        "rrf_k": 20,
        "metrics": {"fusion": {}},
    }
    cfg = config.loads(json.dumps(v1))
    assert cfg.method == "rrf" and cfg.k == 10 and cfg.fusion.param("rrf_k") == 20.0
    assert config.read_extra(json.dumps(v1)) == {"metrics": {"fusion": {}}}


def test_method_parameters_are_declared_defaulted_and_checked() -> None:
    assert [ps.name for ps in METHODS["rrf"].params] == ["rrf_k"]
    assert FusionSpec("rrf").param("rrf_k") == 60.0  # the declared default
    assert FusionSpec("wsum").params == ()
    with pytest.raises(ConfigError, match="has no parameter 'rrf_k': it takes none"):
        FusionSpec("wsum", params=(("rrf_k", 10),))
    with pytest.raises(ConfigError, match=r"rrf\.rrf_k=5000 is out of range"):
        FusionSpec("rrf", params=(("rrf_k", 5000),))
    with pytest.raises(ConfigError, match=r"rrf\.rrf_k='x' is not a number"):
        FusionSpec("rrf", params=(("rrf_k", "x"),))
    with pytest.raises(ConfigError, match="unknown fusion method"):
        FusionSpec("nope")
    # Switching method keeps only the parameters the new method declares.
    assert _config(params=(("rrf_k", 5.0),)).with_fusion(method="wsum").fusion.params == ()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"[1, 2]", "must hold a JSON object"),
        (b"{", "not valid JSON"),
        (b"[" * 100_000, "nests its JSON too deeply"),
        (b" " * (config.MAX_CONFIG_BYTES + 1), "more than a configuration can be"),
        (b'{"reco_fusion_lab_config": 9}', "version 9 is not known"),
        (b'{"protocol": {"colour": 1}}', "protocol has no field 'colour'"),
        (b'{"protocol": {"seed": -1}}', "protocol.seed=-1 is not valid"),
        (b'{"protocol": {"split": "sideways"}}', "choose one of random, temporal, leave-last"),
        (b'{"members": [{"model": "pop", "weight": "heavy"}]}', "members[0].weight='heavy' is not a number"),
        (b'{"members": [{"model": "als", "params": {"factors": 0}}]}', "factors=0"),
        (b'{"method": "rrf", "method_params": {"rrf_k": -2}}', "rrf.rrf_k=-2 is out of range"),
        (b'{"method": "wsum", "method_params": {"alpha": 1}}', "has no parameter 'alpha'"),
    ],
)
def test_bad_files_are_one_line_errors(text: bytes, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)) as info:
        config.loads(text)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_load_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "exported.json"
    bad.write_text('{"method": "nope"}')
    with pytest.raises(ConfigError, match=r"exported\.json: unknown fusion method 'nope'"):
        config.load(bad)
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        config.load(tmp_path / "missing.json")


# ------------------------------------------------------------------------------------------ the CLI


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dump_config_then_config_is_the_same_configuration(capsys, tmp_path: Path) -> None:
    code, out, err = run(
        capsys, "fuse", "--models", "als,pop", "--weights", "0.6,0.4", "--method", "rrf", "--rrf-k", "25",
        "--k", "5", "--seed", "3", "--dump-config",
    )  # fmt: skip
    assert code == 0, err
    cfg = config.loads(out)
    assert cfg.labels == ("als", "pop") and cfg.weights == (0.6, 0.4)
    assert cfg.method == "rrf" and cfg.fusion.param("rrf_k") == 25.0 and cfg.k == 5 and cfg.protocol.seed == 3
    path = tmp_path / "c.json"
    path.write_text(out)
    # Read back, and flags beside --config override its fields (and only those).
    code, again, err = run(capsys, "fuse", "--config", str(path), "--k", "7", "--dump-config")
    assert code == 0, err
    other = config.loads(again)
    assert other.k == 7 and other.fusion.param("rrf_k") == 25.0 and other.weights == (0.6, 0.4)
    assert other.protocol == cfg.protocol


def test_a_method_parameter_flag_must_belong_to_the_method(capsys) -> None:
    code, _, err = run(capsys, "fuse", "--models", "pop", "--method", "wsum", "--rrf-k", "10", "--dump-config")
    assert code == 2 and "--rrf-k is not a parameter of method 'wsum'" in err


def test_config_members_keep_their_parameters(capsys, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    config.dump(_config(), path)
    code, out, err = run(capsys, "fuse", "--config", str(path), "--models", "als", "--dump-config")
    assert code == 0, err
    cfg = config.loads(out)
    assert cfg.members == (MemberSpec.of("als", {"factors": 16}),) and cfg.weights == (0.7,)


# ------------------------------------------------------------------------------------------ a new method


def test_a_registered_method_with_a_parameter_reaches_json_and_cli(rank_power, capsys) -> None:
    spec = FusionSpec("rank_power", params=(("power", 2.5),))
    cfg = ExperimentConfig(Protocol(), (MemberSpec.of("pop"),), (1.0,), spec)
    assert config.loads(config.dumps(cfg)) == cfg
    helptext = build_parser()._subparsers._group_actions[0].choices["fuse"].format_help()  # type: ignore[union-attr]
    assert "--power" in helptext and "Exponent of the rank" in helptext
    code, out, err = run(capsys, "fuse", "--models", "pop", "--method", "rank_power", "--power", "3", "--dump-config")
    assert code == 0, err
    assert config.loads(out).fusion.param("power") == 3.0
