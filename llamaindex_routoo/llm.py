"""``RoutooLLM``: a LlamaIndex LLM that routes every call to the best model of a pool.

It holds one ``routoo.Router`` and forwards every call to it (as langchain-litellm's
``ChatLiteLLMRouter`` holds a ``litellm.Router``). Beside it: ``messages``, ``question`` (what
the predictor reads), ``responses``, ``tools`` and ``budgets`` (per-run budgets over spans).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_serializer, field_validator
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.types import Model, TokenAsyncGen, TokenGen

from llamaindex_routoo.budgets import RUN_SPANS
from llamaindex_routoo.messages import to_litellm_messages
from llamaindex_routoo.question import call_question, template_question
from llamaindex_routoo.responses import StreamAssembly, chat_response
from llamaindex_routoo.tools import keep_first_tool_call, openai_tool_choice, tool_selections
from routoo.budget import Budget, BudgetMode, RunBudget, budget_scope
from routoo.decision_log import DecisionLog
from routoo.errors import ConfigError
from routoo.model_info import max_output_tokens
from routoo.policy import RoutingPolicy
from routoo.pool import ModelSpec
from routoo.predictors.base import Predictor
from routoo.prompts import PromptView
from routoo.router import SHORTHAND_FIELDS, Router, router_or_build
from routoo.secrets import hide_secrets, without_secrets

if TYPE_CHECKING:
    from llama_index.core.prompts import BasePromptTemplate, PromptTemplate
    from llama_index.core.tools.types import BaseTool

ROUTING_OPTIONS = SHORTHAND_FIELDS  # moved to routoo.router.SHORTHAND_FIELDS; shim kept for one release


class RoutooLLM(FunctionCallingLLM):
    """A LlamaIndex LLM whose every call goes to the model a Routoo ``Router`` picks for it.

    ``Settings.llm = RoutooLLM(models=[...])`` routes every call that query engines, chat
    engines and agents make, through one ``Router``: ``router=``, or one built from
    ``models``, ``predictor``, ``policy`` (``tradeoff``, ``quality_floor`` and ``max_cost``
    are shorthand for its fields), ``prompt_view``, ``max_fallbacks`` and ``log`` (the
    Router's decision log); a router and any of these is a ``ConfigError``. Per call,
    ``policy=`` and keywords named like its fields (``model=`` pins a pool model) override
    the Router's policy. Each response's
    ``additional_kwargs`` record the call (``llamaindex_routoo.responses``); calls with tools
    only go to tool-capable models. ``budget`` (a USD limit; ``budget_mode`` "hard" or
    "soft") gives each LlamaIndex run, a query, chat turn or agent run, its own budget for
    all its LLM calls; a ``Budget`` is shared by every run (``llamaindex_routoo.budgets``).

    With ``question_only`` the predictor reads the user's question, not the retrieved context
    LlamaIndex pastes around it: the ``query_str`` LlamaIndex formatted the prompt with, else
    the question found in a LlamaIndex RAG or condense template (``llamaindex_routoo.question``),
    else the last user message. Cost and context window still count the whole prompt. Without
    it, the predictor reads what the Router's ``prompt_view`` selects; a call's
    ``predictor_text`` replaces either.
    """

    models: list[str] = Field(description="The pool's model names, as given to the Router.")
    temperature: float | None = Field(default=None, description="Sampling temperature; None: the model's.")
    max_tokens: int | None = Field(default=None, gt=0, description="Most tokens to generate.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds before a call times out.")
    additional_kwargs: dict[str, Any] = Field(default_factory=dict, description="More litellm parameters.")
    question_only: bool = Field(default=True, description="The predictor reads the question of RAG prompts.")

    _router: Router = PrivateAttr()
    _metadata: LLMMetadata = PrivateAttr()
    _run_budget: RunBudget | None = PrivateAttr(default=None)

    @field_validator("additional_kwargs")
    @classmethod
    def _hide_secrets(cls, additional_kwargs: dict[str, Any]) -> dict[str, Any]:
        return hide_secrets(additional_kwargs)

    @field_serializer("additional_kwargs")
    def _serialize_without_secrets(self, additional_kwargs: dict[str, Any]) -> dict[str, Any]:
        # As LlamaIndex's own LLMs exclude their api_key: to_dict and to_json leave secrets out.
        return without_secrets(additional_kwargs)

    def __init__(
        self,
        models: Sequence[str | ModelSpec | Mapping[str, Any]] | None = None,
        predictor: Predictor | str | Path | None = None,
        *,
        router: Router | None = None,
        policy: RoutingPolicy | Mapping[str, Any] | None = None,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
        prompt_view: PromptView | None = None,
        max_fallbacks: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        additional_kwargs: Mapping[str, Any] | None = None,
        question_only: bool = True,
        budget: Budget | float | None = None,
        budget_mode: BudgetMode | None = None,
        log: DecisionLog | str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        router = _router_from(
            router,
            models=models,
            predictor=predictor,
            policy=policy,
            tradeoff=tradeoff,
            quality_floor=quality_floor,
            max_cost=max_cost,
            prompt_view=prompt_view,
            max_fallbacks=max_fallbacks,
            log=log,
        )
        run_budget = RunBudget.coerce(budget, budget_mode)
        super().__init__(
            models=list(router.models),
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
            additional_kwargs=dict(additional_kwargs or {}),
            question_only=question_only,
            **kwargs,
        )
        self._router = router
        self._metadata = _pool_metadata(router, max_tokens)
        self._run_budget = run_budget

    @classmethod
    def class_name(cls) -> str:
        return "RoutooLLM"

    @property
    def router(self) -> Router:
        """The Router behind this LLM (its ``spent``, ``predictor``, ``pool`` and ``policy``)."""
        return self._router

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy of every call (the Router's), before per-call overrides."""
        return self._router.policy

    @property
    def run_budget(self) -> RunBudget | None:
        """The budget setting of each LlamaIndex run, or None."""
        return self._run_budget

    @property
    def metadata(self) -> LLMMetadata:
        """What every model of the pool can serve: the smallest known context window and output."""
        return self._metadata

    # ------------------------------------------------------------------ chat and complete
    # The public methods open LlamaIndex's callback and instrumentation events; completions
    # are chat calls with the prompt as one user message (``formatted`` changes nothing for
    # a chat model) and reuse the undecorated ``_chat`` methods, so each call is one event.
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Route ``messages`` and return the chosen model's answer."""
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async ``chat``."""
        return await self._achat(messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Route ``messages`` now and stream the chosen model's answer.

        The last response, after the model's final chunk, has an empty delta and carries the
        usage, cost and decision.
        """
        return self._stream_chat(messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """Async ``stream_chat``."""
        return await self._astream_chat(messages, **kwargs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Route ``prompt`` as one user message."""
        return chat_to_completion_decorator(self._chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Async ``complete``."""
        return await achat_to_completion_decorator(self._achat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Streaming ``complete``."""
        return stream_chat_to_completion_decorator(self._stream_chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Async streaming ``complete``."""
        return await astream_chat_to_completion_decorator(self._astream_chat)(prompt, **kwargs)

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        litellm_messages = to_litellm_messages(messages)
        options = self._call_options(litellm_messages, kwargs)
        with budget_scope(self._budget_of_run()):
            return chat_response(self._router.completion(litellm_messages, **options))

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        litellm_messages = to_litellm_messages(messages)
        options = self._call_options(litellm_messages, kwargs)
        with budget_scope(self._budget_of_run()):
            return chat_response(await self._router.acompletion(litellm_messages, **options))

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        # Routed here, not in the generator: the decision and its errors come at call time.
        litellm_messages = to_litellm_messages(messages)
        options = self._call_options(litellm_messages, kwargs)
        with budget_scope(self._budget_of_run()):  # the stream keeps the budgets open at its start
            stream = self._router.stream(litellm_messages, **options)

        def responses() -> ChatResponseGen:
            assembly = StreamAssembly()
            with stream:  # a stream left unfinished is still charged for what it produced
                for chunk in stream:
                    if (response := assembly.add(chunk)) is not None:
                        yield response
            yield assembly.final(stream)

        return responses()

    async def _astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        litellm_messages = to_litellm_messages(messages)
        options = self._call_options(litellm_messages, kwargs)
        with budget_scope(self._budget_of_run()):
            stream = await self._router.astream(litellm_messages, **options)

        async def responses() -> ChatResponseAsyncGen:
            assembly = StreamAssembly()
            async with stream:
                async for chunk in stream:
                    if (response := assembly.add(chunk)) is not None:
                        yield response
            yield assembly.final(stream)

        return responses()

    # -------------------------------------------- template calls: remember the question
    # Response synthesizers and chat engines fill ``query_str`` into their templates (as an
    # argument or by ``partial_format``); the predictor reads it instead of the whole prompt.
    def predict(self, prompt: BasePromptTemplate, **prompt_args: Any) -> str:
        """``LLM.predict``, with the template's ``query_str`` as the predictor's text."""
        with template_question({**prompt.kwargs, **prompt_args}):
            return super().predict(prompt, **prompt_args)

    async def apredict(self, prompt: BasePromptTemplate, **prompt_args: Any) -> str:
        """``LLM.apredict``, with the template's ``query_str`` as the predictor's text."""
        with template_question({**prompt.kwargs, **prompt_args}):
            return await super().apredict(prompt, **prompt_args)

    def stream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenGen:
        """``LLM.stream``, with the template's ``query_str`` as the predictor's text."""
        with template_question({**prompt.kwargs, **prompt_args}):
            return super().stream(prompt, **prompt_args)

    async def astream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenAsyncGen:
        """``LLM.astream``, with the template's ``query_str`` as the predictor's text."""
        with template_question({**prompt.kwargs, **prompt_args}):
            return await super().astream(prompt, **prompt_args)

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """``LLM.structured_predict`` (a tool call on tool-capable models), ``query_str`` read as above."""
        with template_question({**prompt.kwargs, **prompt_args}):
            return super().structured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async ``structured_predict``."""
        with template_question({**prompt.kwargs, **prompt_args}):
            return await super().astructured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)

    # ----------------------------------------------------------------------- tools
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The ``chat`` arguments for a call with tools: OpenAI tool specs and ``tool_choice``."""
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(
                ChatMessage(role=MessageRole.USER, content=user_msg)
                if isinstance(user_msg, str)
                else user_msg
            )
        tool_choice = kwargs.pop("tool_choice", None)
        if not tools:
            return {"messages": messages, **kwargs}
        return {
            "messages": messages,
            "tools": [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools],
            "tool_choice": openai_tool_choice(tool_choice, tool_required),
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call unless parallel calls were allowed (and log the others)."""
        return response if allow_parallel_tool_calls else keep_first_tool_call(response)

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """The tool calls of a response, with their arguments parsed (partial JSON while streaming)."""
        return tool_selections(response, error_on_no_tool_call)

    def _call_options(self, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's policy override (its ``policy`` and policy-field keywords), what the
        predictor reads, and the litellm parameters."""
        fields = {name: kwargs.pop(name) for name in RoutingPolicy.model_fields if name in kwargs}
        options: dict[str, Any] = {"policy": RoutingPolicy.coerce(kwargs.pop("policy", None)).merged(fields)}
        predictor_text = kwargs.pop("predictor_text", None)
        if predictor_text is None and self.question_only:
            predictor_text = call_question(messages)
        options["predictor_text"] = predictor_text
        generation = {"temperature": self.temperature, "max_tokens": self.max_tokens, "timeout": self.timeout}
        return (
            options | {k: v for k, v in generation.items() if v is not None} | self.additional_kwargs | kwargs
        )

    def _budget_of_run(self) -> Budget | None:
        """The budget of the LlamaIndex run this call belongs to, when runs have budgets."""
        return None if self._run_budget is None else RUN_SPANS.budget_for(self._run_budget)


def _router_from(router: Router | None, **settings: Any) -> Router:
    """``router``, or one built from the constructor's Router ``settings`` (None: not given)."""
    given = {name: value for name, value in settings.items() if value is not None}

    def build() -> Router:
        if "models" not in given:
            raise ConfigError("RoutooLLM needs models (the pool) or router=")
        arguments = dict(given)
        shorthand = {name: arguments.pop(name, None) for name in SHORTHAND_FIELDS}
        policy = RoutingPolicy.coerce(arguments.pop("policy", None)).merged(shorthand)
        return Router(policy=policy, **arguments)

    return router_or_build(router, given, build, "RoutooLLM")


def _pool_metadata(router: Router, max_tokens: int | None = None) -> LLMMetadata:
    """LLM metadata true for every model of the router's pool.

    ``context_window`` is the smallest known over the pool (LlamaIndex's default where none is
    known), so the prompts LlamaIndex packs fit whichever model is chosen. ``num_output``, the
    room LlamaIndex keeps free in that window for the answer, is ``max_tokens`` when set, else
    the smallest known ``max_output_tokens`` of the pool, at most half the window: a model's
    whole output limit would otherwise leave no room for the prompt.
    """
    specs = router.pool.specs
    windows = [spec.max_input_tokens for spec in specs if spec.max_input_tokens]
    outputs = [tokens for spec in specs if (tokens := max_output_tokens(spec.name))]
    context_window = min(windows, default=DEFAULT_CONTEXT_WINDOW)
    output_limit = min(outputs, default=DEFAULT_NUM_OUTPUTS)
    return LLMMetadata(
        context_window=context_window,
        num_output=max_tokens or min(output_limit, context_window // 2),
        is_chat_model=True,
        is_function_calling_model=any(spec.supports_function_calling for spec in specs),
        model_name="routoo:" + ",".join(router.models),
    )
