"""A tool-calling agent on RoutooChat, within a hard budget.

A plain agent loop (no LangGraph): the model, with tools bound, answers or asks for tool
calls; the loop runs the tools and feeds their results back. Calls that carry tools are
only routed to models able to call tools. ``budget_scope`` caps what the whole run may
spend: once too little is left for the next call, ``BudgetExceededError`` stops it before
anything is sent.

Runs offline by default with routoo.testing's scripted litellm models (which call tools
with arguments made up from the tool's schema). To call real providers, set
``ROUTOO_EXAMPLE_ONLINE=1`` and ``OPENAI_API_KEY``; ``ROUTOO_PREDICTOR=<dir>`` uses a
predictor you trained and saved instead of the default one.

    python examples/langchain_agent_tools.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool

from langchain_routoo import Budget, RoutooChat, budget_scope
from routoo.errors import BudgetExceededError

ONLINE_MODELS = [
    {"name": "gpt-4o", "like": "gpt-4-1106-preview"},
    {"name": "gpt-4o-mini", "like": "gpt-3.5-turbo-1106"},
]


@tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


TOOLS = {"add": add, "multiply": multiply}


def offline_models() -> list[dict[str, str]]:
    """Scripted stand-ins for the online pool, answering without a network."""
    from routoo.testing import register_scripted_provider

    register_scripted_provider()
    return [
        {"name": "scripted/large", "like": "gpt-4-1106-preview"},
        {"name": "scripted/small", "like": "gpt-3.5-turbo-1106"},
    ]


def run_agent(llm: RoutooChat, question: str, max_turns: int = 6) -> list[BaseMessage]:
    """Call the model, run the tools it asks for, and repeat until it answers."""
    model = llm.bind_tools(list(TOOLS.values()))
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(max_turns):
        reply = model.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            break
        messages.extend(TOOLS[call["name"]].invoke(call) for call in reply.tool_calls)
    return messages


def main(
    models: list[Any] | None = None, predictor: str | Path | None = None, limit_usd: float = 0.05
) -> dict[str, Any]:
    """Run the agent under a hard budget, then once more with too little left; returns both outcomes.

    ``spent`` is everything ``llm`` spent, the refused second run included (it sends nothing).
    """
    if models is None:
        models = ONLINE_MODELS if os.environ.get("ROUTOO_EXAMPLE_ONLINE") == "1" else offline_models()
    llm = RoutooChat(models=models, predictor=predictor or os.environ.get("ROUTOO_PREDICTOR"))
    question = "What is (3 + 4) * 6? Use the tools."

    with budget_scope(Budget(limit_usd, name="agent")) as budget:
        messages = run_agent(llm, question)
    for message in messages:
        if isinstance(message, AIMessage):
            metadata, said = message.response_metadata, message.tool_calls or message.text
            print(f"{metadata['model_name']:>20}  ${metadata['cost_usd']:.6f}  {said}")
    print(f"the run spent ${budget.spent:.6f} of its ${budget.limit_usd} budget")

    # A budget with less left than the cheapest tool-capable call: refused before anything is sent.
    try:
        with budget_scope(Budget(budget.spent / 10, name="almost spent")):
            run_agent(llm, question)
        stopped = None
    except BudgetExceededError as error:
        stopped = str(error)
        print(f"stopped: {stopped}")
    return {"messages": messages, "budget": budget, "stopped": stopped, "spent": llm.spent}


if __name__ == "__main__":
    main()
