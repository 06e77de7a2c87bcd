"""One configuration from the dashboard to the command line and back (reco_core.config).

- The Fusion Lab's "Configuration and metrics (JSON)" export, run with ``python -m reco_core fuse --config``,
  gives the metrics stored in it, to 1e-9.
- A file written by ``--dump-config`` loads into the dashboard.
- A fusion method registered in a test as one record, with one numeric parameter, shows up in the sidebar
  with its input, and the page fuses with it (the CLI and JSON side: tests/test_config.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from apptest_helpers import APP, FUSION_LAB, TIMEOUT, assert_clean, messages, values
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

from reco_core import config
from reco_core.__main__ import main
from ui import state

EXPORT_LABEL = "Configuration and metrics (JSON)"


def _fusion_lab() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(FUSION_LAB)
    return at.run()


@pytest.fixture()
def exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every configuration JSON the Fusion Lab hands to its download button, in order."""
    seen: list[str] = []
    original = DeltaGenerator.download_button

    def capture(self: DeltaGenerator, label: str, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        if label == EXPORT_LABEL:
            seen.append(data() if callable(data) else data)
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", capture)
    return seen


def test_the_cli_reproduces_an_exported_configuration(warm_lab, exports, capsys, tmp_path: Path) -> None:
    at = _fusion_lab()
    at.selectbox(key=state.K_METHOD).set_value("rrf").run()
    at.number_input(key=state.param_key("rrf", "rrf_k")).set_value(30.0).run()
    assert_clean(at)
    text = exports[-1]
    exported = json.loads(text)
    assert exported["method"] == "rrf" and exported["method_params"] == {"rrf_k": 30.0}
    path = tmp_path / "fusion-config.json"
    path.write_text(text)

    code = main(["fuse", "--config", str(path), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {r["model"]: r for r in json.loads(out)["results"]}
    stored = exported["metrics"]
    assert set(rows) == {"fused", *stored} - {"fusion"}
    for name, metrics in stored.items():
        got = rows["fused" if name == "fusion" else name]
        assert metrics.keys() <= got.keys(), name
        for key, value in metrics.items():
            if value is None or (isinstance(value, float) and np.isnan(value)):
                assert got[key] is None or np.isnan(got[key]), (name, key)
            else:
                assert got[key] == pytest.approx(value, abs=1e-9), (name, key)


def test_a_dump_config_file_loads_into_the_dashboard(warm_lab, capsys) -> None:
    code = main(["fuse", "--models", "als,itemknn", "--weights", "0.25,0.75", "--method", "rrf", "--rrf-k", "12",
                 "--k", "5", "--dump-config"])  # fmt: skip
    dumped, err = capsys.readouterr()
    assert code == 0, err
    at = _fusion_lab()
    uploader = next(u for u in at.file_uploader if "config" in (u.key or ""))
    uploader.set_value(("dumped.json", dumped.encode(), "application/json"))
    at.run()
    assert_clean(at)
    assert not at.error, values(at.error)
    assert at.selectbox(key=state.K_METHOD).value == "rrf"
    assert at.number_input(key=state.param_key("rrf", "rrf_k")).value == 12.0
    assert at.slider(key=state.K_K).value == 5
    assert [at.slider(key=state.weight_key(m)).value for m in ("als", "itemknn")] == [0.25, 0.75]
    loaded = at.session_state["lab:config"]
    assert loaded == config.loads(dumped)


def test_a_registered_method_appears_in_the_sidebar_with_its_parameter(warm_lab, rank_power) -> None:
    at = _fusion_lab()
    assert "Rank power" in at.selectbox(key=state.K_METHOD).options  # drawn with the method's label
    at.selectbox(key=state.K_METHOD).set_value("rank_power").run()
    power = at.number_input(key=state.param_key("rank_power", "power"))
    assert power.label == "Power" and power.value == 1.0
    power.set_value(2.5).run()
    assert_clean(at)
    assert not at.error, messages(at)
    cfg = at.session_state["lab:config"]
    assert cfg.method == "rank_power" and cfg.fusion.param("power") == 2.5
    assert "rank power" in cfg.describe().lower() and "power = 2.5" in cfg.describe().lower()
    assert at.metric, "the page shows the fused tiles with the new method"
