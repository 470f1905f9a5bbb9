"""Swap ChatOpenAI for RoutooChat in an existing LangChain chain; nothing else changes.

The chain below was written for ``ChatOpenAI(model="gpt-4o")``. With ``RoutooChat`` each
question goes to the model Routoo predicts answers it best for its cost, and every answer
says which model that was, what it cost and why.

Runs offline by default: the models are routoo.testing's scripted litellm models, scored
by the default predictor as gpt-4o and gpt-4o-mini, the models they stand in for
(``like=``). To call real providers, set ``ROUTOO_EXAMPLE_ONLINE=1`` and ``OPENAI_API_KEY``
(the pool is then gpt-4o and gpt-4o-mini by name; any model the catalog knows works, see
``routoo models``). The default predictor learned gpt-4o from its MMLU-Pro run and knows
gpt-4o-mini from a prior only (gpt-4o moved to gpt-4o-mini's published scores): the router
warns about it, and docs/onboarding.md says how to teach it from a few labelled prompts.
``ROUTOO_PREDICTOR=<dir>`` uses a predictor you trained and saved.

    python examples/langchain_swap_chatopenai.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_routoo import RoutooChat

ONLINE_MODELS = ["gpt-4o", "gpt-4o-mini"]
QUESTIONS = [
    "What is the capital of France?",
    "Prove that the square root of 2 is irrational.",
]


def offline_models() -> list[dict[str, str]]:
    """Scripted stand-ins for the online pool, answering without a network."""
    from routoo.testing import register_scripted_provider

    register_scripted_provider()
    return [
        {"name": "scripted/large", "like": "gpt-4o"},
        {"name": "scripted/small", "like": "gpt-4o-mini"},
    ]


def main(models: list[Any] | None = None, predictor: str | Path | None = None) -> list[dict[str, Any]]:
    """Answer ``QUESTIONS`` with the chain; returns each answer with its model, cost, usage and decision."""
    if models is None:
        models = ONLINE_MODELS if os.environ.get("ROUTOO_EXAMPLE_ONLINE") == "1" else offline_models()
    predictor = predictor or os.environ.get("ROUTOO_PREDICTOR")  # None: Routoo's default predictor

    # llm = ChatOpenAI(model="gpt-4o")              # before
    llm = RoutooChat(models=models, predictor=predictor)  # after
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are a concise assistant."), ("human", "{question}")]
    )
    chain = prompt | llm  # `| StrOutputParser()` works as before; the message keeps the metadata

    results = []
    for question in QUESTIONS:
        message = chain.invoke({"question": question})
        results.append(
            {
                "question": question,
                "answer": StrOutputParser().invoke(message),
                "model": message.response_metadata["model_name"],
                "cost_usd": message.response_metadata["cost_usd"],
                "rule": message.response_metadata["routoo_decision"]["rule"],
                "decision": message.response_metadata["routoo_decision"],  # every candidate, and why
                "usage": message.usage_metadata,
            }
        )
    for result in results:
        print(f"{result['model']:>20}  ${result['cost_usd']:.6f}  {result['question']}")
    print(f"total spent: ${llm.spent:.6f}")
    return results


if __name__ == "__main__":
    main()
