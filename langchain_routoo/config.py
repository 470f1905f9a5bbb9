"""The ``configurable`` keys through which a LangChain run adjusts routing.

Any runnable config can carry them, e.g.
``chain.with_config(configurable={"routoo_budget": 0.05, "routoo_tradeoff": 2.0})``;
every ``RoutooChat`` call inside that run, however deeply nested, reads them.

The routing keys are the fields of ``routoo.policy.RoutingPolicy`` with a ``routoo_`` prefix
(``routoo_tradeoff``, ``routoo_quality_floor``, ``routoo_max_cost``, ``routoo_allow``,
``routoo_deny``, ``routoo_max_latency_s``, ``routoo_model``): the policy declares and checks
them. ``routoo_budget`` and ``routoo_budget_mode`` are the run's budget (a ``RunBudget``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from routoo.budget import RunBudget
from routoo.errors import ConfigError
from routoo.policy import RoutingPolicy

BUDGET_KEY = "routoo_budget"
"""A ``routoo.Budget`` (shared by every run that carries it) or a USD limit (one budget per run)."""
BUDGET_MODE_KEY = "routoo_budget_mode"
"""``"hard"`` (default) or ``"soft"``: the mode of a budget given as a USD limit."""
POLICY_KEYS: dict[str, str] = {f"routoo_{name}": name for name in RoutingPolicy.model_fields}
"""Each routing key and the ``RoutingPolicy`` field it sets for the run."""
TRADEOFF_KEY = "routoo_tradeoff"
QUALITY_FLOOR_KEY = "routoo_quality_floor"
MAX_COST_KEY = "routoo_max_cost"


@dataclass(frozen=True)
class RoutingOverrides:
    """What one run's config asks of routing: a policy over the model's own, and a budget."""

    policy: RoutingPolicy = field(default_factory=RoutingPolicy)
    budget: RunBudget | None = None


def routing_overrides(configurable: Mapping[str, Any]) -> RoutingOverrides:
    """Read and check the ``routoo_*`` keys of a config's ``configurable`` mapping."""
    policy = RoutingPolicy()
    for key, name in POLICY_KEYS.items():
        if (value := configurable.get(key)) is not None:
            try:
                policy = policy.merged({name: value})
            except ConfigError as error:
                raise ConfigError(f"configurable[{key!r}]: {error}") from None
    budget = RunBudget.coerce(
        configurable.get(BUDGET_KEY),
        configurable.get(BUDGET_MODE_KEY),
        names=(f"configurable[{BUDGET_KEY!r}]", f"configurable[{BUDGET_MODE_KEY!r}]"),
    )
    return RoutingOverrides(policy, budget)
