"""The routing decision: which pool model answers a call, and why. No I/O, no litellm.

``decide`` turns what the router knows about one call (predicted quality and estimated
cost per pool model, why a model cannot serve the call, the open budgets) into a
``RoutingDecision``; ``serving_reasons`` says which models can serve a call at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from routoo.budget import Budget
from routoo.errors import BudgetExceededError, NoAdmissibleModelError, UnknownModelError
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

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-serialisable plain data."""
        return dataclasses.asdict(self)

    def candidate(self, model: str) -> CandidateScore:
        """The score of pool model ``model``."""
        for candidate in self.candidates:
            if candidate.model == model:
                return candidate
        raise UnknownModelError(f"{model!r} is not among the decision's candidates")


def decide(
    models: Sequence[str],
    quality: np.ndarray,
    cost: np.ndarray,
    reasons: Sequence[str | None],
    policy: RoutingPolicy,
    *,
    budgets: Sequence[Budget],
    prompt_tokens: int,
) -> RoutingDecision:
    """Choose among ``models`` for one call under ``policy``.

    ``quality`` and ``cost`` hold each model's predicted quality and estimated USD;
    ``reasons[i]`` says why model ``i`` cannot serve the call (None: it can). Hard budgets
    drop models whose estimate exceeds what is left (``BudgetExceededError`` when none
    fits); soft ones raise lambda. A pinned model has no alternatives to fall back to.
    """
    reasons = list(reasons)
    servable = np.array([reason is None for reason in reasons])
    if not servable.any():
        listed = "; ".join(f"{name}: {reason}" for name, reason in zip(models, reasons, strict=True))
        raise NoAdmissibleModelError(f"no pool model can serve this call ({listed})")
    hard = [budget for budget in budgets if budget.mode == "hard"]
    for i, estimate in enumerate(cost):
        short = next((b for b in hard if estimate > b.remaining), None)
        if reasons[i] is None and short is not None:
            reasons[i] = f"estimate ${estimate:.6g} exceeds the ${short.remaining:.6g} left in {short.name!r}"
    admissible = np.array([reason is None for reason in reasons])
    if not admissible.any():
        tightest = min(hard, key=lambda budget: budget.remaining)
        raise BudgetExceededError(
            f"budget {tightest.name!r} has ${tightest.remaining:.6g} left (${tightest.spent:.6g} spent, "
            f"${tightest.reserved:.6g} reserved, limit ${tightest.limit_usd:.6g}); the cheapest model "
            f"that could serve this call is estimated at ${cost[servable].min():.6g}"
        )
    selector = Selector(policy)
    # The default lambda scales with the servable models' costs, so budgets do not move it.
    lam = selector.resolve_tradeoff(cost, servable)
    pressure = max((budget.tradeoff_pressure() for budget in budgets), default=1.0)
    selection = selector.select(quality, cost, admissible, tradeoff=lam * pressure, models=models)
    rule = selection.rule
    if budgets and _budget_changed(selector, selection.index, quality, cost, servable, lam, models):
        rule = "budget"
    ranked = set(selection.ranking)
    excluded = sorted((i for i in range(len(models)) if i not in ranked), key=lambda i: -quality[i])
    candidates = [
        CandidateScore(models[i], float(quality[i]), float(cost[i]), i in ranked, reasons[i])
        for i in [*selection.ranking, *excluded]
    ]
    return RoutingDecision(
        model=models[selection.index],
        rule=rule,
        candidates=candidates,
        alternatives=[] if policy.model else [models[i] for i in selection.ranking[1:]],
        prompt_tokens=prompt_tokens,
        tradeoff=lam * pressure if selection.rule == "tradeoff" else None,
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
