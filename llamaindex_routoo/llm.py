"""``RoutooLLM``: a LlamaIndex LLM that routes every call to the best model of a pool."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
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
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json
from llama_index.core.types import Model, TokenAsyncGen, TokenGen

from llamaindex_routoo.messages import from_litellm_message, merge_tool_call_deltas, to_litellm_messages
from llamaindex_routoo.question import question_from_messages
from routoo._litellm import litellm
from routoo.pool import ModelSpec
from routoo.predictors.base import Predictor
from routoo.prompts import PromptView
from routoo.router import AsyncRoutedStream, RoutedResponse, RoutedStream, Router, RoutingDecision

if TYPE_CHECKING:
    from llama_index.core.prompts import BasePromptTemplate, PromptTemplate
    from llama_index.core.tools.types import BaseTool

logger = logging.getLogger(__name__)

ROUTING_OPTIONS = ("tradeoff", "quality_floor", "max_cost")
# The question a LlamaIndex template was formatted with (``query_str``): exact, whatever the template.
_QUERY_STR: ContextVar[str | None] = ContextVar("routoo_llamaindex_query_str", default=None)


class RoutooLLM(FunctionCallingLLM):
    """A LlamaIndex LLM whose every call goes to the model a Routoo ``Router`` picks for it.

    ``Settings.llm = RoutooLLM(models=[...])`` routes every call that query engines, chat
    engines and agents make. Each response carries the routing decision and the call's real
    cost and usage in ``additional_kwargs`` (``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``, ``model``, ``cost_usd``, ``routoo_decision``) and the litellm response
    dict in ``raw``. Calls with tools only go to tool-capable models.

    With ``question_only`` the predictor reads the user's question, not the retrieved context
    LlamaIndex pastes around it: the ``query_str`` LlamaIndex formatted the prompt with, else
    the question found in a LlamaIndex RAG or condense template (``llamaindex_routoo.question``),
    else the last user message. Cost and context window still count the whole prompt. Without
    it, the predictor reads what the Router's ``prompt_view`` selects. Per call, ``tradeoff``,
    ``quality_floor``, ``max_cost`` and ``predictor_text`` keyword arguments override these.
    """

    models: list[str] = Field(description="The pool's model names, as given to the Router.")
    tradeoff: float | None = Field(
        default=None, description="Quality per USD trade-off; None: the selector's."
    )
    quality_floor: float | None = Field(default=None, description="Cheapest model predicted to reach this.")
    max_cost: float | None = Field(default=None, description="Best model whose estimated USD cost fits.")
    temperature: float | None = Field(default=None, description="Sampling temperature; None: the model's.")
    max_tokens: int | None = Field(default=None, gt=0, description="Most tokens to generate.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds before a call times out.")
    additional_kwargs: dict[str, Any] = Field(default_factory=dict, description="More litellm parameters.")
    question_only: bool = Field(default=True, description="The predictor reads the question of RAG prompts.")

    _router: Router = PrivateAttr()
    _metadata: LLMMetadata = PrivateAttr()

    def __init__(
        self,
        models: Sequence[str | ModelSpec | Mapping[str, Any]],
        predictor: Predictor | str | Path | None = None,
        *,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
        prompt_view: PromptView | None = None,
        max_fallbacks: int = 2,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        additional_kwargs: Mapping[str, Any] | None = None,
        question_only: bool = True,
        **kwargs: Any,
    ) -> None:
        router = Router(models, predictor, prompt_view=prompt_view, max_fallbacks=max_fallbacks)
        super().__init__(
            models=list(router.models),
            tradeoff=tradeoff,
            quality_floor=quality_floor,
            max_cost=max_cost,
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
            additional_kwargs=dict(additional_kwargs or {}),
            question_only=question_only,
            **kwargs,
        )
        self._router = router
        self._metadata = _pool_metadata(router, max_tokens)

    @classmethod
    def class_name(cls) -> str:
        return "RoutooLLM"

    @property
    def router(self) -> Router:
        """The Router behind this LLM (its ``spent``, ``predictor`` and ``pool``)."""
        return self._router

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
        routed = self._router.completion(litellm_messages, **self._call_options(litellm_messages, kwargs))
        return _chat_response(routed)

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        litellm_messages = to_litellm_messages(messages)
        options = self._call_options(litellm_messages, kwargs)
        return _chat_response(await self._router.acompletion(litellm_messages, **options))

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        # Routed here, not in the generator: the decision and its errors come at call time.
        litellm_messages = to_litellm_messages(messages)
        stream = self._router.stream(litellm_messages, **self._call_options(litellm_messages, kwargs))

        def responses() -> ChatResponseGen:
            assembly = _StreamAssembly()
            with stream:  # a stream left unfinished is still charged for what it produced
                for chunk in stream:
                    if (response := assembly.add(chunk)) is not None:
                        yield response
            yield assembly.final(stream)

        return responses()

    async def _astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        litellm_messages = to_litellm_messages(messages)
        options = self._call_options(litellm_messages, kwargs)
        stream = await self._router.astream(litellm_messages, **options)

        async def responses() -> ChatResponseAsyncGen:
            assembly = _StreamAssembly()
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
        with _query_str(prompt, prompt_args):
            return super().predict(prompt, **prompt_args)

    async def apredict(self, prompt: BasePromptTemplate, **prompt_args: Any) -> str:
        """``LLM.apredict``, with the template's ``query_str`` as the predictor's text."""
        with _query_str(prompt, prompt_args):
            return await super().apredict(prompt, **prompt_args)

    def stream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenGen:
        """``LLM.stream``, with the template's ``query_str`` as the predictor's text."""
        with _query_str(prompt, prompt_args):
            return super().stream(prompt, **prompt_args)

    async def astream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenAsyncGen:
        """``LLM.astream``, with the template's ``query_str`` as the predictor's text."""
        with _query_str(prompt, prompt_args):
            return await super().astream(prompt, **prompt_args)

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """``LLM.structured_predict`` (a tool call on tool-capable models), ``query_str`` read as above."""
        with _query_str(prompt, prompt_args):
            return super().structured_predict(output_cls, prompt, llm_kwargs=llm_kwargs, **prompt_args)

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        """Async ``structured_predict``."""
        with _query_str(prompt, prompt_args):
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
            "tool_choice": _tool_choice(tool_choice, tool_required),
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
        calls = [block for block in response.message.blocks if isinstance(block, ToolCallBlock)]
        if allow_parallel_tool_calls or len(calls) <= 1:
            return response
        logger.warning(
            "the model made %d tool calls but allow_parallel_tool_calls is False; keeping %r, dropping %s",
            len(calls),
            calls[0].tool_name,
            [block.tool_name for block in calls[1:]],
        )
        message = response.message
        message.blocks = [
            block for block in message.blocks if not isinstance(block, ToolCallBlock) or block is calls[0]
        ]
        if message.additional_kwargs.get("tool_calls"):
            message.additional_kwargs["tool_calls"] = message.additional_kwargs["tool_calls"][:1]
        return response

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """The tool calls of a response, with their arguments parsed (partial JSON while streaming)."""
        calls = [block for block in response.message.blocks if isinstance(block, ToolCallBlock)]
        if not calls and error_on_no_tool_call:
            raise ValueError(
                f"expected a tool call, but the model ({response.additional_kwargs.get('model', 'unknown')}) "
                f"answered with text: {response.message.content!r}"
            )
        return [
            ToolSelection(
                tool_id=block.tool_call_id or "",
                tool_name=block.tool_name,
                tool_kwargs=_tool_arguments(block),
            )
            for block in calls
        ]

    # -------------------------------------------------------------------- helpers
    def _call_options(self, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The Router's routing options and litellm parameters for one call."""
        options: dict[str, Any] = {name: kwargs.pop(name, getattr(self, name)) for name in ROUTING_OPTIONS}
        predictor_text = kwargs.pop("predictor_text", None)
        if predictor_text is None and self.question_only:
            predictor_text = _QUERY_STR.get() or question_from_messages(messages)
        options["predictor_text"] = predictor_text
        generation = {"temperature": self.temperature, "max_tokens": self.max_tokens, "timeout": self.timeout}
        return (
            options | {k: v for k, v in generation.items() if v is not None} | self.additional_kwargs | kwargs
        )


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
    outputs = [tokens for spec in specs if (tokens := _max_output_tokens(spec.name))]
    context_window = min(windows, default=DEFAULT_CONTEXT_WINDOW)
    output_limit = min(outputs, default=DEFAULT_NUM_OUTPUTS)
    return LLMMetadata(
        context_window=context_window,
        num_output=max_tokens or min(output_limit, context_window // 2),
        is_chat_model=True,
        is_function_calling_model=any(spec.supports_function_calling for spec in specs),
        model_name="routoo:" + ",".join(router.models),
    )


def _chat_response(routed: RoutedResponse) -> ChatResponse:
    raw = routed.response.model_dump()
    return ChatResponse(
        message=from_litellm_message(raw["choices"][0]["message"]),
        raw=raw,
        additional_kwargs=_call_record(routed.decision, routed.model, routed.cost_usd, routed.usage),
    )


def _call_record(
    decision: RoutingDecision, model: str, cost_usd: float, usage: Mapping[str, int]
) -> dict[str, Any]:
    """What a response tells about its call: token usage (as LlamaIndex's token counter reads it),
    the model that answered, the real cost and the routing decision."""
    return {
        "prompt_tokens": int(usage.get("prompt_tokens", 0)),
        "completion_tokens": int(usage.get("completion_tokens", 0)),
        "total_tokens": int(usage.get("total_tokens", 0)),
        "model": model,
        "cost_usd": cost_usd,
        "routoo_decision": decision.to_dict(),
    }


class _StreamAssembly:
    """Builds LlamaIndex chat responses from a routed stream's litellm chunks."""

    def __init__(self) -> None:
        self.content = ""
        self.tool_calls: list[dict[str, Any]] = []

    def add(self, chunk: Any) -> ChatResponse | None:
        """The response for one chunk, or None when it adds neither text nor a tool call."""
        raw = chunk.model_dump()
        delta = (raw.get("choices") or [{}])[0].get("delta") or {}
        text = delta.get("content") or ""
        if delta.get("tool_calls"):
            merge_tool_call_deltas(self.tool_calls, delta["tool_calls"])
        elif not text:
            return None
        self.content += text
        return ChatResponse(message=self._message(), delta=text, raw=raw)

    def final(self, stream: RoutedStream | AsyncRoutedStream) -> ChatResponse:
        """The closing response: the whole message; as raw, the response litellm assembled from
        the chunks (usage included); the cost and decision."""
        # The stream is closed, so the router has assembled and charged it.
        assert stream.response is not None and stream.usage is not None and stream.cost_usd is not None
        return ChatResponse(
            message=self._message(),
            delta="",
            raw=stream.response.model_dump(),
            additional_kwargs=_call_record(stream.decision, stream.model, stream.cost_usd, stream.usage),
        )

    def _message(self) -> ChatMessage:
        return from_litellm_message({"content": self.content, "tool_calls": copy.deepcopy(self.tool_calls)})


@contextmanager
def _query_str(prompt: BasePromptTemplate, prompt_args: Mapping[str, Any]) -> Iterator[None]:
    """Within, calls read the template's ``query_str`` as the question (none shadows an outer one)."""
    query = {**prompt.kwargs, **prompt_args}.get("query_str")
    token = _QUERY_STR.set(query if isinstance(query, str) and query.strip() else None)
    try:
        yield
    finally:
        _QUERY_STR.reset(token)


def _tool_choice(tool_choice: str | dict[str, Any] | None, tool_required: bool) -> str | dict[str, Any]:
    """LlamaIndex's ``tool_choice`` (a mode, a tool name or an OpenAI dict) as OpenAI's."""
    if tool_choice is None:
        return "required" if tool_required else "auto"
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "required", "none"):
        return {"type": "function", "function": {"name": tool_choice}}
    return tool_choice


def _tool_arguments(block: ToolCallBlock) -> dict[str, Any]:
    if isinstance(block.tool_kwargs, dict):
        return block.tool_kwargs
    try:
        arguments = parse_partial_json(block.tool_kwargs or "{}")
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        logger.warning(
            "tool call %r has arguments that are not a JSON object: %r", block.tool_name, block.tool_kwargs
        )
        return {}
    return arguments


def _max_output_tokens(model: str) -> int | None:
    try:
        return litellm.get_model_info(model).get("max_output_tokens")
    except Exception:  # litellm raises a bare Exception for models it does not know
        return None
