"""Metric tiles that read at any window width, their deltas against a chosen baseline, and the session's history
of configurations.

- ``grid()``: a wrapping row (``st.container(horizontal=True)``) of fixed-width tiles, so a 768 px window shows
  two or three per row with every label, value and delta in full, and a wide one shows six or more.
- ``delta(value, base, higher_is_better)``: the ``st.metric`` arguments for a change; a change smaller than
  the display's precision (four decimals) gets no arrow and no colour, as it reads "+0.0000".
- Baselines: deltas are read against the best single member, the configuration before the last change, or
  a configuration the person pinned (``Baseline``).
- History: the last ``MAX_HISTORY`` configurations the session looked at, with a few headline values, newest
  first (``record`` / ``history``); the Fusion Lab lists them and loads one back with a click.

Streamlit-free helpers (``delta``, ``History``) are tested on their own; the drawing functions take values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

TILE_WIDTH = 184  # px: "Personalisation@10" and "+0.0123 vs itemknn" fit at the theme's font
DECIMALS = 4
MAX_HISTORY = 20
HISTORY_METRICS = ("ndcg", "precision", "recall", "coverage", "novelty")


def grid() -> Any:
    """A container whose tiles wrap onto as many rows as the width needs."""
    return st.container(horizontal=True, gap="small")


def delta(value: float, base: float | None, higher_is_better: bool, suffix: str = "") -> dict[str, Any]:
    """``st.metric`` keyword arguments for ``value`` against ``base`` (none when there is no base).

    A change that rounds to zero at ``DECIMALS`` decimals is shown as "±0.0000" in grey without an arrow: an
    arrow would claim a direction the display cannot show.
    """
    if base is None:
        return {"delta": None}
    change = float(value) - float(base)
    text = f"{change:+.{DECIMALS}f}{suffix}"
    if abs(change) < 0.5 * 10**-DECIMALS:
        return {"delta": f"±{0:.{DECIMALS}f}{suffix}", "delta_color": "off", "delta_arrow": "off"}
    return {"delta": text, "delta_color": "normal" if higher_is_better else "inverse"}


def tile(container: Any, label: str, value: float, base: float | None, higher_is_better: bool, **kwargs: Any) -> None:
    """One bordered, fixed-width metric tile with its delta against ``base``."""
    container.metric(
        label,
        f"{value:.{DECIMALS}f}",
        border=True,
        width=TILE_WIDTH,
        **delta(value, base, higher_is_better),
        **kwargs,
    )


# ------------------------------------------------------------------------------------------ history


@dataclass(frozen=True)
class Entry:
    """One configuration the session looked at: its JSON (``LabConfig.to_json``), a one-line description and
    its headline metric means."""

    config_json: str
    description: str
    values: Mapping[str, float] = field(default_factory=dict)


@dataclass
class History:
    """The session's last ``MAX_HISTORY`` configurations, newest first; looking at one again moves it to the top."""

    entries: list[Entry] = field(default_factory=list)
    limit: int = MAX_HISTORY
    version: int = 0  # counts changes of the list (a table of it is keyed by it)

    def record(self, entry: Entry) -> Entry | None:
        """Put ``entry`` on top; returns the configuration that was on top before when it differs (the
        "previous" baseline), else None."""
        before = self.entries[0] if self.entries else None
        if before is not None and before.config_json == entry.config_json:
            self.entries[0] = entry
            return None
        self.entries = [entry, *(e for e in self.entries if e.config_json != entry.config_json)][: self.limit]
        self.version += 1
        return before

    def previous(self) -> Entry | None:
        return self.entries[1] if len(self.entries) > 1 else None


# One plain line for the metrics whose names say little to a newcomer; shown under the tiles where they first
# appear (the help icon repeats the formula).
JARGON = {
    "ild_genre": "ILD (intra-list diversity): how different the items of one list are from each other, "
    "0 = all alike, 1 = nothing in common (by genre, or by what their descriptions say).",
    "arp": "ARP (average recommendation popularity): how many training interactions the recommended items "
    "have on average; lower means less mainstream.",
    "gini": "Gini: how unevenly the recommendations fall on the catalogue, 0 = every item equally often, "
    "1 = always the same few items.",
    "novelty": "Novelty, in bits: how surprising the items are; an item that 1 in 2^n training interactions "
    "touches scores n bits, so higher means rarer.",
}


def jargon(names: Sequence[str]) -> str:
    """The plain-language lines for the metrics among ``names`` that need one (one ILD line for both kinds)."""
    seen = {"ild_genre" if n in ("ild_genre", "ild_text") else n for n in names}
    return " ".join(text for name, text in JARGON.items() if name in seen)


def headline(values: Mapping[str, float], names: Sequence[str] = HISTORY_METRICS) -> dict[str, float]:
    """The headline metrics among an evaluation's means (``Evaluation.values()``, keys such as "ndcg@10"), in
    ``names`` order."""
    return {key: float(values[key]) for n in names for key in sorted(values) if key.partition("@")[0] == n}
