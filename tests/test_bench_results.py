"""bench/results.json bookkeeping: a section that fails leaves the figures it had, with their own machine and date."""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import load_results, save_failure, save_section


def test_a_failed_rerun_keeps_the_earlier_figures_and_their_stamps(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    save_section("spark", {"sizes": [{"size": "ml-1m", "evaluate_ratio": 2.9}]}, quick=False, path=path)
    before = load_results(path)["sections"]["spark"]
    save_failure("spark", "RuntimeError: the 10M run ran out of memory", path=path)
    after = json.loads(path.read_text())
    assert after["sections"]["spark"] == before  # figures, machine, date and quick flag untouched
    assert after["failures"]["spark"]["error"] == "RuntimeError: the 10M run ran out of memory"
    save_section("spark", {"sizes": []}, quick=True, path=path)  # a later run that goes through
    assert "spark" not in load_results(path).get("failures", {})
