"""The call layer: trying a decision's models in order, as the fault policy says.

A ``Caller`` (one per router) tries a ``CallPlan``'s chosen model, then its alternatives,
as its ``FaultPolicy`` says (``routoo.faults``): each attempt first reserves, in every
open budget, the most the call can cost (hard budgets) or its expected cost (soft ones);
models cooling down are skipped while another can serve; a context-window error moves on
to larger windows only; retries wait what the provider asks; no attempt outlives the
call's deadline. Every exit closes the attempt's money (``routoo.ledger``): a provider's
refusal gives it back, a timeout or a cancellation after sending (``asyncio`` timeouts,
``KeyboardInterrupt``) charges it, an answer settles it. Completions and streams share
these steps; only the sending differs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from routoo.budget import Budget, Reservation
from routoo.decision import FallbackAttempt
from routoo.errors import AllModelsFailedError, BudgetExceededError, DeadlineExceededError
from routoo.faults import Cooldowns, classify
from routoo.ledger import Attempt, CallPlan, Ledger, RoutedResponse
from routoo.secrets import redact, secret_texts

if TYPE_CHECKING:
    from litellm import ModelResponse

    from routoo.decision_log import DecisionLog
    from routoo.output_lengths import ObservedLengths
    from routoo.pool import ModelPool

Sent = TypeVar("Sent")
log = logging.getLogger(__name__)
# FallbackAttempt.error_type of models passed over without a request.
SKIPPED = frozenset({"CoolingDown", "ContextWindowTooSmall"})


class Attempts:
    """The tries of one call, in order, each with its reservations made.

    Iterating yields an attempt per try. ``failed`` says what the fault policy makes of an
    error: raise it, wait and retry the same model, or move on to the next. A model that
    no longer fits a hard budget (concurrent calls spent the money) or cools down is
    skipped without counting against ``max_fallbacks``.
    """

    def __init__(self, plan: CallPlan, caller: Caller) -> None:
        self.plan = plan
        self.caller = caller
        self.fallbacks: list[FallbackAttempt] = []
        self.failures = 0
        self.last_error: BaseException | None = None
        self.out_of_time = False
        self._retries = 0
        self._retry = False
        self._window_to_beat: int | None = None  # after a context-window error

    def __iter__(self) -> Iterator[Attempt]:
        for model in self._order():
            if self.failures > self.caller.max_fallbacks:
                return
            if self._window_too_small(model):
                continue
            self._retries = 0
            while True:
                timeout = self._time_left()
                if timeout <= 0:
                    self.out_of_time = True
                    return
                attempt = self._reserve(model, timeout)
                if attempt is None:
                    break
                self._retry = False
                yield attempt
                if not self._retry:
                    break
                self._retries += 1

    def failed(self, attempt: Attempt, error: Exception) -> float:
        """``attempt`` failed with ``error``: close its money, then raise, or return the seconds
        to wait before the next try (of the same model when retrying)."""
        faults = self.plan.faults
        kind = classify(error)
        if kind == "timeout":  # the request went out: what it was billed is unknown
            self.caller.ledger.charge_reservation(attempt, "it timed out after it was sent")
        else:
            attempt.release()
        if kind is not None:
            self.caller.cooldowns.failed(attempt.model, kind, faults)
        if faults.action(kind) == "raise":
            raise error
        self._record(attempt.model, error)
        status = getattr(error, "status_code", None)
        if faults.action(kind) == "retry" and self._retries < faults.max_retries:
            wait = faults.retry_wait(error, self._retries)
            if wait is not None and wait < self._time_left():
                self._retry = True
                log.info(
                    "routoo: %s failed (%s, status %s); retry %d of %d in %.2gs",
                    attempt.model,
                    kind,
                    status,
                    self._retries + 1,
                    faults.max_retries,
                    wait,
                )
                return wait
        if kind == "context_window":
            self._window_to_beat = self._window(attempt.model)
        self.failures += 1
        log.warning("routoo: %s failed (%s, status %s); trying the next model", attempt.model, kind, status)
        return 0.0

    def exhausted(self) -> Exception:
        """The error to raise once no model is left to try."""
        tried = "; ".join(f"{f.model}: {f.error_type}" for f in self.fallbacks)
        if self.out_of_time:
            error: Exception = DeadlineExceededError(
                f"the routed call ran out of time before a model answered ({tried or 'nothing tried'})"
            )
        elif self.failures == 0 and isinstance(self.last_error, BudgetExceededError):
            return self.last_error
        else:
            tries = sum(f.error_type not in SKIPPED for f in self.fallbacks)
            error = AllModelsFailedError(f"all {tries} attempted models failed ({tried})")
        error.__cause__ = self.last_error
        return error

    # ------------------------------------------------------------------ helpers
    def _order(self) -> list[str]:
        """The decision's models, those cooling down left out while another one is ready."""
        decision = self.plan.decision
        order = [decision.model, *decision.alternatives]
        cooling = {model: self.caller.cooldowns.remaining_s(model) for model in order}
        ready = [model for model in order if cooling[model] == 0]
        if not ready:  # every model cools down: a call is better tried than refused
            return order
        for model in order:
            if cooling[model]:
                message = f"skipped: cools down {cooling[model]:.3g}s more after failures in a row"
                self.fallbacks.append(FallbackAttempt(model, "CoolingDown", message))
                log.info("routoo: %s %s", model, message)
        return ready

    def _window(self, model: str) -> int | None:
        pool = self.caller.ledger.pool
        return pool.specs[pool.index(model)].max_input_tokens

    def _window_too_small(self, model: str) -> bool:
        """After a context-window error, only models with a larger (or unknown) window are tried."""
        window = self._window(model)
        if self._window_to_beat is None or window is None or window > self._window_to_beat:
            return False
        message = f"skipped: its {window}-token context is no larger than the one that overflowed"
        self.fallbacks.append(FallbackAttempt(model, "ContextWindowTooSmall", message))
        return True

    def _time_left(self) -> float:
        """Seconds this try may take: the attempt timeout, within what is left of the deadline."""
        limit = self.plan.faults.attempt_timeout_s
        if self.plan.deadline is None:
            return limit
        return min(limit, self.plan.deadline - time.monotonic())

    def _reserve(self, model: str, timeout: float) -> Attempt | None:
        """An attempt with its money set aside in every budget, or None (recorded) when one refuses."""
        candidate = self.plan.decision.candidate(model)
        bound = candidate.cost_bound
        reservations: list[tuple[Budget, Reservation]] = []
        try:
            for budget in self.plan.budgets:
                if budget.mode == "soft":
                    amount, why = candidate.estimated_cost, f"{model}: its expected cost"
                elif bound is None:
                    raise BudgetExceededError(
                        f"budget {budget.name!r} cannot cap a call to {model}: {candidate.bound_basis}"
                    )
                else:
                    amount, why = bound, f"{model}: {candidate.bound_basis}"
                reservations.append((budget, budget.reserve(amount, why)))
        except BudgetExceededError as error:
            for budget, reservation in reservations:
                budget.release(reservation)
            self._record(model, error)
            return None
        charge = bound if bound is not None else candidate.estimated_cost
        return Attempt(model, reservations, list(self.fallbacks), charge_usd=charge, timeout_s=timeout)

    def _record(self, model: str, error: BaseException) -> None:
        self.last_error = error
        # A provider may echo the key it was sent; the decision (and so logs, responses) must not.
        message = redact(str(error), self.caller.secrets | secret_texts(self.plan.kwargs))
        self.fallbacks.append(FallbackAttempt(model, type(error).__name__, message))


class Caller:
    """A router's way of calling: its ledger, its cooldowns, how many models a call may fall back
    to, and the secret texts (``routoo.secrets.secret_texts``) no error message may keep."""

    def __init__(
        self,
        pool: ModelPool,
        max_fallbacks: int,
        cooldowns: Cooldowns | None = None,
        observed: ObservedLengths | None = None,
        log: DecisionLog | None = None,
        secrets: frozenset[str] = frozenset(),
    ) -> None:
        self.ledger = Ledger(pool, observed, log)
        self.max_fallbacks = max_fallbacks
        self.cooldowns = Cooldowns() if cooldowns is None else cooldowns
        self.secrets = secrets  # the router's and its models' secret texts, kept out of error messages

    def run(self, plan: CallPlan, send: Callable[[Attempt], Sent]) -> tuple[Attempt, Sent]:
        """``send`` each attempt in turn until one succeeds; the attempt that answered and its result."""
        attempts = Attempts(plan, self)
        for attempt in attempts:
            try:
                result = send(attempt)
            except Exception as error:
                wait = attempts.failed(attempt, error)
                if wait:
                    time.sleep(wait)
                continue
            except BaseException:  # KeyboardInterrupt, SystemExit: the provider may have billed
                self.ledger.abandon(attempt)
                raise
            self.cooldowns.succeeded(attempt.model)
            return attempt, result
        raise attempts.exhausted()

    async def arun(self, plan: CallPlan, send: Callable[[Attempt], Awaitable[Sent]]) -> tuple[Attempt, Sent]:
        """Async ``run``; each attempt is also cut off at its timeout here, not only by its client."""
        attempts = Attempts(plan, self)
        for attempt in attempts:
            try:
                async with asyncio.timeout(attempt.timeout_s):
                    result = await send(attempt)
            except Exception as error:
                wait = attempts.failed(attempt, error)
                if wait:
                    await asyncio.sleep(wait)
                continue
            except BaseException:  # cancelled (wait_for, task.cancel): the provider may have billed
                self.ledger.abandon(attempt)
                raise
            self.cooldowns.succeeded(attempt.model)
            return attempt, result
        raise attempts.exhausted()

    def complete(self, plan: CallPlan, send: Callable[[Attempt], ModelResponse]) -> RoutedResponse:
        """``run`` a completion and settle it."""
        attempt, response = self.run(plan, send)
        return self._finish(plan, attempt, response)

    async def acomplete(
        self, plan: CallPlan, send: Callable[[Attempt], Awaitable[ModelResponse]]
    ) -> RoutedResponse:
        """Async ``complete``."""
        attempt, response = await self.arun(plan, send)
        return self._finish(plan, attempt, response)

    def _finish(self, plan: CallPlan, attempt: Attempt, response: ModelResponse) -> RoutedResponse:
        try:
            return self.ledger.finish(plan, attempt, response)
        except BaseException:
            self.ledger.abandon(attempt)  # a no-op once settled
            raise
