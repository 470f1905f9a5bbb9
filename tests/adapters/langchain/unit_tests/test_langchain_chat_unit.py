"""RoutooChat's parts without calling a model: config keys, router=, message conversion, tools, run tree,
errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import POOL, ROUTER_BUILDING_SETTINGS, bad_budget_settings, saved_predictor
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from pydantic import BaseModel, SecretStr

from langchain_routoo import Budget, RoutooChat
from langchain_routoo.budgets import RUN_TREE
from langchain_routoo.config import POLICY_KEYS, RoutingOverrides, routing_overrides
from langchain_routoo.messages import ai_message, message_chunk, to_litellm_messages
from routoo.budget import RunBudget
from routoo.errors import ConfigError, PredictorLoadError, UnknownModelError
from routoo.policy import RoutingPolicy
from routoo.predictors import load_predictor
from routoo.router import Router
from routoo.secrets import reveal_secrets
from routoo.testing import register_scripted_provider


@tool
def lookup(city: str) -> str:
    """Look a city up."""
    return city


@pytest.fixture
def llm(planted_dataset, tmp_path_factory) -> RoutooChat:
    register_scripted_provider()
    return RoutooChat(models=POOL, predictor=saved_predictor(planted_dataset, tmp_path_factory))


# ------------------------------------------------------------------------ config keys
def test_routing_overrides_read_the_routoo_keys() -> None:
    budget = Budget(1.0)
    assert routing_overrides({}) == RoutingOverrides()
    assert routing_overrides({"routoo_budget": budget, "other": 1}).budget.budget is budget
    read = routing_overrides(
        {"routoo_budget": 2, "routoo_budget_mode": "soft", "routoo_tradeoff": 3, "routoo_max_cost": 0.5}
    )
    assert read == RoutingOverrides(RoutingPolicy(tradeoff=3.0, max_cost=0.5), RunBudget(2.0, "soft"))
    assert routing_overrides({"routoo_budget": 2}).budget == RunBudget(2.0, "hard")


def test_the_routing_keys_are_the_policy_fields() -> None:
    assert set(POLICY_KEYS.values()) == set(RoutingPolicy.model_fields)
    read = routing_overrides({"routoo_model": "scripted/large", "routoo_deny": ["scripted/tiny"]})
    assert read.policy == RoutingPolicy(model="scripted/large", deny=("scripted/tiny",))


@pytest.mark.parametrize(
    ("configurable", "named"),
    [
        *bad_budget_settings("routoo_"),
        ({"routoo_tradeoff": float("nan")}, "routoo_tradeoff"),
        ({"routoo_quality_floor": "high"}, "routoo_quality_floor"),
        ({"routoo_quality_floor": 1.5}, "routoo_quality_floor"),
        ({"routoo_allow": "scripted/large"}, "routoo_allow"),
        ({"routoo_budget_mode": "strict"}, "routoo_budget_mode"),
    ],
)
def test_bad_config_values_are_refused_naming_the_key(configurable: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        routing_overrides(configurable)


# ------------------------------------------------------------------- message conversion
def test_messages_convert_to_the_openai_format_litellm_takes() -> None:
    call = {"name": "lookup", "args": {"city": "Oslo"}, "id": "call_1", "type": "tool_call"}
    anthropic_style = [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "call_1", "name": "lookup"},
    ]
    converted = to_litellm_messages(
        [
            SystemMessage("Be brief."),
            HumanMessage("Where is Oslo?", name="ana"),
            AIMessage(anthropic_style, tool_calls=[call]),
            ToolMessage("Norway", tool_call_id="call_1", status="error"),
        ]
    )
    assert [message["role"] for message in converted] == ["system", "user", "assistant", "tool"]
    assert converted[1] == {"role": "user", "name": "ana", "content": "Where is Oslo?"}
    assert converted[2]["content"] == "Looking."  # only the text: the call travels in tool_calls
    assert converted[2]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"city": "Oslo"}'}
    assert converted[3] == {"role": "tool", "tool_call_id": "call_1", "content": "Norway"}


def _tool_call(arguments: str) -> dict:
    return {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": arguments}}


def test_a_response_becomes_an_ai_message_with_tool_calls_usage_and_metadata() -> None:
    message = SimpleNamespace(content=None, tool_calls=[_tool_call('{"city": "Oslo"}'), _tool_call("{oops")])
    response = SimpleNamespace(id="resp-1", choices=[SimpleNamespace(message=message)])
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    converted = ai_message(response, usage=usage, metadata={"model_name": "m"})
    assert converted.content == "" and converted.id == "resp-1"
    assert converted.tool_calls == [
        {"name": "lookup", "args": {"city": "Oslo"}, "id": "call_1", "type": "tool_call"}
    ]
    assert converted.invalid_tool_calls[0]["args"] == "{oops"  # kept, not lost
    assert converted.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    assert converted.response_metadata == {"model_name": "m"}


def test_stream_chunks_carry_content_and_tool_call_deltas_but_no_usage() -> None:
    def chunk(content=None, tool_calls=None, finish_reason=None):
        delta = SimpleNamespace(content=content, tool_calls=tool_calls)
        return SimpleNamespace(id="c", choices=[SimpleNamespace(delta=delta, finish_reason=finish_reason)])

    text, reason = message_chunk(chunk("Hel"))
    assert text.content == "Hel" and text.usage_metadata is None and reason is None
    delta = SimpleNamespace(index=0, id="call_1", function=SimpleNamespace(name="lookup", arguments='{"ci'))
    calls, _ = message_chunk(chunk(tool_calls=[delta]))
    assert calls.tool_call_chunks[0]["name"] == "lookup" and calls.tool_call_chunks[0]["args"] == '{"ci'
    assert message_chunk(chunk(finish_reason="stop")) == (None, "stop")
    assert message_chunk(SimpleNamespace(choices=[])) == (None, None)


# ---------------------------------------------------------------- tools and tracing
@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("any", "required"),
        ("required", "required"),
        (True, {"type": "function", "function": {"name": "lookup"}}),
        ("auto", "auto"),
        ("lookup", {"type": "function", "function": {"name": "lookup"}}),
    ],
)
def test_bind_tools_sends_openai_tools_and_tool_choice(llm: RoutooChat, choice, sent) -> None:
    bound = llm.bind_tools([lookup], tool_choice=choice)
    assert bound.kwargs["tools"][0]["function"]["name"] == "lookup"
    assert bound.kwargs["tool_choice"] == sent


def test_bind_tools_refuses_a_tool_choice_naming_no_tool(llm: RoutooChat) -> None:
    with pytest.raises(ConfigError, match="names no bound tool"):
        llm.bind_tools([lookup], tool_choice="search")


def test_structured_output_binds_a_schema_for_each_method(llm: RoutooChat) -> None:
    class City(BaseModel):
        name: str

    json_schema = llm.with_structured_output(City, method="json_schema", strict=True).first.kwargs
    assert json_schema["response_format"]["json_schema"]["schema"]["required"] == ["name"]
    assert json_schema["response_format"]["json_schema"]["strict"] is True
    assert llm.with_structured_output(City, method="json_mode").first.kwargs["response_format"] == {
        "type": "json_object"
    }
    calling = llm.with_structured_output(City).first.kwargs
    assert calling["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    with pytest.raises(ConfigError, match="unknown structured output method"):
        llm.with_structured_output(City, method="xml")


def test_tracing_names_the_pool_and_the_standard_params(llm: RoutooChat) -> None:
    params = llm._get_ls_params(stop=["END"], temperature=0.2, max_tokens=9)
    assert params == {
        "ls_provider": "routoo",
        "ls_model_name": "scripted/small,scripted/tiny,scripted/large",
        "ls_model_type": "chat",
        "ls_temperature": 0.2,
        "ls_max_tokens": 9,
        "ls_stop": ["END"],
    }


def test_standard_params_reach_litellm_through_the_router(planted_dataset, tmp_path_factory) -> None:
    register_scripted_provider()
    llm = RoutooChat(
        models=POOL,
        predictor=saved_predictor(planted_dataset, tmp_path_factory),
        temperature=0.3,
        max_tokens=50,
        timeout=20,
        max_retries=1,
        api_key="sk-test",
        model_kwargs={"seed": 7},
    )
    # The key is kept secret on the router and revealed only in the call sent to litellm.
    assert isinstance(llm.router.litellm_params["api_key"], SecretStr)
    assert reveal_secrets(llm.router.litellm_params) == {
        "temperature": 0.3,
        "max_tokens": 50,
        "timeout": 20,
        "max_retries": 1,
        "api_key": "sk-test",
        "seed": 7,
    }
    assert "sk-test" not in repr(llm)


# ------------------------------------------------------------------------- run tree
def test_the_run_tree_finds_the_outermost_run_and_forgets_finished_runs() -> None:
    seen = {}

    def inner(value: str, config) -> str:
        parent = config["callbacks"].parent_run_id  # this lambda's run
        seen["root"] = RUN_TREE.root_of(parent)
        seen["budget"] = RUN_TREE.budget_for(parent, RunBudget(1.0))
        assert RUN_TREE.budget_for(parent, RunBudget(1.0)) is seen["budget"]
        return value

    def outer(value: str, config) -> str:
        seen["outer"] = config["callbacks"].parent_run_id
        return RunnableLambda(inner).invoke(value)  # LangChain's context makes it a child run

    open_before = RUN_TREE.open_runs()
    RunnableLambda(outer).invoke("x")
    assert seen["root"] == seen["outer"]
    assert RUN_TREE.open_runs() == open_before
    assert RUN_TREE.budget_for(None, RunBudget(1.0)) is not RUN_TREE.budget_for(None, RunBudget(1.0))
    shared = Budget(1.0)
    assert RUN_TREE.budget_for(seen["outer"], RunBudget(shared)) is shared  # a Budget is used as is


# -------------------------------------------------------------------------- router=
def test_a_given_router_is_the_one_every_call_goes_through(planted_dataset, tmp_path_factory) -> None:
    register_scripted_provider()
    router = Router(POOL, saved_predictor(planted_dataset, tmp_path_factory), {"tradeoff": 2.0})
    llm = RoutooChat(router=router, stop=["END"])
    assert llm.router is router and llm.policy is router.policy
    assert llm._identifying_params["tradeoff"] == 2.0
    built = RoutooChat(models=POOL, predictor=router.predictor, policy={"max_cost": 1.0}, tradeoff=3.0)
    assert built.policy == RoutingPolicy(tradeoff=3.0, max_cost=1.0)  # the shorthand merged over policy


@pytest.mark.parametrize(
    "settings",
    [
        *ROUTER_BUILDING_SETTINGS,
        {"temperature": 0.2},
        {"model_kwargs": {"seed": 1}},
    ],
)
def test_a_router_and_settings_that_would_build_another_are_refused(
    planted_dataset, tmp_path_factory, settings: dict
) -> None:
    router = Router(POOL, saved_predictor(planted_dataset, tmp_path_factory))
    [name] = settings
    with pytest.raises(ConfigError, match=f"router= and .*{name}"):
        RoutooChat(router=router, **settings)


def test_without_router_or_models_there_is_no_pool() -> None:
    with pytest.raises(ConfigError, match=r"models= .* or router="):
        RoutooChat()
    with pytest.raises(ConfigError, match="routoo Router"):
        RoutooChat(router="gpt-4o")


# ----------------------------------------------------------------------------- errors
def test_routoo_errors_reach_the_caller_unwrapped(planted_dataset, tmp_path_factory, tmp_path: Path) -> None:
    register_scripted_provider()
    predictor = saved_predictor(planted_dataset, tmp_path_factory)
    with pytest.raises(UnknownModelError, match="scored like 'nobody'"):
        RoutooChat(models=[{"name": "scripted/small", "like": "nobody"}], predictor=predictor)
    with pytest.raises(PredictorLoadError):
        RoutooChat(models=POOL, predictor=tmp_path)
    with pytest.raises(ConfigError, match="max_fallbacks"):
        RoutooChat(models=POOL, predictor=predictor, max_fallbacks=-1)
    fitted = load_predictor(predictor)
    llm = RoutooChat(models=POOL, predictor=fitted)
    assert llm.router.predictor is fitted
    json.dumps(llm._identifying_params)
