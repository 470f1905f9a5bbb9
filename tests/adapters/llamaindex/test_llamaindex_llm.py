"""RoutooLLM as a LlamaIndex LLM: every interface method, tools, structured output, events and budgets.

Calls go to routoo.testing's scripted litellm provider; the predictor is trained on the
planted data of conftest.py, with the scripted models scored like its models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import (
    MATH_PROMPT,
    POEM_PROMPT,
    POOL,
    POOL_NAMES,
    ROUTER_BUILDING_SETTINGS,
    llamaindex_event_handler,
)
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMChatStartEvent
from llama_index.core.prompts import PromptTemplate
from llama_index.core.prompts.chat_prompts import CHAT_TEXT_QA_PROMPT
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from llamaindex_routoo import Budget, Router, RoutingPolicy, RoutooLLM, budget_scope
from routoo.errors import BudgetExceededError, ConfigError, DataError
from routoo.predictors import KNNPredictor
from routoo.testing import ScriptedLLM
from routoo.tokens import count_prompt_tokens

# conftest's POOL: scripted models scored like the planted models: tiny (cheap, no tools) writes
# poems well, small does arithmetic, large does both at several times the price.
RECORD_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens", "model", "cost_usd", "routoo_decision"}


@pytest.fixture
def llm(scripted: ScriptedLLM, recording_predictor: KNNPredictor) -> RoutooLLM:
    return RoutooLLM(models=POOL, predictor=recording_predictor)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def user_dicts(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def assert_reports_its_call(record: dict, raw: dict, pool: list[str]) -> None:
    """A response's additional_kwargs describe the call litellm really made."""
    assert record.keys() >= RECORD_KEYS
    assert record["model"] in pool
    assert record["cost_usd"] > 0
    assert record["prompt_tokens"] == raw["usage"]["prompt_tokens"] > 0
    assert record["completion_tokens"] == raw["usage"]["completion_tokens"] > 0
    assert record["total_tokens"] == record["prompt_tokens"] + record["completion_tokens"]
    assert record["routoo_decision"]["model"] == record["model"]
    json.dumps(record)  # the decision is JSON-serialisable


# ------------------------------------------------------------------------- metadata
def test_metadata_is_what_every_pool_model_can_serve(llm: RoutooLLM) -> None:
    metadata = llm.metadata
    assert metadata.context_window == 2048  # scripted/tiny's, the smallest in the pool
    assert metadata.num_output == 1024  # the pool's 4096-token output limit, capped at half the window
    assert metadata.is_chat_model and metadata.is_function_calling_model
    assert metadata.model_name == "routoo:scripted/small,scripted/tiny,scripted/large"


def test_a_pool_without_tool_support_is_no_function_calling_model(scripted, recording_predictor) -> None:
    tiny = POOL[POOL_NAMES.index("scripted/tiny")]  # no function calling
    llm = RoutooLLM(models=[tiny], predictor=recording_predictor, max_tokens=64)
    assert not llm.metadata.is_function_calling_model
    assert llm.metadata.num_output == 64


# --------------------------------------------------------------------------- router=
def test_a_given_router_is_the_one_every_call_goes_through(scripted, recording_predictor) -> None:
    router = Router(POOL, recording_predictor, {"quality_floor": 0.9})
    llm = RoutooLLM(router=router, temperature=0.1)
    assert llm.router is router and llm.policy is router.policy and llm.models == POOL_NAMES
    response = llm.chat(user(POEM_PROMPT))
    assert response.additional_kwargs["routoo_decision"]["rule"] == "quality_floor"
    assert router.spent == pytest.approx(response.additional_kwargs["cost_usd"])
    assert scripted.calls[-1].params["temperature"] == 0.1  # a per-call litellm parameter


def test_the_shorthand_builds_the_routers_policy(scripted, recording_predictor) -> None:
    llm = RoutooLLM(POOL, recording_predictor, policy={"max_cost": 1.0}, tradeoff=3.0, max_fallbacks=0)
    assert llm.policy == RoutingPolicy(tradeoff=3.0, max_cost=1.0) and llm.router.max_fallbacks == 0


@pytest.mark.parametrize(
    "settings",
    [*ROUTER_BUILDING_SETTINGS, {"prompt_view": "conversation"}],
)
def test_a_router_and_settings_that_would_build_another_are_refused(
    recording_predictor, settings: dict
) -> None:
    [name] = settings
    with pytest.raises(ConfigError, match=f"router= and .*{name}"):
        RoutooLLM(router=Router(POOL, recording_predictor), **settings)


def test_without_router_or_models_there_is_no_pool() -> None:
    with pytest.raises(ConfigError, match="or router="):
        RoutooLLM()
    with pytest.raises(ConfigError, match="routoo Router"):
        RoutooLLM(router="gpt-4o")


def test_a_pinned_call_goes_through_the_same_router(llm: RoutooLLM, monkeypatch) -> None:
    built = []
    monkeypatch.setattr(Router, "__init__", lambda self, *args, **kwargs: built.append(self))
    response = llm.chat(user(POEM_PROMPT), model="scripted/large")  # tiny would win unpinned
    decision = response.additional_kwargs["routoo_decision"]
    assert response.additional_kwargs["model"] == "scripted/large" and decision["rule"] == "pinned"
    assert built == [] and llm.router.spent == pytest.approx(response.additional_kwargs["cost_usd"])
    policy = llm.chat(user(POEM_PROMPT), policy={"model": "scripted/small"}).additional_kwargs
    assert policy["model"] == "scripted/small"


# ----------------------------------------------------------------- chat and complete
def test_chat_routes_each_prompt_to_the_model_predicted_for_it(llm: RoutooLLM, scripted: ScriptedLLM) -> None:
    poem = llm.chat(user(POEM_PROMPT))
    math = llm.chat(user(MATH_PROMPT))
    assert poem.additional_kwargs["model"] == "scripted/tiny"
    assert math.additional_kwargs["model"] == "scripted/small"
    assert "answers" in poem.message.content
    assert_reports_its_call(math.additional_kwargs, math.raw, llm.models)
    assert [call.model for call in scripted.calls] == ["tiny", "small"]
    assert llm.router.spent == pytest.approx(
        poem.additional_kwargs["cost_usd"] + math.additional_kwargs["cost_usd"]
    )


async def test_achat(llm: RoutooLLM) -> None:
    response = await llm.achat(user(MATH_PROMPT))
    assert response.additional_kwargs["model"] == "scripted/small"
    assert_reports_its_call(response.additional_kwargs, response.raw, llm.models)


def test_complete(llm: RoutooLLM) -> None:
    response = llm.complete(POEM_PROMPT)
    assert response.text.startswith("scripted/tiny answers")
    assert_reports_its_call(response.additional_kwargs, response.raw, llm.models)


async def test_acomplete(llm: RoutooLLM) -> None:
    response = await llm.acomplete(MATH_PROMPT)
    assert response.text.startswith("scripted/small answers")
    assert_reports_its_call(response.additional_kwargs, response.raw, llm.models)


def test_stream_chat_ends_with_the_usage_and_decision(llm: RoutooLLM) -> None:
    responses = list(llm.stream_chat(user(POEM_PROMPT)))
    final = responses[-1]
    assert len(responses) > 2
    assert "".join(response.delta for response in responses) == final.message.content
    assert final.message.content.startswith("scripted/tiny answers")
    assert_reports_its_call(final.additional_kwargs, final.raw, llm.models)


async def test_astream_chat(llm: RoutooLLM) -> None:
    responses = [response async for response in await llm.astream_chat(user(MATH_PROMPT))]
    final = responses[-1]
    assert "".join(response.delta for response in responses) == final.message.content
    assert final.additional_kwargs["model"] == "scripted/small"
    assert_reports_its_call(final.additional_kwargs, final.raw, llm.models)


def test_stream_complete(llm: RoutooLLM) -> None:
    responses = list(llm.stream_complete(POEM_PROMPT))
    assert "".join(response.delta for response in responses) == responses[-1].text
    assert_reports_its_call(responses[-1].additional_kwargs, responses[-1].raw, llm.models)


async def test_astream_complete(llm: RoutooLLM) -> None:
    responses = [response async for response in await llm.astream_complete(MATH_PROMPT)]
    assert responses[-1].text.startswith("scripted/small answers")
    assert_reports_its_call(responses[-1].additional_kwargs, responses[-1].raw, llm.models)


def test_routing_options_can_be_set_per_call(llm: RoutooLLM) -> None:
    response = llm.chat(user(POEM_PROMPT), quality_floor=0.9, predictor_text=MATH_PROMPT)
    decision = response.additional_kwargs["routoo_decision"]
    assert decision["rule"] == "quality_floor"
    assert response.additional_kwargs["model"] == "scripted/small"  # routed as the math question it was told


def test_a_formatted_rag_prompt_is_routed_on_its_question(
    llm: RoutooLLM, recording_predictor: KNNPredictor
) -> None:
    messages = CHAT_TEXT_QA_PROMPT.format_messages(
        context_str="Roses are red.\nViolets are blue.", query_str=MATH_PROMPT
    )
    response = llm.chat(messages)
    assert recording_predictor.seen[-1] == MATH_PROMPT
    assert response.additional_kwargs["routoo_decision"]["prompt_tokens"] > 2 * count_prompt_tokens(
        user_dicts(MATH_PROMPT)
    )


def test_a_fallback_is_reported_on_the_response(llm: RoutooLLM, scripted: ScriptedLLM) -> None:
    scripted.fail("scripted/tiny", "rate_limit")
    response = llm.chat(user(POEM_PROMPT))
    decision = response.additional_kwargs["routoo_decision"]
    assert response.additional_kwargs["model"] != "scripted/tiny"
    assert [attempt["model"] for attempt in decision["fallbacks"]] == ["scripted/tiny"]


def test_bad_messages_fail_before_any_call(llm: RoutooLLM, scripted: ScriptedLLM) -> None:
    with pytest.raises(DataError, match="tool_call_id"):
        llm.chat([*user(MATH_PROMPT), ChatMessage(role=MessageRole.TOOL, content="3")])
    assert scripted.calls == []


# ------------------------------------------------------------ callbacks and events
class _Recorder(BaseEventHandler):
    events: list

    def handle(self, event, **kwargs) -> None:
        self.events.append(event)


@pytest.fixture
def events() -> Iterator[list]:
    recorder = _Recorder(events=[])
    with llamaindex_event_handler(recorder):
        yield recorder.events


@pytest.mark.parametrize("streaming", [False, True])
def test_callbacks_and_instrumentation_see_every_call(llm: RoutooLLM, events: list, streaming: bool) -> None:
    counter = TokenCountingHandler()
    llm.callback_manager = CallbackManager([counter])
    if streaming:
        *_, response = llm.stream_chat(user(MATH_PROMPT))
    else:
        response = llm.chat(user(MATH_PROMPT))
    assert [type(event) for event in events if isinstance(event, LLMChatStartEvent | LLMChatEndEvent)] == [
        LLMChatStartEvent,
        LLMChatEndEvent,
    ]
    assert counter.prompt_llm_token_count == response.additional_kwargs["prompt_tokens"]
    assert counter.completion_llm_token_count == response.additional_kwargs["completion_tokens"]


# --------------------------------------------------------------------------- tools
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_chat_with_tools_goes_only_to_tool_capable_models(llm: RoutooLLM, scripted: ScriptedLLM) -> None:
    tool = FunctionTool.from_defaults(fn=add)
    response = llm.chat_with_tools([tool], user_msg=POEM_PROMPT)  # tiny would win without tools
    decision = response.additional_kwargs["routoo_decision"]
    assert response.additional_kwargs["model"] != "scripted/tiny"
    assert not next(c for c in decision["candidates"] if c["model"] == "scripted/tiny")["admissible"]
    [selection] = llm.get_tool_calls_from_response(response)
    assert selection.tool_name == "add" and set(selection.tool_kwargs) == {"a", "b"}
    assert scripted.calls[-1].params["tools"][0]["function"]["name"] == "add"


async def test_achat_with_tools_and_no_tool_call(llm: RoutooLLM) -> None:
    tool = FunctionTool.from_defaults(fn=add)
    response = await llm.achat_with_tools([tool], user_msg=MATH_PROMPT, tool_choice="none")
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="expected a tool call"):
        llm.get_tool_calls_from_response(response)


def test_predict_and_call_runs_the_chosen_tool(llm: RoutooLLM) -> None:
    tool = FunctionTool.from_defaults(fn=add)
    result = llm.predict_and_call([tool], user_msg="Please add these numbers.")
    [source] = result.sources
    assert source.tool_name == "add" and not source.is_error
    assert result.response == str(source.raw_output)


async def test_a_function_agent_calls_tools_through_routed_models(
    llm: RoutooLLM, scripted: ScriptedLLM
) -> None:
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=add)], llm=llm)
    response = await agent.run(user_msg="Please add 2 and 3.")
    *_, call_turn, result_turn = scripted.calls[-1].messages
    assert call_turn["role"] == "assistant" and call_turn["tool_calls"][0]["function"]["name"] == "add"
    assert result_turn["role"] == "tool" and result_turn["tool_call_id"] == call_turn["tool_calls"][0]["id"]
    assert "read the tool result" in str(response)


class Invoice(BaseModel):
    """An invoice's total and currency."""

    total: float
    currency: str


def test_structured_predict_returns_the_pydantic_model(
    llm: RoutooLLM, recording_predictor: KNNPredictor
) -> None:
    prompt = PromptTemplate("Extract the invoice from: {text}")
    invoice = llm.structured_predict(Invoice, prompt, text="Total due: 12.50 EUR")
    assert isinstance(invoice, Invoice)
    assert recording_predictor.seen[-1] == "Extract the invoice from: Total due: 12.50 EUR"


async def test_astructured_predict(llm: RoutooLLM) -> None:
    invoice = await llm.astructured_predict(Invoice, PromptTemplate("Extract: {text}"), text="4 USD")
    assert isinstance(invoice, Invoice)


# ------------------------------------------------------------------------- budgets
def test_a_budget_scope_charges_every_call_inside_it(llm: RoutooLLM) -> None:
    with budget_scope(Budget(1.0)) as budget:
        first = llm.chat(user(MATH_PROMPT))
        *_, second = llm.stream_chat(user(POEM_PROMPT))
    assert budget.spent == pytest.approx(
        first.additional_kwargs["cost_usd"] + second.additional_kwargs["cost_usd"]
    )
    assert [record.model for record in budget.records] == ["scripted/small", "scripted/tiny"]


def test_a_spent_hard_budget_stops_further_calls(llm: RoutooLLM, scripted: ScriptedLLM) -> None:
    record = llm.chat(user(POEM_PROMPT)).additional_kwargs
    tiny = next(c for c in record["routoo_decision"]["candidates"] if c["model"] == "scripted/tiny")
    # Room for the most one call can cost, but once it is spent not for another (tiny is the cheapest).
    limit = tiny["cost_bound"] + record["cost_usd"] / 2
    with budget_scope(Budget(limit, mode="hard")) as budget:
        llm.chat(user(POEM_PROMPT))
        with pytest.raises(BudgetExceededError, match="left"):
            llm.chat(user(POEM_PROMPT))
    assert budget.spent == pytest.approx(record["cost_usd"])
    assert len(scripted.calls) == 2


def test_an_abandoned_stream_is_charged_for_what_it_produced(llm: RoutooLLM) -> None:
    responses = llm.stream_chat(user(POEM_PROMPT))
    next(responses)
    responses.close()
    assert llm.router.spent > 0
