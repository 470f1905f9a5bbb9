"""Tool calls for ``RoutooLLM``: OpenAI ``tool_choice``, the calls of a response and their arguments.

LlamaIndex asks a function-calling LLM for these through ``FunctionCallingLLM`` hooks
(``_prepare_chat_with_tools``, ``_validate_chat_with_tools_response``,
``get_tool_calls_from_response``); ``RoutooLLM`` implements them with what is here.
"""

from __future__ import annotations

import logging
from typing import Any

from llama_index.core.base.llms.types import ChatResponse, ToolCallBlock
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.llms.utils import parse_partial_json

logger = logging.getLogger(__name__)


def openai_tool_choice(tool_choice: str | dict[str, Any] | None, tool_required: bool) -> str | dict[str, Any]:
    """LlamaIndex's ``tool_choice`` (a mode, a tool name or an OpenAI dict) as OpenAI's."""
    if tool_choice is None:
        return "required" if tool_required else "auto"
    if isinstance(tool_choice, str) and tool_choice not in ("auto", "required", "none"):
        return {"type": "function", "function": {"name": tool_choice}}
    return tool_choice


def tool_call_blocks(response: ChatResponse) -> list[ToolCallBlock]:
    """The tool calls of a response's message, in order."""
    return [block for block in response.message.blocks if isinstance(block, ToolCallBlock)]


def keep_first_tool_call(response: ChatResponse) -> ChatResponse:
    """``response`` with only its first tool call (the others are logged, then dropped)."""
    calls = tool_call_blocks(response)
    if len(calls) <= 1:
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


def tool_selections(response: ChatResponse, error_on_no_tool_call: bool) -> list[ToolSelection]:
    """The tool calls of a response, with their arguments parsed (partial JSON while streaming)."""
    calls = tool_call_blocks(response)
    if not calls and error_on_no_tool_call:
        raise ValueError(
            f"expected a tool call, but the model ({response.additional_kwargs.get('model', 'unknown')}) "
            f"answered with text: {response.message.content!r}"
        )
    return [
        ToolSelection(
            tool_id=block.tool_call_id or "", tool_name=block.tool_name, tool_kwargs=_arguments(block)
        )
        for block in calls
    ]


def _arguments(block: ToolCallBlock) -> dict[str, Any]:
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
