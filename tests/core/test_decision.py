"""The routing decision as a pure function: no predictor, no litellm, no provider."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from routoo.budget import Budget, SpendRecord
from routoo.decision import CostBounds, cost_bounds, decide, serving_reasons
from routoo.errors import BudgetExceededError, NoAdmissibleModelError
from routoo.policy import RoutingPolicy
from routoo.pool import ModelSpec

MODELS = ["cheap", "middle", "strong"]
QUALITY = np.array([0.50, 0.70, 0.90])
COST = np.array([0.001, 0.004, 0.020])


def test_decision_ranks_every_candidate_and_explains_exclusions() -> None:
    reasons = [None, "does not support vision (the call has images)", None]
    decision = decide(
        MODELS, QUALITY, COST, reasons, RoutingPolicy(tradeoff=1.0), budgets=(), prompt_tokens=12
    )
    # 0.9 - 0.02 beats 0.5 - 0.001; the middle model cannot serve the call.
    assert (decision.model, decision.rule, decision.tradeoff) == ("strong", "tradeoff", 1.0)
    assert decision.alternatives == ["cheap"]
    assert [c.model for c in decision.candidates] == ["strong", "cheap", "middle"]
    assert not decision.candidate("middle").admissible
    assert decision.candidate("middle").reason == reasons[1]
    assert decision.prompt_tokens == 12


def test_a_hard_budget_drops_what_it_cannot_pay_and_says_so() -> None:
    budget = Budget(0.005, mode="hard", name="tight")
    decision = decide(
        MODELS, QUALITY, COST, [None] * 3, RoutingPolicy(tradeoff=1.0), budgets=(budget,), prompt_tokens=1
    )
    assert decision.model == "middle" and decision.rule == "budget"
    assert "left in 'tight'" in (decision.candidate("strong").reason or "")
    with pytest.raises(BudgetExceededError, match="tight"):
        decide(
            MODELS,
            QUALITY,
            COST,
            [None] * 3,
            RoutingPolicy(),
            budgets=(Budget(0.0001, mode="hard", name="tight"),),
            prompt_tokens=1,
        )


def test_no_servable_model_names_each_reason() -> None:
    with pytest.raises(NoAdmissibleModelError, match=r"cheap: a.*middle: b.*strong: c"):
        decide(MODELS, QUALITY, COST, ["a", "b", "c"], RoutingPolicy(), budgets=(), prompt_tokens=1)


def test_serving_reasons_check_capabilities_context_and_lists() -> None:
    specs = [
        ModelSpec(name="a", supports_function_calling=False, max_input_tokens=100),
        ModelSpec(name="b", supports_function_calling=True, max_input_tokens=10),
        ModelSpec(name="c", supports_function_calling=True, max_input_tokens=100),
    ]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    messages = [{"role": "user", "content": "hi"}]
    reasons = serving_reasons(specs, RoutingPolicy(deny=["c"]), messages, tools, None, prompt_tokens=50)
    assert "function calling" in (reasons[0] or "")
    assert "10-token context" in (reasons[1] or "")
    assert reasons[2] == "in the deny list"


def test_deciding_loads_no_litellm() -> None:
    code = (
        "import sys, numpy as np\n"
        "from routoo.decision import decide\n"
        "from routoo.policy import RoutingPolicy\n"
        "decide(['a', 'b'], np.array([0.1, 0.9]), np.array([1.0, 2.0]), [None, None],"
        " RoutingPolicy(), budgets=(), prompt_tokens=1)\n"
        "print('litellm' in sys.modules)\n"
    )
    printed = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert printed.strip() == "False"


def choose(policy: RoutingPolicy, budgets: tuple[Budget, ...] = (), bounds: CostBounds | None = None):
    """The decision over MODELS, every one servable."""
    return decide(MODELS, QUALITY, COST, [None] * 3, policy, budgets=budgets, prompt_tokens=1, bounds=bounds)


def test_cost_bounds_take_max_tokens_else_the_output_limit_else_the_window() -> None:
    bounds = cost_bounds(
        100,
        None,
        max_output_tokens=np.array([50.0, np.nan, np.nan]),
        context_windows=np.array([np.nan, 1000.0, np.nan]),
        input_prices=np.array([1.0, 1.0, 1.0]),
        output_prices=np.array([2.0, 2.0, 2.0]),
        expected=np.array([10.0, 10.0, 10.0]),
    )
    assert bounds.usd.tolist() == [100 + 2 * 50, 100 + 2 * 900, np.inf]
    assert bounds.basis[0] == "its max_output_tokens" and "context window" in bounds.basis[1]
    assert "neither" in bounds.basis[2] and "no bound" in bounds.describe(2, 100)
    capped = cost_bounds(
        100,
        20,
        max_output_tokens=np.array([50.0, 10.0, np.nan]),
        context_windows=np.array([np.nan] * 3),
        input_prices=np.ones(3),
        output_prices=np.ones(3),
        expected=np.zeros(3),
    )
    assert capped.usd.tolist() == [120, 110, 120]  # the smaller of max_tokens and the model's limit
    assert capped.basis == ("max_tokens", "its max_output_tokens", "max_tokens")


def test_a_hard_budget_admits_by_the_bound_and_ranks_by_the_expected_cost() -> None:
    bounds = CostBounds(np.array([0.002, 0.009, 0.050]), np.array([100.0, 100.0, 100.0]), ("x",) * 3)
    budget = Budget(0.030, name="tight")
    policy = RoutingPolicy(tradeoff=1.0)
    decision = choose(policy, (budget,), bounds)
    # strong's expected $0.02 fits the $0.03 left, but it could cost $0.05: it is not admitted.
    assert decision.model == "middle" and decision.rule == "budget"
    assert "could cost up to $0.05" in decision.candidate("strong").reason
    assert decision.candidate("middle").cost_bound == 0.009
    assert decision.candidate("middle").estimated_cost == 0.004  # the expected cost still ranks


def test_an_unbounded_model_is_not_admissible_under_a_hard_budget() -> None:
    bounds = CostBounds(np.array([np.inf, np.inf, np.inf]), np.zeros(3), ("unknown",) * 3)
    with pytest.raises(BudgetExceededError, match="can be bounded"):
        choose(RoutingPolicy(), (Budget(1.0),), bounds)
    free = choose(RoutingPolicy(), (), bounds)
    assert free.candidate("cheap").cost_bound is None  # no hard budget: nothing to reserve


@pytest.mark.parametrize(
    ("policy", "unsteered"),
    [(RoutingPolicy(quality_floor=0.85), "strong"), (RoutingPolicy(max_cost=0.05), "strong")],
)
def test_a_soft_budget_under_pressure_steers_floor_and_max_cost(
    policy: RoutingPolicy, unsteered: str
) -> None:
    soft = Budget(1.0, mode="soft")
    assert choose(policy, (soft,)).model == unsteered
    soft.settle(soft.reserve(0.75), 0.75, SpendRecord("strong", 0.75, 1, 1))  # pressure 4
    steered = choose(policy, (soft,))
    assert steered.model != unsteered and steered.rule == "budget"
    pinned = choose(policy.merged({"model": "strong"}), (soft,))
    assert pinned.model == "strong"  # a pinned call is not steered away


def test_a_budget_listed_twice_is_counted_once() -> None:
    budget = Budget(0.005, name="twice")
    decision = choose(RoutingPolicy(tradeoff=1.0), (budget, budget))
    assert decision.model == "middle"
