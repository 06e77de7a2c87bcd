"""The benchmark's browser sessions (bench/sessions.py) drive Chromium exactly as this suite does.

bench/ and tests/ cannot import each other (bench is not an installed package, and a benchmark must not
depend on the test suite), so the launch flags live in both; this reads bench/sessions.py's literal
without importing it (nor this folder's conftest, whose module name other folders' conftests share) and
fails when the two lists drift apart.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _literal(path: Path, name: str) -> object:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path} has no top-level {name} = <literal>")


def test_bench_sessions_launch_chromium_with_the_same_flags() -> None:
    ours = _literal(ROOT / "tests" / "e2e" / "conftest.py", "CHROMIUM_ARGS")
    assert ours and _literal(ROOT / "bench" / "sessions.py", "CHROMIUM_ARGS") == ours
