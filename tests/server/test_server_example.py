"""examples/server_openai_client.py runs offline, end to end."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "server_openai_client.py"


@pytest.mark.allow_hosts(["127.0.0.1"])
def test_the_server_example_answers_and_keeps_its_budget_straight() -> None:
    spec = importlib.util.spec_from_file_location("server_openai_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main()
    assert results["models"] == ["routoo", "routoo-cheap", "routoo-best", "scripted/small", "scripted/large"]
    assert [model for model, _ in results["answers"][:2]] == ["scripted/small", "scripted/large"]
    assert results["langchain"].startswith("scripted/")
    # The LangChain call is charged too: the budget holds more than the three calls priced above.
    assert results["budget"]["spent_usd"] > sum(cost for _, cost in results["answers"])
    assert math.isclose(
        results["budget"]["remaining_usd"], results["budget"]["limit_usd"] - results["budget"]["spent_usd"]
    )
