"""Helpers for the AppTest suite: open the app on a page, read tiles and messages.

Every test starts from ``app.py`` and switches page, as a person following a link does; a page run as its
own entrypoint would resolve page links relative to itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
TIMEOUT = 120  # the first run fits three members and embeds 1,682 titles; later runs take well under a second
FUSION_LAB = "pages/1_Fusion_Lab.py"


def open_page(page: str | None = None, timeout: float = TIMEOUT) -> AppTest:
    """A fresh session on ``app.py``, switched to ``page`` (None: the Overview), after its first run."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if page is not None:
        at.switch_page(page)
    return at.run()


def values(elements: Iterable) -> list[str]:
    return [str(e.value) for e in elements]


def assert_clean(at: AppTest) -> None:
    """No exception element (a traceback on the page)."""
    assert not at.exception, f"exception on the page: {values(at.exception)}"


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric tile {label!r}; tiles are {[m.label for m in at.metric]}"
    return str(found[0])


def messages(at: AppTest) -> str:
    """Every error, warning and info text on the page and in the sidebar, lower-cased, escapes removed."""
    text = " | ".join(values(at.error) + values(at.warning) + values(at.info))
    return text.replace("\\", "").lower()


def button(at: AppTest, label: str):
    """The first button (form submit buttons included) with this label."""
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons are {[b.label for b in at.button]}"
    return found[0]


def vega_chart_rows(at: AppTest) -> dict[str, tuple[dict, pd.DataFrame]]:
    """Every Vega-Lite chart on the page by title: its spec and the rows sent with it (Arrow)."""
    out = {}
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        out[str(spec["title"])] = (spec, pa.ipc.open_stream(chart.proto.data.data).read_pandas())
    return out
