"""The engine knows nothing about screens: no module under reco_core imports streamlit (DESIGN.md §1).

Each file is parsed with ``ast`` rather than imported, so a lazy import inside a function is caught too,
and a broken module elsewhere cannot hide one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1] / "reco_core"
FORBIDDEN = "streamlit"


def imported_modules(tree: ast.AST) -> list[tuple[str, int]]:
    """(module name, line) for every ``import x`` / ``from x import y`` / ``importlib.import_module("x")``."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in {"import_module", "__import__"})
            )
        ):
            found.append((node.args[0].value, node.lineno))
    return found


def is_streamlit(module: str) -> bool:
    return module == FORBIDDEN or module.startswith(FORBIDDEN + ".")


def engine_files() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if "__pycache__" not in p.parts)


def test_engine_has_modules() -> None:
    # Guards the test below against passing vacuously because the folder moved.
    assert len(engine_files()) >= 5


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: str(p.relative_to(ENGINE)))
def test_module_does_not_import_streamlit(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"line {line}: {mod}" for mod, line in imported_modules(tree) if is_streamlit(mod)]
    assert not bad, f"reco_core/{path.relative_to(ENGINE)} imports streamlit ({'; '.join(bad)}): move UI code to ui/"


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("import streamlit as st", True),
        ("import streamlit.runtime", True),
        ("from streamlit import cache_data", True),
        ("def f():\n    import streamlit\n", True),
        ("import importlib\nimportlib.import_module('streamlit')", True),
        ("__import__('streamlit')", True),
        ("import streamlitish", False),
        ("from . import streamlit_free", False),
        ("import numpy as np", False),
    ],
)
def test_detector(source: str, caught: bool) -> None:
    # The detector itself must see every import form, or the real test proves nothing.
    mods = imported_modules(ast.parse(source))
    assert any(is_streamlit(m) for m, _ in mods) is caught
