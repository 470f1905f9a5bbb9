"""``RoutooChat``: a LangChain chat model that routes every call to the best model of a pool.

The chat model holds one ``routoo.Router`` and forwards every call to it, as
langchain-litellm's ``ChatLiteLLMRouter`` holds a ``litellm.Router``: routing, fallback,
pricing and budgets are the Router's. What is LangChain's lives beside it: the ``routoo_*``
config keys (``config``), per-run budgets (``budgets``), message conversion (``messages``)
and tools and structured output (``tools``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from langchain_routoo.budgets import RUN_TREE
from langchain_routoo.config import RoutingOverrides, routing_overrides
from langchain_routoo.messages import chat_result, last_chunk, message_chunk, to_litellm_messages
from langchain_routoo.tools import StructuredOutputMethod, openai_tool_choice, structured_output
from routoo.budget import Budget, budget_scope
from routoo.decision_log import DecisionLog
from routoo.errors import ConfigError
from routoo.policy import RoutingPolicy
from routoo.pool import ModelSpec
from routoo.predictors.base import Predictor
from routoo.prompts import PromptView
from routoo.router import Router, router_or_build
from routoo.secrets import hide_secrets

# The routing settings of a call travel from the public entry points (which see the call's
# config) to ``_generate`` / ``_stream`` (which do not) as this keyword argument.
_OVERRIDES_KWARG = "_routoo_overrides"
# The fields that build the Router when none is given (``policy`` and its shorthand are
# constructor keywords, checked by ``RoutingPolicy``).
_ROUTER_FIELDS = frozenset(
    {"models", "predictor", "prompt_view", "max_fallbacks", "temperature", "max_tokens", "timeout"}
    | {"max_retries", "api_key", "model_kwargs", "log"}
)


class RoutooChat(BaseChatModel):
    """A chat model over a pool of LLMs: each call goes to the model Routoo predicts is best for it.

    Drop-in for any LangChain chat model::

        llm = RoutooChat(models=["gpt-4o", "gpt-4o-mini"])  # instead of ChatOpenAI(model="gpt-4o")
        llm = RoutooChat(router=Router([...], policy={"tradeoff": 2.0}))  # or around a Router
        chain = prompt | llm | StrOutputParser()

    A model the predictor does not know is given as ``{"name": ..., "like": <one it knows>}``.

    Every call goes through one ``routoo.Router``: the one given as ``router=``, or one built
    here from ``models``, ``predictor``, the routing ``policy`` (``tradeoff``,
    ``quality_floor`` and ``max_cost`` are shorthand for its fields), ``prompt_view``,
    ``max_fallbacks`` and the litellm parameters; giving a router and any of these is a
    ``ConfigError``. The predictor scores every pool model on each prompt without calling
    any, the policy trades predicted quality against estimated cost, and the call goes
    through litellm to the chosen model, falling back to the next one on provider errors.
    Tool calls and structured output only go to models able to do them.

    Each answer's ``response_metadata`` holds ``model_name`` (the pool model that answered),
    ``cost_usd`` and ``routoo_decision`` (predicted qualities, estimated costs, rule,
    fallbacks). Budgets and per-call settings come from the runnable config: see
    ``langchain_routoo.config`` and ``budget_scope``.
    """

    models: list[str | ModelSpec | dict[str, Any]] | None = None
    """The pool: litellm model strings, ``ModelSpec`` s, or dicts of ``ModelSpec`` fields
    (``{"name": "openai/my-model", "like": "gpt-4o-mini"}`` scores a model the predictor does
    not know as one it does). Required unless ``router`` is given."""
    predictor: Predictor | str | Path | None = None
    """A fitted predictor, the directory of a saved one, or None for Routoo's default predictor."""
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
    """Stop sequences sent with every call (a LangChain setting: also with ``router=``)."""
    api_key: SecretStr | None = None
    """One key for every pool model (a single-provider pool); per-model keys go in
    ``ModelSpec.litellm_params``."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other litellm ``completion`` parameters sent with every call; the secrets among them
    (``routoo.secrets``: ``api_key``, ``aws_secret_access_key``, ...) are kept as ``SecretStr``."""
    log: DecisionLog | str | Path | None = None
    """The Router's decision log: a ``routoo.DecisionLog`` or the path of its SQLite file."""
    streaming: bool = False
    """Whether ``invoke`` streams from the provider internally (callbacks then get tokens)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _router: Router = PrivateAttr()

    @field_validator("model_kwargs")
    @classmethod
    def _hide_secrets(cls, model_kwargs: dict[str, Any]) -> dict[str, Any]:
        return hide_secrets(model_kwargs)

    @field_validator("models")
    @classmethod
    def _hide_model_secrets(cls, models: list[Any] | None) -> list[Any] | None:
        # A pool model given as a dict is kept as given (the Router checks it): hide its keys here.
        return None if models is None else [_with_hidden_secrets(model) for model in models]

    def __init__(
        self,
        *,
        router: Router | None = None,
        policy: RoutingPolicy | Mapping[str, Any] | None = None,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
        **kwargs: Any,
    ) -> None:
        """``router``: the ``routoo.Router`` to route through; without it, one is built from
        the fields and from ``policy``, a ``RoutingPolicy`` or a mapping of its fields, over
        which ``tradeoff``, ``quality_floor`` and ``max_cost`` (shorthand) are merged."""
        super().__init__(**kwargs)
        # Checked and built outside pydantic's validation so that Routoo's own errors (an
        # unknown model, a missing price, a corrupted predictor) reach the caller unwrapped.
        shorthand = {"tradeoff": tradeoff, "quality_floor": quality_floor, "max_cost": max_cost}
        given = {name for name, value in {"policy": policy, **shorthand}.items() if value is not None}
        given |= self.model_fields_set & _ROUTER_FIELDS

        def build() -> Router:
            if self.models is None:
                raise ConfigError("RoutooChat needs models= (the pool) or router=")
            return Router(
                self.models,
                self.predictor,
                RoutingPolicy.coerce(policy).merged(shorthand),
                prompt_view=self.prompt_view,
                max_fallbacks=self.max_fallbacks,
                litellm_params=self._litellm_params(),
                log=self.log,
            )

        self._router = router_or_build(router, given, build, "RoutooChat")

    # --------------------------------------------------------------------- routing
    @property
    def router(self) -> Router:
        """The ``routoo.Router`` every call goes through."""
        return self._router

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy of every call (the Router's), before per-run and per-call overrides."""
        return self._router.policy

    @property
    def spent(self) -> float:
        """USD really spent through this model so far (the Router's ledger)."""
        return self._router.spent

    def _litellm_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "api_key": self.api_key,  # the Router keeps it hidden until the call is sent
        }
        return {**{key: value for key, value in params.items() if value is not None}, **self.model_kwargs}

    def _prepare(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> _RoutedCall:
        """The call's messages and options; its policy is the run's config keys, then the
        call's own ``policy=`` and policy-field keywords (``model=`` pins a pool model)."""
        overrides: RoutingOverrides | None = kwargs.pop(_OVERRIDES_KWARG, None)
        if overrides is None:  # reached without a public entry point: the run's config is all there is
            overrides = routing_overrides(ensure_config().get("configurable") or {})
        fields = {name: kwargs.pop(name) for name in RoutingPolicy.model_fields if name in kwargs}
        policy = overrides.policy.merged(kwargs.pop("policy", None)).merged(fields)
        options = {"policy": policy, **kwargs}
        if stop := stop or self.stop:
            options["stop"] = stop
        budget = None
        if overrides.budget is not None:
            parent_run_id = run_manager.parent_run_id if run_manager else None
            budget = RUN_TREE.budget_for(parent_run_id, overrides.budget)
        return _RoutedCall(to_litellm_messages(messages), options, budget)

    # ------------------------------------------------------- BaseChatModel hooks
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, run_manager, kwargs)
        with budget_scope(call.budget):
            routed = self._router.completion(call.messages, **call.options)
        return chat_result(routed)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = self._prepare(messages, stop, run_manager, kwargs)
        with budget_scope(call.budget):
            routed = await self._router.acompletion(call.messages, **call.options)
        return chat_result(routed)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, run_manager, kwargs)
        with budget_scope(call.budget):
            stream = self._router.stream(call.messages, **call.options)
        with stream:  # a stream left early is still charged for what it produced
            finish_reason = None
            for chunk in stream:
                message, reason = message_chunk(chunk)
                finish_reason = reason or finish_reason
                if message is not None:
                    yield ChatGenerationChunk(message=message)
        yield ChatGenerationChunk(message=last_chunk(stream, finish_reason))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        call = self._prepare(messages, stop, run_manager, kwargs)
        with budget_scope(call.budget):
            stream = await self._router.astream(call.messages, **call.options)
        async with stream:  # a stream left early is still charged for what it produced
            finish_reason = None
            async for chunk in stream:
                message, reason = message_chunk(chunk)
                finish_reason = reason or finish_reason
                if message is not None:
                    yield ChatGenerationChunk(message=message)
        yield ChatGenerationChunk(message=last_chunk(stream, finish_reason))

    @property
    def _llm_type(self) -> str:
        return "routoo-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "models": self._router.models,
            **self._router.policy.model_dump(exclude_none=True),
            "prompt_view": self._router.prompt_view,
        }

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        # The routing settings are not provider parameters: keep them out of traces and options.
        kwargs.pop(_OVERRIDES_KWARG, None)
        # Tracers store these parameters: a key passed with the call is shown as '**********'.
        return super()._get_invocation_params(stop=stop, **hide_secrets(kwargs))

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """Tracing parameters. The model is only known after routing, so ``ls_model_name`` names
        the pool (or the per-call ``model`` override); each answer's ``response_metadata``
        names the model that answered."""
        params = LangSmithParams(
            ls_provider="routoo",
            ls_model_name=kwargs.get("model") or ",".join(self._router.models),
            ls_model_type="chat",
        )
        sent = {**self._router.litellm_params, **kwargs}
        if (temperature := sent.get("temperature")) is not None:
            params["ls_temperature"] = temperature
        if (max_tokens := sent.get("max_tokens")) is not None:
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
    def bind(self, **kwargs: Any) -> Any:
        """``BaseChatModel.bind``; a secret keyword (``api_key=``...) is kept as ``SecretStr`` in
        the binding, whose repr and serialisation tracers store."""
        return super().bind(**hide_secrets(kwargs))

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
            kwargs["tool_choice"] = openai_tool_choice(tool_choice, formatted)
        return self.bind(tools=formatted, **kwargs)

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
        return structured_output(self, schema, method, include_raw, strict)


@dataclass(frozen=True)
class _RoutedCall:
    """One call, ready for the router: its messages, policy and litellm options, and its run's budget."""

    messages: list[dict[str, Any]]
    options: dict[str, Any]
    budget: Budget | None


def _with_hidden_secrets(model: Any) -> Any:
    params = model.get("litellm_params") if isinstance(model, Mapping) else None
    return {**model, "litellm_params": hide_secrets(params)} if isinstance(params, Mapping) else model


def _with_overrides(config: RunnableConfig | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    configurable = ensure_config(config).get("configurable") or {}
    return {**kwargs, _OVERRIDES_KWARG: routing_overrides(configurable)}
