"""LlamaIndex chat messages to litellm dicts and back."""

from __future__ import annotations

import json

import pytest
from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)

from llamaindex_routoo.messages import from_litellm_message, merge_tool_call_deltas, to_litellm_messages
from routoo.errors import DataError

TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}


def test_a_tool_calling_conversation_converts_to_openai_messages() -> None:
    assistant = from_litellm_message({"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]})
    messages = [
        ChatMessage(role=MessageRole.SYSTEM, content="Be brief."),
        ChatMessage(role=MessageRole.USER, content="Add 1 and 2."),
        assistant,
        ChatMessage(role=MessageRole.TOOL, content="3", additional_kwargs={"tool_call_id": "call_1"}),
    ]
    converted = to_litellm_messages(messages)
    assert converted[:2] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Add 1 and 2."},
    ]
    assert converted[2]["role"] == "assistant" and converted[2]["content"] is None
    [call] = converted[2]["tool_calls"]
    assert call["id"] == "call_1" and call["function"]["name"] == "add"
    assert json.loads(call["function"]["arguments"]) == {"a": 1, "b": 2}
    assert converted[3] == {"role": "tool", "content": "3", "tool_call_id": "call_1"}


def test_a_litellm_answer_keeps_text_and_tool_calls() -> None:
    message = from_litellm_message({"role": "assistant", "content": "Adding.", "tool_calls": [TOOL_CALL]})
    assert message.role == MessageRole.ASSISTANT
    assert message.content == "Adding."
    [block] = [block for block in message.blocks if isinstance(block, ToolCallBlock)]
    assert (block.tool_call_id, block.tool_name) == ("call_1", "add")
    assert message.additional_kwargs["tool_calls"] == [TOOL_CALL]


def test_tool_calls_written_by_other_integrations_are_sent_too() -> None:
    message = ChatMessage(
        role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": [TOOL_CALL]}
    )
    assert to_litellm_messages([message])[0]["tool_calls"] == [TOOL_CALL]


def test_images_become_content_parts_without_downloading() -> None:
    message = ChatMessage(
        role=MessageRole.USER,
        blocks=[TextBlock(text="What is this?"), ImageBlock(url="https://example.com/cat.png", detail="low")],
    )
    assert to_litellm_messages([message])[0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    ]


def test_unsendable_messages_are_refused_with_the_reason() -> None:
    with pytest.raises(DataError, match="message 0 holds a AudioBlock"):
        to_litellm_messages([ChatMessage(role=MessageRole.USER, blocks=[AudioBlock(audio=b"RIFF")])])
    with pytest.raises(DataError, match="message 1 is a tool result without"):
        to_litellm_messages([ChatMessage(content="hi"), ChatMessage(role=MessageRole.TOOL, content="3")])


def test_streamed_tool_call_deltas_assemble_into_calls() -> None:
    calls: list[dict] = []
    merge_tool_call_deltas(
        calls, [{"index": 0, "id": "call_1", "function": {"name": "add", "arguments": ""}}]
    )
    merge_tool_call_deltas(calls, [{"index": 0, "function": {"arguments": '{"a": 1, '}}])
    merge_tool_call_deltas(calls, [{"index": 0, "function": {"arguments": '"b": 2}'}}])
    merge_tool_call_deltas(
        calls, [{"index": 1, "id": "call_2", "function": {"name": "mul", "arguments": "{}"}}]
    )
    assert [call["id"] for call in calls] == ["call_1", "call_2"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"a": 1, "b": 2}
    assert calls[1]["function"]["name"] == "mul"
