"""What each metric means: label, kind, scope, direction, formula (DESIGN.md section 5).

Pure metadata with no imports from the rest of the engine, so that ``metrics`` (which computes the
metrics and needs ``stats`` for intervals) and ``stats`` (which words a comparison and needs each
metric's label and direction) can both read it without importing each other. ``METRICS`` keeps
the display order; ``reco_core.metrics`` attaches one compute function to every entry and
re-exports ``METRICS`` and ``MetricSpec``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MetricSpec:
    """What a metric means: display label, kind, whether it is per user or one global number."""

    name: str
    label: str
    kind: Literal["accuracy", "beyond"]
    scope: Literal["user", "global"]
    higher_is_better: bool
    formula: str
    description: str
    needs: Literal["item_genres", "item_vectors", "history", "genres_and_history"] | None = None


_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "precision",
        "Precision",
        "accuracy",
        "user",
        True,
        r"\mathrm{P@}k = \frac{1}{k}\sum_{i=1}^{k} rel_i",
        "Share of the k recommended slots that hold a held-out item (empty slots count as misses).",
    ),
    MetricSpec(
        "recall",
        "Recall",
        "accuracy",
        "user",
        True,
        r"\mathrm{R@}k = \frac{1}{|T|}\sum_{i=1}^{k} rel_i",
        "Share of the user's held-out items found in the top k.",
    ),
    MetricSpec(
        "hit_rate",
        "Hit rate",
        "accuracy",
        "user",
        True,
        r"\mathrm{HR@}k = \mathbb{1}\left[\sum_{i=1}^{k} rel_i > 0\right]",
        "1 when at least one held-out item is in the top k, else 0.",
    ),
    MetricSpec(
        "ndcg",
        "NDCG",
        "accuracy",
        "user",
        True,
        r"\mathrm{NDCG@}k = \frac{\sum_{i=1}^{k} rel_i / \log_2(i+1)}{\sum_{i=1}^{\min(|T|,k)} 1 / \log_2(i+1)}",
        "Discounted gain of the hits, divided by that of a perfect list; rewards hits near the top.",
    ),
    MetricSpec(
        "map",
        "MAP",
        "accuracy",
        "user",
        True,
        r"\mathrm{AP@}k = \frac{1}{\min(|T|,k)}\sum_{i=1}^{k} \mathrm{P@}i \cdot rel_i",
        "Average of the precision at each hit's position, over min(|T|, k); MAP is its mean over users.",
    ),
    MetricSpec(
        "mrr",
        "MRR",
        "accuracy",
        "user",
        True,
        r"\mathrm{RR@}k = \frac{1}{\mathrm{rank}_1}\ \text{(0 when no hit in the top } k)",
        "Reciprocal rank of the first held-out item in the top k; MRR is its mean over users.",
    ),
    MetricSpec(
        "coverage",
        "Coverage",
        "beyond",
        "global",
        True,
        r"\mathrm{Cov@}k = \frac{|\bigcup_u L_u|}{|I|}",
        "Share of the catalogue that appears in at least one user's top k.",
    ),
    MetricSpec(
        "gini",
        "Gini",
        "beyond",
        "global",
        False,
        r"G = \frac{\sum_{i=1}^{n} (2i - n - 1)\, c_{(i)}}{n \sum_{i=1}^{n} c_{(i)}}",
        "Inequality of how often each catalogue item is recommended (c sorted ascending): 0 = all equally, "
        "near 1 = a few items take every slot.",
    ),
    MetricSpec(
        "ild_genre",
        "ILD (genres)",
        "beyond",
        "user",
        True,
        r"\mathrm{ILD}_g@k = \frac{2}{m(m-1)}\sum_{i<j} \left(1 - \frac{|G_i \cap G_j|}{|G_i \cup G_j|}\right)",
        "Mean genre distance (1 - Jaccard) over pairs of items in the list.",
        needs="item_genres",
    ),
    MetricSpec(
        "ild_text",
        "ILD (text)",
        "beyond",
        "user",
        True,
        r"\mathrm{ILD}_t@k = \frac{2}{m(m-1)}\sum_{i<j} \left(1 - \cos(x_i, x_j)\right)",
        "Mean text-embedding distance (1 - cosine) over pairs of items in the list.",
        needs="item_vectors",
    ),
    MetricSpec(
        "novelty",
        "Novelty",
        "beyond",
        "user",
        True,
        r"\mathrm{Nov@}k = \frac{1}{m}\sum_{i \in L} -\log_2 \frac{\max(c_i, 1)}{\sum_j c_j}",
        "Mean self-information of the listed items in bits: higher = less popular in training.",
    ),
    MetricSpec(
        "arp",
        "ARP",
        "beyond",
        "user",
        False,
        r"\mathrm{ARP@}k = \frac{1}{m}\sum_{i \in L} c_i",
        "Average training popularity (interaction count) of the listed items: lower = more long-tail.",
    ),
    MetricSpec(
        "long_tail_share",
        "Long-tail share",
        "beyond",
        "user",
        True,
        r"\mathrm{APLT@}k = \frac{|\{i \in L : i \notin H\}|}{m}",
        "Share of the listed items outside the popular head H (the most popular 20% of items by default).",
    ),
    MetricSpec(
        "pop_gap",
        "Popularity gap",
        "beyond",
        "user",
        False,
        r"\Delta\mathrm{GAP}@k = \frac{\mathrm{ARP}(L) - \mathrm{ARP}(H_u)}{\mathrm{ARP}(H_u)}",
        "How much more popular the list is than what the user consumed (0 = as popular; 1 = twice).",
        needs="history",
    ),
    MetricSpec(
        "miscalibration",
        "Miscalibration",
        "beyond",
        "user",
        False,
        r"\mathrm{MC@}k = \sum_g p(g|u) \log \frac{p(g|u)}{(1-\alpha)\, q(g|L) + \alpha\, p(g|u)}",
        "KL divergence of the list's genre mix from the user's history (alpha = 0.01): 0 = same mix.",
        needs="genres_and_history",
    ),
    MetricSpec(
        "serendipity",
        "Serendipity",
        "beyond",
        "user",
        True,
        r"\mathrm{Ser@}k = \frac{1}{k}\sum_{i=1}^{k} rel_i \cdot \mathbb{1}[i \notin \mathrm{POP}_u@k]",
        "Share of the k slots holding a held-out item that the popularity list would not have shown.",
        needs="history",
    ),
    MetricSpec(
        "personalisation",
        "Personalisation",
        "beyond",
        "global",
        True,
        r"\mathrm{Pers@}k = 1 - \frac{1}{|P|}\sum_{(u,v) \in P} \frac{|L_u \cap L_v|}{|L_u \cup L_v|}",
        "1 minus the mean overlap (Jaccard) between two users' lists: 0 = everyone gets the same list.",
    ),
)

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}
