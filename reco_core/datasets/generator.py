"""The synthetic generator: seeded datasets with MovieLens-like statistics, and the MovieLens sizes it imitates."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from reco_core.checks import MUST_BE, check_whole
from reco_core.data import Dataset, Interactions, ItemCatalog, LoadReport, UserTable, item_text
from reco_core.datasets.assemble import csr_from_sorted_pairs
from reco_core.datasets.movielens import ML1M_OCCUPATIONS
from reco_core.errors import ConfigError, quote
from reco_core.ids import IdMap

SYNTHETIC_SIZES: dict[str, tuple[int, int, int]] = {
    "100k": (943, 1_682, 100_000),
    "1m": (6_040, 3_706, 1_000_209),
    "10m": (69_878, 10_677, 10_000_054),
    "20m": (138_493, 26_744, 20_000_263),
}
"""(users, items, interactions) of the MovieLens release each synthetic size imitates."""

# MovieLens-1M's genre frequencies (items per genre), used as the genre popularity of synthetic items.
_GENRE_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("Drama", 1603), ("Comedy", 1200), ("Action", 503), ("Thriller", 492), ("Romance", 471), ("Horror", 343),
    ("Adventure", 283), ("Sci-Fi", 276), ("Children's", 251), ("Crime", 211), ("War", 143), ("Documentary", 127),
    ("Musical", 114), ("Mystery", 106), ("Animation", 105), ("Fantasy", 68), ("Western", 68), ("Film-Noir", 44),
)  # fmt: skip
_ADJECTIVES = (
    "Silent", "Broken", "Golden", "Last", "Hidden", "Crimson", "Lost", "Wild", "Midnight", "Frozen", "Burning",
    "Distant", "Secret", "Endless", "Little", "Dark", "Bright", "Savage", "Quiet", "Electric", "Forgotten", "Iron",
    "Velvet", "Hollow", "Restless",
)  # fmt: skip
_NOUNS = (
    "River", "Empire", "Summer", "Garden", "Horizon", "Stranger", "Kingdom", "Harbor", "Storm", "Mirror", "Road",
    "City", "Heart", "Island", "Letter", "Machine", "Voyage", "Witness", "Dream", "Frontier", "Orchard", "Signal",
    "Castle", "Shadow", "Tide", "Echo", "Planet", "Station", "Crown", "Bridge",
)  # fmt: skip
_AGE_GROUPS = ((1, 222), (18, 1103), (25, 2096), (35, 1193), (45, 550), (50, 496), (56, 380))  # ML-1M users per group

# Zipf-Mandelbrot item popularity p(rank) ~ (rank + Q)^-A and log-normal user activity above the minimum;
# fitted by eye to MovieLens-1M (top 10% of items hold ~44% of ratings; user activity median ~96, mean ~166).
_POP_A = 1.4
_POP_Q_FRAC = 0.04
# MovieLens-1M's share of ratings 1..4 and below (cumulative), for the ordinal rating model.
_RATING_CDF = (0.056, 0.164, 0.425, 0.774)
_ACTIVITY_SIGMA = 1.15
_MAX_USER_FRAC = 0.6  # the busiest MovieLens-1M user rated 62% of the items


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total`` (largest remainders)."""
    share = weights / weights.sum() * total
    out = np.floor(share).astype(np.int64)
    rest = int(total - out.sum())
    if rest:
        out[np.argsort(out - share, kind="stable")[:rest]] += 1
    return out


def _user_counts(rng: np.random.Generator, n_users: int, cap: int, n_interactions: int, min_u: int) -> np.ndarray:
    """Interactions per user: ``min_u`` each plus a log-normal share of the rest, none above ``cap``."""
    weights = rng.lognormal(0.0, _ACTIVITY_SIGMA, n_users)
    counts = min_u + _apportion(n_interactions - n_users * min_u, weights)
    while (over := counts > cap).any():
        excess = int((counts[over] - cap).sum())
        counts[over] = cap
        room = counts < cap
        counts[room] += _apportion(excess, weights[room])
    return counts


def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table: draw i uniformly, keep it with probability accept[i], else take alias[i].

    O(1) per draw (an inverse-CDF searchsorted was the generator's main cost at 20M draws).
    """
    n = len(p)
    accept = np.asarray(p, dtype=np.float64) * n / np.sum(p)
    alias = np.arange(n, dtype=np.int64)
    small = [int(i) for i in np.flatnonzero(accept < 1.0)]
    large = [int(i) for i in np.flatnonzero(accept >= 1.0)]
    while small and large:
        s, g = small.pop(), large.pop()
        alias[s] = g
        accept[g] -= 1.0 - accept[s]
        (small if accept[g] < 1.0 else large).append(g)
    accept[small + large] = 1.0  # what is left is 1 up to rounding
    return accept, alias


def _sample_distinct(rng: np.random.Generator, counts: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per user, ``counts[u]`` distinct items drawn with probabilities ``p``, without replacement; sorted per user.

    Draw with replacement, keep each user's first occurrence of an item in draw order (that is sampling
    without replacement, one draw after another), and top up users still short with larger draws. Users are
    processed in chunks of about two million draws, so memory stays bounded at any size. Users still short
    after the rounds (only the very busiest, who need rare items) get exact weighted draws one by one.
    """
    n_items = len(p)
    accept, alias = _alias_table(p)
    out = np.empty(int(counts.sum()), dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    bounds = np.searchsorted(offsets, np.arange(0, offsets[-1], 2_000_000), side="right") - 1
    bounds = np.unique(np.concatenate([bounds, [len(counts)]]))
    for lo, hi in itertools.pairwise(bounds):
        c = counts[lo:hi].astype(np.int64)
        accepted = np.empty(0, dtype=np.int64)  # sorted keys local_user * n_items + item
        have = np.zeros(len(c), dtype=np.int64)
        factor = 1.3
        for _ in range(8):
            need = c - have
            if not need.any():
                break
            draws = np.ceil(need * factor).astype(np.int64)
            users = np.repeat(np.arange(len(c), dtype=np.int64), draws)
            pick = rng.integers(0, n_items, len(users))
            items = np.where(rng.random(len(users)) < accept[pick], pick, alias[pick])
            keys, first = np.unique(users * n_items + items, return_index=True)
            if accepted.size:
                at = np.minimum(np.searchsorted(accepted, keys), accepted.size - 1)
                fresh = accepted[at] != keys
                keys, first = keys[fresh], first[fresh]
            keys = keys[np.argsort(first, kind="stable")]  # back to draw order; users stay grouped
            owner = keys // n_items
            rank = np.arange(len(keys)) - np.searchsorted(owner, owner, side="left")
            take = rank < need[owner]
            accepted = np.sort(np.concatenate([accepted, keys[take]]))  # disjoint by construction
            have += np.bincount(owner[take], minlength=len(c))
            factor *= 2.0
        for local in np.flatnonzero(have < c):
            got = accepted[(accepted >= local * n_items) & (accepted < (local + 1) * n_items)] % n_items
            free = np.setdiff1d(np.arange(n_items), got)
            q = p[free] / p[free].sum()
            extra = rng.choice(free, size=int(c[local] - have[local]), replace=False, p=q)
            accepted = np.sort(np.concatenate([accepted, local * n_items + extra]))
        out[offsets[lo] : offsets[hi]] = (accepted % n_items).astype(np.int32)
    return out


def _synthetic_catalog(rng: np.random.Generator, items: IdMap, n_genres: int) -> ItemCatalog:
    n = len(items)
    names = [g for g, _ in _GENRE_WEIGHTS][:n_genres] + [f"Genre {j}" for j in range(19, n_genres + 1)]
    w = np.asarray([c for _, c in _GENRE_WEIGHTS][:n_genres] + [40] * max(0, n_genres - 18), dtype=np.float64)
    per_item = np.minimum(rng.choice([1, 2, 3], size=n, p=[0.45, 0.35, 0.20]), n_genres)
    # Gumbel top-k: the per_item largest of log(w) + Gumbel noise are a weighted sample without replacement.
    keys = np.log(w)[None, :] + rng.gumbel(size=(n, n_genres))
    order = np.argsort(-keys, axis=1)
    genres = tuple(tuple(sorted(names[j] for j in order[i, : per_item[i]])) for i in range(n))
    years = (2000 - np.minimum(rng.exponential(9.0, n), 81.0).astype(np.int64)).astype(np.float64)
    adj = rng.integers(0, len(_ADJECTIVES), n)
    noun = rng.integers(0, len(_NOUNS), n)
    the = rng.random(n) < 0.4
    titles = np.asarray(
        [f"{'The ' if t else ''}{_ADJECTIVES[a]} {_NOUNS[b]}" for t, a, b in zip(the, adj, noun, strict=True)],
        dtype=object,
    )
    text = np.asarray([item_text(t, y, g) for t, y, g in zip(titles, years, genres, strict=True)], dtype=object)
    return ItemCatalog(items, titles, years, genres, text)


def _synthetic_users(rng: np.random.Generator, users: IdMap) -> UserTable:
    n = len(users)
    ages = np.asarray([a for a, _ in _AGE_GROUPS], dtype=np.float64)
    age_p = np.asarray([c for _, c in _AGE_GROUPS], dtype=np.float64)
    frame = pd.DataFrame(
        {
            "age": ages[rng.choice(len(ages), size=n, p=age_p / age_p.sum())],
            "gender": np.where(rng.random(n) < 0.717, "M", "F").astype(object),
            "occupation": np.asarray(ML1M_OCCUPATIONS, dtype=object)[rng.integers(0, len(ML1M_OCCUPATIONS), n)],
        }
    )
    return UserTable(users, frame)


def _count_ids(n: int) -> IdMap:
    # "1".."n": IdMap orders all-integer ids numerically, so index i is id i + 1.
    return IdMap(np.arange(1, n + 1).astype(str).astype(object))


def synthetic(
    n_users: int,
    n_items: int,
    n_interactions: int,
    seed: int = 42,
    n_genres: int = 18,
    min_user_interactions: int = 20,
    name: str | None = None,
) -> Dataset:
    """A seeded dataset with MovieLens-like statistics, exactly ``n_interactions`` distinct (user, item) pairs.

    - user activity: ``min_user_interactions`` (20, as MovieLens) plus a log-normal share of the rest,
      at most max(60% of the items, the mean) per user;
    - item popularity: Zipf-Mandelbrot, p(rank r) proportional to (r + 0.04 n_items)^-1.4 over a random
      order of the items (top 10% of items hold about 44% of interactions, as in MovieLens-1M);
    - ratings 1-5, ordinal: a latent s = user bias + item bias + noise (item bias rising with popularity),
      cut at its quantiles at MovieLens-1M's cumulative rating shares, so 1..5 come out 6/11/26/35/23%;
    - timestamps: each user is active over a log-normal span inside 2000-04-25 .. 2003-02-28;
    - 1-3 genres per item from MovieLens's 18 (weighted by their MovieLens-1M frequency), a year, a title
      ("The Silent River"), text = item_text(...); users get age group, gender and occupation.
    Ids are "1".."n". Same arguments, same dataset.
    """
    for arg, v, low in (
        ("n_users", n_users, 1),
        ("n_items", n_items, 1),
        ("n_interactions", n_interactions, 1),
        ("n_genres", n_genres, 1),
        ("min_user_interactions", min_user_interactions, 1),
    ):
        check_whole(v, f"synthetic: {arg}", low, MUST_BE)
    min_u = min(int(min_user_interactions), int(n_items))
    if n_interactions < n_users * min_u:
        raise ConfigError(
            f"synthetic: n_interactions={n_interactions:,} is fewer than n_users x {min_u} = {n_users * min_u:,}"
            f" (each user has at least {min_u}); raise n_interactions or lower min_user_interactions"
        )
    if n_interactions > n_users * n_items:
        raise ConfigError(
            f"synthetic: n_interactions={n_interactions:,} exceeds n_users x n_items = {n_users * n_items:,};"
            " lower it or add users/items"
        )
    rng = np.random.default_rng(seed)
    cap = min(int(n_items), max(int(np.ceil(_MAX_USER_FRAC * n_items)), int(np.ceil(n_interactions / n_users))))
    counts = _user_counts(rng, int(n_users), cap, int(n_interactions), min_u)
    ranks = rng.permutation(n_items)
    pop = (ranks + 1.0 + _POP_Q_FRAC * n_items) ** -_POP_A
    pop /= pop.sum()
    cols = _sample_distinct(rng, counts, pop)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    n = len(cols)
    item_bias = rng.normal(0.0, 0.45, n_items) + 0.25 * (np.log(pop) - np.log(pop).mean()) / np.log(pop).std()
    user_bias = rng.normal(0.0, 0.45, n_users)
    latent = user_bias[rows] + item_bias[cols] + rng.normal(0.0, 0.85, n)
    cuts = np.quantile(latent, _RATING_CDF)  # the latent's own quantiles give MovieLens's shares exactly
    ratings = (1 + np.searchsorted(cuts, latent)).astype(np.float32)
    del latent
    t0, t1 = 956_620_800.0, 1_046_390_400.0  # 2000-04-25 .. 2003-02-28, MovieLens-1M's collection window
    span = np.minimum(rng.lognormal(np.log(30 * 86400.0), 1.5, n_users), t1 - t0)
    start = t0 + rng.random(n_users) * (t1 - t0 - span)
    ts = np.floor(start[rows] + rng.random(n) * span[rows])
    users, items = _count_ids(int(n_users)), _count_ids(int(n_items))
    shape = (int(n_users), int(n_items))
    matrix = csr_from_sorted_pairs(rows, cols, ratings, shape, np.float32)
    tmatrix = csr_from_sorted_pairs(rows, cols, ts + 1.0, shape, np.float64)
    inter = Interactions(users, items, matrix, tmatrix)
    label = f"synthetic(n_users={n_users}, n_items={n_items}, n_interactions={n_interactions}, seed={seed})"
    report = LoadReport(source=label, rows_read=n, rows_kept=n)
    report.notes.append(
        f"Generated with seed {seed}; {int((np.bincount(cols, minlength=n_items) == 0).sum()):,} items"
        " have no interaction."
    )
    catalog = _synthetic_catalog(rng, items, int(n_genres))
    return Dataset(name or label, inter, catalog, _synthetic_users(rng, users), report)


def synthetic_size(size: str, seed: int = 42) -> Dataset:
    """The synthetic dataset at a MovieLens size: "100k", "1m", "10m" or "20m" (see SYNTHETIC_SIZES)."""
    key = str(size).lower().removeprefix("synthetic-").removeprefix("ml-")
    if key not in SYNTHETIC_SIZES:
        raise ConfigError(f"synthetic size {quote(size)} is unknown; choose one of {', '.join(SYNTHETIC_SIZES)}")
    u, i, n = SYNTHETIC_SIZES[key]
    return synthetic(u, i, n, seed=seed, name=f"synthetic-{key}")
