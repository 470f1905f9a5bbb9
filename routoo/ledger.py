"""What routed calls cost: the money an attempt holds, and the ledger that settles it.

A ``CallPlan`` is a decided call; an ``Attempt`` is one try of one model, holding its
reservation in every open budget until it is released (the provider refused the call),
settled at the real cost (an answer), or charged in full (cancelled or timed out after
sending: nobody can say what the provider billed). It closes exactly once. The
``Ledger`` settles answers at litellm's cost of the response, with the tokens counted
here (``routoo.tokens``) when the response carries no usage, never as free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from routoo.budget import Budget, CostBasis, Reservation, SpendRecord
from routoo.decision import FallbackAttempt, RoutingDecision
from routoo.faults import FaultPolicy
from routoo.model_info import quiet_litellm

if TYPE_CHECKING:
    from litellm import ModelResponse

    from routoo.decision_log import DecisionLog
    from routoo.output_lengths import ObservedLengths
    from routoo.pool import ModelPool

log = logging.getLogger(__name__)


@dataclass
class RoutedResponse:
    """What litellm returned, who answered, what it really cost and why that model."""

    response: ModelResponse
    decision: RoutingDecision
    model: str
    cost_usd: float
    usage: dict[str, int]
    call_id: str | None = None  # the call's row in the router's decision log


@dataclass(frozen=True)
class CallPlan:
    """Everything one routed call needs once decided; ``started`` and ``deadline`` (or None) are
    ``time.monotonic()`` values; ``call_id`` names the call in the decision log."""

    decision: RoutingDecision
    messages: list[dict[str, Any]]
    kwargs: dict[str, Any]
    budgets: tuple[Budget, ...]
    faults: FaultPolicy = field(default_factory=FaultPolicy)
    deadline: float | None = None
    started: float = field(default_factory=time.monotonic)
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class Attempt:
    """One try of one model: the money it holds in each budget, and the fallbacks before it.

    ``charge_usd`` is what the try costs when nobody can say what the provider billed (it
    was cancelled or timed out after sending): the most it can cost, else its expected
    cost. The reservations close once, by ``release`` or ``settle``, whichever comes first.
    """

    def __init__(
        self,
        model: str,
        reservations: list[tuple[Budget, Reservation]],
        fallbacks: list[FallbackAttempt],
        *,
        charge_usd: float = 0.0,
        timeout_s: float | None = None,
    ) -> None:
        self.model = model
        self.reservations = reservations
        self.fallbacks = fallbacks
        self.charge_usd = charge_usd
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._open = True

    def release(self) -> bool:
        """Give every reservation back (the provider refused the call); False if already closed."""
        if not self._close():
            return False
        for budget, reservation in self.reservations:
            budget.release(reservation)
        return True

    def settle(self, cost: float, record: SpendRecord) -> bool:
        """Replace every reservation by ``cost``; False if already closed."""
        if not self._close():
            return False
        for budget, reservation in self.reservations:
            budget.settle(reservation, cost, record)
        return True

    def _close(self) -> bool:
        with self._lock:
            was_open, self._open = self._open, False
            return was_open


class Ledger:
    """What a router has spent; settles each answered attempt at its real cost and records the
    call in ``log``, the router's decision log (None: none)."""

    def __init__(
        self, pool: ModelPool, observed: ObservedLengths | None = None, log: DecisionLog | None = None
    ) -> None:
        self.pool = pool
        self.observed = observed
        self.log = log
        self._lock = threading.Lock()
        self._spent = 0.0

    @property
    def spent(self) -> float:
        """Total real USD settled."""
        with self._lock:
            return self._spent

    def settle(
        self, plan: CallPlan, attempt: Attempt, response: ModelResponse, usage_reported: bool | None = None
    ) -> tuple[float, dict[str, int], CostBasis]:
        """Charge ``response``'s real cost to the attempt's budgets and the total; cost, usage and basis.

        A response without usage (``usage_reported`` False, or no tokens in it) is counted
        here: the prompt as the router counted it, the answer's text with ``routoo.tokens``.
        """
        usage, basis = measured_usage(plan, attempt.model, response, usage_reported)
        self._observe(plan, attempt.model, usage)
        cost = self.real_cost(attempt.model, response, usage)
        record = SpendRecord(
            attempt.model, cost, usage["prompt_tokens"], usage["completion_tokens"], basis=basis
        )
        if attempt.settle(cost, record):
            self._add(cost)
        return cost, usage, basis

    def _observe(self, plan: CallPlan, model: str, usage: dict[str, int]) -> None:
        """Teach the expected output lengths this answer's length (unless ``max_tokens`` may have cut it)."""
        if self.observed is None or plan.kwargs.get("max_tokens") is not None:
            return
        expected = plan.decision.candidate(model).expected_output_tokens
        if expected is not None:
            self.observed.observe(model, expected, usage["completion_tokens"])

    def charge_reservation(self, attempt: Attempt, why: str) -> float:
        """Charge ``attempt`` its ``charge_usd``: nobody can say what the provider billed."""
        cost = attempt.charge_usd
        record = SpendRecord(attempt.model, cost, 0, 0, basis="reserved")
        if attempt.settle(cost, record):
            self._add(cost)
            log.warning(
                "routoo: a call to %s was charged its reservation, $%.6g: %s", attempt.model, cost, why
            )
        return cost

    def abandon(self, attempt: Attempt) -> None:
        """Close an attempt its call left after handing it to litellm: charged, since the request
        may have reached the provider (a no-op once settled)."""
        self.charge_reservation(attempt, "it was cancelled after it was sent")

    def finish(self, plan: CallPlan, attempt: Attempt, response: ModelResponse) -> RoutedResponse:
        """Settle an answered completion, record the decision on the response and wrap the result."""
        cost, usage, basis = self.settle(plan, attempt, response)
        decision = answered(plan, attempt)
        call_id = self.record(plan, response, decision, attempt.model, cost, usage, basis)
        return RoutedResponse(response, decision, attempt.model, cost, usage, call_id)

    def record(
        self,
        plan: CallPlan,
        response: Any,
        decision: RoutingDecision,
        model: str,
        cost: float,
        usage: dict[str, int],
        basis: CostBasis,
    ) -> str | None:
        """Put a settled call's decision and cost on its response and in the decision log (one row
        per call: completions and streams both end here); its ``call_id`` when logged."""
        call_id = (
            None if self.log is None else self.log.record(plan, decision, model, cost, usage, basis, response)
        )
        attach(response, decision, model, cost, basis, call_id)
        return call_id

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
            # Priced as the pool model, as estimated: a streamed response may name it without its
            # provider. litellm prints a provider list for models it cannot place: kept quiet.
            with quiet_litellm():
                cost = litellm.completion_cost(
                    completion_response=response, model=model, custom_cost_per_token=custom
                )
        except Exception:  # litellm cannot price every response (unknown models, odd usage)
            cost = None
        tokens_cost = (
            usage["prompt_tokens"] * spec.input_cost_per_token
            + usage["completion_tokens"] * spec.output_cost_per_token
        )
        if cost is None or not math.isfinite(cost) or cost < 0 or (cost == 0 and tokens_cost > 0):
            cost = tokens_cost
        return float(cost)

    def _add(self, cost: float) -> None:
        with self._lock:
            self._spent += cost


def measured_usage(
    plan: CallPlan, model: str, response: Any, usage_reported: bool | None = None
) -> tuple[dict[str, int], CostBasis]:
    """The response's token usage and where it came from; counted here when the provider gave none.

    The counted usage is written into the response, so that litellm prices it and callers see it.
    """
    from routoo._litellm import litellm
    from routoo.tokens import count_tokens

    usage = getattr(response, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    answer = answer_text(response)
    if usage_reported is None:
        usage_reported = prompt + completion > 0 and (completion > 0 or not answer)
    if usage_reported:
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }, ("usage")
    prompt = plan.decision.prompt_tokens
    completion = count_tokens(answer, model) if answer else 0
    log.warning(
        "routoo: the answer of %s came without token usage; counted here: %d prompt + %d completion tokens",
        model,
        prompt,
        completion,
    )
    counted = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    with contextlib.suppress(AttributeError, TypeError, ValueError):  # a response that takes no attributes
        response.usage = litellm.Usage(**counted)
    return counted, "counted"


def answer_text(response: Any) -> str:
    """Everything the model wrote in ``response``: its text, reasoning and tool calls."""
    parts: list[str] = []
    for choice in getattr(response, "choices", None) or []:
        message = getattr(choice, "message", None) or getattr(choice, "delta", None)
        if message is None:
            continue
        for name in ("content", "reasoning_content"):
            text = getattr(message, name, None)
            if isinstance(text, str):
                parts.append(text)
        for call in getattr(message, "tool_calls", None) or []:
            function = getattr(call, "function", None)
            parts.append(
                json.dumps(
                    {
                        "name": getattr(function, "name", None),
                        "arguments": getattr(function, "arguments", None),
                    }
                )
            )
    return "".join(parts)


def answered(plan: CallPlan, attempt: Attempt) -> RoutingDecision:
    """The plan's decision with the fallbacks that came before ``attempt``."""
    return dataclasses.replace(plan.decision, fallbacks=list(attempt.fallbacks))


def attach(
    response: Any,
    decision: RoutingDecision,
    model: str,
    cost: float,
    basis: CostBasis,
    call_id: str | None = None,
) -> None:
    """Record the decision and cost (and the decision log's ``call_id``) on the litellm response,
    for callers holding only it."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, dict):
        hidden = {}
        response._hidden_params = hidden
    hidden["routoo"] = decision.to_dict() | {
        "answered_by": model,
        "cost_usd": cost,
        "cost_basis": basis,
        "call_id": call_id,
    }
