"""Weight search over the simplex, on the validation split; the Pareto front of two metrics.

* :func:`simplex_grid` enumerates every weight vector on the simplex at a step exactly, as integer
  compositions of ``round(1 / step)`` into ``n`` parts (stars and bars). A product of values filtered
  by ``abs(sum - 1) < eps`` is never built: with floats such a filter silently drops valid points.
* :func:`random_simplex` draws uniform points on the simplex (Dirichlet(1, ..., 1)).
* :func:`search_weights` evaluates every point with a :class:`~reco_core.live.LiveSession` (built on the
  validation part: members fitted on train minus validation) and picks the best point for one metric,
  optionally subject to a floor (or ceiling) on another.
* :func:`optimise` runs the search on a validation session and reports the chosen weights on a test
  session, with the paired comparison against the best single member there.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reco_core.checks import check_whole
from reco_core.errors import ConfigError, quote
from reco_core.live import LiveResult, LiveSession

__all__ = [
    "OptimiseResult",
    "SearchResult",
    "check_metric_keys",
    "check_objective",
    "grid_size",
    "optimise",
    "pareto_front",
    "parse_floor",
    "pick_best",
    "plan_points",
    "random_simplex",
    "search_weights",
    "simplex_compositions",
    "simplex_grid",
]

Progress = Callable[[float, str], None]
Floor = tuple[str, float] | tuple[str, str, float]

# How a constraint compares a metric with its bound; ">=" is a floor, "<=" a ceiling (for metrics such
# as arp or gini where lower is better).
_OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {">=": operator.ge, "<=": operator.le}
GRID_MAX_MEMBERS = 4
DEFAULT_MAX_POINTS = 2000


def _steps(step: float) -> int:
    """round(1 / step), checked: the step must divide 1 (0.1, 0.05, 0.25, 1/3 ...)."""
    if isinstance(step, bool) or not isinstance(step, (int, float, np.number)) or not 0 < step <= 1:
        raise ConfigError(f"step={step!r} is not valid: give a number in (0, 1], such as 0.1")
    total = round(1.0 / float(step))
    if abs(total * float(step) - 1.0) > 1e-6:
        raise ConfigError(f"step={step!r} does not divide 1: choose a step such as 0.1, 0.05 or 0.25")
    return int(total)


def simplex_compositions(n_parts: int, total: int) -> np.ndarray:
    """Every vector of ``n_parts`` non-negative integers summing to ``total`` (int64 [C, n_parts]).

    C = binomial(total + n_parts - 1, n_parts - 1). Stars and bars: choosing the n_parts - 1 bar
    positions among total + n_parts - 1 slots gives each composition exactly once. Rows are in
    lexicographic order of the bar positions (the first part's weight descends).
    """
    n_parts = check_whole(n_parts, "n_parts")
    total = check_whole(total, "total", 0)
    slots = total + n_parts - 1
    combos = list(itertools.combinations(range(slots), n_parts - 1))
    bars = np.array(combos, dtype=np.int64).reshape(len(combos), n_parts - 1)
    edges = np.concatenate(
        [np.full((len(bars), 1), -1, dtype=np.int64), bars, np.full((len(bars), 1), slots, dtype=np.int64)], axis=1
    )
    return np.diff(edges, axis=1) - 1


def simplex_grid(n_members: int, step: float) -> np.ndarray:
    """Every weight vector whose entries are multiples of ``step`` and sum to 1 (float64 [C, n_members]).

    66 points for 3 members at 0.1, 286 for 4; the integer parts sum exactly to round(1 / step).
    """
    total = _steps(step)
    return simplex_compositions(n_members, total).astype(np.float64) / total


def grid_size(n_members: int, step: float) -> int:
    """Number of points of :func:`simplex_grid` without building it."""
    return math.comb(_steps(step) + n_members - 1, n_members - 1)


def random_simplex(n_members: int, n_points: int, seed: int = 0) -> np.ndarray:
    """``n_points`` uniform draws on the simplex (Dirichlet with all concentrations 1), seeded."""
    n_members = check_whole(n_members, "n_members")
    n_points = check_whole(n_points, "n_points")
    return np.random.default_rng(seed).dirichlet(np.ones(n_members), size=n_points)


def parse_floor(text: str) -> Floor:
    """ "coverage@10=0.3" or "coverage@10>=0.3" -> ("coverage@10", ">=", 0.3); "arp@10<=150" -> ceiling."""
    raw = str(text).strip()
    for op in ("<=", ">=", "="):
        if op in raw:
            key, _, value = raw.partition(op)
            try:
                bound = float(value)
            except ValueError:
                break
            return (key.strip(), ">=" if op == "=" else op, bound)
    raise ConfigError(f"floor {text!r} is not valid: write metric@k=value, e.g. coverage@10=0.3 (or arp@10<=150)")


_clip = quote  # the one clip helper: reco_core.errors.quote


def _check_floor(floor: Floor | str | None) -> tuple[str, str, float] | None:
    """None, "metric@k=value" text, or a (metric, value) / (metric, op, value) pair, checked; else ConfigError."""
    if floor is None:
        return None
    if isinstance(floor, str):
        return _check_floor(parse_floor(floor))
    how = "give (metric, value) or (metric, '>=' or '<=', value), or text such as coverage@10=0.3"
    # Only a tuple or a list is a pair: a number or a bool has no parts, and a dict or set has no order.
    if not isinstance(floor, (tuple, list)) or len(floor) not in (2, 3):
        raise ConfigError(f"floor {_clip(floor)} is not valid: {how}")
    parts = tuple(floor) if len(floor) == 3 else (floor[0], ">=", floor[1])
    key, op, bound = parts
    if not isinstance(key, str) or not isinstance(op, str) or op not in _OPS:
        raise ConfigError(f"floor {_clip(floor)} is not valid: {how}")
    if isinstance(bound, (bool, np.bool_)) or not isinstance(bound, (int, float, np.number, str)):
        raise ConfigError(f"floor bound {_clip(bound)} is not a number: give e.g. ('coverage@10', 0.3)")
    try:
        value = float(bound)
    except OverflowError:  # an int beyond a float's range (10**400)
        value = float("inf")
    except ValueError as exc:  # text that is not a number
        raise ConfigError(f"floor bound {_clip(bound)} is not a number: give e.g. ('coverage@10', 0.3)") from exc
    if not np.isfinite(value):
        raise ConfigError(f"floor bound {_clip(bound)} is not a finite number: give e.g. ('coverage@10', 0.3)")
    return (key, op, value)


def _metric_k(key: str, what: str) -> int:
    name, sep, k = str(key).partition("@")
    if not sep or not name or not k.isdigit():
        raise ConfigError(f"{what} {key!r} is not a metric key: write name@k, e.g. ndcg@10")
    return int(k)


@dataclass(frozen=True)
class SearchResult:
    """Every point tried and the best one.

    ``table``: one row per point, columns ``w:<member>`` then every metric, then ``feasible`` (the
    floor holds; True everywhere without a floor). ``best_weights`` is None when no point is feasible,
    and ``message`` then says how close the search came.
    """

    table: pd.DataFrame
    metric: str
    floor: tuple[str, str, float] | None
    strategy: str
    best_weights: dict[str, float] | None
    best_value: float
    n_feasible: int
    message: str

    @property
    def n_points(self) -> int:
        return len(self.table)

    def weight_columns(self) -> list[str]:
        return [c for c in self.table.columns if c.startswith("w:")]


def plan_points(
    n_members: int, step: float, max_points: int = DEFAULT_MAX_POINTS, seed: int = 0
) -> tuple[np.ndarray, str]:
    """The weight vectors a search will evaluate, and how they were chosen; cheap, so callers can check first.

    The exact grid when it fits in ``max_points``; for up to ``GRID_MAX_MEMBERS`` members a larger grid is
    refused (ConfigError with a step that fits); beyond that, random search over ``max_points`` points.
    """
    max_points = check_whole(max_points, "max_points")
    m = check_whole(n_members, "n_members")
    size = grid_size(m, step)
    if size <= max_points:
        return simplex_grid(m, step), f"grid at step {step:g}, {size} points"
    if m <= GRID_MAX_MEMBERS:
        # A coarser exact grid covers few members well; a step that asks for more points than max_points is
        # refused rather than swept (step 0.001 with 3 members is 501,501 points: many minutes of work).
        raise ConfigError(_grid_too_large(m, step, size, max_points))
    fixed = np.vstack([np.eye(m), np.full((1, m), 1.0 / m)])
    extra = max(max_points - len(fixed), 0)
    points = np.vstack([fixed, random_simplex(m, extra, seed)]) if extra else fixed
    return points, f"random search: {len(points)} points: corners, centre, {extra} Dirichlet draws, seed {seed}"


def search_weights(
    session: LiveSession,
    metric: str = "ndcg@10",
    floor: Floor | str | None = None,
    step: float = 0.1,
    method: str = "wsum",
    normaliser: str = "minmax",
    k: int | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
    rrf_k: float = 60,
    progress: Progress | None = None,
    params: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Evaluate weight vectors with ``session`` and return the best for ``metric`` (maximised).

    Points: the exact simplex grid at ``step`` when it has at most ``max_points`` points. A larger grid is
    refused for up to 4 members (ConfigError naming the grid size and a step that fits); with more members
    ``max_points`` random points (Dirichlet) are used instead, after the corners (each member alone) and the
    centre (equal weights), so the search never misses a single member. ``k`` is
    the metrics' cut-off; by default the metric's own (ndcg@10 -> 10). ``floor``: (metric, value) means
    metric >= value; (metric, "<=", value) is a ceiling. Ties for the best go to the earlier point.
    ``seed`` draws the random points and is team-draft's seed at every point (as ``session.update``'s);
    ``params`` are the method's declared parameters (``METHODS[method].params``), as ``session.update`` takes them.
    """
    bound, k = check_objective(metric, floor, k)
    names = list(session.members)
    points, strategy = plan_points(len(names), step, max_points, seed)
    rows = []
    for i, w in enumerate(points):
        if not (w > 0).any():  # cannot happen on the simplex; kept so a bad grid never crashes the loop
            continue
        result = session.update(w, method, normaliser, k, rrf_k, seed, params)
        values = result.evaluation.values()
        if i == 0:
            check_metric_keys(values, metric, bound)
        rows.append({**{f"w:{n}": float(x) for n, x in zip(names, w, strict=True)}, **values})
        if progress is not None:
            progress((i + 1) / len(points), f"weights {i + 1}/{len(points)}")
    return pick_best(pd.DataFrame(rows), names, metric, bound, strategy)


def check_objective(
    metric: str, floor: Floor | str | None = None, k: int | None = None
) -> tuple[tuple[str, str, float] | None, int]:
    """The floor, checked, and the search's cut-off: the metric's own k (``k``, when given, must equal it), and
    the floor's metric at the same k; else ConfigError. Both engines' searches call it before evaluating."""
    bound = _check_floor(floor)
    k_metric = _metric_k(metric, "metric")
    k = k_metric if k is None else int(k)
    if k != k_metric:
        raise ConfigError(
            f"metric {metric!r} is at @{k_metric} but k={k}: use {metric.split('@')[0]}@{k} or k={k_metric}"
        )
    if bound is not None and _metric_k(bound[0], "floor metric") != k:
        raise ConfigError(f"floor metric {bound[0]!r} is not at @{k}: put both metrics at the same k")
    return bound, k


def check_metric_keys(values: Iterable[str], metric: str, bound: tuple[str, str, float] | None) -> None:
    """The objective and the floor's metric are among the evaluated keys ``values``; else ConfigError naming them."""
    keys = list(values)
    for key in (metric, *([bound[0]] if bound else [])):
        if key not in keys:
            raise ConfigError(f"no metric {key!r} in the evaluation: choose one of {', '.join(keys)}")


# Steps that divide 1 exactly in decimal, coarse to fine: what a refused grid suggests instead.
_SUGGESTED_STEPS = (1.0, 0.5, 0.25, 0.2, 0.125, 0.1, 0.05, 0.04, 0.025, 0.02, 0.0125, 0.01, 0.005, 0.002, 0.001)


def _grid_too_large(n_members: int, step: float, size: int, max_points: int) -> str:
    """The refusal of a grid over ``max_points``, naming the finest suggested step whose grid fits."""
    fits = [s for s in _SUGGESTED_STEPS if grid_size(n_members, s) <= max_points]
    head = (
        f"step={step:g} gives a grid of {size:,} weight vectors for {n_members} members, more than "
        f"max_points={max_points:,}"
    )
    if not fits:
        return f"{head}: raise max_points to at least {n_members} (even step 1 has one point per member)"
    best = fits[-1]
    return f"{head}: choose a larger step, such as {best:g} ({grid_size(n_members, best):,} points)"


def pick_best(
    table: pd.DataFrame, names: list[str], metric: str, bound: tuple[str, str, float] | None, strategy: str
) -> SearchResult:
    """The best point of a search table and the sentence that reports it (or how close it came to the floor).

    ``table``: one row per point, in the order they were tried: ``w:<name>`` per member, then the metric values
    (at least ``metric`` and the floor's). A ``feasible`` column is added (the floor holds; True without one).
    The best feasible point maximises ``metric``; ties go to the earlier point.
    """
    table = table.copy()
    if bound is not None:
        table["feasible"] = _OPS[bound[1]](table[bound[0]].to_numpy(), bound[2])
    else:
        table["feasible"] = True
    feasible = table["feasible"].to_numpy(dtype=bool)
    n_feasible = int(feasible.sum())
    if n_feasible == 0:
        assert bound is not None
        key, op, value = bound
        closest = table[key].max() if op == ">=" else table[key].min()
        message = (
            f"no weights reach {key} {op} {value:g} (the closest point reached {closest:.4g}): "
            f"{'lower' if op == '>=' else 'raise'} the bound or add a member that helps {key}"
        )
        return SearchResult(table, metric, bound, strategy, None, float("nan"), 0, message)
    values = np.where(feasible, table[metric].to_numpy(dtype=np.float64), -np.inf)
    best = int(np.argmax(values))
    weights = {n: float(table.iloc[best][f"w:{n}"]) for n in names}
    where = f" with {bound[0]} {bound[1]} {bound[2]:g}" if bound else ""
    message = (
        f"best {metric} = {values[best]:.4f}{where} at "
        + ", ".join(f"{n} {w:.2f}" for n, w in weights.items())
        + f" ({n_feasible} of {len(table)} points feasible; {strategy})"
    )
    return SearchResult(table, metric, bound, strategy, weights, float(values[best]), n_feasible, message)


def pareto_front(df: pd.DataFrame, x_metric: str, y_metric: str) -> np.ndarray:
    """Boolean mask of the rows no other row dominates, both metrics maximised.

    Row q dominates p when q >= p on both and > on one. Equal points do not dominate each other (both
    stay). Rows with NaN in either metric are never on the front. For a metric to minimise, flip its
    sign in a copy of the frame first.
    """
    for key in (x_metric, y_metric):
        if key not in df.columns:
            raise ConfigError(f"no column {key!r} in the table: choose among {', '.join(map(str, df.columns))}")
    x = df[x_metric].to_numpy(dtype=np.float64)
    y = df[y_metric].to_numpy(dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    front = np.zeros(len(df), dtype=bool)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return front
    # Sweep by x descending (then y descending): a point is on the front when its y beats every y seen at
    # a strictly larger x, and it is the best y among the points sharing its x.
    order = idx[np.lexsort((-y[idx], -x[idx]))]
    best_y = -np.inf
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and x[order[j]] == x[order[i]]:
            j += 1
        group = order[i:j]
        top = y[group[0]]
        if top > best_y:
            front[group[y[group] == top]] = True
            best_y = top
        i = j
    return front


@dataclass(frozen=True)
class OptimiseResult:
    """Weights chosen on validation, and what they do on test against the best single member there."""

    search: SearchResult
    weights: dict[str, float] | None
    test: LiveResult | None
    message: str


def optimise(
    valid_session: LiveSession,
    test_session: LiveSession,
    metric: str = "ndcg@10",
    floor: Floor | str | None = None,
    step: float = 0.1,
    method: str = "wsum",
    normaliser: str = "minmax",
    max_points: int = DEFAULT_MAX_POINTS,
    seed: int = 0,
    rrf_k: float = 60,
    progress: Progress | None = None,
    params: Mapping[str, Any] | None = None,
) -> OptimiseResult:
    """Search weights on ``valid_session`` (part="valid"), then evaluate them once on ``test_session``.

    Refuses a validation session built on the test part: weights tuned on test would overstate the gain.
    ``seed`` is used as in :func:`search_weights`, and again for the test report, so the reported fusion is the
    one ``test_session.update(weights, ..., seed=seed)`` gives.
    """
    if valid_session.part != "valid":
        raise ConfigError("the search session is not on the validation part: build it with part='valid'")
    if test_session.part != "test":
        raise ConfigError("the report session is not on the test part: build it with part='test'")
    if tuple(valid_session.members) != tuple(test_session.members):
        raise ConfigError(
            f"validation members ({', '.join(valid_session.members)}) differ from test members "
            f"({', '.join(test_session.members)}): give both sessions the same members in the same order"
        )
    search = search_weights(
        valid_session, metric, floor, step, method, normaliser, None, max_points, seed, rrf_k, progress, params
    )
    if search.best_weights is None:
        return OptimiseResult(search, None, None, search.message)
    k = _metric_k(metric, "metric")
    test = test_session.update(search.best_weights, method, normaliser, k, rrf_k, seed, params)
    key = metric if metric in test.evaluation.per_user else test.metric  # global metrics have no per-user values
    message = (
        f"chosen on validation: {search.message}. On test: fused {metric} = {test.evaluation.value(metric):.4f} "
        f"vs {test.best_member} {test.best_evaluation.value(metric):.4f}; {test.comparison_sentence(key)}"
    )
    return OptimiseResult(search, search.best_weights, test, message)
