"""The routing decision: which pool model answers a call, and why. No I/O, no litellm.

``decide`` turns what the router knows about one call (predicted quality, expected cost
and worst-case cost per pool model, why a model cannot serve the call, the open budgets)
into a ``RoutingDecision``; ``serving_reasons`` says which models can serve a call at all.
The expected cost ranks the models; a hard budget admits a model only when its worst-case
cost (``CostBounds``) fits what is left; a soft budget's pressure steers every rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from routoo.budget import Budget
from routoo.errors import (
    BudgetExceededError,
    ConfigError,
    DataError,
    NoAdmissibleModelError,
    UnknownModelError,
)
from routoo.policy import RoutingPolicy
from routoo.selector import Selector

if TYPE_CHECKING:
    from routoo.pool import ModelSpec


@dataclass(frozen=True)
class CandidateScore:
    """One pool model as the router saw it for a call."""

    model: str
    predicted_quality: float
    estimated_cost: float
    admissible: bool
    reason: str | None = None  # why it was filtered out
    cost_bound: float | None = None  # the most the call can cost (reserved in hard budgets); None: unknown
    bound_basis: str | None = None  # how the bound was worked out
    expected_output_tokens: float | None = None  # the answer length the estimated cost assumes


@dataclass(frozen=True)
class CostBounds:
    """The most a call can cost on each pool model, and how each bound was worked out.

    ``usd[i]`` is prompt tokens x input price + ``output_tokens[i]`` x output price, or
    ``inf`` where no output limit is known; ``basis[i]`` says which limit bounded the output.
    """

    usd: np.ndarray
    output_tokens: np.ndarray
    basis: tuple[str, ...]

    def describe(self, i: int, prompt_tokens: int) -> str:
        """How bound ``i`` was worked out, in words."""
        if not np.isfinite(self.usd[i]):
            return f"no bound: {self.basis[i]}"
        return f"{prompt_tokens} prompt + up to {int(self.output_tokens[i])} output tokens, {self.basis[i]}"


@dataclass(frozen=True)
class FallbackAttempt:
    """A model that was tried (or skipped for the budget) and failed."""

    model: str
    error_type: str
    message: str


@dataclass(frozen=True)
class RoutingDecision:
    """The chosen model, the rule that chose it, and every candidate ranked best-first."""

    model: str
    rule: str
    candidates: list[CandidateScore]
    alternatives: list[str]
    prompt_tokens: int
    fallbacks: list[FallbackAttempt] = field(default_factory=list)
    tradeoff: float | None = None  # the lambda used, budget pressure included (tradeoff rule)
    warnings: list[str] = field(default_factory=list)  # what makes this decision less sure

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-serialisable plain data."""
        return dataclasses.asdict(self)

    def candidate(self, model: str) -> CandidateScore:
        """The score of pool model ``model``."""
        for candidate in self.candidates:
            if candidate.model == model:
                return candidate
        raise UnknownModelError(f"{model!r} is not among the decision's candidates")


def cost_bounds(
    prompt_tokens: int,
    max_tokens: float | np.ndarray | None,
    *,
    max_output_tokens: np.ndarray,
    context_windows: np.ndarray,
    input_prices: np.ndarray,
    output_prices: np.ndarray,
    expected: np.ndarray,
) -> CostBounds:
    """The most a call can cost on each model: prompt tokens x input price + the most output
    tokens x output price, never below the ``expected`` cost.

    The output is bounded by ``max_tokens`` (one for every model or one each; NaN: none),
    else the model's maximum output, else its context window less the prompt (NaN marks
    what is unknown); a model with none of these has no bound (``inf``).
    """
    limits = np.asarray(max_output_tokens, dtype=np.float64)
    room = np.maximum(np.asarray(context_windows, dtype=np.float64) - prompt_tokens, 0.0)
    output = np.where(np.isnan(limits), room, limits)
    basis = [
        "its context window less the prompt" if np.isnan(limit) else "its max_output_tokens"
        for limit in limits
    ]
    caps = np.broadcast_to(
        np.asarray(np.nan if max_tokens is None else max_tokens, dtype=np.float64), limits.shape
    )
    basis = [
        "max_tokens" if not np.isnan(cap) and (np.isnan(tokens) or cap <= tokens) else reason
        for cap, tokens, reason in zip(caps, output, basis, strict=True)
    ]
    output = np.fmin(output, caps)
    unknown = "neither max_tokens, its max_output_tokens nor its context window is known"
    basis = [unknown if np.isnan(tokens) else reason for tokens, reason in zip(output, basis, strict=True)]
    usd = prompt_tokens * np.asarray(input_prices) + output * np.asarray(output_prices)
    usd = np.where(np.isnan(output), np.inf, np.maximum(usd, expected))
    return CostBounds(usd, np.nan_to_num(output, nan=0.0), tuple(basis))


def decide(
    models: Sequence[str],
    quality: np.ndarray,
    cost: np.ndarray,
    reasons: Sequence[str | None],
    policy: RoutingPolicy,
    *,
    budgets: Sequence[Budget],
    prompt_tokens: int,
    bounds: CostBounds | None = None,
    output_tokens: np.ndarray | None = None,
    warnings: Sequence[str] = (),
) -> RoutingDecision:
    """Choose among ``models`` for one call under ``policy``.

    ``quality`` and ``cost`` hold each model's predicted quality and expected USD (which
    rank the models); ``bounds`` the most each call can cost (None: the expected cost).
    ``reasons[i]`` says why model ``i`` cannot serve the call (None: it can).
    ``output_tokens`` are the answer lengths ``cost`` assumes and ``warnings`` what makes
    the decision less sure; both are reported on the decision. Hard budgets
    drop models whose bound exceeds what is left (``BudgetExceededError`` when none fits);
    soft ones steer every rule toward cheaper models (``_steered``). A pinned model has no
    alternatives to fall back to.
    """
    quality, cost = _checked_estimates(models, quality, cost)
    if bounds is None:
        bounds = CostBounds(cost, np.zeros(len(cost)), ("the expected cost",) * len(cost))
    reasons = list(reasons)
    servable = np.array([reason is None for reason in reasons])
    if not servable.any():
        listed = "; ".join(f"{name}: {reason}" for name, reason in zip(models, reasons, strict=True))
        raise NoAdmissibleModelError(f"no pool model can serve this call ({listed})")
    budgets = _distinct(budgets)
    hard = [budget for budget in budgets if budget.mode == "hard"]
    if hard:
        _apply_hard_budgets(reasons, hard, bounds, prompt_tokens)
    admissible = np.array([reason is None for reason in reasons])
    if not admissible.any():
        raise _budget_error(models, reasons, servable, hard, bounds, prompt_tokens)
    selector = Selector(policy)
    # The default lambda scales with the servable models' costs, so budgets do not move it.
    lam = selector.resolve_tradeoff(cost, servable)
    pressure = max((budget.tradeoff_pressure() for budget in budgets), default=1.0)
    steered = Selector(_steered(policy, pressure, cost, admissible))
    selection = steered.select(quality, cost, admissible, tradeoff=lam * pressure, models=models)
    rule = selection.rule
    if budgets and _budget_changed(selector, selection.index, quality, cost, servable, lam, models):
        rule = "budget"
    ranked = set(selection.ranking)
    excluded = sorted((i for i in range(len(models)) if i not in ranked), key=lambda i: -quality[i])
    candidates = [
        CandidateScore(
            models[i],
            float(quality[i]),
            float(cost[i]),
            i in ranked,
            reasons[i],
            float(bounds.usd[i]) if np.isfinite(bounds.usd[i]) else None,
            bounds.describe(i, prompt_tokens),
            None if output_tokens is None else float(output_tokens[i]),
        )
        for i in [*selection.ranking, *excluded]
    ]
    return RoutingDecision(
        model=models[selection.index],
        rule=rule,
        candidates=candidates,
        alternatives=[] if policy.model else [models[i] for i in selection.ranking[1:]],
        prompt_tokens=prompt_tokens,
        tradeoff=lam * pressure if selection.rule == "tradeoff" else None,
        warnings=list(warnings),
    )


def serving_reasons(
    specs: Sequence[ModelSpec],
    policy: RoutingPolicy,
    messages: list[dict[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    response_format: Any,
    prompt_tokens: int,
) -> list[str | None]:
    """Per pool model, why it cannot serve this call (None: it can).

    Tools need function calling, images vision, a JSON schema ``response_format`` response
    schemas; the prompt must fit the context window; the policy's allow/deny lists and
    latency limit apply.
    """
    needs_vision = _has_images(messages)
    needs_schema = _wants_schema(response_format)
    reasons: list[str | None] = []
    for spec in specs:
        reason = policy.filter_reason(spec.name, spec.latency_s)
        if reason is None and tools and not spec.supports_function_calling:
            reason = "does not support function calling (the call has tools)"
        if reason is None and needs_vision and not spec.supports_vision:
            reason = "does not support vision (the call has images)"
        if reason is None and needs_schema and not spec.supports_response_schema:
            reason = "does not support response schemas (the call has a JSON schema response_format)"
        if reason is None and spec.max_input_tokens is not None and prompt_tokens > spec.max_input_tokens:
            reason = f"the prompt's {prompt_tokens} tokens exceed its {spec.max_input_tokens}-token context"
        reasons.append(reason)
    return reasons


def _checked_estimates(
    models: Sequence[str], quality: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Quality and cost as float arrays; a clear error naming the models where either is not finite."""
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if quality.shape != (len(models),) or cost.shape != (len(models),):
        raise ConfigError(
            f"quality and cost need one value per model ({len(models)}), got {quality.shape}, {cost.shape}"
        )
    bad = [f"{name}: {value!r}" for name, value in zip(models, quality.tolist(), strict=True)]
    bad = [entry for entry, ok in zip(bad, np.isfinite(quality), strict=True) if not ok]
    if bad:
        raise DataError(f"the predicted quality is not a finite number for {', '.join(bad)}")
    wrong = ~np.isfinite(cost) | (cost < 0)
    if wrong.any():
        listed = ", ".join(f"{models[i]}: {float(cost[i])!r}" for i in np.flatnonzero(wrong))
        raise ConfigError(
            f"the estimated cost is not a finite number >= 0 for {listed}: check those models' prices"
        )
    return quality, cost


def _distinct(budgets: Sequence[Budget]) -> list[Budget]:
    """Each budget once, outermost first (a budget open twice is charged once)."""
    distinct: list[Budget] = []
    for budget in budgets:
        if all(budget is not seen for seen in distinct):
            distinct.append(budget)
    return distinct


def _apply_hard_budgets(
    reasons: list[str | None], hard: Sequence[Budget], bounds: CostBounds, prompt_tokens: int
) -> None:
    """Give every servable model whose worst-case cost a hard budget cannot cover its reason."""
    for i, bound in enumerate(bounds.usd):
        if reasons[i] is not None:
            continue
        if not np.isfinite(bound):
            reasons[i] = (
                f"a hard budget cannot cap it: its cost has {bounds.describe(i, prompt_tokens)} "
                "(pass max_tokens=, or give the model max_output_tokens or max_input_tokens)"
            )
            continue
        lefts = [(budget, budget.remaining) for budget in hard]
        short = next(((budget, left) for budget, left in lefts if bound > left), None)
        if short is not None:
            reasons[i] = (
                f"could cost up to ${bound:.6g} ({bounds.describe(i, prompt_tokens)}), "
                f"more than the ${short[1]:.6g} left in {short[0].name!r}"
            )


def _budget_error(
    models: Sequence[str],
    reasons: Sequence[str | None],
    servable: np.ndarray,
    hard: Sequence[Budget],
    bounds: CostBounds,
    prompt_tokens: int,
) -> BudgetExceededError:
    """Why no servable model fits the hard budgets: the tightest one, and the cheapest bound."""
    tightest = min(hard, key=lambda budget: budget.remaining)
    finite = servable & np.isfinite(bounds.usd)
    if not finite.any():
        listed = "; ".join(f"{models[i]}: {reasons[i]}" for i in np.flatnonzero(servable))
        return BudgetExceededError(
            f"no model's cost can be bounded for the hard budget {tightest.name!r} ({listed})"
        )
    cheapest = int(np.flatnonzero(finite)[np.argmin(bounds.usd[finite])])
    return BudgetExceededError(
        f"budget {tightest.name!r} has ${tightest.remaining:.6g} left (${tightest.spent:.6g} spent, "
        f"${tightest.reserved:.6g} reserved, limit ${tightest.limit_usd:.6g}); the cheapest model that "
        f"could serve this call, {models[cheapest]}, must reserve ${bounds.usd[cheapest]:.6g} "
        f"({bounds.describe(cheapest, prompt_tokens)})"
        + ("" if "max_tokens" in bounds.basis[cheapest] else "; a smaller max_tokens= reserves less")
    )


def _steered(
    policy: RoutingPolicy, pressure: float, cost: np.ndarray, admissible: np.ndarray
) -> RoutingPolicy:
    """The policy a soft budget's ``pressure`` (>= 1) leaves: every rule asks for cheaper models.

    The tradeoff rule's lambda is multiplied by it (in ``decide``); ``max_cost`` is divided
    by it, never below the cheapest admissible model within the caller's ``max_cost`` (a
    soft budget refuses nothing); ``quality_floor`` is divided by it, so cheaper models reach it.
    """
    if pressure <= 1.0 or policy.model is not None:  # a pinned call is not steered away
        return policy
    changes: dict[str, float] = {}
    if policy.max_cost is not None:
        within = admissible & (cost <= policy.max_cost)
        if within.any():
            changes["max_cost"] = max(policy.max_cost / pressure, float(cost[within].min()))
    if policy.quality_floor is not None:
        changes["quality_floor"] = policy.quality_floor / pressure
    return policy.model_copy(update=changes) if changes else policy


def _budget_changed(
    selector: Selector,
    chosen: int,
    quality: np.ndarray,
    cost: np.ndarray,
    servable: np.ndarray,
    lam: float,
    models: Sequence[str],
) -> bool:
    """Whether the choice differs from what it would be without any budget."""
    try:
        free = selector.select(quality, cost, servable, tradeoff=lam, models=models)
    except NoAdmissibleModelError:
        return True
    return free.index != chosen


def _has_images(messages: list[dict[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(part, Mapping) and part.get("type") in ("image_url", "image", "input_image")
            for part in content
        ):
            return True
    return False


def _wants_schema(response_format: Any) -> bool:
    if isinstance(response_format, type):  # a pydantic model class
        return True
    return isinstance(response_format, Mapping) and response_format.get("type") == "json_schema"
