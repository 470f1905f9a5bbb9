"""Conversion between LlamaIndex chat messages and the OpenAI-style dicts litellm speaks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

from routoo.errors import DataError

# LlamaIndex roles that OpenAI-style APIs know under another name.
_ROLE_NAMES = {MessageRole.CHATBOT: "assistant", MessageRole.MODEL: "assistant"}
# Blocks that carry nothing to send: cache hints and the model's own reasoning.
_SKIPPED_BLOCKS = (CachePoint, ThinkingBlock)


def to_litellm_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """LlamaIndex messages as litellm message dicts, tool calls and tool results included."""
    return [_to_litellm_message(message, turn) for turn, message in enumerate(messages)]


def _to_litellm_message(message: ChatMessage, turn: int) -> dict[str, Any]:
    role = _ROLE_NAMES.get(message.role, message.role.value)
    converted: dict[str, Any] = {"role": role, "content": _content(message, turn)}
    if role == "assistant" and (tool_calls := _tool_calls(message)):
        converted["tool_calls"] = tool_calls
    if role == "tool":
        tool_call_id = message.additional_kwargs.get("tool_call_id")
        if not tool_call_id:
            raise DataError(f"message {turn} is a tool result without additional_kwargs['tool_call_id']")
        converted["tool_call_id"] = tool_call_id
    if name := message.additional_kwargs.get("name"):
        converted["name"] = name
    return converted


def _content(message: ChatMessage, turn: int) -> str | list[dict[str, Any]] | None:
    parts: list[dict[str, Any]] = []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            # A URL is passed as is: resolving it here would download the image.
            url = str(block.url) if block.url and not (block.image or block.path) else block.inline_url()
            image_url = {"url": url} | ({"detail": block.detail} if block.detail else {})
            parts.append({"type": "image_url", "image_url": image_url})
        elif not isinstance(block, (ToolCallBlock, *_SKIPPED_BLOCKS)):
            raise DataError(
                f"message {turn} holds a {type(block).__name__}, which RoutooLLM cannot send; "
                "use text and image blocks"
            )
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts) if parts else None
    return parts


def _tool_calls(message: ChatMessage) -> list[dict[str, Any]]:
    blocks = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    if blocks:
        return [
            {
                "id": block.tool_call_id,
                "type": "function",
                "function": {
                    "name": block.tool_name,
                    "arguments": block.tool_kwargs
                    if isinstance(block.tool_kwargs, str)
                    else json.dumps(block.tool_kwargs),
                },
            }
            for block in blocks
        ]
    # Messages written by other LlamaIndex integrations keep OpenAI-style calls here.
    return [_plain(call) for call in message.additional_kwargs.get("tool_calls") or []]


def from_litellm_message(message: Mapping[str, Any]) -> ChatMessage:
    """An assistant message from litellm's ``choices[i].message`` dict.

    Tool calls become ``ToolCallBlock``s (what agents read) and stay, OpenAI-style, in
    ``additional_kwargs["tool_calls"]`` (what older LlamaIndex code reads).
    """
    blocks: list[Any] = []
    if message.get("content"):
        blocks.append(TextBlock(text=message["content"]))
    tool_calls = [_plain(call) for call in message.get("tool_calls") or []]
    blocks.extend(
        ToolCallBlock(
            tool_call_id=call.get("id"),
            tool_name=call["function"]["name"],
            tool_kwargs=_arguments(call["function"].get("arguments")),
        )
        for call in tool_calls
    )
    return ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=blocks,
        additional_kwargs={"tool_calls": tool_calls} if tool_calls else {},
    )


def _arguments(arguments: str | None) -> dict[str, Any] | str:
    """Tool-call arguments as a dict, or as the model's text where that is not (yet) a JSON object."""
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return arguments or ""
    return parsed if isinstance(parsed, dict) else arguments or ""


def merge_tool_call_deltas(calls: list[dict[str, Any]], deltas: Sequence[Any]) -> list[dict[str, Any]]:
    """Add one streamed chunk's tool-call deltas to the calls assembled so far (in place)."""
    for raw_delta in deltas:
        delta = _plain(raw_delta)
        index = delta.get("index")
        if index is None:
            index = len(calls) if delta.get("id") else max(len(calls) - 1, 0)
        while len(calls) <= index:
            calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
        call = calls[index]
        call["id"] = delta.get("id") or call["id"]
        function = delta.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""
    return calls


def _plain(value: Any) -> dict[str, Any]:
    """A litellm/pydantic object or mapping as a plain dict."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return dict(value)
