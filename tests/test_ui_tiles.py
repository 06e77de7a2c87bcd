"""The tiles' deltas, the session history, the plain-language lines, the paired per-user chart and the load
report in words (issue 14), without a running app."""

from __future__ import annotations

import numpy as np
import pytest

from ui import charts, tiles
from ui.upload import source_words


@pytest.mark.parametrize(
    ("value", "base", "higher", "expected"),
    [
        (0.41234, 0.41231, True, {"delta": "±0.0000", "delta_color": "off", "delta_arrow": "off"}),
        (0.41234, 0.41231, False, {"delta": "±0.0000", "delta_color": "off", "delta_arrow": "off"}),
        (0.4130, 0.4120, True, {"delta": "+0.0010", "delta_color": "normal"}),
        (0.4110, 0.4120, False, {"delta": "-0.0010", "delta_color": "inverse"}),
        (0.5, None, True, {"delta": None}),
    ],
)
def test_a_delta_below_the_display_precision_has_no_arrow(value, base, higher, expected) -> None:
    assert tiles.delta(value, base, higher) == expected


def test_delta_suffix_names_the_baseline() -> None:
    assert tiles.delta(0.5, 0.4, True, suffix=" vs als")["delta"] == "+0.1000 vs als"


def entry(n: int) -> tiles.Entry:
    return tiles.Entry(f'{{"w": {n}}}', f"config {n}", {"ndcg@10": n / 100, "precision@10": n / 200})


def test_history_keeps_the_last_configurations_newest_first() -> None:
    h = tiles.History(limit=3)
    assert h.record(entry(1)) is None and h.previous() is None
    assert h.record(entry(2)) == entry(1)
    assert h.record(entry(2)) is None  # the same configuration again: nothing moves
    h.record(entry(3))
    h.record(entry(4))
    assert [e.description for e in h.entries] == ["config 4", "config 3", "config 2"]
    assert h.record(entry(2)) == entry(4)  # going back moves it to the top, once
    assert [e.description for e in h.entries] == ["config 2", "config 4", "config 3"]
    assert h.previous() == entry(4)


def test_headline_and_jargon() -> None:
    values = {"precision@10": 0.3, "ndcg@10": 0.4, "gini@10": 0.9, "novelty@10": 9.0}
    assert list(tiles.headline(values)) == ["ndcg@10", "precision@10", "novelty@10"]
    text = tiles.jargon(["ndcg", "ild_text", "arp", "gini", "novelty"])
    assert text.count("ILD") == 1 and "ARP" in text and "Gini" in text and "bits" in text
    assert tiles.jargon(["ndcg", "precision"]) == ""


def test_per_user_difference_counts_better_same_worse() -> None:
    diff = np.array([0.2, 0.1, 0.0, 0.0, 0.0, -0.3])
    fig = charts.per_user_difference(diff, "ndcg@10", "als")
    names = [t.name for t in fig.data]
    assert names == ["better with the fusion: 2 users", "no change: 3 users", "better with als: 1 users"]
    assert [int(np.sum(t.y)) for t in fig.data] == [2, 3, 1]
    # Lower is better (ARP): a negative difference is a gain for the fusion.
    fig = charts.per_user_difference(diff, "arp@10", "als", higher_is_better=False)
    assert [int(np.sum(t.y)) for t in fig.data] == [1, 3, 2]


def test_the_load_report_names_sources_in_words() -> None:
    root = "/srv/app/.venv/lib/python3.11/site-packages/recbole/dataset_example/ml-100k"
    report = (
        f"100,000 rows read from recbole wheel copy {root}; 100,000 kept. {root}/ml-100k.item: 2 year value(s) "
        "are not numbers and were left empty."
    )
    text = source_words(report)
    assert text == (
        "100,000 rows read from the recbole wheel's copy; 100,000 kept. ml-100k.item: 2 year value(s) are not "
        "numbers and were left empty."
    )
    assert "/" not in source_words("read from RECO_DATA_DIR folder /data/movielens; 5 kept")
