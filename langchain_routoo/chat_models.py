"""``RoutooChat``: a LangChain chat model that routes every call to the best model of a pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import (
    JsonOutputKeyToolsParser,
    JsonOutputParser,
    PydanticOutputParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_function, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from langchain_routoo.budgets import RUN_TREE
from langchain_routoo.config import RoutingOverrides, routing_overrides
from langchain_routoo.messages import (
    ai_message,
    final_chunk,
    message_chunk,
    routed_metadata,
    to_litellm_messages,
)
from routoo.budget import Budget, budget_scope, open_budgets
from routoo.errors import ConfigError
from routoo.pool import ModelSpec
from routoo.predictors.base import Predictor
from routoo.prompts import PromptView
from routoo.router import Router
from routoo.selector import Selector

# The routing settings of a call travel from the public entry points (which see the call's
# config) to ``_generate`` / ``_stream`` (which do not) as this keyword argument.
_OVERRIDES_KWARG = "_routoo_overrides"

StructuredOutputMethod = Literal["function_calling", "json_schema", "json_mode"]


class RoutooChat(BaseChatModel):
    """A chat model over a pool of LLMs: each call goes to the model Routoo predicts is best for it.

    Drop-in for any LangChain chat model::

        llm = RoutooChat(models=["gpt-4o", "gpt-4o-mini"])  # instead of ChatOpenAI(model="gpt-4o")
        chain = prompt | llm | StrOutputParser()

    A model the predictor does not know is given as ``{"name": ..., "like": <one it knows>}``.

    The router is built once, here: the predictor scores every pool model on each prompt
    without calling any, the selector trades predicted quality against estimated cost
    (``tradeoff``, ``quality_floor``, ``max_cost``), and the call goes through litellm to
    the chosen model, falling back to the next one on provider errors. Tool calls and
    structured output only go to models able to do them.

    Each answer's ``response_metadata`` holds ``model_name`` (the pool model that answered),
    ``cost_usd`` and ``routoo_decision`` (predicted qualities, estimated costs, rule,
    fallbacks). Budgets and per-call settings come from the runnable config: see
    ``langchain_routoo.config`` and ``budget_scope``.
    """

    models: list[str | ModelSpec | dict[str, Any]]
    """The pool: litellm model strings, ``ModelSpec`` s, or dicts of ``ModelSpec`` fields
    (``{"name": "openai/my-model", "like": "gpt-4o-mini"}`` scores a model the predictor does
    not know as one it does)."""
    predictor: Predictor | str | Path | None = None
    """A fitted predictor, the directory of a saved one, or None for Routoo's default predictor."""
    tradeoff: float | None = None
    """How many units of predicted quality one USD is worth giving up; None: the selector's default."""
    quality_floor: float | None = None
    """Pick the cheapest model predicted to reach this quality."""
    max_cost: float | None = None
    """Only models whose estimated cost per call is at most this many USD."""
    prompt_view: PromptView | None = None
    """What the predictor reads: ``"last_user"`` or ``"conversation"``; None: the predictor's own."""
    max_fallbacks: int = 2
    """How many other models to try when the chosen one fails with a provider error."""
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    """Seconds per request, passed to litellm."""
    max_retries: int | None = None
    """Retries of one model by litellm's client before Routoo falls back to the next model."""
    stop: list[str] | None = None
    api_key: SecretStr | None = None
    """One key for every pool model (a single-provider pool); per-model keys go in
    ``ModelSpec.litellm_params``."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other litellm ``completion`` parameters sent with every call."""
    streaming: bool = False
    """Whether ``invoke`` streams from the provider internally (callbacks then get tokens)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _router: Router = PrivateAttr()
    _pinned_routers: dict[str, Router] = PrivateAttr(default_factory=dict)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Built outside pydantic's validation so that Routoo's own errors (an unknown model,
        # a missing price, a corrupted predictor) reach the caller unwrapped.
        self._router = self._new_router(self.predictor)

    # --------------------------------------------------------------------- routing
    @property
    def router(self) -> Router:
        """The ``routoo.Router`` every call goes through."""
        return self._router

    @property
    def spent(self) -> float:
        """USD really spent through this model so far."""
        return self._router.spent + sum(router.spent for router in self._pinned_routers.values())

    def _new_router(
        self, predictor: Predictor | str | Path | None, selector: Selector | None = None
    ) -> Router:
        return Router(
            self.models,
            predictor,
            selector,
            prompt_view=self.prompt_view,
            max_fallbacks=self.max_fallbacks,
            litellm_params=self._litellm_params(),
        )

    def _router_for(self, model: str | None) -> Router:
        """The router of the whole pool, or one allowed only ``model`` for a per-call override."""
        if model is None:
            return self._router
        if model not in self._router.models:
            raise ConfigError(f"model={model!r} is not in this RoutooChat's pool {self._router.models}")
        if model not in self._pinned_routers:
            router = self._new_router(self._router.predictor, Selector(allow=[model]))
            self._pinned_routers.setdefault(model, router)  # atomic: concurrent calls share one
        return self._pinned_routers[model]

    def _litellm_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "api_key": self.api_key.get_secret_value() if self.api_key else None,
        }
        return {**{key: value for key, value in params.items() if value is not None}, **self.model_kwargs}

    def _prepare(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> _RoutedCall:
        overrides: RoutingOverrides | None = kwargs.pop(_OVERRIDES_KWARG, None)
        if overrides is None:  # reached without a public entry point: the run's config is all there is
            overrides = routing_overrides(ensure_config().get("configurable") or {})
        router = self._router_for(kwargs.pop("model", None))
        options = {
            "tradeoff": _first_set(overrides.tradeoff, self.tradeoff),
            "quality_floor": _first_set(overrides.quality_floor, self.quality_floor),
            "max_cost": _first_set(overrides.max_cost, self.max_cost),
            **kwargs,
        }
        if stop := stop or self.stop:
            options["stop"] = stop
        budget = overrides.budget
        if isinstance(budget, float):
            parent_run_id = run_manager.parent_run_id if run_manager else None
            budget = RUN_TREE.budget_for(parent_run_id, budget, overrides.budget_mode)
        return _RoutedCall(router, to_litellm_messages(messages), options, budget)

    # ------------------------------------------------------- BaseChatModel hooks
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, run_manager, kwargs)
        with call.budget_open():
            routed = call.router.completion(call.messages, **call.options)
        return _chat_result(routed)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, run_manager, kwargs)
        with call.budget_open():
            routed = await call.router.acompletion(call.messages, **call.options)
        return _chat_result(routed)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, run_manager, kwargs)
        with call.budget_open():
            stream = call.router.stream(call.messages, **call.options)
        with stream:  # a stream left early is still charged for what it produced
            finish_reason = None
            for chunk in stream:
                message, reason = message_chunk(chunk)
                finish_reason = reason or finish_reason
                if message is not None:
                    yield ChatGenerationChunk(message=message)
        yield ChatGenerationChunk(message=_last_chunk(stream, finish_reason))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, run_manager, kwargs)
        with call.budget_open():
            stream = await call.router.astream(call.messages, **call.options)
        async with stream:  # a stream left early is still charged for what it produced
            finish_reason = None
            async for chunk in stream:
                message, reason = message_chunk(chunk)
                finish_reason = reason or finish_reason
                if message is not None:
                    yield ChatGenerationChunk(message=message)
        yield ChatGenerationChunk(message=_last_chunk(stream, finish_reason))

    @property
    def _llm_type(self) -> str:
        return "routoo-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "models": self._router.models,
            "tradeoff": self.tradeoff,
            "quality_floor": self.quality_floor,
            "max_cost": self.max_cost,
            "prompt_view": self._router.prompt_view,
        }

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        # The routing settings are not provider parameters: keep them out of traces and options.
        kwargs.pop(_OVERRIDES_KWARG, None)
        return super()._get_invocation_params(stop=stop, **kwargs)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """Tracing parameters. The model is only known after routing, so ``ls_model_name`` names
        the pool (or the per-call ``model`` override); each answer's ``response_metadata``
        names the model that answered."""
        params = LangSmithParams(
            ls_provider="routoo",
            ls_model_name=kwargs.get("model") or ",".join(self._router.models),
            ls_model_type="chat",
        )
        if (temperature := kwargs.get("temperature", self.temperature)) is not None:
            params["ls_temperature"] = temperature
        if (max_tokens := kwargs.get("max_tokens", self.max_tokens)) is not None:
            params["ls_max_tokens"] = max_tokens
        if stop := stop or self.stop:
            params["ls_stop"] = stop
        return params

    # ------------------------------------------------- entry points that see the config
    # BaseChatModel does not make a call's own config visible to ``_generate``: read the
    # routoo keys here, where it is (merged with that of any enclosing chain run).
    def invoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        """Route and answer one input (see ``BaseChatModel.invoke``)."""
        return super().invoke(input, config, **_with_overrides(config, kwargs))

    async def ainvoke(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AIMessage:
        """Async ``invoke``."""
        return await super().ainvoke(input, config, **_with_overrides(config, kwargs))

    def stream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[AIMessageChunk]:
        """Route one input and stream the chosen model's answer; usage and routing metadata
        come once, on the last chunk."""
        return super().stream(input, config, **_with_overrides(config, kwargs))

    def astream(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        """Async ``stream``."""
        return super().astream(input, config, **_with_overrides(config, kwargs))

    def stream_events(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        """See ``BaseChatModel.stream_events``; ``version="v3"`` streams without calling ``stream``."""
        if kwargs.get("version") == "v3":
            kwargs = _with_overrides(config, kwargs)
        return super().stream_events(input, config, **kwargs)

    def astream_events(
        self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        """See ``BaseChatModel.astream_events``; ``version="v3"`` streams without calling ``astream``."""
        if kwargs.get("version") == "v3":
            kwargs = _with_overrides(config, kwargs)
        return super().astream_events(input, config, **kwargs)

    # ------------------------------------------------------ tools and structured output
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools in OpenAI format; only models able to call tools are routed to.

        ``tool_choice``: ``"auto"``, ``"none"``, ``"any"`` / ``"required"`` / ``True`` (call
        some tool), a tool's name, or an OpenAI ``tool_choice`` dict.
        """
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = _openai_tool_choice(tool_choice, formatted)
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: StructuredOutputMethod = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Answers parsed into ``schema`` (a pydantic class, TypedDict or JSON schema).

        ``method``: ``"function_calling"`` (a forced tool call; tool-calling models only),
        ``"json_schema"`` (``response_format`` with the schema; models supporting response
        schemas only) or ``"json_mode"`` (JSON object output; the prompt must describe the
        keys). ``include_raw`` returns ``{"raw", "parsed", "parsing_error"}``.
        """
        if kwargs:
            raise ConfigError(f"with_structured_output got unsupported arguments {sorted(kwargs)}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
        tracing = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        llm: Runnable[LanguageModelInput, AIMessage]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            tool_name = convert_to_openai_tool(schema)["function"]["name"]
            llm = self.bind_tools(
                [schema], tool_choice=tool_name, strict=strict, ls_structured_output_format=tracing
            )
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if is_pydantic
                else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
            )
        elif method in ("json_schema", "json_mode"):
            llm = self.bind(
                response_format=_response_format(schema, method, strict),
                ls_structured_output_format=tracing,
            )
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
        else:
            raise ConfigError(
                f"unknown structured output method {method!r}; "
                "use 'function_calling', 'json_schema' or 'json_mode'"
            )
        if not include_raw:
            return llm | parser
        parse_raw = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        keep_error = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse_raw.with_fallbacks([keep_error], exception_key="parsing_error")


@dataclass(frozen=True)
class _RoutedCall:
    """One call, ready for the router: its messages, routing and litellm options, and budget."""

    router: Router
    messages: list[dict[str, Any]]
    options: dict[str, Any]
    budget: Budget | None

    @contextmanager
    def budget_open(self) -> Iterator[None]:
        """Open the call's budget unless an enclosing scope already has it (it would be charged twice)."""
        if self.budget is None or any(budget is self.budget for budget in open_budgets()):
            yield
            return
        with budget_scope(self.budget):
            yield


def _with_overrides(config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    configurable = ensure_config(config).get("configurable") or {}
    return {**kwargs, _OVERRIDES_KWARG: routing_overrides(configurable)}


def _first_set(*values: float | None) -> float | None:
    return next((value for value in values if value is not None), None)


def _chat_result(routed: Any) -> ChatResult:
    finish_reason = routed.response.choices[0].finish_reason
    metadata = routed_metadata(routed.model, routed.cost_usd, routed.decision.to_dict(), finish_reason)
    message = ai_message(routed.response, usage=routed.usage, metadata=metadata)
    return ChatResult(generations=[ChatGeneration(message=message)])


def _last_chunk(stream: Any, finish_reason: str | None) -> AIMessageChunk:
    metadata = routed_metadata(stream.model, stream.cost_usd, stream.decision.to_dict(), finish_reason)
    return final_chunk(usage=stream.usage, metadata=metadata)


def _openai_tool_choice(choice: str | dict[str, Any] | bool, tools: list[dict[str, Any]]) -> Any:
    names = [tool["function"]["name"] for tool in tools]
    if isinstance(choice, dict):
        return choice
    if choice is True or choice in ("any", "required"):
        if choice is True and len(names) == 1:
            return {"type": "function", "function": {"name": names[0]}}
        return "required"
    if choice in ("auto", "none"):
        return choice
    if choice in names:
        return {"type": "function", "function": {"name": choice}}
    raise ConfigError(f"tool_choice={choice!r} names no bound tool; the tools are {names}")


def _response_format(schema: dict[str, Any] | type, method: str, strict: bool | None) -> dict[str, Any]:
    if method == "json_mode":
        return {"type": "json_object"}
    if isinstance(schema, Mapping) and "json_schema" in schema:
        return dict(schema)  # already an OpenAI response_format
    function = convert_to_openai_function(schema, strict=strict)
    json_schema: dict[str, Any] = {"name": function["name"], "schema": function["parameters"]}
    if function.get("description"):
        json_schema["description"] = function["description"]
    if strict is not None:
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}
