"""LlamaIndex responses from routed calls: the message, the raw litellm response and the call's record.

Every response's ``additional_kwargs`` records its call (``call_record``): the token usage
(as LlamaIndex's token counter reads it), the model that answered, the real cost and the
routing decision. A stream's responses are assembled chunk by chunk (``StreamAssembly``);
its last one carries the record.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse

from llamaindex_routoo.messages import from_litellm_message, merge_tool_call_deltas
from routoo.router import AsyncRoutedStream, RoutedResponse, RoutedStream, RoutingDecision


def chat_response(routed: RoutedResponse) -> ChatResponse:
    """The response of a routed call: its message, the litellm response as a dict, its record."""
    raw = routed.response.model_dump()
    return ChatResponse(
        message=from_litellm_message(raw["choices"][0]["message"]),
        raw=raw,
        additional_kwargs=call_record(routed.decision, routed.model, routed.cost_usd, routed.usage),
    )


def call_record(
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


class StreamAssembly:
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
            additional_kwargs=call_record(stream.decision, stream.model, stream.cost_usd, stream.usage),
        )

    def _message(self) -> ChatMessage:
        return from_litellm_message({"content": self.content, "tool_calls": copy.deepcopy(self.tool_calls)})
