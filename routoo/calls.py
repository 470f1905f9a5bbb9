"""The call layer: trying a decision's models in order and settling what the answer cost.

A ``CallPlan`` is a decided call. ``run`` / ``arun`` try its chosen model, then its
alternatives on provider failures (rate limits, timeouts, 5xx, connection and
authentication errors, an exceeded context window), each attempt's estimate reserved in
every open budget first. A ``Ledger`` settles an answered attempt at its real cost, in
those budgets and in the router's total. Completions and streams share these steps; only
the sending differs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from routoo.budget import Budget, Reservation, SpendRecord
from routoo.decision import FallbackAttempt, RoutingDecision
from routoo.errors import AllModelsFailedError, BudgetExceededError

if TYPE_CHECKING:
    from litellm import ModelResponse

    from routoo.pool import ModelPool

Sent = TypeVar("Sent")


@functools.cache
def fallback_errors() -> tuple[type[Exception], ...]:
    """Provider failures worth trying another model for; other errors are the caller's to fix."""
    from routoo._litellm import litellm

    return (
        litellm.RateLimitError,
        litellm.Timeout,
        litellm.APIConnectionError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
        litellm.ContextWindowExceededError,
        litellm.AuthenticationError,
    )


def is_fallback_error(error: BaseException) -> bool:
    """Whether a failed call should move on to the next model rather than raise."""
    if isinstance(error, fallback_errors()):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and status >= 500


@dataclass
class RoutedResponse:
    """What litellm returned, who answered, what it really cost and why that model."""

    response: ModelResponse
    decision: RoutingDecision
    model: str
    cost_usd: float
    usage: dict[str, int]


@dataclass(frozen=True)
class CallPlan:
    """Everything one routed call needs once decided."""

    decision: RoutingDecision
    messages: list[dict[str, Any]]
    kwargs: dict[str, Any]
    budgets: tuple[Budget, ...]


@dataclass
class Attempt:
    """The model answering a call, the money it holds in each budget, and the fallbacks before it."""

    model: str
    reservations: list[tuple[Budget, Reservation]]
    fallbacks: list[FallbackAttempt]

    def release(self) -> None:
        """Give back every reservation (the attempt failed)."""
        _release(self.reservations)


class Attempts:
    """The models to try for one call, in order, with their budget reservations.

    Iterating yields an attempt per model to call, its estimate already reserved in every
    open budget; a model that no longer fits a hard budget (concurrent calls spent the
    money) is skipped without counting against ``max_fallbacks``.
    """

    def __init__(self, plan: CallPlan, max_fallbacks: int) -> None:
        self.plan = plan
        self.max_fallbacks = max_fallbacks
        self.fallbacks: list[FallbackAttempt] = []
        self.failures = 0
        self.last_error: BaseException | None = None

    def __iter__(self) -> Iterator[Attempt]:
        decision = self.plan.decision
        for model in [decision.model, *decision.alternatives]:
            if self.failures > self.max_fallbacks:
                return
            estimate = decision.candidate(model).estimated_cost
            reservations: list[tuple[Budget, Reservation]] = []
            try:
                for budget in self.plan.budgets:
                    reservations.append((budget, budget.reserve(estimate)))
            except BudgetExceededError as error:
                _release(reservations)
                self._record(model, error)
                continue
            yield Attempt(model, reservations, list(self.fallbacks))

    def failed(self, attempt: Attempt, error: Exception) -> None:
        """``attempt`` failed: give its money back, then raise or let the next model try."""
        attempt.release()
        if not is_fallback_error(error):
            raise error
        self.failures += 1
        self._record(attempt.model, error)

    def exhausted(self) -> Exception:
        """The error to raise once no model is left to try."""
        tried = "; ".join(f"{f.model}: {f.error_type}" for f in self.fallbacks)
        if self.failures == 0 and isinstance(self.last_error, BudgetExceededError):
            return self.last_error
        error = AllModelsFailedError(f"all {len(self.fallbacks)} attempted models failed ({tried})")
        error.__cause__ = self.last_error
        return error

    def _record(self, model: str, error: BaseException) -> None:
        self.last_error = error
        self.fallbacks.append(FallbackAttempt(model, type(error).__name__, str(error)))


def run(plan: CallPlan, max_fallbacks: int, send: Callable[[Attempt], Sent]) -> tuple[Attempt, Sent]:
    """``send`` each attempt in turn until one succeeds; the attempt that answered and its result."""
    attempts = Attempts(plan, max_fallbacks)
    for attempt in attempts:
        try:
            return attempt, send(attempt)
        except Exception as error:
            attempts.failed(attempt, error)
    raise attempts.exhausted()


async def arun(
    plan: CallPlan, max_fallbacks: int, send: Callable[[Attempt], Awaitable[Sent]]
) -> tuple[Attempt, Sent]:
    """Async ``run``."""
    attempts = Attempts(plan, max_fallbacks)
    for attempt in attempts:
        try:
            return attempt, await send(attempt)
        except Exception as error:
            attempts.failed(attempt, error)
    raise attempts.exhausted()


class Ledger:
    """What a router has spent; settles each answered attempt at its real cost."""

    def __init__(self, pool: ModelPool) -> None:
        self.pool = pool
        self._lock = threading.Lock()
        self._spent = 0.0

    @property
    def spent(self) -> float:
        """Total real USD settled."""
        with self._lock:
            return self._spent

    def settle(self, attempt: Attempt, response: ModelResponse) -> tuple[float, dict[str, int]]:
        """Charge ``response``'s real cost to the attempt's budgets and the total; cost and usage."""
        usage = _usage(response)
        cost = self.real_cost(attempt.model, response, usage)
        record = SpendRecord(attempt.model, cost, usage["prompt_tokens"], usage["completion_tokens"])
        for budget, reservation in attempt.reservations:
            budget.settle(reservation, cost, record)
        with self._lock:
            self._spent += cost
        return cost, usage

    def finish(self, plan: CallPlan, attempt: Attempt, response: ModelResponse) -> RoutedResponse:
        """Settle an answered completion, record the decision on the response and wrap the result."""
        cost, usage = self.settle(attempt, response)
        decision = answered(plan, attempt)
        attach(response, decision, attempt.model, cost)
        return RoutedResponse(response, decision, attempt.model, cost, usage)

    def real_cost(self, model: str, response: ModelResponse, usage: dict[str, int]) -> float:
        """litellm's cost of the response (at the spec's prices when given), else tokens x prices."""
        from routoo._litellm import litellm

        index = self.pool.index(model)
        spec = self.pool.specs[index]
        custom = (
            {
                "input_cost_per_token": spec.input_cost_per_token,
                "output_cost_per_token": spec.output_cost_per_token,
            }
            if self.pool.priced_by_spec[index]
            else None
        )
        try:
            # Priced as the pool model, as estimated: a streamed response may name it without its provider.
            cost = litellm.completion_cost(
                completion_response=response, model=model, custom_cost_per_token=custom
            )
        except Exception:  # litellm cannot price every response (unknown models, odd usage)
            cost = None
        if cost is None or not math.isfinite(cost) or cost < 0:
            cost = (
                usage["prompt_tokens"] * spec.input_cost_per_token
                + usage["completion_tokens"] * spec.output_cost_per_token
            )
        return float(cost)


def answered(plan: CallPlan, attempt: Attempt) -> RoutingDecision:
    """The plan's decision with the fallbacks that came before ``attempt``."""
    return dataclasses.replace(plan.decision, fallbacks=list(attempt.fallbacks))


def attach(response: Any, decision: RoutingDecision, model: str, cost: float) -> None:
    """Record the decision and cost on the litellm response, for callers holding only it."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, dict):
        hidden = {}
        response._hidden_params = hidden
    hidden["routoo"] = decision.to_dict() | {"answered_by": model, "cost_usd": cost}


def _usage(response: Any) -> dict[str, int]:
    usage = getattr(response, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _release(reservations: list[tuple[Budget, Reservation]]) -> None:
    for budget, reservation in reservations:
        budget.release(reservation)
