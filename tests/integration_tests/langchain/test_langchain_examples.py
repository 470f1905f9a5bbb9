"""The LangChain examples run offline, end to end.

Each example's ``main`` is called with the scripted pool and the planted predictor saved
to disk. Run as scripts they use Routoo's default predictor; that run is tested too once
the default predictor is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from conftest import POOL, POOL_NAMES, saved_predictor

from routoo.predictors import registry
from routoo.predictors.base import CONFIG_FILE
from routoo.testing import register_scripted_provider

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


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


@pytest.mark.parametrize(
    "name", ["langchain_swap_chatopenai", "langchain_agent_tools", "langchain_chain_budget"]
)
def test_examples_run_offline_with_the_default_predictor(name: str) -> None:
    if not (registry.DEFAULT_PREDICTOR_DIR / CONFIG_FILE).is_file():
        pytest.skip("the default predictor is not installed")
    load_example(name).main()
