"""The routing decision as a pure function: no predictor, no litellm, no provider."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from routoo.budget import Budget
from routoo.decision import decide, serving_reasons
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
