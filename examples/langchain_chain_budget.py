"""Budgets for LCEL chains through the runnable config, and per-call routing overrides.

- ``configurable={"routoo_budget": 0.01}``: one $0.01 hard budget for each run of the
  chain, shared by every RoutooChat call inside it (here two: draft, then polish).
- ``configurable={"routoo_budget": Budget(...)}``: one budget shared by every run that
  carries it, until it is spent.
- ``"routoo_budget_mode": "soft"``: nothing is refused; routing leans to cheaper models as
  the money runs out.
- ``routoo_tradeoff``, ``routoo_quality_floor``, ``routoo_max_cost``: this run's settings.

Runs offline by default with routoo.testing's scripted litellm models. To call real
providers, set ``ROUTOO_EXAMPLE_ONLINE=1`` and ``OPENAI_API_KEY``; ``ROUTOO_PREDICTOR=<dir>``
uses a predictor you trained and saved instead of the default one.

    python examples/langchain_chain_budget.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_routoo import Budget, RoutooChat
from routoo.errors import BudgetExceededError

ONLINE_MODELS = [
    {"name": "gpt-4o", "like": "gpt-4-1106-preview"},
    {"name": "gpt-4o-mini", "like": "gpt-3.5-turbo-1106"},
]
TOPIC = "why the sky is blue"


def offline_models() -> list[dict[str, str]]:
    """Scripted stand-ins for the online pool, answering without a network."""
    from routoo.testing import register_scripted_provider

    register_scripted_provider()
    return [
        {"name": "scripted/large", "like": "gpt-4-1106-preview"},
        {"name": "scripted/small", "like": "gpt-3.5-turbo-1106"},
    ]


def main(models: list[Any] | None = None, predictor: str | Path | None = None) -> dict[str, Any]:
    """Run a two-call chain under each kind of budget; returns what each spent."""
    if models is None:
        models = ONLINE_MODELS if os.environ.get("ROUTOO_EXAMPLE_ONLINE") == "1" else offline_models()
    # max_tokens bounds what each call can cost, which is what a hard budget reserves.
    llm = RoutooChat(models=models, predictor=predictor or os.environ.get("ROUTOO_PREDICTOR"), max_tokens=100)
    draft = ChatPromptTemplate.from_messages([("human", "Explain {topic} in three sentences.")])
    polish = ChatPromptTemplate.from_messages([("human", "Make this clearer for a child:\n\n{draft}")])
    chain = (
        draft | llm | StrOutputParser() | (lambda text: {"draft": text}) | polish | llm | StrOutputParser()
    )

    # A USD limit: a fresh budget for each run, spanning both calls of that run.
    per_run = chain.with_config(configurable={"routoo_budget": 0.01})
    before = llm.spent
    per_run.invoke({"topic": TOPIC})
    one_run = llm.spent - before
    print(f"one run under a $0.01 per-run budget spent ${one_run:.6f}")

    # A Budget object: shared by every run until it is spent, then BudgetExceededError. As it
    # runs low, calls go to cheaper models first.
    shared = Budget(one_run * 5, name="shared")
    capped = chain.with_config(configurable={"routoo_budget": shared})
    runs, stopped = 0, None
    try:
        while runs < 10:
            capped.invoke({"topic": TOPIC})
            runs += 1
        print(f"10 runs spent ${shared.spent:.6f} of the shared ${shared.limit_usd:.6f}")
    except BudgetExceededError as error:
        stopped = str(error)
        print(f"after {runs} runs the shared budget stopped the chain: {stopped}")

    # A soft budget bends routing instead of refusing: the tradeoff rises as the money runs out.
    soft = Budget(one_run * 2, mode="soft", name="soft")
    with get_usage_metadata_callback() as usage:
        for _ in range(4):
            chain.invoke({"topic": TOPIC}, config={"configurable": {"routoo_budget": soft}})
    tokens = {model: counts["total_tokens"] for model, counts in usage.usage_metadata.items()}
    print(f"soft budget: ${soft.spent:.6f} spent of ${soft.limit_usd:.6f}; tokens by model: {tokens}")

    # Per-run routing settings: this run takes the cheapest model predicted to reach 0.9.
    chain.invoke({"topic": TOPIC}, config={"configurable": {"routoo_quality_floor": 0.9}})
    return {
        "one_run": one_run,
        "shared_runs": runs,
        "shared": shared,
        "stopped": stopped,
        "soft": soft,
        "tokens": tokens,
    }


if __name__ == "__main__":
    main()
