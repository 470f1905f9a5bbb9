"""The Router end to end, offline: decisions, filters, fallbacks, budgets, streams, bad input.

Calls go to ``routoo.testing``'s scripted litellm provider; the predictor is a fixed
keyword table implementing the Predictor contract (a test double of the contract).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import litellm
import numpy as np
import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, POOL
from pydantic import BaseModel

from routoo.budget import Budget, budget_scope
from routoo.data.dataset import RoutingDataset
from routoo.errors import (
    AllModelsFailedError,
    BudgetExceededError,
    ConfigError,
    DataError,
    NoAdmissibleModelError,
    PredictorError,
    PriceNotFoundError,
    UnknownModelError,
)
from routoo.evaluate import choose_models, trade_off_grid
from routoo.policy import RoutingPolicy
from routoo.predictors.base import Predictor
from routoo.router import Router
from routoo.selector import Selector
from routoo.testing import SCRIPTED_MODELS, ScriptedLLM, register_scripted_provider

# Predicted quality of math-model, poet-model, big-model by what the prompt asks. conftest's POOL
# scores scripted/small as the math model, tiny (cheapest, text only) as the poet, large (priciest) as big.
TABLE = {"math": [0.90, 0.10, 0.95], "poem": [0.10, 0.90, 0.95], "other": [0.50, 0.50, 0.90]}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer", "minimum": 1},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "days"],
            },
        },
    }
]


class KeywordPredictor(Predictor):
    """Predictions from a fixed table, chosen by keywords of the prompt."""

    kind = "keyword-table"

    def _fit(self, dataset: RoutingDataset) -> None:
        pass

    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        return np.array([TABLE[_topic(text)] for text in texts])

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        pass


def _topic(text: str) -> str:
    text = text.lower()
    if "how many" in text:
        return "math"
    if any(word in text for word in ("haiku", "poem", "sonnet")):
        return "poem"
    return "other"


@pytest.fixture
def predictor(planted_dataset) -> KeywordPredictor:
    return KeywordPredictor().fit(planted_dataset(n=12))


@pytest.fixture
def llm() -> ScriptedLLM:
    return register_scripted_provider()


@pytest.fixture
def router(predictor: KeywordPredictor, llm: ScriptedLLM) -> Router:
    return Router(POOL, predictor)


def price(model: str) -> tuple[float, float]:
    info = SCRIPTED_MODELS[model.removeprefix("scripted/")]
    return info["input_cost_per_token"], info["output_cost_per_token"]


# --------------------------------------------------------------------- deciding
def test_the_default_router_saves_money_where_quality_allows(router: Router) -> None:
    math, poem = router.route(MATH_PROMPT), router.route(POEM_PROMPT)
    assert (math.model, math.rule) == ("scripted/small", "tradeoff")
    assert (poem.model, poem.rule) == ("scripted/tiny", "tradeoff")
    assert math.alternatives == ["scripted/large", "scripted/tiny"]
    assert [c.model for c in math.candidates] == ["scripted/small", "scripted/large", "scripted/tiny"]
    small = math.candidate("scripted/small")
    assert small.predicted_quality == pytest.approx(0.9)
    assert small.admissible and small.reason is None
    # The estimate: prompt tokens x input price + the predictor's mean output tokens x output price.
    input_price, output_price = price("scripted/small")
    assert small.estimated_cost == pytest.approx(math.prompt_tokens * input_price + 50 * output_price)
    assert json.loads(json.dumps(math.to_dict()))["model"] == "scripted/small"


def test_rules_choose_as_asked(router: Router) -> None:
    assert router.route(MATH_PROMPT, tradeoff=0).model == "scripted/large"
    floor = router.route(MATH_PROMPT, quality_floor=0.85)
    assert (floor.model, floor.rule) == ("scripted/small", "quality_floor")
    unreachable = router.route(MATH_PROMPT, quality_floor=0.99)
    assert (unreachable.model, unreachable.rule) == ("scripted/large", "quality_floor_unreachable")
    large_cost = router.route(MATH_PROMPT).candidate("scripted/large").estimated_cost
    capped = router.route(MATH_PROMPT, max_cost=large_cost / 2)
    assert (capped.model, capped.rule) == ("scripted/small", "max_cost")
    with pytest.raises(NoAdmissibleModelError, match="max_cost"):
        router.route(MATH_PROMPT, max_cost=1e-12)


def test_a_policy_set_once_and_overridden_per_call(predictor: KeywordPredictor, llm: ScriptedLLM) -> None:
    router = Router(POOL, predictor, {"tradeoff": 0})
    assert router.policy == RoutingPolicy(tradeoff=0)
    assert router.route(MATH_PROMPT).model == "scripted/large"
    # A call's policy is merged over the router's; the shorthand keywords are the same override.
    floor = router.route(MATH_PROMPT, policy=RoutingPolicy(quality_floor=0.85))
    assert (floor.model, floor.rule) == ("scripted/small", "quality_floor")
    assert router.completion(MATH_PROMPT, policy={"quality_floor": 0.85}).model == "scripted/small"
    assert router.completion(MATH_PROMPT, quality_floor=0.85).model == "scripted/small"
    assert router.policy == RoutingPolicy(tradeoff=0)  # the router's own is unchanged
    # The old ways of giving it, kept for one release.
    assert Router(POOL, predictor, Selector(tradeoff=0)).policy == router.policy
    assert Router(POOL, predictor, selector=Selector(tradeoff=0)).policy == router.policy
    with pytest.raises(ConfigError, match="once"):
        Router(POOL, predictor, {"tradeoff": 0}, selector=Selector())
    with pytest.raises(ConfigError, match="tradeoff"):
        router.route(MATH_PROMPT, policy={"tradeoff": -1})


def test_pinning_a_model_is_a_policy_override_without_fallback(router: Router, llm: ScriptedLLM) -> None:
    pinned = router.route(POEM_PROMPT, policy={"model": "scripted/large"})
    assert (pinned.model, pinned.rule, pinned.alternatives) == ("scripted/large", "pinned", [])
    # Every candidate is still scored, so the decision shows what the pin costs.
    assert {c.model for c in pinned.candidates} == set(router.models)
    llm.fail("scripted/large", "rate_limit")
    with pytest.raises(AllModelsFailedError):
        router.completion(POEM_PROMPT, policy={"model": "scripted/large"})
    with pytest.raises(ConfigError, match="gpt-9"):
        router.route(POEM_PROMPT, policy={"model": "gpt-9"})
    with pytest.raises(NoAdmissibleModelError, match="scripted/tiny"):
        router.route(POEM_PROMPT, tools=TOOLS, policy={"model": "scripted/tiny"})


def test_predictor_text_replaces_what_the_predictor_reads(router: Router) -> None:
    rag = [{"role": "user", "content": f"Context: many poems about the sea.\n\nQuestion: {MATH_PROMPT}"}]
    assert router.route(rag, predictor_text=POEM_PROMPT).model == "scripted/tiny"
    full, short = router.route(rag, predictor_text=POEM_PROMPT), router.route(POEM_PROMPT)
    assert full.prompt_tokens > short.prompt_tokens  # cost still counts the whole prompt


def test_max_tokens_caps_the_expected_output(router: Router) -> None:
    decision = router.route(MATH_PROMPT, max_tokens=10)
    input_price, output_price = price("scripted/small")
    expected = decision.prompt_tokens * input_price + 10 * output_price
    assert decision.candidate("scripted/small").estimated_cost == pytest.approx(expected)


def test_estimate_gives_quality_and_cost_for_many_prompts(router: Router) -> None:
    quality, cost = router.estimate([MATH_PROMPT, POEM_PROMPT, MATH_PROMPT])
    assert quality.shape == cost.shape == (3, 3)
    np.testing.assert_allclose(quality[1], TABLE["poem"])  # the pool is in predictor order
    single = router.route(POEM_PROMPT)
    assert cost[1, 1] == pytest.approx(single.candidate("scripted/tiny").estimated_cost)


class TiedPredictor(KeywordPredictor):
    """The keyword table, and one quality for every model on prompts about coins (exact ties)."""

    kind = "keyword-table-tied"

    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        table = super()._predict_texts(texts)
        table[["coin" in text.lower() for text in texts]] = 0.6
        return table


def test_route_chooses_what_the_evaluator_measures(planted_dataset, llm: ScriptedLLM) -> None:
    # The evaluator's curves and Router.route share one selection rule: on the router's own
    # estimates they choose alike, at every lambda of the sweep's grid, where candidates tie exactly
    # (the grid sits on switch points) and where all three models are predicted alike.
    router = Router(POOL, TiedPredictor().fit(planted_dataset(n=12)))
    prompts = [MATH_PROMPT, POEM_PROMPT, "Tell me about Paris.", "Toss a coin.", "Flip a coin, twice."]
    quality, cost = router.estimate(prompts)
    trade_offs = np.concatenate([trade_off_grid(quality, cost, 40), [1e6]])
    choices = choose_models(quality, cost, trade_offs)
    for prompt, chosen in zip(prompts, choices, strict=True):
        routed = [router.route(prompt, tradeoff=float(trade_off)).model for trade_off in trade_offs]
        assert routed == [router.models[i] for i in chosen]
    assert set(choices[3]) == {router.models.index("scripted/tiny")}  # a tie goes to the cheapest


# ---------------------------------------------------------------------- filters
def test_tools_admit_only_function_calling_models(router: Router) -> None:
    decision = router.route(POEM_PROMPT, tools=TOOLS)
    assert decision.model != "scripted/tiny"
    tiny = decision.candidate("scripted/tiny")
    assert not tiny.admissible and "function calling" in tiny.reason
    assert "scripted/tiny" not in decision.alternatives


def test_images_admit_only_vision_models(router: Router) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": MATH_PROMPT}, image]}]
    decision = router.route(messages)
    assert decision.model == "scripted/large"
    assert "vision" in decision.candidate("scripted/small").reason


def test_a_json_schema_response_format_needs_response_schema_support(router: Router) -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    decision = router.route(POEM_PROMPT, response_format=schema)
    assert "response schemas" in decision.candidate("scripted/tiny").reason


def test_prompts_longer_than_a_context_window_skip_that_model(router: Router) -> None:
    long_poem = POEM_PROMPT + " Make it about the sea." * 500  # about 3,000 tokens: over tiny's 2,048
    decision = router.route(long_poem)
    assert decision.prompt_tokens > 2048
    assert decision.model != "scripted/tiny"
    assert "context" in decision.candidate("scripted/tiny").reason


def test_allow_deny_and_latency_limits(predictor: KeywordPredictor, llm: ScriptedLLM) -> None:
    denied = Router(POOL, predictor, Selector(deny=["scripted/small"])).route(MATH_PROMPT)
    assert denied.model != "scripted/small"
    allowed = Router(POOL, predictor, Selector(allow=["scripted/large"])).route(POEM_PROMPT)
    assert (allowed.model, allowed.alternatives) == ("scripted/large", [])
    slow_pool = [POOL[0], POOL[1], {**POOL[2], "latency_s": 8.0}]
    fast = Router(slow_pool, predictor, Selector(tradeoff=0, max_latency_s=2.0)).route(MATH_PROMPT)
    assert fast.model == "scripted/small"
    assert "latency" in fast.candidate("scripted/large").reason
    with pytest.raises(ConfigError, match="gpt-9"):
        Router(POOL, predictor, Selector(allow=["gpt-9"]))


def test_no_servable_model_lists_every_reason(router: Router) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": POEM_PROMPT}, image]}]
    with pytest.raises(NoAdmissibleModelError, match=r"scripted/small: .*vision.*scripted/tiny: .*function"):
        Router(POOL[:2], router.predictor).route(messages, tools=TOOLS)


# ---------------------------------------------------------------------- calling
def test_completion_reports_decision_cost_and_usage(router: Router, llm: ScriptedLLM) -> None:
    routed = router.completion(MATH_PROMPT, temperature=0.2)
    assert routed.model == routed.decision.model == "scripted/small"
    assert routed.response.choices[0].message.content.startswith("scripted/small answers")
    assert llm.calls[-1].params["temperature"] == 0.2
    usage = routed.response.usage
    assert routed.usage == {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
    input_price, output_price = price("scripted/small")
    expected = usage.prompt_tokens * input_price + usage.completion_tokens * output_price
    assert routed.cost_usd == pytest.approx(expected)
    assert router.spent == pytest.approx(expected)
    hidden = routed.response._hidden_params["routoo"]
    assert hidden["model"] == "scripted/small" and hidden["cost_usd"] == routed.cost_usd
    assert hidden["rule"] == "tradeoff" and hidden["fallbacks"] == []


def test_spec_prices_price_the_real_cost(predictor: KeywordPredictor, llm: ScriptedLLM) -> None:
    custom = {"name": "scripted/house", "like": "math-model"}
    custom |= {"input_cost_per_token": 1e-6, "output_cost_per_token": 3e-6, "supports_function_calling": True}
    router = Router([custom], predictor)
    routed = router.completion(MATH_PROMPT)
    usage = routed.usage
    assert routed.cost_usd == pytest.approx(usage["prompt_tokens"] * 1e-6 + usage["completion_tokens"] * 3e-6)


def test_tool_calls_carry_schema_valid_arguments(router: Router) -> None:
    routed = router.completion("What is the weather in Paris?", tools=TOOLS, tool_choice="auto")
    (call,) = routed.response.choices[0].message.tool_calls
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "get_weather"
    assert (
        isinstance(arguments["city"], str) and isinstance(arguments["days"], int) and arguments["days"] >= 1
    )
    assert arguments["unit"] in ("celsius", "fahrenheit")
    answered = router.completion(
        [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"},
        ],
        tools=TOOLS,
    )
    assert "18 C and sunny" in answered.response.choices[0].message.content
    none = router.completion("What is the weather in Paris?", tools=TOOLS, tool_choice="none")
    assert none.response.choices[0].message.tool_calls is None


def test_response_format_schemas_get_matching_json(router: Router) -> None:
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "integer"},
            "steps": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["answer", "steps"],
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "solution", "schema": schema}}
    routed = router.completion(MATH_PROMPT, response_format=response_format)
    content = json.loads(routed.response.choices[0].message.content)
    assert isinstance(content["answer"], int) and isinstance(content["steps"], list)


def test_tool_choice_is_respected(router: Router) -> None:
    second = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    named = {"type": "function", "function": {"name": "get_time"}}
    routed = router.completion("What is the weather?", tools=[*TOOLS, second], tool_choice=named)
    assert routed.response.choices[0].message.tool_calls[0].function.name == "get_time"
    required = router.completion("Hello", tools=[*TOOLS, second], tool_choice="required")
    assert required.response.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_a_pydantic_response_format_gets_matching_json(router: Router) -> None:
    class Solution(BaseModel):
        answer: int
        explanation: str

    routed = router.completion(MATH_PROMPT, response_format=Solution)
    assert routed.decision.candidate("scripted/tiny").admissible is False  # no response schemas
    Solution.model_validate_json(routed.response.choices[0].message.content)


def test_json_mode_answers_with_the_keys_the_prompt_asks_for(llm: ScriptedLLM) -> None:
    def ask(prompt: str, system: str | None = None) -> dict[str, Any]:
        turns = [{"role": "system", "content": system}] if system else []
        response = litellm.completion(
            model="scripted/small",
            messages=[*turns, {"role": "user", "content": prompt}],
            response_format={"type": "json_object"},  # JSON mode: no schema, the prompt names the keys
        )
        return json.loads(response.choices[0].message.content)

    joke = "Tell me a joke about dogs. Answer in JSON with the keys 'setup' and 'punchline'."
    answer = ask(joke)
    assert list(answer) == ["setup", "punchline"] and all(isinstance(v, str) and v for v in answer.values())
    assert ask(joke) == answer  # deterministic
    fields = 'Reply as JSON with the fields "name" and "country".'
    assert list(ask("Name a city.", system=fields)) == ["name", "country"]
    # Format instructions (LangChain's, say) quote an example first and the schema to follow last.
    example = json.dumps({"properties": {"foo": {"type": "string"}}})
    schema = json.dumps({"properties": {"city": {"type": "string"}, "year": {"type": "integer"}}})
    instructions = f'For the schema {example} write {{"foo": "bar"}}. Your schema:\n{schema}'
    assert ask(f"When was Paris founded? {instructions}") == {"city": "example", "year": 1}
    assert ask('Reply like {"sum": 0, "unit": "apples"}: how many apples?') == {"sum": 0, "unit": "apples"}
    # Quoted words name no keys unless the prompt speaks of keys; with no keys, it answers under "answer".
    plain = ask("Is 'hello' a greeting?")
    assert plain == {"answer": "scripted/small answers: Is 'hello' a greeting?"}


@pytest.mark.parametrize(
    ("failure", "error_type"),
    [
        ("rate_limit", "RateLimitError"),
        ("timeout", "Timeout"),
        ("server_error", "InternalServerError"),
        ("unavailable", "ServiceUnavailableError"),
        ("connection", "APIConnectionError"),
        ("context_window", "ContextWindowExceededError"),
    ],
)
def test_provider_failures_fall_back_to_the_next_model(
    router: Router, llm: ScriptedLLM, failure: str, error_type: str
) -> None:
    llm.fail("scripted/small", failure)
    routed = router.completion(MATH_PROMPT)
    assert routed.model == "scripted/large" and routed.decision.model == "scripted/small"
    (fallback,) = routed.decision.fallbacks
    assert (fallback.model, fallback.error_type) == ("scripted/small", error_type)
    assert routed.response._hidden_params["routoo"]["fallbacks"][0]["error_type"] == error_type
    # A refused call cost nothing; a timed-out one may have been billed: it is charged its reservation.
    charged = routed.decision.candidate("scripted/small").cost_bound if failure == "timeout" else 0.0
    assert router.spent == pytest.approx(routed.cost_usd + charged)


@pytest.mark.parametrize(
    ("failure", "error_type"),
    [("bad_request", litellm.BadRequestError), ("auth", litellm.AuthenticationError)],
)
def test_a_bad_request_or_a_bad_key_raises_at_once(
    router: Router, llm: ScriptedLLM, failure: str, error_type: type[Exception]
) -> None:
    llm.fail("scripted/small", failure)
    with pytest.raises(error_type):
        router.completion(MATH_PROMPT)
    assert llm.calls_to("scripted/large") == llm.calls_to("scripted/tiny") == 0
    assert router.spent == 0.0


def test_all_models_failing_raises_with_the_last_error_chained(router: Router, llm: ScriptedLLM) -> None:
    for model in router.models:
        llm.fail(model, "server_error", times=None)
    with pytest.raises(AllModelsFailedError, match="3 attempted") as caught:
        router.completion(MATH_PROMPT)
    assert isinstance(caught.value.__cause__, litellm.InternalServerError)
    assert router.spent == 0.0


def test_max_fallbacks_limits_the_attempts(predictor: KeywordPredictor, llm: ScriptedLLM) -> None:
    router = Router(POOL, predictor, max_fallbacks=0)
    llm.fail("scripted/small", "rate_limit")
    with pytest.raises(AllModelsFailedError, match="1 attempted"):
        router.completion(MATH_PROMPT)
    assert llm.calls_to("scripted/large") == 0


async def test_async_completion_falls_back_and_reports(router: Router, llm: ScriptedLLM) -> None:
    llm.fail("scripted/tiny", "timeout")
    routed = await router.acompletion(POEM_PROMPT)
    assert routed.model == routed.decision.alternatives[0]
    assert routed.decision.fallbacks[0].error_type == "Timeout"
    assert routed.response._hidden_params["routoo"]["cost_usd"] == routed.cost_usd > 0


# ----------------------------------------------------------------------- streams
def test_stream_reports_decision_first_and_cost_once_at_the_end(router: Router) -> None:
    plain = router.completion(POEM_PROMPT)
    with budget_scope(1.0) as budget:
        stream = router.stream(POEM_PROMPT)
    assert stream.decision.model == "scripted/tiny" and stream.cost_usd is None
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == plain.response.choices[0].message.content
    assert stream.usage == plain.usage
    assert stream.cost_usd == pytest.approx(plain.cost_usd)
    assert budget.spent == pytest.approx(stream.cost_usd)  # charged once, after the scope closed
    assert len(budget.records) == 1 and budget.reserved == 0
    assert router.spent == pytest.approx(2 * plain.cost_usd)
    assert stream.response._hidden_params["routoo"]["cost_usd"] == stream.cost_usd


def test_stream_falls_back_before_the_first_chunk_only(router: Router, llm: ScriptedLLM) -> None:
    llm.fail("scripted/tiny", "rate_limit")
    stream = router.stream(POEM_PROMPT)
    assert stream.model == stream.decision.alternatives[0]
    assert [f.model for f in stream.decision.fallbacks] == ["scripted/tiny"]
    list(stream)
    llm.fail("scripted/tiny", "server_error", after_chunks=2)
    with budget_scope(1.0) as budget:
        broken = router.stream(POEM_PROMPT)
        with pytest.raises(litellm.ServiceUnavailableError):  # litellm's mid-stream error
            list(broken)
    assert broken.model == "scripted/tiny" and broken.decision.fallbacks == []
    assert budget.spent == pytest.approx(broken.cost_usd) and broken.usage["completion_tokens"] > 0
    # Broken before the provider's usage came: what it billed is unknown, so the reservation is charged.
    assert broken.cost_usd == pytest.approx(broken.decision.candidate("scripted/tiny").cost_bound)
    assert budget.records[-1].basis == "reserved" and budget.reserved == 0


def test_closing_a_stream_early_charges_its_reservation(router: Router) -> None:
    with budget_scope(1.0) as budget, router.stream(POEM_PROMPT) as stream:
        next(iter(stream))
    assert budget.reserved == 0 and stream.usage["completion_tokens"] > 0
    assert stream.cost_usd == pytest.approx(stream.decision.candidate(stream.model).cost_bound)
    assert budget.spent == pytest.approx(stream.cost_usd) == router.spent


async def test_closing_an_async_stream_early_charges_its_reservation(router: Router) -> None:
    with budget_scope(1.0) as budget:
        stream = await router.astream(POEM_PROMPT)
    async with stream:
        await anext(stream)
    assert budget.reserved == 0
    assert stream.cost_usd == pytest.approx(stream.decision.candidate(stream.model).cost_bound)
    assert budget.spent == pytest.approx(stream.cost_usd)


async def test_astream_reports_like_stream(router: Router, llm: ScriptedLLM) -> None:
    plain = await router.acompletion(MATH_PROMPT)
    llm.fail("scripted/small", "unavailable")
    with budget_scope(1.0) as budget:
        stream = await router.astream(MATH_PROMPT)
    chunks = [chunk async for chunk in stream]
    assert stream.model == "scripted/large" and stream.decision.fallbacks[0].model == "scripted/small"
    assert sum(1 for chunk in chunks if getattr(chunk, "usage", None)) == 1
    assert stream.usage["total_tokens"] > 0
    assert budget.spent == pytest.approx(stream.cost_usd) and len(budget.records) == 1
    assert router.spent == pytest.approx(plain.cost_usd + stream.cost_usd)


# ----------------------------------------------------------------------- budgets
async def test_concurrent_calls_never_overspend_a_hard_budget(router: Router, llm: ScriptedLLM) -> None:
    llm.behave("scripted/small", answer_words=500)  # every answer runs far past the estimate
    bound = router.route(MATH_PROMPT, max_tokens=100).candidate("scripted/small").cost_bound
    with budget_scope(40 * bound, name="batch") as budget:
        results = await asyncio.gather(
            *(router.acompletion(MATH_PROMPT, max_tokens=100) for _ in range(200)), return_exceptions=True
        )
    answered = [result for result in results if not isinstance(result, Exception)]
    refused = [result for result in results if isinstance(result, Exception)]
    assert answered and refused
    assert all(isinstance(error, BudgetExceededError) for error in refused)
    assert "'batch'" in str(refused[0])
    assert budget.spent <= budget.limit_usd  # a true cap: each call reserved the most it could cost
    assert budget.reserved == 0
    assert budget.spent == pytest.approx(sum(result.cost_usd for result in answered))
    assert router.spent == pytest.approx(budget.spent)


def test_threaded_calls_keep_consistent_books(router: Router) -> None:
    with budget_scope(1.0) as budget:
        context = contextvars.copy_context()
        with ThreadPoolExecutor(max_workers=6) as pool:
            futures = [
                pool.submit(context.copy().run, router.completion, MATH_PROMPT if i % 2 else POEM_PROMPT)
                for i in range(40)
            ]
            results = [future.result() for future in futures]
    assert len(budget.records) == 40
    assert budget.spent == pytest.approx(sum(result.cost_usd for result in results))
    assert router.spent == pytest.approx(budget.spent)


def test_a_hard_budget_filters_models_it_cannot_afford(router: Router) -> None:
    decision = router.route(MATH_PROMPT, tradeoff=0)
    large = decision.candidate("scripted/large").cost_bound  # what a hard budget must hold for it
    with budget_scope(large / 2):
        constrained = router.route(MATH_PROMPT, tradeoff=0)
    assert (constrained.model, constrained.rule) == ("scripted/small", "budget")
    assert "could cost up to" in constrained.candidate("scripted/large").reason
    assert "4096 output tokens, its max_output_tokens" in constrained.candidate("scripted/large").reason
    with budget_scope(1e-9), pytest.raises(BudgetExceededError, match=r"\$1e-09"):
        router.completion(MATH_PROMPT)


def test_soft_budgets_shift_choices_to_cheaper_models_as_money_runs_out(router: Router) -> None:
    lam = 20.0  # at this lambda the large model is worth its price on math
    small_cost = router.route(MATH_PROMPT).candidate("scripted/small").estimated_cost
    chosen = []
    with budget_scope(Budget(30 * small_cost, mode="soft", expected_calls=30)) as budget:
        for _ in range(30):
            chosen.append(router.completion(MATH_PROMPT, tradeoff=lam).decision)
    assert chosen[0].model == "scripted/large" and chosen[0].rule == "tradeoff"
    shifted = [decision for decision in chosen if decision.model != "scripted/large"]
    assert shifted and all(decision.rule == "budget" for decision in shifted)
    assert chosen[-1].model != "scripted/large"
    assert shifted[0].tradeoff > lam
    assert budget.spent < 3 * budget.limit_usd  # with no soft limit, 30 large calls would cost far more


# -------------------------------------------------------------------- bad input
def test_bad_input_raises_clear_errors(router: Router, predictor: KeywordPredictor) -> None:
    with pytest.raises(DataError, match="messages"):
        router.completion([])
    with pytest.raises(DataError, match="empty"):
        router.route("   ")
    with pytest.raises(DataError, match="role"):
        router.route([{"content": "hi"}])
    with pytest.raises(ConfigError, match="model"):
        router.completion(MATH_PROMPT, model="scripted/large")
    with pytest.raises(ConfigError, match="stream"):
        router.completion(MATH_PROMPT, stream=True)
    with pytest.raises(ConfigError, match="tradeoff"):
        router.route(MATH_PROMPT, tradeoff=-1)
    with pytest.raises(ConfigError, match="limit_usd"), budget_scope("ten dollars"):
        pass
    # A model the predictor does not know is scored from a prior, but like= must name a known one.
    with pytest.raises(UnknownModelError, match=r"scripted/other.*nobody.*math-model.*poet-model.*big-model"):
        Router([*POOL, {"name": "scripted/other", "like": "nobody"}], predictor)
    with pytest.raises(PriceNotFoundError, match="scripted/unregistered"):
        Router([*POOL, {"name": "scripted/unregistered", "like": "big-model"}], predictor)
    with pytest.raises(ConfigError, match="max_fallbacks"):
        Router(POOL, predictor, max_fallbacks=-1)
    with pytest.raises(PredictorError, match="not fitted"):
        Router(POOL, KeywordPredictor())
