"""Spend ledgers that cap or steer what routed calls cost, and the scopes that open them.

A ``Budget`` in ``"hard"`` mode never lets reserved plus spent money pass its limit: the
router reserves each call's worst-case cost (its prompt plus ``max_tokens``, or the
model's maximum output, at the model's prices) before calling, and settles the real cost
after, so concurrent calls cannot overspend it. The one exception: an answer billed
above its bound (see docs/router.md, *Budgets*). In ``"soft"`` mode nothing is refused;
instead ``tradeoff_pressure()`` steers the router toward cheaper models as money runs out
faster than calls do.

Budgets apply to the calls made inside ``with budget_scope(...)``; scopes nest, and
contextvars carry them into asyncio tasks and ``asyncio.to_thread`` calls started inside
the scope. A plain thread pool does not copy the context: ``carry_budgets(function)``
binds a function to the budgets open where it is wrapped, for ``pool.map`` or
``pool.submit``. Per-run budgets (``RunBudget``, ``RunBudgets``) give every run of a
framework (a LangChain chain or agent run, a LlamaIndex query) its own budget; the
adapters track when runs start and end.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, ParamSpec, TypeVar, get_args

from routoo.errors import BudgetExceededError, ConfigError, RoutooError
from routoo.policy import check_non_negative

BudgetMode = Literal["hard", "soft"]
# How a call's cost was known: the provider's usage, tokens counted here (the response had
# no usage), or the reservation itself (the call was cancelled or cut short after sending).
CostBasis = Literal["usage", "counted", "reserved"]
P = ParamSpec("P")
R = TypeVar("R")
# Pressure once a soft budget is used up: large enough to make any model's cost dominate.
MAX_TRADEOFF_PRESSURE = 1e6


@dataclass(frozen=True)
class SpendRecord:
    """The real cost of one finished call."""

    model: str
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    time: float = field(default_factory=time.time)
    basis: CostBasis = "usage"


@dataclass(frozen=True)
class Reservation:
    """Money set aside in one budget for one call in flight, and why that much."""

    budget_name: str
    estimate_usd: float
    id: int
    why: str = ""


_reservation_ids = itertools.count()


class Budget:
    """A thread- and asyncio-safe spend ledger with a USD limit.

    ``expected_calls`` (soft mode) is how many calls the budget should last; without
    it, soft pressure grows with the share of the limit already used. ``spent_usd`` is what
    was spent before this object existed (a budget restored from a durable ledger).
    """

    def __init__(
        self,
        limit_usd: float,
        mode: BudgetMode = "hard",
        expected_calls: int | None = None,
        name: str | None = None,
        spent_usd: float = 0.0,
    ) -> None:
        self.limit_usd = check_non_negative(limit_usd, "limit_usd", optional=False)
        if mode not in ("hard", "soft"):
            raise ConfigError(f"budget mode must be 'hard' or 'soft', not {mode!r}")
        if expected_calls is not None and (
            isinstance(expected_calls, bool) or not isinstance(expected_calls, int) or expected_calls < 1
        ):
            raise ConfigError(f"expected_calls must be a positive integer, not {expected_calls!r}")
        self.mode: BudgetMode = mode
        self.expected_calls = expected_calls
        self.name = name or f"${self.limit_usd:g} {mode} budget"
        self._lock = threading.Lock()  # held only for arithmetic, so asyncio code may take it too
        self._spent = check_non_negative(spent_usd, "spent_usd", optional=False)
        self._open: dict[int, float] = {}
        self._records: list[SpendRecord] = []

    def __repr__(self) -> str:
        return (
            f"Budget(limit_usd={self.limit_usd:g}, mode={self.mode!r}, spent={self.spent:g}, "
            f"reserved={self.reserved:g}, name={self.name!r})"
        )

    @property
    def spent(self) -> float:
        """USD settled so far."""
        with self._lock:
            return self._spent

    @property
    def reserved(self) -> float:
        """USD set aside for calls in flight."""
        with self._lock:
            return sum(self._open.values())

    @property
    def remaining(self) -> float:
        """USD neither spent nor reserved (never below zero)."""
        with self._lock:
            return max(0.0, self.limit_usd - self._spent - sum(self._open.values()))

    @property
    def records(self) -> list[SpendRecord]:
        """One record per settled call, oldest first."""
        with self._lock:
            return list(self._records)

    def reserve(self, estimate_usd: float, why: str = "") -> Reservation:
        """Set ``estimate_usd`` aside; in hard mode ``BudgetExceededError`` if it does not fit.

        ``why`` says how the amount was worked out, for the error and the reservation.
        """
        estimate = check_non_negative(estimate_usd, "estimate_usd", optional=False)
        with self._lock:
            reserved = sum(self._open.values())
            if self.mode == "hard" and self._spent + reserved + estimate > self.limit_usd:
                raise BudgetExceededError(
                    f"budget {self.name!r}: ${self._spent:.6g} spent and ${reserved:.6g} reserved of "
                    f"${self.limit_usd:.6g}; a call reserving ${estimate:.6g}"
                    + (f" ({why})" if why else "")
                    + " does not fit"
                )
            reservation = Reservation(self.name, estimate, next(_reservation_ids), why)
            self._open[reservation.id] = estimate
            return reservation

    def settle(self, reservation: Reservation, actual_usd: float, record: SpendRecord) -> None:
        """Replace ``reservation`` by the call's real cost and keep its record.

        The real cost is charged in full even above the reservation (an answer billed above
        its bound); a hard budget then refuses every call until money is left again.
        """
        actual = check_non_negative(actual_usd, "actual_usd", optional=False)
        with self._lock:
            if self._open.pop(reservation.id, None) is None:
                raise RoutooError(f"budget {self.name!r}: reservation {reservation.id} is not open here")
            self._spent += actual
            self._records.append(record)

    def charge(self, actual_usd: float, record: SpendRecord) -> None:
        """Add a cost paid under a reservation held elsewhere (another process's budget for the
        same money): it counts as spent here too, even above the limit."""
        actual = check_non_negative(actual_usd, "actual_usd", optional=False)
        with self._lock:
            self._spent += actual
            self._records.append(record)

    def release(self, reservation: Reservation) -> None:
        """Give a failed call's reservation back (a no-op if it is no longer open)."""
        with self._lock:
            self._open.pop(reservation.id, None)

    def tradeoff_pressure(self) -> float:
        """How much to multiply the router's lambda by; 1 in hard mode or while on pace.

        With ``expected_calls``: (average cost per call so far) / (what is left per
        expected remaining call), at least 1, so the budget lasts the expected calls.
        Without: limit / what is left, so the pressure doubles at half the budget.
        Capped at ``MAX_TRADEOFF_PRESSURE`` once nothing is left.
        """
        if self.mode == "hard":
            return 1.0
        with self._lock:
            left = self.limit_usd - self._spent - sum(self._open.values())
            calls = len(self._records)
            spent = self._spent
        if left <= 0:
            return MAX_TRADEOFF_PRESSURE
        if self.expected_calls is None:
            pressure = self.limit_usd / left
        elif calls == 0:
            pressure = 1.0
        else:
            pace = spent / calls
            allowance = left / max(self.expected_calls - calls, 1)
            pressure = pace / allowance
        return min(max(1.0, pressure), MAX_TRADEOFF_PRESSURE)


_open_budgets: contextvars.ContextVar[tuple[Budget, ...]] = contextvars.ContextVar(
    "routoo_open_budgets", default=()
)


@contextmanager
def budget_scope(
    budget: Budget | float | None,
    mode: BudgetMode | None = None,
    expected_calls: int | None = None,
    name: str | None = None,
) -> Iterator[Budget | None]:
    """Apply ``budget`` (or a new ``Budget(limit, mode or "hard", ...)``) to the calls made inside.

    A ``Budget`` already open here stays open once, so its calls are charged to it once;
    None opens nothing.
    """
    if budget is None or any(open_budget is budget for open_budget in _open_budgets.get()):
        yield budget
        return
    if isinstance(budget, Budget):
        if (mode, expected_calls, name) != (None, None, None):
            raise ConfigError("budget_scope: give settings to a new limit, not to an existing Budget")
    else:
        budget = Budget(budget, mode=mode or "hard", expected_calls=expected_calls, name=name)
    token = _open_budgets.set((*_open_budgets.get(), budget))
    try:
        yield budget
    finally:
        _open_budgets.reset(token)


def open_budgets() -> tuple[Budget, ...]:
    """The budgets open in this context, outermost first."""
    return _open_budgets.get()


def carry_budgets(function: Callable[P, R]) -> Callable[P, R]:
    """``function``, bound to the budgets open here, for threads that do not copy this context.

    A ``ThreadPoolExecutor`` runs its tasks in the context of its worker threads, where no
    scope is open: ``pool.map(carry_budgets(router.completion), prompts)`` charges those
    calls to the budgets open where ``carry_budgets`` was called (scopes the task opens
    itself nest inside them). Each call sets only its own thread's context, so one wrapped
    function may run in many threads at once.
    """
    carried = open_budgets()

    @functools.wraps(function)
    def with_budgets(*args: P.args, **kwargs: P.kwargs) -> R:
        here = _open_budgets.get()
        token = _open_budgets.set((*carried, *(b for b in here if all(b is not c for c in carried))))
        try:
            return function(*args, **kwargs)
        finally:
            _open_budgets.reset(token)

    return with_budgets


# ------------------------------------------------------------------ per-run budgets
@dataclass(frozen=True)
class RunBudget:
    """A per-run budget setting: one ``Budget`` shared by every run, or a USD limit each run gets afresh.

    A run is what the framework calls one (a LangChain chain or agent run; a LlamaIndex
    query, chat turn or agent run): every model call inside it is charged to its budget.
    """

    budget: Budget | float
    mode: BudgetMode = "hard"

    @classmethod
    def coerce(
        cls, budget: object, mode: object = None, *, names: tuple[str, str] = ("budget", "budget_mode")
    ) -> RunBudget | None:
        """The setting given as ``budget`` (None: no budget) and ``mode`` (None: hard), checked.

        ``names`` are the two settings as the caller knows them, for the ``ConfigError``.
        """
        budget_name, mode_name = names
        if isinstance(budget, Budget):
            if mode is not None:
                raise ConfigError(
                    f"{mode_name} applies to a USD limit; "
                    f"the Budget given as {budget_name} already has its mode"
                )
            return cls(budget, budget.mode)
        if mode is not None and mode not in get_args(BudgetMode):
            raise ConfigError(f"{mode_name} must be 'hard' or 'soft', got {mode!r}")
        if budget is None:
            return None
        if isinstance(budget, bool) or not isinstance(budget, int | float) or not math.isfinite(budget):
            raise ConfigError(f"{budget_name} must be a Budget or a finite number of USD, got {budget!r}")
        if budget <= 0:
            raise ConfigError(f"{budget_name} must be a positive USD limit, got {budget}")
        return cls(float(budget), mode or "hard")


class RunBudgets:
    """The budgets of the runs in progress: one per outermost run, made by its first call,
    dropped when the run ends (the adapter's run tracker calls ``end``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # names the budgets: "<kind> run <id>"
        self._budgets: dict[Hashable, Budget] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._budgets)

    def budget_for(self, setting: RunBudget, run_id: Hashable | None) -> Budget:
        """The budget of run ``run_id`` under ``setting``; a call outside any run (None) gets its own."""
        if isinstance(setting.budget, Budget):
            return setting.budget
        if run_id is None:
            return Budget(setting.budget, mode=setting.mode, name=f"{self.kind} call")
        with self._lock:
            budget = self._budgets.get(run_id)
            if budget is None:
                budget = Budget(setting.budget, mode=setting.mode, name=f"{self.kind} run {run_id}")
                self._budgets[run_id] = budget
        return budget

    def end(self, run_id: Hashable) -> None:
        """Forget the budget of a run that ended (a no-op for runs that had none)."""
        with self._lock:
            self._budgets.pop(run_id, None)
