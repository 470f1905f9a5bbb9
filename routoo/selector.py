"""Choosing a model from predicted quality and estimated cost, one prompt or a whole batch.

Rules, in order (hard filters such as capabilities and budgets come first, as the
``admissible`` mask):

1. ``quality_floor``: the cheapest model predicted to reach the floor; when none does,
   the best predicted one (rule ``"quality_floor_unreachable"``).
2. ``max_cost``: the best predicted model estimated to cost at most ``max_cost``; none
   raises ``NoAdmissibleModelError``. With a floor too, the floor chooses among these.
3. ``tradeoff``: the model maximising ``quality - tradeoff * cost`` (ties: the cheaper).

``tradeoff`` is lambda in quality per USD. Left as None it is scale-free:
``DEFAULT_RELATIVE_TRADEOFF / (cost of the priciest admissible model)``, so a model
costing as much as the priciest candidate must be predicted 0.1 better than a free
one. That saves money out of the box while still paying for clearly better answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Literal

import numpy as np

from routoo.errors import BudgetExceededError, ConfigError, NoAdmissibleModelError

DEFAULT_RELATIVE_TRADEOFF = 0.1
CalibrationTarget = Literal["avg_cost", "strong_share", "avg_quality"]
CALIBRATION_TARGETS: tuple[str, ...] = CalibrationTarget.__args__
_TIE = 1e-12  # scores this close count as equal, so ties go to the cheaper model


def check_non_negative(value: object, field_name: str, *, optional: bool = True) -> float | None:
    """``value`` as a float, or ``ConfigError`` naming ``field_name`` unless it is a finite number >= 0."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{field_name} must be a finite number >= 0, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Selection:
    """The chosen model's column, the rule that chose it, and the admissible columns best-first."""

    index: int
    rule: str
    ranking: list[int]


@dataclass(frozen=True)
class Selector:
    """Cost-aware choice rules; see the module docstring for their order."""

    tradeoff: float | None = None
    quality_floor: float | None = None
    max_cost: float | None = None
    allow: Sequence[str] | None = None
    deny: Sequence[str] | None = None
    max_latency_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("tradeoff", "quality_floor", "max_cost", "max_latency_s"):
            object.__setattr__(self, name, check_non_negative(getattr(self, name), name))
        if self.quality_floor is not None and self.quality_floor > 1:
            raise ConfigError(f"quality_floor is a predicted quality in [0, 1], not {self.quality_floor}")
        for name in ("allow", "deny"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str) or not all(isinstance(item, str) for item in value):
                raise ConfigError(f"{name} must be a list of model names, not {value!r}")
            object.__setattr__(self, name, tuple(value))

    # ------------------------------------------------------------------ filters
    def filter_reason(self, model: str, latency_s: float | None) -> str | None:
        """Why the allow/deny lists or the latency limit exclude ``model``, or None."""
        if self.allow is not None and model not in self.allow:
            return "not in the allow list"
        if self.deny is not None and model in self.deny:
            return "in the deny list"
        if self.max_latency_s is not None and latency_s is not None and latency_s > self.max_latency_s:
            return f"latency {latency_s:g} s exceeds max_latency_s={self.max_latency_s:g}"
        return None

    def resolve_tradeoff(
        self, cost: np.ndarray, admissible: np.ndarray, tradeoff: float | None = None
    ) -> float:
        """The lambda to use: ``tradeoff``, else the selector's, else the scale-free default."""
        chosen = check_non_negative(tradeoff, "tradeoff")
        if chosen is None:
            chosen = self.tradeoff
        if chosen is not None:
            return chosen
        return float(
            _default_tradeoff(np.asarray(cost, dtype=np.float64)[None, :], np.asarray(admissible)[None, :])[0]
        )

    # --------------------------------------------------------------- selection
    def select(
        self,
        quality: np.ndarray,
        cost: np.ndarray,
        admissible: np.ndarray,
        *,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
    ) -> Selection:
        """Choose one model from per-model predicted quality and estimated cost."""
        quality, cost, admissible = _check_row(quality, cost, admissible)
        floor = _override(quality_floor, self.quality_floor, "quality_floor")
        cap = _override(max_cost, self.max_cost, "max_cost")
        if not admissible.any():
            raise NoAdmissibleModelError("no model in the pool is admissible for this call")
        candidates = np.flatnonzero(admissible)
        if cap is not None:
            candidates = candidates[cost[candidates] <= cap]
            if candidates.size == 0:
                raise NoAdmissibleModelError(
                    f"no admissible model is estimated to cost at most max_cost=${cap:g}; "
                    f"the cheapest costs ${cost[admissible].min():g}"
                )
        by_quality = _order(candidates, -quality[candidates], cost[candidates])
        if floor is not None:
            reaching = candidates[quality[candidates] >= floor]
            if reaching.size == 0:
                return Selection(int(by_quality[0]), "quality_floor_unreachable", by_quality)
            by_cost = _order(reaching, cost[reaching], -quality[reaching])
            reached = set(by_cost)
            ranking = by_cost + [i for i in by_quality if i not in reached]
            return Selection(ranking[0], "quality_floor", ranking)
        if cap is not None:
            return Selection(by_quality[0], "max_cost", by_quality)
        lam = self.resolve_tradeoff(cost, admissible, tradeoff)
        score = quality[candidates] - lam * cost[candidates]
        ranking = _order(candidates, -score, cost[candidates])
        return Selection(ranking[0], "tradeoff", ranking)

    def select_many(
        self, quality: np.ndarray, cost: np.ndarray, admissible: np.ndarray | None = None
    ) -> np.ndarray:
        """The model index ``select`` picks for every row, computed for all rows at once."""
        quality = np.asarray(quality, dtype=np.float64)
        cost = np.asarray(cost, dtype=np.float64)
        if quality.ndim != 2 or cost.shape != quality.shape:
            raise ConfigError(
                f"quality and cost must be matching (n, m) arrays, got {quality.shape}, {cost.shape}"
            )
        mask = (
            np.ones(quality.shape, dtype=bool) if admissible is None else np.asarray(admissible, dtype=bool)
        )
        mask = np.broadcast_to(mask, quality.shape).copy()
        if self.max_cost is not None:
            mask &= cost <= self.max_cost
        empty = np.flatnonzero(~mask.any(axis=1))
        if empty.size:
            raise NoAdmissibleModelError(
                f"no admissible model for rows {empty[:10].tolist()} of {len(quality)}"
            )
        best_quality = _argbest(np.where(mask, quality, -np.inf), cost)
        if self.quality_floor is not None:
            reaching = mask & (quality >= self.quality_floor)
            cheapest_reaching = _argbest(np.where(reaching, -cost, -np.inf), -quality)
            return np.where(reaching.any(axis=1), cheapest_reaching, best_quality)
        if self.max_cost is not None:
            return best_quality
        lam = self.tradeoff if self.tradeoff is not None else _default_tradeoff(cost, mask)[:, None]
        return _argbest(np.where(mask, quality - lam * cost, -np.inf), cost)


# ------------------------------------------------------------------- calibration
class CalibratedTradeoff(float):
    """A lambda from ``calibrate``; a plain float that also says what it achieves on the sample."""

    target: str
    value: float
    achieved: float

    def __new__(cls, tradeoff: float, target: str, value: float, achieved: float) -> CalibratedTradeoff:
        instance = super().__new__(cls, tradeoff)
        instance.target, instance.value, instance.achieved = target, value, achieved
        return instance


def calibrate(
    quality: np.ndarray,
    cost: np.ndarray,
    target: CalibrationTarget,
    value: float,
    *,
    strong_model_index: int | None = None,
) -> CalibratedTradeoff:
    """The tradeoff lambda under which the tradeoff rule meets ``target`` on this sample.

    ``"avg_cost"``: mean USD per call at most ``value`` (the smallest such lambda, so
    quality is as high as the budget allows). ``"strong_share"``: at most a ``value``
    share of calls to the strong model (default: the priciest on average); with two
    models this is RouteLLM's threshold on the predicted quality gap.
    ``"avg_quality"``: mean predicted quality at least ``value`` (the largest such
    lambda, so it is reached as cheaply as possible). Each of these moves monotonically
    with lambda, so bisection finds it; ``.achieved`` holds the value reached, which
    steps prompt by prompt.
    """
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if quality.ndim != 2 or quality.shape != cost.shape or quality.size == 0:
        raise ConfigError(
            f"quality and cost must be matching non-empty (n, m) arrays, got {quality.shape}, {cost.shape}"
        )
    if target not in CALIBRATION_TARGETS:
        raise ConfigError(f"unknown calibration target {target!r}; use one of {CALIBRATION_TARGETS}")
    goal = check_non_negative(value, "value", optional=False)
    rows = np.arange(len(quality))
    if target == "avg_cost":

        def metric(choice: np.ndarray) -> float:
            return float(cost[rows, choice].mean())
    elif target == "avg_quality":

        def metric(choice: np.ndarray) -> float:
            return float(quality[rows, choice].mean())
    else:
        strong = int(np.argmax(cost.mean(axis=0))) if strong_model_index is None else strong_model_index
        if not 0 <= strong < quality.shape[1]:
            raise ConfigError(f"strong_model_index {strong} is not a column of the {quality.shape[1]} models")

        def metric(choice: np.ndarray) -> float:
            return float(np.mean(choice == strong))

    # Every metric falls as lambda grows: find where it crosses the goal.
    wants_at_most = target != "avg_quality"
    tradeoff = _bisect(lambda lam: metric(_choose(quality, cost, lam)), goal, wants_at_most, cost)
    achieved = metric(_choose(quality, cost, tradeoff))
    return CalibratedTradeoff(tradeoff, target, goal, achieved)


def _bisect(metric: Callable[[float], float], goal: float, wants_at_most: bool, cost: np.ndarray) -> float:
    """Smallest lambda with ``metric <= goal`` (wants_at_most), else largest with ``metric >= goal``.

    ``metric`` must not increase with lambda.
    """

    def past(lam: float) -> bool:  # False up to the boundary, True beyond it
        return metric(lam) <= goal if wants_at_most else metric(lam) < goal

    if wants_at_most and metric(math.inf) > goal:
        raise ConfigError(
            f"target {goal:g} is unreachable: even the cheapest choices give {metric(math.inf):g}"
        )
    if not wants_at_most and metric(0.0) < goal:
        raise ConfigError(
            f"target {goal:g} is unreachable: the best predicted choices give only {metric(0.0):g}"
        )
    if past(0.0):
        return 0.0
    positive = cost[cost > 0]
    low, high = 0.0, 1.0 / float(positive.mean()) if positive.size else 1.0
    while not past(high):
        low, high = high, high * 2
        if high > 1e300:  # the goal holds even when every prompt gets its cheapest model
            return low
    for _ in range(200):
        middle = (low + high) / 2
        if not low < middle < high:
            break
        if past(middle):
            high = middle
        else:
            low = middle
    return high if wants_at_most else low


def _choose(quality: np.ndarray, cost: np.ndarray, tradeoff: float) -> np.ndarray:
    if math.isinf(tradeoff):  # the cheapest model, the better one among equally cheap
        return _argbest(-cost, -quality)
    return _argbest(quality - tradeoff * cost, cost)


# ------------------------------------------------------------ batch allocation
def allocate_batch(quality: np.ndarray, cost: np.ndarray, budget_usd: float) -> np.ndarray:
    """A model per prompt maximising total predicted quality with total estimated cost <= budget.

    Lagrangian relaxation: bisection finds the smallest lambda whose tradeoff choices fit
    the budget, then the leftover money upgrades prompts greedily, best quality gain per
    extra dollar first. The result is within one prompt's gain of the LP optimum.
    """
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if quality.ndim != 2 or quality.shape != cost.shape or quality.size == 0:
        raise ConfigError(
            f"quality and cost must be matching non-empty (n, m) arrays, got {quality.shape}, {cost.shape}"
        )
    if np.any(~np.isfinite(cost)) or np.any(cost < 0) or np.any(~np.isfinite(quality)):
        raise ConfigError("quality and cost must be finite, and cost >= 0")
    budget = check_non_negative(budget_usd, "budget_usd", optional=False)
    rows = np.arange(len(quality))
    cheapest = _choose(quality, cost, math.inf)
    floor_cost = float(cost[rows, cheapest].sum())
    if floor_cost > budget:
        raise BudgetExceededError(
            f"budget ${budget:g} is below ${floor_cost:g}, the cost of the cheapest model for every prompt"
        )

    def total_cost(lam: float) -> float:
        return float(cost[rows, _choose(quality, cost, lam)].sum())

    tradeoff = _bisect(total_cost, budget, True, cost)
    choice = _choose(quality, cost, tradeoff)
    return _upgrade(quality, cost, choice, budget - float(cost[rows, choice].sum()))


def _upgrade(quality: np.ndarray, cost: np.ndarray, choice: np.ndarray, leftover: float) -> np.ndarray:
    """Spend ``leftover`` on the upgrades with the best quality gain per extra dollar, in passes."""
    choice = choice.copy()
    rows = np.arange(len(quality))
    while True:
        gain = quality - quality[rows, choice][:, None]
        extra = cost - cost[rows, choice][:, None]
        useful = (gain > 0) & (extra <= leftover)
        if not useful.any():
            return choice
        # A free upgrade is infinitely efficient; among paid ones, gain per dollar.
        with np.errstate(divide="ignore", invalid="ignore"):
            efficiency = np.where(useful, np.where(extra > 0, gain / extra, np.inf), -np.inf)
        best = efficiency.argmax(axis=1)
        order = np.argsort(-efficiency[rows, best], kind="stable")
        for row in order:
            column = best[row]
            if not useful[row, column] or extra[row, column] > leftover:
                continue
            leftover -= extra[row, column]
            choice[row] = column


# --------------------------------------------------------------------- helpers
def _check_row(
    quality: np.ndarray, cost: np.ndarray, admissible: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    admissible = np.asarray(admissible, dtype=bool)
    if quality.ndim != 1 or cost.shape != quality.shape or admissible.shape != quality.shape:
        raise ConfigError(
            f"quality, cost and admissible must be (m,) arrays of one length, "
            f"got {quality.shape}, {cost.shape}, {admissible.shape}"
        )
    return quality, cost, admissible


def _override(value: float | None, default: float | None, name: str) -> float | None:
    chosen = check_non_negative(value, name)
    return default if chosen is None else chosen


def _order(indices: np.ndarray, primary: np.ndarray, secondary: np.ndarray) -> list[int]:
    """``indices`` sorted by ``primary``, then ``secondary``, then index (all ascending)."""
    rounded = np.round(primary / _TIE) * _TIE  # near-equal primaries fall to the secondary key
    return [int(indices[i]) for i in np.lexsort((indices, secondary, rounded))]


def _argbest(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Per row, the column with the highest score; near-ties go to the lowest ``cost``."""
    best = score.max(axis=1, keepdims=True)
    near_best = score >= best - _TIE
    return np.where(near_best, cost, np.inf).argmin(axis=1)


def _default_tradeoff(cost: np.ndarray, admissible: np.ndarray) -> np.ndarray:
    """Per row: ``DEFAULT_RELATIVE_TRADEOFF`` per the priciest admissible model's cost."""
    priciest = np.where(admissible, cost, 0.0).max(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(priciest > 0, DEFAULT_RELATIVE_TRADEOFF / priciest, 0.0)
