"""Summary metrics of a cost-quality curve (RouterBench's AIQ) and of a strong-share curve (RouteLLM).

A router's cost-quality curve is a set of operating points (average USD cost per prompt,
average quality). Mixing two operating points at random realises, in expectation, any point
on the segment between them, and a router given a budget may always run a cheaper point.
So the quality a router attains with an average budget ``c`` is its *non-decreasing concave
hull* ``H(c)``: the best mixture of its points whose average cost is at most ``c``. Below
the router's cheapest point no mixture fits the budget and ``H`` is undefined.
"""

from __future__ import annotations

import numpy as np

from routoo.errors import DataError

Hull = tuple[np.ndarray, np.ndarray]


def nondecreasing_hull(costs: np.ndarray, qualities: np.ndarray) -> Hull:
    """Vertices ``(costs, qualities)`` of the non-decreasing upper convex hull of the points.

    Both returned arrays are strictly increasing. The hull runs from the cheapest point
    (the best one among equally cheap points) to the cheapest point of highest quality;
    beyond that last vertex ``H`` is flat at the maximum quality.
    """
    costs, qualities = _points(costs, qualities)
    order = np.lexsort((-qualities, costs))
    costs, qualities = costs[order], qualities[order]
    # Keep the Pareto front: each kept point beats every cheaper point on quality.
    best_so_far = np.concatenate([[-np.inf], np.maximum.accumulate(qualities)[:-1]])
    pareto = qualities > best_so_far
    hull: list[tuple[float, float]] = []
    for point in zip(costs[pareto].tolist(), qualities[pareto].tolist(), strict=True):
        # Andrew's monotone chain, upper half: drop a middle vertex on or below the chord.
        while len(hull) >= 2 and not _above_chord(hull[-2], hull[-1], point):
            hull.pop()
        hull.append(point)
    hull_costs, hull_qualities = zip(*hull, strict=True)
    return np.array(hull_costs), np.array(hull_qualities)


def _above_chord(left: tuple[float, float], middle: tuple[float, float], right: tuple[float, float]) -> bool:
    """Whether ``middle`` lies strictly above the segment from ``left`` to ``right``."""
    cross = (middle[0] - left[0]) * (right[1] - left[1]) - (middle[1] - left[1]) * (right[0] - left[0])
    return cross < 0


def quality_at_cost(hull: Hull, cost: float) -> float | None:
    """``H(cost)``: the hull interpolated at ``cost``, flat beyond its last vertex.

    ``None`` when ``cost`` is below the router's cheapest point (it cannot run that cheaply).
    """
    hull_costs, hull_qualities = hull
    if cost < hull_costs[0]:
        return None
    return float(np.interp(cost, hull_costs, hull_qualities))


def cost_to_reach(hull: Hull, quality: float) -> float | None:
    """The smallest average cost at which ``H`` reaches ``quality``; ``None`` if it never does."""
    hull_costs, hull_qualities = hull
    reached = hull_qualities >= quality
    if not reached.any():
        return None
    first = int(np.argmax(reached))
    if first == 0:
        return float(hull_costs[0])
    # hull qualities are strictly increasing, so the segment has a positive rise
    x0, x1 = hull_costs[first - 1], hull_costs[first]
    y0, y1 = hull_qualities[first - 1], hull_qualities[first]
    return float(x0 + (quality - y0) * (x1 - x0) / (y1 - y0))


def aiq(costs: np.ndarray, qualities: np.ndarray, cost_range: tuple[float, float]) -> float:
    """Average quality over ``cost_range`` (RouterBench's AIQ): ``∫ H(c) dc / (c_max - c_min)``.

    ``H`` is the non-decreasing concave hull of the points, flat beyond the router's most
    expensive useful point, and zero where ``c`` is below the router's cheapest point (no
    mixture of its points fits that budget). Points cheaper than ``c_min`` or dearer than
    ``c_max`` still shape the hull; only the integral is limited to the range. When
    ``c_min == c_max`` the range is one budget and AIQ is ``H(c_min)`` (zero if undefined).
    """
    low, high = cost_range
    hull_costs, hull_qualities = nondecreasing_hull(costs, qualities)
    if high <= low:
        return quality_at_cost((hull_costs, hull_qualities), low) or 0.0
    start = max(low, float(hull_costs[0]))
    if start >= high:
        return 0.0
    inside = hull_costs[(hull_costs > start) & (hull_costs < high)]
    xs = np.concatenate([[start], inside, [high]])
    area = np.trapezoid(np.interp(xs, hull_costs, hull_qualities), xs)
    return float(area / (high - low))


def performance_gap_recovered(
    qualities: np.ndarray, weak_quality: float, strong_quality: float
) -> np.ndarray:
    """RouteLLM's PGR: ``(q - q_weak) / (q_strong - q_weak)``."""
    return (np.asarray(qualities, dtype=np.float64) - weak_quality) / (strong_quality - weak_quality)


def apgr(
    strong_shares: np.ndarray, qualities: np.ndarray, weak_quality: float, strong_quality: float
) -> float | None:
    """RouteLLM's APGR: area under PGR against the share of calls to the strong model.

    The curve is linear between points (what random tie-breaking realises in expectation).
    ``None`` when the curve does not span shares 0 to 1 or both models have equal quality.
    """
    shares, pgr = _pgr_curve(strong_shares, qualities, weak_quality, strong_quality)
    if shares is None or shares[0] > 0.0 or shares[-1] < 1.0:
        return None
    return float(np.trapezoid(pgr, shares))


def call_performance_threshold(
    strong_shares: np.ndarray,
    qualities: np.ndarray,
    weak_quality: float,
    strong_quality: float,
    level: float,
) -> float | None:
    """RouteLLM's CPT(level): the smallest strong-call share at which PGR reaches ``level``.

    Interpolated linearly between points; ``None`` when the curve never reaches ``level``.
    """
    shares, pgr = _pgr_curve(strong_shares, qualities, weak_quality, strong_quality)
    if shares is None:
        return None
    reached = pgr >= level
    if not reached.any():
        return None
    first = int(np.argmax(reached))
    if first == 0:
        return float(shares[0])
    x0, x1, y0, y1 = shares[first - 1], shares[first], pgr[first - 1], pgr[first]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def _pgr_curve(
    strong_shares: np.ndarray, qualities: np.ndarray, weak_quality: float, strong_quality: float
) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    if strong_quality == weak_quality:
        return None, None  # no gap to recover
    shares, qualities = _points(strong_shares, qualities)
    order = np.lexsort((qualities, shares))
    return shares[order], performance_gap_recovered(qualities[order], weak_quality, strong_quality)


def _points(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if xs.ndim != 1 or xs.shape != ys.shape or xs.size == 0:
        raise DataError(f"a curve needs two equally long 1-D arrays of points, got {xs.shape} and {ys.shape}")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise DataError("a curve's points must be finite")
    return xs, ys
