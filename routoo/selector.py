"""Choosing a model from predicted quality and estimated cost, one prompt or a whole batch.

The settings are a ``RoutingPolicy`` (``routoo.policy``). Hard filters such as
capabilities and budgets come first, as the ``admissible`` mask; then, in order:

0. ``model``: the pinned model (rule ``"pinned"``); when it is not admissible or costs
   more than ``max_cost``, ``NoAdmissibleModelError`` says so. The ranking continues with
   the other models as the rules below rank them.
1. ``quality_floor``: the cheapest model predicted to reach the floor; when none does,
   the best predicted one (rule ``"quality_floor_unreachable"``).
2. ``max_cost``: the best predicted model estimated to cost at most ``max_cost``; none
   raises ``NoAdmissibleModelError``. With a floor too, the floor chooses among these.
3. ``tradeoff``: the model maximising ``quality - tradeoff * cost`` (ties: the cheaper).

``tradeoff`` is lambda in quality per USD. Left as None it is scale-free:
``DEFAULT_RELATIVE_TRADEOFF / (cost of the priciest admissible model)``, so a model
costing as much as the priciest candidate must be predicted 0.1 better than a free
one. That saves money out of the box while still paying for clearly better answers.

Ties: a rule's main score (quality, ``quality - tradeoff * cost``, or the cost of the
models reaching a floor) is compared in steps of ``1e-12``: scores that round to the same
multiple of the step are equal, and the tie goes to the cheaper model (the better one
among equally cheap models above a floor), then to the lower column. That is a total
order, so a prompt's ranking sorts by the same keys and its first model is the choice.

``select_columns`` applies the rules to a whole ``(n, m)`` batch at once. It is the one
implementation behind ``Selector.select`` (one prompt: what the Router deploys),
``Selector.select_many``, ``calibrate``, ``allocate_batch`` and the curves of
``routoo.evaluate``, so the evaluator measures the rule the Router runs.

(Over 400 lines: ``calibrate`` and ``allocate_batch``, which bisect lambda over this rule,
live here too; they are the next thing to move into a module of their own.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from routoo.errors import (
    BudgetExceededError,
    ConfigError,
    DataError,
    NoAdmissibleModelError,
    UnknownModelError,
)
from routoo.policy import (
    RoutingPolicy,
    check_non_negative,  # moved to routoo.policy; importing it from here is kept for one release
)

DEFAULT_RELATIVE_TRADEOFF = 0.1
CalibrationTarget = Literal["avg_cost", "strong_share", "avg_quality"]
CALIBRATION_TARGETS: tuple[str, ...] = CalibrationTarget.__args__
_TIE = 1e-12  # the step scores are compared in; see "Ties" above


@dataclass(frozen=True)
class Selection:
    """The chosen model's column, the rule that chose it, and the admissible columns best-first."""

    index: int
    rule: str
    ranking: list[int]


class Choices(NamedTuple):
    """``select_columns``'s answer: per row the chosen column and its rule, on request the ranking."""

    index: np.ndarray  # (n,) int
    rule: np.ndarray  # (n,) str
    ranking: list[list[int]] | None = None  # per row, the candidate columns best-first


def select_columns(
    quality: np.ndarray,
    cost: np.ndarray,
    admissible: np.ndarray | None = None,
    policy: RoutingPolicy | None = None,
    *,
    tradeoff: float | np.ndarray | None = None,
    models: Sequence[str] | None = None,
    rank: bool = False,
) -> Choices:
    """The rules of the module docstring applied to every row of ``(n, m)`` quality and cost.

    ``admissible`` is a mask broadcastable to ``(n, m)`` (None: every model). ``tradeoff``
    replaces the policy's lambda, one value or one per row (the Router scales it by budget
    pressure); ``inf`` chooses the cheapest model, the better among equally cheap ones.
    ``models`` names the columns, which a pinned policy needs; ``rank`` adds every row's
    ranking. A row the rules cannot serve raises ``NoAdmissibleModelError``.
    """
    policy = RoutingPolicy() if policy is None else policy
    quality, cost, admissible = _check_matrices(quality, cost, admissible)
    candidates = admissible if policy.max_cost is None else admissible & (cost <= policy.max_cost)
    pinned = _pinned_column(policy, models, quality.shape[1])
    _check_rows(admissible, candidates, cost, policy, pinned)
    keys, rule = _rule_keys(quality, cost, admissible, candidates, policy, tradeoff, pinned)
    return Choices(_first(keys, candidates), rule, _rankings(keys, candidates) if rank else None)


@dataclass(frozen=True, init=False)
class Selector:
    """The selection rules under one ``RoutingPolicy``; see the module docstring for their order.

    ``Selector(policy)``, ``Selector(tradeoff=0.5, deny=[...])`` or both (the keywords
    override the policy's fields). ``selector.tradeoff`` and the other fields read the policy.
    """

    policy: RoutingPolicy

    def __init__(self, policy: RoutingPolicy | Mapping[str, Any] | None = None, **fields: Any) -> None:
        object.__setattr__(self, "policy", RoutingPolicy.coerce(policy).merged(fields))

    # The policy's fields, read as the selector's own (``router.selector.allow``).
    tradeoff = property(lambda self: self.policy.tradeoff)
    quality_floor = property(lambda self: self.policy.quality_floor)
    max_cost = property(lambda self: self.policy.max_cost)
    allow = property(lambda self: self.policy.allow)
    deny = property(lambda self: self.policy.deny)
    max_latency_s = property(lambda self: self.policy.max_latency_s)
    model = property(lambda self: self.policy.model)

    def filter_reason(self, model: str, latency_s: float | None) -> str | None:
        """Why the allow/deny lists or the latency limit exclude ``model``, or None."""
        return self.policy.filter_reason(model, latency_s)

    def resolve_tradeoff(
        self, cost: np.ndarray, admissible: np.ndarray, tradeoff: float | None = None
    ) -> float:
        """The lambda to use: ``tradeoff``, else the policy's, else the scale-free default."""
        cost = np.asarray(cost, dtype=np.float64)[None, :]
        admissible = np.asarray(admissible, dtype=bool)[None, :]
        given = check_non_negative(tradeoff, "tradeoff")
        return float(_resolve_tradeoffs(cost, admissible, self.policy, given)[0, 0])

    def select(
        self,
        quality: np.ndarray,
        cost: np.ndarray,
        admissible: np.ndarray,
        *,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
        models: Sequence[str] | None = None,
    ) -> Selection:
        """Choose one model from per-model predicted quality and estimated cost.

        The keywords override the policy for this call; ``models`` names the columns (needed
        when the policy pins a model). ``ranking`` lists every candidate, the choice first.
        """
        quality, cost, admissible = _check_row(quality, cost, admissible)
        policy = self.policy.merged(
            {"tradeoff": tradeoff, "quality_floor": quality_floor, "max_cost": max_cost}
        )
        choices = select_columns(
            quality[None], cost[None], admissible[None], policy, models=models, rank=True
        )
        return Selection(int(choices.index[0]), str(choices.rule[0]), choices.ranking[0])

    def select_many(
        self,
        quality: np.ndarray,
        cost: np.ndarray,
        admissible: np.ndarray | None = None,
        *,
        models: Sequence[str] | None = None,
    ) -> np.ndarray:
        """The model index ``select`` picks for every row, computed for all rows at once."""
        return select_columns(quality, cost, admissible, self.policy, models=models).index


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
    """The tradeoff rule's column per row (``inf``: the cheapest, the better among equally cheap)."""
    return select_columns(quality, cost, tradeoff=tradeoff).index


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


def _check_matrices(
    quality: np.ndarray, cost: np.ndarray, admissible: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arrays as float and bool, column-major: the rules reduce along rows of a few models,
    which NumPy does several times faster in that layout."""
    quality = np.asfortranarray(quality, dtype=np.float64)
    cost = np.asfortranarray(cost, dtype=np.float64)
    if quality.ndim != 2 or cost.shape != quality.shape or quality.shape[1] == 0:
        raise ConfigError(
            f"quality and cost must be matching (n, m) arrays with m >= 1, got {quality.shape}, {cost.shape}"
        )
    if not (np.isfinite(quality).all() and np.isfinite(cost).all()):
        raise DataError("predicted quality and estimated cost must be finite (no NaN or infinity)")
    if admissible is None:
        return quality, cost, np.ones(quality.shape, dtype=bool, order="F")
    try:
        admissible = np.broadcast_to(np.asarray(admissible, dtype=bool), quality.shape)
    except ValueError:
        raise ConfigError(
            f"admissible has shape {np.shape(admissible)}, which does not fit quality's {quality.shape}"
        ) from None
    return quality, cost, np.asfortranarray(admissible)


def _pinned_column(policy: RoutingPolicy, models: Sequence[str] | None, n_models: int) -> int | None:
    if policy.model is None:
        return None
    if models is None:
        raise ConfigError(f"the policy pins model {policy.model!r}: pass the columns' model names as models=")
    names = list(models)
    if len(names) != n_models:
        raise ConfigError(f"models= names {len(names)} models for {n_models} columns")
    if policy.model not in names:
        raise UnknownModelError(f"the pinned model {policy.model!r} is not in the pool {names}")
    return names.index(policy.model)


def _check_rows(
    admissible: np.ndarray,
    candidates: np.ndarray,
    cost: np.ndarray,
    policy: RoutingPolicy,
    pinned: int | None,
) -> None:
    """``NoAdmissibleModelError`` saying why, when a row leaves the rules nothing to choose."""
    if pinned is not None:
        name, blocked = policy.model, np.flatnonzero(~admissible[:, pinned])
        if blocked.size:
            why = policy.filter_reason(str(name), None) or "the call's filters or budgets exclude it"
            raise NoAdmissibleModelError(
                f"the pinned model {name!r} is not admissible for {_rows(blocked, len(cost))}: {why}"
            )
        over = np.flatnonzero(~candidates[:, pinned])
        if over.size:
            raise NoAdmissibleModelError(
                f"the pinned model {name!r} is estimated to cost ${cost[over[0], pinned]:g}, more than "
                f"max_cost=${policy.max_cost:g}, for {_rows(over, len(cost))}"
            )
        return
    empty = np.flatnonzero(~admissible.any(axis=1))
    if empty.size:
        raise NoAdmissibleModelError(f"no model in the pool is admissible for {_rows(empty, len(cost))}")
    priced_out = np.flatnonzero(~candidates.any(axis=1))
    if priced_out.size:
        first = priced_out[0]
        raise NoAdmissibleModelError(
            f"no admissible model is estimated to cost at most max_cost=${policy.max_cost:g} for "
            f"{_rows(priced_out, len(cost))}; the cheapest costs ${cost[first][admissible[first]].min():g}"
            + ("" if len(cost) == 1 else f" in row {first}")
        )


def _rows(rows: np.ndarray, n_rows: int) -> str:
    if n_rows == 1:
        return "this call"
    listed = ", ".join(str(row) for row in rows[:10]) + (", ..." if rows.size > 10 else "")
    return f"rows [{listed}] of {n_rows}"


def _rule_keys(
    quality: np.ndarray,
    cost: np.ndarray,
    admissible: np.ndarray,
    candidates: np.ndarray,
    policy: RoutingPolicy,
    tradeoff: float | np.ndarray | None,
    pinned: int | None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """The rule's sort keys per cell, most significant first (smallest wins), and its name per row."""
    n_rows, n_models = quality.shape
    if policy.quality_floor is not None:
        reaching = quality >= policy.quality_floor
        keys = [
            np.where(reaching, 0.0, 1.0),  # the models reaching the floor come first:
            np.where(reaching, _steps(cost), _steps(-quality)),  # the cheapest, the rest by quality
            np.where(reaching, -quality, cost),
        ]
        reached = (reaching & candidates).any(axis=1)
        rule = np.where(reached, "quality_floor", "quality_floor_unreachable")
    elif policy.max_cost is not None:
        keys, rule = [_steps(-quality), cost], np.full(n_rows, "max_cost")
    else:
        lam = _resolve_tradeoffs(cost, admissible, policy, tradeoff)
        keys, rule = _tradeoff_keys(quality, cost, lam), np.full(n_rows, "tradeoff")
    if pinned is not None:
        keys.insert(0, np.where(np.arange(n_models) == pinned, 0.0, 1.0))
        rule = np.full(n_rows, "pinned")
    return [np.broadcast_to(key, quality.shape) for key in keys], rule


def _tradeoff_keys(quality: np.ndarray, cost: np.ndarray, lam: np.ndarray) -> list[np.ndarray]:
    """The highest ``quality - lam * cost``, then the cheaper; rows with ``lam = inf`` take the
    limit of a growing lambda: the cheapest, then the better."""
    finite = np.isfinite(lam)
    if finite.all():
        negated_score = lam * cost  # -(quality - lam * cost), bit for bit, in one array (it is faster)
        negated_score -= quality
        return [_steps(negated_score, out=negated_score), cost]
    score = quality - np.where(finite, lam, 0.0) * cost
    return [np.where(finite, _steps(-score), _steps(cost)), np.where(finite, cost, -quality)]


def _resolve_tradeoffs(
    cost: np.ndarray, admissible: np.ndarray, policy: RoutingPolicy, tradeoff: float | np.ndarray | None
) -> np.ndarray:
    """Lambda per row, shape (n, 1): ``tradeoff``, else the policy's, else the scale-free default."""
    if tradeoff is None:
        tradeoff = policy.tradeoff
    if tradeoff is None:
        return _default_tradeoff(cost, admissible)[:, None]
    lam = np.asarray(tradeoff, dtype=np.float64)
    if lam.ndim > 1 or lam.size not in (1, len(cost)) or not (lam >= 0).all():
        raise ConfigError(f"tradeoff must be one lambda >= 0 or one per row, not {tradeoff!r}")
    return lam.reshape(-1, 1)


def _default_tradeoff(cost: np.ndarray, admissible: np.ndarray) -> np.ndarray:
    """Per row: ``DEFAULT_RELATIVE_TRADEOFF`` per the priciest admissible model's cost."""
    priciest = np.where(admissible, cost, 0.0).max(axis=1)
    with np.errstate(divide="ignore"):
        return np.where(priciest > 0, DEFAULT_RELATIVE_TRADEOFF / priciest, 0.0)


def _steps(score: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``score`` in whole steps of ``_TIE`` (into ``out`` if given): scores in one step are equal."""
    with np.errstate(over="ignore"):  # a huge lambda's scores become infinite: still in order
        steps = np.divide(score, _TIE, out=out)
    return np.round(steps, out=steps)


def _first(keys: list[np.ndarray], candidates: np.ndarray) -> np.ndarray:
    """Per row, the candidate column with the smallest keys (in order), then the lowest column."""
    best = candidates
    for key in keys:
        masked = np.where(best, key, np.inf)
        best = best & (masked == masked.min(axis=1, keepdims=True))
    return best.argmax(axis=1)


def _rankings(keys: list[np.ndarray], candidates: np.ndarray) -> list[list[int]]:
    """Per row, the candidate columns sorted by the keys ``_first`` reads, so its choice comes first."""
    columns = np.broadcast_to(np.arange(candidates.shape[1]), candidates.shape)
    order = np.lexsort([columns, *reversed(keys)], axis=-1)
    return [row[allowed[row]].tolist() for row, allowed in zip(order, candidates, strict=True)]
