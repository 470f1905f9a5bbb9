"""Conversion between LangChain messages and the OpenAI-style dicts and responses of litellm."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import InvalidToolCall, ToolCall, ToolCallChunk, tool_call_chunk
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call
from langchain_core.outputs import ChatGeneration, ChatResult

from routoo.router import AsyncRoutedStream, RoutedResponse, RoutedStream


def to_litellm_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as the OpenAI chat format litellm takes (tool calls and results included).

    An assistant turn keeps only its text: its tool calls travel in ``tool_calls``, and
    provider-specific blocks (Anthropic ``tool_use``, LangChain v1 ``tool_call`` or
    ``reasoning`` blocks) have no place in a Chat Completions request.
    """
    converted = convert_to_openai_messages(
        [
            message.model_copy(update={"content": message.text})
            if isinstance(message, AIMessage) and not isinstance(message.content, str)
            else message
            for message in messages
        ]
    )
    return converted if isinstance(converted, list) else [converted]


def usage_metadata(usage: Mapping[str, int]) -> UsageMetadata:
    """LangChain's token usage from litellm's ``prompt_tokens`` / ``completion_tokens`` counts."""
    input_tokens = int(usage.get("prompt_tokens") or 0)
    output_tokens = int(usage.get("completion_tokens") or 0)
    return UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=int(usage.get("total_tokens") or input_tokens + output_tokens),
    )


def routed_metadata(
    model: str, cost_usd: float, decision: dict[str, Any], finish_reason: str | None
) -> dict[str, Any]:
    """The ``response_metadata`` of a routed answer.

    ``model_name`` is the pool model that answered, as the user configured it, so that
    ``get_usage_metadata_callback()`` groups usage by the model really called.
    """
    metadata: dict[str, Any] = {
        "model_name": model,
        "cost_usd": cost_usd,
        "routoo_decision": decision,
    }
    if finish_reason is not None:
        metadata["finish_reason"] = finish_reason
    return metadata


def ai_message(response: Any, *, usage: Mapping[str, int], metadata: dict[str, Any]) -> AIMessage:
    """An ``AIMessage`` from a non-streamed ``litellm.ModelResponse``."""
    message = response.choices[0].message
    tool_calls: list[ToolCall] = []
    invalid_tool_calls: list[InvalidToolCall] = []
    for raw in message.tool_calls or []:
        raw_call = _as_dict(raw)
        try:
            parsed = parse_tool_call(raw_call, return_id=True)
        except OutputParserException as error:
            invalid_tool_calls.append(make_invalid_tool_call(raw_call, str(error)))
        else:
            if parsed is not None:
                tool_calls.append(ToolCall(**parsed))
    additional_kwargs: dict[str, Any] = {}
    if reasoning := getattr(message, "reasoning_content", None):
        additional_kwargs["reasoning_content"] = reasoning
    return AIMessage(
        content=message.content or "",
        tool_calls=tool_calls,
        invalid_tool_calls=invalid_tool_calls,
        additional_kwargs=additional_kwargs,
        usage_metadata=usage_metadata(usage),
        response_metadata=metadata,
        id=getattr(response, "id", None),
    )


def message_chunk(chunk: Any) -> tuple[AIMessageChunk | None, str | None]:
    """The content and tool-call deltas of one litellm stream chunk, and its finish reason.

    Usage carried by a chunk is left out on purpose: the whole call's usage is sent once,
    on the final chunk, so that nothing is counted twice when chunks are summed.
    """
    if not chunk.choices:
        return None, None
    choice = chunk.choices[0]
    delta = choice.delta
    tool_call_chunks: list[ToolCallChunk] = [
        tool_call_chunk(
            name=call.function.name if call.function else None,
            args=call.function.arguments if call.function else None,
            id=call.id,
            index=call.index,
        )
        for call in delta.tool_calls or []
    ]
    content = delta.content or ""
    if not content and not tool_call_chunks:
        return None, choice.finish_reason
    return (
        AIMessageChunk(content=content, tool_call_chunks=tool_call_chunks, id=getattr(chunk, "id", None)),
        choice.finish_reason,
    )


def final_chunk(*, usage: Mapping[str, int], metadata: dict[str, Any]) -> AIMessageChunk:
    """The last chunk of a stream: the only one holding usage and routing metadata."""
    return AIMessageChunk(
        content="",
        usage_metadata=usage_metadata(usage),
        response_metadata=metadata,
        chunk_position="last",
    )


def chat_result(routed: RoutedResponse) -> ChatResult:
    """The LangChain result of a routed call: its answer, with usage and routing metadata."""
    finish_reason = routed.response.choices[0].finish_reason
    metadata = routed_metadata(routed.model, routed.cost_usd, routed.decision.to_dict(), finish_reason)
    message = ai_message(routed.response, usage=routed.usage, metadata=metadata)
    return ChatResult(generations=[ChatGeneration(message=message)])


def last_chunk(stream: RoutedStream | AsyncRoutedStream, finish_reason: str | None) -> AIMessageChunk:
    """The chunk that closes a routed stream: its usage and routing metadata, once."""
    metadata = routed_metadata(stream.model, stream.cost_usd, stream.decision.to_dict(), finish_reason)
    return final_chunk(usage=stream.usage, metadata=metadata)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    return value.model_dump()
