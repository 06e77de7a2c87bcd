"""Tables of several paired tests shown at once, in one layout on every page that has them: the Fusion Lab's
tile tests, Compare's every-metric test, and the Trade-offs search and per-segment reports.

The engine's table (``reco_core.stats.comparison_table`` / ``paired_table``: means, B - A with its bootstrap
interval, raw Wilcoxon p, Holm-adjusted p, verdict) becomes seven columns: what is compared, the two means, the
difference with its interval as one text cell, the raw p, the Holm-adjusted p headed with the number of tests, and
the verdict. Fewer, narrower columns keep the verdict on screen from a 768 px window up, where nine or ten numeric
columns pushed it behind a horizontal scroll.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from ui import charts


def holm_header(m: int) -> str:
    """The column of Holm-adjusted p-values over ``m`` tests."""
    return f"p (Holm, {m} test{'s' if m != 1 else ''})"


def _signed(x: float) -> str:
    return f"{x:+.4f}" if math.isfinite(x) else "n/a"


def frame(table: pd.DataFrame, what: str, a_label: str, b_label: str, metric_rows: bool = False) -> pd.DataFrame:
    """The display table of ``table`` (an engine table of paired tests whose first column names each test).

    ``what``: the first column's header ("metric", "member", "segment"); ``a_label`` / ``b_label``: the two
    means' headers. With ``metric_rows`` the names are metric keys, shown by their labels with "(lower is
    better)" where that holds.
    """
    names = table.iloc[:, 0].astype(str).tolist()
    if metric_rows:
        names = [charts.metric_label(k) + ("" if charts.higher_is_better(k) else " (lower is better)") for k in names]
    return pd.DataFrame(
        {
            what: names,
            a_label: table["mean A"].to_numpy(),
            b_label: table["mean B"].to_numpy(),
            "difference (95% CI)": [
                f"{_signed(d)} ({_signed(lo)} to {_signed(hi)})"
                for d, lo, hi in zip(table["B - A"], table["ci_low"], table["ci_high"], strict=True)
            ],
            "p": table["p"].to_numpy(),
            holm_header(len(table)): table["p (Holm)"].to_numpy(),
            "verdict": table["verdict"].to_numpy(),
        }
    )


def show(shown: pd.DataFrame) -> None:
    """Draw a ``frame``: means to four decimals, p-values to three significant digits."""
    cols = list(shown.columns)
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            cols[0]: st.column_config.TextColumn(cols[0], pinned=True),
            **{c: st.column_config.NumberColumn(c, format="%.4f") for c in cols[1:3]},
            **{c: st.column_config.NumberColumn(c, format="%.3g") for c in cols[4:6]},
        },
    )


def caption(m: int, tests: str) -> str:
    """What Holm's correction did over ``m`` tests (``tests``: which ones, in words), and why a verdict can say
    "weak evidence"."""
    return (
        f"Holm's correction over the {m} tests ({tests}): the smallest p is multiplied by {m}, the next by {m - 1},"
        " and so on (never below the one before), so the chance that any of them looks real by luck stays at 5%."
        " The verdict reads the corrected p together with the 95% interval, a paired bootstrap of the mean"
        " difference; the p comes from a Wilcoxon signed-rank test on the same differences. The two are different"
        " tests and can disagree near the line (an interval just clear of 0 with p just above 0.05): the verdict"
        " then says weak evidence."
    )
