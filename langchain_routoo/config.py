"""The ``configurable`` keys through which a LangChain run adjusts routing.

Any runnable config can carry them, e.g.
``chain.with_config(configurable={"routoo_budget": 0.05, "routoo_tradeoff": 2.0})``;
every ``RoutooChat`` call inside that run, however deeply nested, reads them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from routoo.budget import Budget, BudgetMode
from routoo.errors import ConfigError

BUDGET_KEY = "routoo_budget"
"""A ``routoo.Budget`` (shared by every run that carries it) or a USD limit (one budget per run)."""
BUDGET_MODE_KEY = "routoo_budget_mode"
"""``"hard"`` (default) or ``"soft"``: the mode of a budget given as a USD limit."""
TRADEOFF_KEY = "routoo_tradeoff"
QUALITY_FLOOR_KEY = "routoo_quality_floor"
MAX_COST_KEY = "routoo_max_cost"


@dataclass(frozen=True)
class RoutingOverrides:
    """What one run's config asks of routing; ``None`` leaves the model's own setting."""

    tradeoff: float | None = None
    quality_floor: float | None = None
    max_cost: float | None = None
    budget: Budget | float | None = None
    budget_mode: BudgetMode = "hard"


def routing_overrides(configurable: Mapping[str, Any]) -> RoutingOverrides:
    """Read and check the ``routoo_*`` keys of a config's ``configurable`` mapping."""
    budget = configurable.get(BUDGET_KEY)
    if budget is not None and not isinstance(budget, Budget):
        budget = _number(BUDGET_KEY, budget)
        if budget <= 0:
            raise ConfigError(f"configurable[{BUDGET_KEY!r}] must be a positive USD limit, got {budget}")
    mode = configurable.get(BUDGET_MODE_KEY, "hard")
    if mode not in get_args(BudgetMode):
        raise ConfigError(f"configurable[{BUDGET_MODE_KEY!r}] must be 'hard' or 'soft', got {mode!r}")
    if isinstance(budget, Budget) and BUDGET_MODE_KEY in configurable:
        raise ConfigError(
            f"configurable[{BUDGET_MODE_KEY!r}] applies to a USD limit; "
            f"the Budget given as {BUDGET_KEY!r} already has its mode"
        )
    return RoutingOverrides(
        tradeoff=_optional_number(configurable, TRADEOFF_KEY),
        quality_floor=_optional_number(configurable, QUALITY_FLOOR_KEY),
        max_cost=_optional_number(configurable, MAX_COST_KEY),
        budget=budget,
        budget_mode=mode,
    )


def _optional_number(configurable: Mapping[str, Any], key: str) -> float | None:
    value = configurable.get(key)
    return None if value is None else _number(key, value)


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"configurable[{key!r}] must be a finite number, got {value!r}")
    return float(value)
