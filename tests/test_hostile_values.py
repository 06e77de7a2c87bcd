"""Issue 13, item 5: a message quotes a person's value clipped, never in full.

A 30 MB method name in a configuration gave a 30 MB error message, and ``UnknownIdError`` repeated a
100,000-character id. Every entry point below is given a 1,000,000-character value; its message must stay
under 400 characters, still name the argument, and say how long the value was. The values are built by
hypothesis from a short generated piece repeated to the full length (hypothesis cannot draw a megabyte).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reco_core import datasets, experiment, fusion
from reco_core.checks import check_whole
from reco_core.cli_commands import parse_ks
from reco_core.config import ExperimentConfig, FusionSpec, Protocol
from reco_core.errors import ConfigError, DataError, RecoError, UnknownIdError, quote
from reco_core.ids import IdMap
from reco_core.models import get_spec, make_model

SIZE = 1_000_000
LIMIT = 400

SETTINGS = settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# A short piece (any text, spaces and quotes included) repeated to SIZE characters.
PIECE = st.text(min_size=1, max_size=6).filter(lambda t: t.strip() != "")


def huge(piece: str) -> str:
    return (piece * (SIZE // len(piece) + 1))[:SIZE]


def _config(**fields: object) -> ExperimentConfig:
    return ExperimentConfig.from_dict({"reco_fusion_lab_config": 2, **fields})


# entry point -> (call with the hostile value, what the message must name)
ENTRY_POINTS: dict[str, tuple[Callable[[str], object], str]] = {
    "IdMap.index_of": (lambda v: IdMap.from_values(["1", "2"]).index_of([v], what="user"), "unknown user"),
    "fusion.check_method": (fusion.check_method, "unknown fusion method"),
    "fusion.check_normaliser": (fusion.check_normaliser, "unknown normaliser"),
    "FusionSpec(method=)": (lambda v: FusionSpec(method=v), "unknown fusion method"),
    "FusionSpec(normaliser=)": (lambda v: FusionSpec(normaliser=v), "unknown normaliser"),
    "FusionSpec(k=)": (lambda v: FusionSpec(k=v), "k="),
    "FusionSpec.param": (lambda v: FusionSpec().param(v), "has no parameter"),
    "Protocol(split=)": (lambda v: Protocol(split=v), "protocol.split="),
    "Protocol(seed=)": (lambda v: Protocol(seed=v), "protocol.seed="),
    "Protocol.from_dict": (lambda v: Protocol.from_dict({v: 1}), "protocol has no field"),
    "config method": (lambda v: _config(method=v), "unknown fusion method"),
    "config member model": (lambda v: _config(members=[{"model": v}]), "unknown model"),
    "config member weight": (lambda v: _config(members=[{"model": "pop", "weight": v}]), "members[0].weight="),
    "config member param": (lambda v: _config(members=[{"model": "itemknn", "params": {"k": v}}]), "ItemKNN.k="),
    "config method_params": (lambda v: _config(method_params={v: 1}), "has no parameter"),
    "config version": (lambda v: _config(reco_fusion_lab_config=v), "configuration version"),
    "config method_params value": (
        lambda v: _config(method="rrf", method_params={"rrf_k": v}),
        "rrf.rrf_k=",
    ),
    "check_whole": (lambda v: check_whole(v, "top_n"), "top_n="),
    "get_spec": (get_spec, "unknown model"),
    "make_model name": (make_model, "unknown model"),
    "make_model param name": (lambda v: make_model("pop", **{v: 1}), "has no parameter"),
    "make_model choice": (lambda v: make_model("itemknn", prune=v), "ItemKNN.prune="),
    "make_model number": (lambda v: make_model("itemknn", shrink=v), "ItemKNN.shrink="),
    "make_model bool": (lambda v: make_model("itemknn", use_ratings=v), "ItemKNN.use_ratings="),
    # One name (no comma): a list naming a model twice is still repeated in full by experiment.py (not ours).
    "experiment.parse_members": (lambda v: experiment.parse_members(v.replace(",", ";")), "unknown model"),
    "datasets.load": (datasets.load, "dataset"),
    "datasets.synthetic_size": (datasets.synthetic_size, "synthetic size"),
    "datasets.load_files threshold": (
        lambda v: datasets.load_files(pd.DataFrame({"user": ["a"], "item": ["b"]}), threshold=v),
        "threshold=",
    ),
    "datasets.load_files columns role": (
        lambda v: datasets.load_files(pd.DataFrame({"user": ["a"], "item": ["b"]}), columns={v: "user"}),
        "unknown role(s)",
    ),
    "datasets.load_files columns name": (
        lambda v: datasets.load_files(pd.DataFrame({"user": ["a"], "item": ["b"]}), columns={"user": v}),
        "(named for 'user') is not in the file",
    ),
    "datasets.load_files rating cell": (
        lambda v: datasets.load_files(pd.DataFrame({"user": ["a"], "item": ["b"], "rating": [v]})),
        "column 'rating', row 1: rating",
    ),
    "datasets.load_files timestamp cell": (
        lambda v: datasets.load_files(pd.DataFrame({"user": ["a"], "item": ["b"], "timestamp": [v]})),
        "column 'timestamp', row 1: timestamp",
    ),
    "datasets.load_files header": (
        lambda v: datasets.load_files(pd.DataFrame({v: ["a"], "item": ["b"]})),
        "no user column",
    ),
    "cli --k": (parse_ks, "--k"),
}


def _message(call: Callable[[str], object], value: str) -> str:
    with pytest.raises(RecoError) as info:
        call(value)
    return str(info.value)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@SETTINGS
@given(piece=PIECE)
@example(piece="a")
@example(piece="x y\n'\"")
def test_a_million_character_value_gives_a_short_message_that_names_the_argument(entry: str, piece: str) -> None:
    call, names = ENTRY_POINTS[entry]
    value = huge(piece)
    message = _message(call, value)
    assert len(message) < LIMIT, f"{entry}: {len(message):,} characters: {message[:300]}"
    assert names in message, f"{entry}: {message}"
    assert "..." in message


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_the_message_says_how_long_the_value_was(entry: str) -> None:
    call, _ = ENTRY_POINTS[entry]
    message = _message(call, "a" * SIZE)
    if entry == "IdMap.index_of":
        assert "'aaaa" in message
    assert "(1,000,000 characters)" in message, message


def test_a_30_mb_method_name_in_a_configuration_file(tmp_path: Path) -> None:
    """The tracker's case: a configuration whose method name is 30 MB (refused by size: the file is too large),
    and the same name passed in Python, which is clipped."""
    name = "a" * 30_000_000
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"reco_fusion_lab_config": 2, "method": name}))
    from reco_core import config

    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert len(str(info.value)) < LIMIT
    with pytest.raises(ConfigError) as info:
        FusionSpec(method=name)
    assert str(info.value) == (f"unknown fusion method {quote(name)}: choose one of {', '.join(fusion.METHODS)}")
    assert "'aaaa" in str(info.value) and "...' (30,000,000 characters)" in str(info.value)


def test_unknown_id_of_100k_characters_and_long_known_ids_are_clipped() -> None:
    """UnknownIdError repeated a 100,000-character id, and its examples are ids from the data."""
    ids = IdMap.from_values(["k" * 100_000, "2", "3"])
    with pytest.raises(UnknownIdError) as info:
        ids.index_of(["u" * 100_000, "v" * 100_000], what="user")
    message = str(info.value)
    assert len(message) < LIMIT, message
    assert message.startswith("unknown user 'uuuu") and "(100,000 characters)" in message
    assert "pick one of the 3 known users" in message


def test_short_values_are_quoted_exactly_as_before() -> None:
    """Messages keep their words: a short value is its repr, so the messages tests match are unchanged."""
    assert quote("als") == "'als'"
    assert quote(0) == "0" and quote(None) == "None" and quote(1.5) == "1.5"
    assert quote("a" * 78) == repr("a" * 78)  # 80 characters with its quotes
    assert quote(b"x" * 200).endswith("...' (200 bytes)")
    assert quote(list(range(1000))).endswith(f"... ({len(repr(list(range(1000)))):,} characters)")
    with pytest.raises(ConfigError, match=r"^unknown fusion method 'nope': choose one of"):
        fusion.check_method("nope")
    with pytest.raises(ConfigError, match=r"^k=0 is not valid: give a whole number of at least 1$"):
        check_whole(0, "k")


@SETTINGS
@given(value=st.one_of(st.text(max_size=300), st.binary(max_size=300), st.integers(), st.lists(st.integers())))
def test_quote_is_one_short_line(value: object) -> None:
    text = quote(value)
    assert len(text) < 120 and "\n" not in text
    if len(repr(value)) <= 80 and " " not in repr(value):
        assert text == repr(value)


def test_cells_in_a_file_are_clipped_in_messages(tmp_path: Path) -> None:
    """A 1,000,000-character cell in a CSV: the message names the file, the column and the row."""
    path = tmp_path / "inter.csv"
    path.write_text("user,item,rating\n1,1,4\n2,1," + "x" * SIZE + "\n")
    with pytest.raises(DataError) as info:
        datasets.load_files(path)
    message = str(info.value)
    assert len(message) < LIMIT and message.startswith(f"{path}: column 'rating', row 2: rating 'xxx")
    assert "(1,000,000 characters)" in message
