"""The scripted provider the LangChain standard integration tests run against."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import litellm

from routoo.prompts import content_text
from routoo.testing import ScriptedLLM, ScriptedReply, register_scripted_provider


class PromptReadingLLM(ScriptedLLM):
    """The scripted provider, with tool arguments taken from the prompt as a real model would.

    An integer argument is the first integer of the last user turn, a string argument its
    first quoted text (the standard tests ask for ``magic_function(3)`` and for a customer
    named '你好啊集团'); anything else keeps the scripted, schema-valid value.
    """

    def reply(
        self, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
    ) -> ScriptedReply:
        reply = super().reply(model, messages, params)
        if not reply.tool_calls:
            return reply
        users = [message for message in messages if message.get("role") == "user"]
        asked = content_text(users[-1].get("content")) if users else ""
        schemas = {
            tool["function"]["name"]: tool["function"].get("parameters") or {} for tool in params["tools"]
        }
        calls = [_read_arguments(call, schemas[call["function"]["name"]], asked) for call in reply.tool_calls]
        return dataclasses.replace(reply, tool_calls=calls)


def register_prompt_reading_provider() -> PromptReadingLLM:
    """Install ``PromptReadingLLM`` as litellm's ``scripted`` provider, with the scripted models."""
    register_scripted_provider()  # registers the scripted models' prices and capabilities
    handler = PromptReadingLLM("scripted")
    litellm.custom_provider_map = [
        entry for entry in litellm.custom_provider_map if entry["provider"] != "scripted"
    ] + [{"provider": "scripted", "custom_handler": handler}]
    litellm.utils.custom_llm_setup()
    return handler


def _read_arguments(call: dict[str, Any], schema: Mapping[str, Any], asked: str) -> dict[str, Any]:
    arguments = json.loads(call["function"]["arguments"])
    integers = re.findall(r"-?\d+", asked)
    quoted = re.findall(r"'([^']+)'", asked)
    for name, prop in (schema.get("properties") or {}).items():
        if prop.get("type") == "integer" and integers:
            arguments[name] = int(integers[0])
        elif prop.get("type") == "string" and quoted:
            arguments[name] = quoted[0]
    return {**call, "function": {**call["function"], "arguments": json.dumps(arguments, ensure_ascii=False)}}
