"""RoutooChat inside LangChain: agent loops, LCEL chains, budgets, config keys, callbacks, fallback.

Calls go to routoo.testing's scripted litellm provider; the predictor is a kNN predictor
fitted on conftest.py's planted data and loaded from disk, so math prompts go to
scripted/small, poems to scripted/tiny, and calls with tools (which tiny cannot take) to
scripted/large unless money is short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, POOL, POOL_NAMES, saved_predictor
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from pydantic import BaseModel

from langchain_routoo import Budget, RoutooChat, budget_scope
from langchain_routoo.budgets import RUN_TREE
from routoo.errors import BudgetExceededError, ConfigError, NoAdmissibleModelError
from routoo.predictors import registry
from routoo.router import Router
from routoo.testing import ScriptedLLM


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


TOOLS = {"add": add, "multiply": multiply}


class Answer(BaseModel):
    """An answer with the reasoning behind it."""

    answer: str
    reasoning: str


class ModelCalls(BaseCallbackHandler):
    """Records each chat model run: its start, and the message it ended with."""

    def __init__(self) -> None:
        self.starts: list[UUID] = []
        self.messages: list[AIMessage] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.starts.append(run_id)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.messages.append(response.generations[0][0].message)

    @property
    def models(self) -> list[str]:
        return [message.response_metadata["model_name"] for message in self.messages]


@pytest.fixture
def predictor_dir(planted_dataset, tmp_path_factory) -> Path:
    return saved_predictor(planted_dataset, tmp_path_factory)


@pytest.fixture
def llm(scripted: ScriptedLLM, predictor_dir: Path) -> RoutooChat:
    return RoutooChat(models=POOL, predictor=predictor_dir)


def run_agent(llm: RoutooChat, question: str, max_turns: int = 5) -> list[BaseMessage]:
    """A plain tool-calling loop: call the model, run the tools it asks for, feed the results back."""
    model = llm.bind_tools(list(TOOLS.values()))
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(max_turns):
        reply = model.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        messages.extend(TOOLS[call["name"]].invoke(call) for call in reply.tool_calls)
    raise AssertionError(f"the agent did not finish in {max_turns} turns")


def replies(messages: list[BaseMessage]) -> list[AIMessage]:
    return [message for message in messages if isinstance(message, AIMessage)]


def assert_routed(message: AIMessage) -> None:
    """The metadata every answer carries: who answered, tokens, real cost, the decision."""
    metadata = message.response_metadata
    assert metadata["model_name"] in POOL_NAMES
    assert metadata["cost_usd"] > 0
    usage = message.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    decision = metadata["routoo_decision"]
    assert decision["model"] == metadata["model_name"]
    assert {candidate["model"] for candidate in decision["candidates"]} == set(POOL_NAMES)
    json.dumps(decision)


# ------------------------------------------------------------------------ agent loop
def test_agent_loop_routes_tool_calls_to_tool_capable_models_and_finishes(llm, scripted) -> None:
    messages = run_agent(llm, "Use add to sum 12 and 30.")
    first, last = replies(messages)[0], replies(messages)[-1]
    assert first.tool_calls[0]["name"] == "add"
    assert isinstance(messages[2], ToolMessage) and messages[2].content == "2"  # scripted args a=1, b=1
    assert last.content and not last.tool_calls
    for reply in replies(messages):
        assert_routed(reply)
        tiny = next(
            c
            for c in reply.response_metadata["routoo_decision"]["candidates"]
            if c["model"] == "scripted/tiny"
        )
        assert not tiny["admissible"] and "function calling" in tiny["reason"]
    # Every call reached the provider with the tools, and none went to the model without tool support.
    assert [call.model for call in scripted.calls] == [
        r.response_metadata["model_name"].split("/")[1] for r in replies(messages)
    ]
    assert all(call.params["tools"] for call in scripted.calls)


def test_agent_loop_under_a_hard_budget_spends_it_and_then_stops(llm) -> None:
    with budget_scope(Budget(1.0, name="agent")) as budget:
        messages = run_agent(llm, "Use multiply on 6 and 7.")
    spent = sum(reply.response_metadata["cost_usd"] for reply in replies(messages))
    assert budget.spent == pytest.approx(spent) and len(budget.records) == len(replies(messages))
    assert llm.spent == pytest.approx(spent)

    # Left with less than the cheapest tool-capable call is estimated at: refused before any call.
    tight = Budget(budget.spent * 0.5, name="tight")
    with budget_scope(tight), pytest.raises(BudgetExceededError, match="tight"):
        run_agent(llm, "Use multiply on 6 and 7.")
    assert tight.spent == 0 and tight.reserved == 0


def test_a_tight_budget_routes_tool_calls_to_the_cheaper_capable_model(llm) -> None:
    free = llm.bind_tools([add]).invoke(POEM_PROMPT)
    assert free.response_metadata["model_name"] == "scripted/large"
    candidates = {c["model"]: c for c in free.response_metadata["routoo_decision"]["candidates"]}
    # Enough for the most scripted/small's call could cost, not for scripted/large's.
    limit = (candidates["scripted/small"]["cost_bound"] + candidates["scripted/large"]["cost_bound"]) / 2
    with budget_scope(limit):
        cheap = llm.bind_tools([add]).invoke(POEM_PROMPT)
    assert cheap.response_metadata["model_name"] == "scripted/small"
    assert cheap.response_metadata["routoo_decision"]["rule"] == "budget"


# ------------------------------------------------------------------------ LCEL chains
def test_chain_with_a_budget_object_in_its_config_spends_it_across_runs_and_stops(llm) -> None:
    budget = Budget(1e-4, name="chain")
    chain = (
        ChatPromptTemplate.from_messages([("human", "{question}")])
        | llm.bind(max_tokens=40)
        | StrOutputParser()
    ).with_config(configurable={"routoo_budget": budget})
    answers = []
    with pytest.raises(BudgetExceededError, match="chain"):
        for _ in range(50):
            answers.append(chain.invoke({"question": MATH_PROMPT}))
    # Math goes to scripted/small until the money left only fits the even cheaper scripted/tiny.
    assert answers[0].startswith("scripted/small answers")
    assert all(answer.startswith(("scripted/small", "scripted/tiny")) for answer in answers)
    assert len(budget.records) == len(answers)
    assert 0 < budget.spent <= budget.limit_usd and budget.reserved == 0


def test_a_usd_limit_in_the_config_is_one_budget_per_run_of_the_whole_chain(llm) -> None:
    # The cost and estimate of one poem call, to set a limit that fits exactly three of them.
    probe = llm.invoke(POEM_PROMPT)
    cost = probe.response_metadata["cost_usd"]
    bound = next(
        c["cost_bound"]
        for c in probe.response_metadata["routoo_decision"]["candidates"]
        if c["model"] == probe.response_metadata["model_name"]
    )

    def ten_calls(question: str) -> int:
        for done in range(10):
            try:
                llm.invoke(question)  # no config passed: LangChain's context carries the run's
            except BudgetExceededError:
                return done
        return 10

    calls = ModelCalls()
    chain = RunnableLambda(ten_calls).with_config(
        configurable={"routoo_budget": 2 * cost + bound + cost / 2}, callbacks=[calls]
    )
    open_before = RUN_TREE.open_runs()
    assert chain.invoke(POEM_PROMPT) == 3
    assert chain.invoke(POEM_PROMPT) == 3  # a new run, a new budget
    assert len(calls.messages) == 6
    assert RUN_TREE.open_runs() == open_before  # the runs, and their budgets, are forgotten when they end


def test_a_soft_budget_per_run_raises_the_tradeoff_from_call_to_call(llm) -> None:
    seen = ModelCalls()

    def two_calls(question: str) -> None:
        llm.invoke(question)
        llm.invoke(question)

    chain = RunnableLambda(two_calls).with_config(
        configurable={"routoo_budget": 1e-4, "routoo_budget_mode": "soft", "routoo_tradeoff": 100.0},
        callbacks=[seen],
    )
    chain.invoke(MATH_PROMPT)
    chain.invoke(MATH_PROMPT)
    tradeoffs = [message.response_metadata["routoo_decision"]["tradeoff"] for message in seen.messages]
    assert tradeoffs[0] == tradeoffs[2] == 100.0  # each run starts with its budget untouched
    assert tradeoffs[1] > 100.0 and tradeoffs[3] > 100.0  # the second call feels the first's spending


def test_nested_chains_see_the_outer_runs_routing_overrides(llm) -> None:
    inner = ChatPromptTemplate.from_messages([("human", "{question}")]) | llm.bind_tools([add])
    outer = RunnableLambda(lambda question: inner.invoke({"question": question})) | RunnableLambda(
        lambda message: message
    )
    free = outer.invoke(POEM_PROMPT)
    capped_at = free.response_metadata["routoo_decision"]["candidates"][0]["estimated_cost"] / 2
    capped = outer.invoke(POEM_PROMPT, config={"configurable": {"routoo_max_cost": capped_at}})
    assert free.response_metadata["model_name"] == "scripted/large"
    assert capped.response_metadata["model_name"] == "scripted/small"
    assert capped.response_metadata["routoo_decision"]["rule"] == "max_cost"


def test_overrides_in_a_direct_config_and_in_with_config(llm) -> None:
    floor = {"configurable": {"routoo_quality_floor": 0.9}}
    assert (
        llm.invoke(MATH_PROMPT, config=floor).response_metadata["routoo_decision"]["rule"] == "quality_floor"
    )
    bound = llm.with_config(configurable={"routoo_quality_floor": 0.9})
    assert bound.invoke(MATH_PROMPT).response_metadata["routoo_decision"]["rule"] == "quality_floor"
    chunks = list(bound.stream(MATH_PROMPT))
    assert chunks[-1].response_metadata["routoo_decision"]["rule"] == "quality_floor"
    with pytest.raises(ConfigError, match="routoo_budget"):
        llm.invoke(MATH_PROMPT, config={"configurable": {"routoo_budget": "lots"}})


# ------------------------------------------------------------ callbacks and metadata
def test_usage_callback_counts_each_call_once_under_the_model_that_answered(llm) -> None:
    with get_usage_metadata_callback() as usage:
        math = llm.invoke(MATH_PROMPT)
        poem = list(llm.stream(POEM_PROMPT))
    assert set(usage.usage_metadata) == {"scripted/small", "scripted/tiny"}
    assert usage.usage_metadata["scripted/small"]["total_tokens"] == math.usage_metadata["total_tokens"]
    streamed = sum(chunk.usage_metadata["total_tokens"] for chunk in poem if chunk.usage_metadata)
    assert usage.usage_metadata["scripted/tiny"]["total_tokens"] == streamed


def test_a_stream_carries_usage_and_routing_metadata_once_on_its_last_chunk(llm) -> None:
    chunks = list(llm.stream(POEM_PROMPT))
    assert len(chunks) > 2 and chunks[-1].chunk_position == "last"
    assert [bool(chunk.usage_metadata) for chunk in chunks].count(True) == 1
    assert [bool(chunk.response_metadata) for chunk in chunks].count(True) == 1
    full = sum(chunks[1:], chunks[0])
    assert full.content.startswith("scripted/tiny answers")
    assert_routed(full)


def test_a_stream_left_early_is_charged_for_what_it_produced(llm) -> None:
    with budget_scope(1.0) as budget:
        chunks = llm.stream(POEM_PROMPT)
        next(chunks)
        chunks.close()
    assert budget.spent > 0 and budget.reserved == 0 and llm.spent == budget.spent


def test_streamed_tool_calls_arrive_as_chunks_and_merge_into_tool_calls(llm) -> None:
    chunks = list(llm.bind_tools([add, multiply], tool_choice="multiply").stream("Do some arithmetic."))
    assert any(chunk.tool_call_chunks for chunk in chunks)
    full = sum(chunks[1:], chunks[0])
    assert [call["name"] for call in full.tool_calls] == ["multiply"]
    assert full.tool_calls[0]["args"] == {"a": 1, "b": 1}
    assert full.response_metadata["finish_reason"] == "tool_calls"


async def test_async_paths_route_and_report(llm) -> None:
    message = await llm.ainvoke(MATH_PROMPT)
    assert_routed(message)
    chunks = [chunk async for chunk in llm.astream(POEM_PROMPT)]
    assert_routed(sum(chunks[1:], chunks[0]))
    batch = await llm.abatch([MATH_PROMPT, POEM_PROMPT])
    assert [m.response_metadata["model_name"] for m in batch] == ["scripted/small", "scripted/tiny"]
    events = [event async for event in llm.astream_events(POEM_PROMPT, version="v2")]
    kinds = [event["event"] for event in events]
    assert kinds[0] == "on_chat_model_start" and kinds[-1] == "on_chat_model_end"
    assert "on_chat_model_stream" in kinds
    assert events[-1]["data"]["output"].response_metadata["model_name"] == "scripted/tiny"


def test_a_fallback_stays_one_run_and_is_recorded_in_the_decision(llm, scripted) -> None:
    scripted.fail("scripted/small", "rate_limit")
    calls = ModelCalls()
    message = llm.invoke(MATH_PROMPT, config={"callbacks": [calls]})
    assert len(calls.starts) == 1
    fallbacks = message.response_metadata["routoo_decision"]["fallbacks"]
    assert [(f["model"], f["error_type"]) for f in fallbacks] == [("scripted/small", "RateLimitError")]
    assert message.response_metadata["model_name"] != "scripted/small"
    assert message.usage_metadata["input_tokens"] > 0


# ------------------------------------------------------------------- structured output
@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output_goes_to_models_able_to_follow_a_schema(llm, method: str) -> None:
    structured = llm.with_structured_output(Answer, method=method, include_raw=True)
    result = structured.invoke(POEM_PROMPT)
    assert isinstance(result["parsed"], Answer) and result["parsing_error"] is None
    raw = result["raw"]
    assert_routed(raw)
    tiny = next(
        c for c in raw.response_metadata["routoo_decision"]["candidates"] if c["model"] == "scripted/tiny"
    )
    assert not tiny["admissible"]


def test_a_model_override_pins_the_call_to_one_pool_model_on_the_same_router(llm, monkeypatch) -> None:
    built: list[Router] = []
    monkeypatch.setattr(Router, "__init__", lambda self, *args, **kwargs: built.append(self))
    message = llm.invoke(POEM_PROMPT, model="scripted/large")  # scripted/tiny would win unpinned
    assert message.response_metadata["model_name"] == "scripted/large"
    decision = message.response_metadata["routoo_decision"]
    assert decision["rule"] == "pinned" and decision["model"] == "scripted/large"
    bound = llm.bind(model="scripted/small").invoke(POEM_PROMPT)
    assert bound.response_metadata["model_name"] == "scripted/small"
    # No second Router: the pinned calls are the one router's, and the chat model's.
    assert built == []
    costs = message.response_metadata["cost_usd"] + bound.response_metadata["cost_usd"]
    assert llm.spent == llm.router.spent == pytest.approx(costs)
    with pytest.raises(ConfigError, match="pins model 'gpt-4o', not in the pool"):
        llm.invoke(POEM_PROMPT, model="gpt-4o")
    with pytest.raises(NoAdmissibleModelError):  # scripted/tiny cannot call tools
        llm.bind_tools([add]).invoke(POEM_PROMPT, model="scripted/tiny")


def test_a_router_given_to_the_chat_model_routes_its_calls(predictor_dir, scripted) -> None:
    router = Router(POOL, predictor_dir, {"quality_floor": 0.9})
    llm = RoutooChat(router=router)
    message = llm.invoke(MATH_PROMPT, config={"configurable": {"routoo_max_cost": 1.0}})
    decision = message.response_metadata["routoo_decision"]
    assert decision["rule"] == "quality_floor"  # the router's policy, with the run's override merged
    assert router.spent == llm.spent == pytest.approx(message.response_metadata["cost_usd"])


def test_the_default_predictor_is_used_when_none_is_given(scripted, predictor_dir, monkeypatch) -> None:
    monkeypatch.setattr(registry, "DEFAULT_PREDICTOR_DIR", predictor_dir)
    message = RoutooChat(models=POOL).invoke(MATH_PROMPT)
    assert message.response_metadata["model_name"] == "scripted/small"
