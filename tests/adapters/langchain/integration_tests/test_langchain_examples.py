"""The LangChain examples run offline, end to end.

Each example's ``main`` is called with the scripted pool and the planted predictor saved
to disk. Run as scripts they use Routoo's default predictor; that run is tested too once
the default predictor is installed. Which model the default predictor picks for a prompt
is its own business (tested with the predictor); here each run must answer from the
example's pool, price what it used, keep its budgets and ledgers straight, and call tools.
"""

from __future__ import annotations

import importlib.util
import math
import operator
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import POOL, POOL_NAMES, REPO_ROOT, saved_predictor
from langchain_core.messages import AIMessage, ToolMessage

from routoo.predictors import registry
from routoo.predictors.base import CONFIG_FILE
from routoo.testing import SCRIPTED_MODELS, register_scripted_provider

EXAMPLES = REPO_ROOT / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def predictor_dir(planted_dataset, tmp_path_factory) -> Path:
    register_scripted_provider()
    return saved_predictor(planted_dataset, tmp_path_factory)


def test_swap_chatopenai_answers_through_the_routed_models(predictor_dir: Path) -> None:
    results = load_example("langchain_swap_chatopenai").main(models=POOL, predictor=predictor_dir)
    assert len(results) == 2
    for result in results:
        assert result["model"] in POOL_NAMES and result["cost_usd"] > 0
        assert result["answer"].startswith(f"{result['model']} answers")


def test_agent_tools_spends_within_its_budget_and_is_stopped_by_a_spent_one(predictor_dir: Path) -> None:
    outcome = load_example("langchain_agent_tools").main(models=POOL, predictor=predictor_dir)
    messages, budget = outcome["messages"], outcome["budget"]
    assert messages[1].tool_calls and not messages[-1].tool_calls  # a tool call, then an answer
    assert budget.spent == pytest.approx(sum(m.response_metadata.get("cost_usd", 0) for m in messages))
    assert "almost spent" in outcome["stopped"]


def test_chain_budget_spends_per_run_shared_and_soft_budgets(predictor_dir: Path) -> None:
    outcome = load_example("langchain_chain_budget").main(models=POOL, predictor=predictor_dir)
    assert outcome["one_run"] > 0
    assert outcome["shared_runs"] >= 1 and outcome["shared"].spent <= outcome["shared"].limit_usd
    assert outcome["soft"].spent > 0 and set(outcome["tokens"]) <= set(POOL_NAMES)


# ------------------------------------------------------- run as shipped: the default predictor
def check_swap_chatopenai(example: ModuleType, results: list[dict[str, Any]], pool: set[str]) -> None:
    assert [result["question"] for result in results] == example.QUESTIONS
    for result in results:
        model, decision, usage = result["model"], result["decision"], result["usage"]
        assert model in pool and result["answer"].startswith(f"{model} answers")
        input_price, output_price = scripted_prices(model)
        priced = usage["input_tokens"] * input_price + usage["output_tokens"] * output_price
        assert result["cost_usd"] == pytest.approx(priced) and result["cost_usd"] > 0
        # The decision that routed it: every pool model scored, the winner first and best by the rule.
        assert decision["model"] == model and decision["fallbacks"] == []
        assert result["rule"] == decision["rule"] == "tradeoff"
        candidates = decision["candidates"]
        assert {c["model"] for c in candidates} == pool and candidates[0]["model"] == model
        assert decision["alternatives"] == [c["model"] for c in candidates[1:]]
        for candidate in candidates:
            assert candidate["admissible"] and 0 <= candidate["predicted_quality"] <= 1
            assert 0 < candidate["estimated_cost"] < math.inf
        tradeoff = decision["tradeoff"]
        assert 0 < tradeoff < math.inf
        scores = [c["predicted_quality"] - tradeoff * c["estimated_cost"] for c in candidates]
        assert scores[0] >= max(scores) - 1e-9


def check_agent_tools(example: ModuleType, outcome: dict[str, Any], pool: set[str]) -> None:
    messages, budget = outcome["messages"], outcome["budget"]
    replies = [m for m in messages if isinstance(m, AIMessage)]
    calls = [call for reply in replies for call in reply.tool_calls]
    results = [m for m in messages if isinstance(m, ToolMessage)]
    # It asked for a tool, the loop ran it on those arguments, and the model answered from the result.
    assert replies[0].tool_calls and len(results) == len(calls)
    arithmetic = {"add": operator.add, "multiply": operator.mul}
    for call, result in zip(calls, results, strict=True):
        assert result.tool_call_id == call["id"]
        assert float(result.content) == arithmetic[call["name"]](call["args"]["a"], call["args"]["b"])
    assert messages[-1] is replies[-1] and not replies[-1].tool_calls
    assert results[-1].content in replies[-1].content
    # Every reply is a priced call from the pool, and the budget's ledger holds exactly those calls.
    assert {reply.response_metadata["model_name"] for reply in replies} <= pool
    costs = [reply.response_metadata["cost_usd"] for reply in replies]
    assert all(cost > 0 for cost in costs)
    assert [record.model for record in budget.records] == [
        reply.response_metadata["model_name"] for reply in replies
    ]
    assert budget.spent == pytest.approx(sum(costs)) and budget.spent <= budget.limit_usd
    # The second run was refused before anything was sent: the model spent nothing more.
    assert "almost spent" in outcome["stopped"]
    assert outcome["spent"] == pytest.approx(budget.spent)


def check_chain_budget(example: ModuleType, outcome: dict[str, Any], pool: set[str]) -> None:
    one_run, runs = outcome["one_run"], outcome["shared_runs"]
    shared, soft = outcome["shared"], outcome["soft"]
    assert 0 < one_run <= 0.01  # within its per-run budget
    # The shared hard budget: spent no more than its limit, on whole runs (a refused run may have
    # finished its first call), and it either lasted all ten runs or stopped the chain.
    assert shared.limit_usd == pytest.approx(5 * one_run)
    assert 1 <= runs <= 10 and shared.spent <= shared.limit_usd + 1e-12
    assert 2 * runs <= len(shared.records) <= 2 * runs + 1
    assert shared.spent == pytest.approx(sum(record.cost_usd for record in shared.records))
    assert {record.model for record in shared.records} <= pool
    if runs < 10:
        assert "'shared'" in outcome["stopped"]
    else:
        assert outcome["stopped"] is None
    # The soft budget refused nothing (four runs of two calls), and leaning to cheaper models never
    # costs more than the same runs unbudgeted; LangChain's token counts match its ledger.
    assert len(soft.records) == 8 and soft.records[0].cost_usd > 0
    assert soft.spent == pytest.approx(sum(record.cost_usd for record in soft.records))
    assert soft.spent <= 4 * one_run + 1e-12
    tokens: dict[str, int] = {}
    for record in soft.records:
        tokens[record.model] = tokens.get(record.model, 0) + record.prompt_tokens + record.completion_tokens
    assert outcome["tokens"] == tokens and set(tokens) <= pool


DEFAULT_PREDICTOR_CHECKS: dict[str, Callable[[ModuleType, Any, set[str]], None]] = {
    "langchain_swap_chatopenai": check_swap_chatopenai,
    "langchain_agent_tools": check_agent_tools,
    "langchain_chain_budget": check_chain_budget,
}


def scripted_prices(model: str) -> tuple[float, float]:
    info = SCRIPTED_MODELS[model.removeprefix("scripted/")]
    return info["input_cost_per_token"], info["output_cost_per_token"]


@pytest.mark.parametrize("name", list(DEFAULT_PREDICTOR_CHECKS))
def test_examples_run_offline_with_the_default_predictor(name: str, monkeypatch) -> None:
    if not (registry.DEFAULT_PREDICTOR_DIR / CONFIG_FILE).is_file():
        pytest.skip("the default predictor is not installed")
    # As shipped: the offline pool and the default predictor, whatever the environment says.
    monkeypatch.delenv("ROUTOO_EXAMPLE_ONLINE", raising=False)
    monkeypatch.delenv("ROUTOO_PREDICTOR", raising=False)
    example = load_example(name)
    pool = {model["name"] for model in example.offline_models()}
    DEFAULT_PREDICTOR_CHECKS[name](example, example.main(), pool)
