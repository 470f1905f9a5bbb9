"""What ``routoo.testing``'s scripted provider answers, deterministically: text, tool calls, JSON,
stream chunks, and the litellm errors it raises when told to fail."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx

from routoo._litellm import GenericStreamingChunk, litellm
from routoo.prompts import content_text

FailureKind = Literal[
    "rate_limit",
    "timeout",
    "server_error",
    "unavailable",
    "connection",
    "context_window",
    "auth",
    "bad_request",
    "not_found",
    "payment_required",
    "permission_denied",
    "unsupported_params",
    "content_policy",
]
FAILURE_KINDS: tuple[str, ...] = FailureKind.__args__


def answer_text(model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        text = f"{model} read the tool result: {_snippet(content_text(last.get('content')))}"
    else:
        user_turns = [m for m in messages if m.get("role") == "user"]
        asked = content_text(user_turns[-1].get("content")) if user_turns else ""
        text = f"{model} answers: {_snippet(asked)}"
    schema = _response_schema(params.get("response_format"))
    if schema is not None:
        return json.dumps(example_from_schema(schema))
    if _wants_json_object(params.get("response_format")):
        return json.dumps(_json_object_answer(text, messages))
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    if max_tokens:
        text = " ".join(text.split()[: int(max_tokens)])
    return text


def at_length(text: str, words: int | None, token_limits: Sequence[int]) -> str:
    """``text`` padded to ``words`` words (None: as it is), then cut to the smallest of
    ``token_limits`` in tokens, as a model stops at its ``max_tokens``."""
    if words is not None and len(text.split()) < words:
        text = " ".join([text, *(_FILLER[i % len(_FILLER)] for i in range(words - len(text.split())))])
    if not token_limits or _tokens(text) <= min(token_limits):
        return text
    cap, pieces = min(token_limits), text.split(" ")
    low, high = 0, len(pieces)  # the most words whose text fits: pieces[:low] fits, pieces[:high] does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _tokens(" ".join(pieces[:middle])) <= cap else (low, middle)
    return " ".join(pieces[:low])


_FILLER = ("and", "more", "words", "follow", "here")


def _tokens(text: str) -> int:
    return litellm.token_counter(text=text, count_response_tokens=True)


def _snippet(text: str, length: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 3] + "..."


def tool_calls_for(
    tools: Sequence[Mapping[str, Any]] | None, tool_choice: Any, messages: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One call of the chosen tool, unless there are no tools, they are off, or a tool just answered."""
    if not tools or tool_choice == "none" or (messages and messages[-1].get("role") == "tool"):
        return []
    functions = {
        tool["function"]["name"]: tool["function"] for tool in tools if tool.get("type") == "function"
    }
    if not functions:
        return []
    if isinstance(tool_choice, Mapping):
        name = tool_choice.get("function", {}).get("name")
        if name not in functions:
            raise litellm.BadRequestError(
                f"tool_choice names {name!r}, which is not among the tools {sorted(functions)}",
                model="scripted",
                llm_provider="scripted",
            )
    else:
        # A real model calls the tool the user talks about; failing that, the first one.
        asked = content_text(messages[-1].get("content")).lower() if messages else ""
        name = next((name for name in functions if name.lower() in asked), next(iter(functions)))
    arguments = example_from_schema(functions[name].get("parameters") or {"type": "object"})
    call_id = f"call_{zlib.crc32(f'{name}:{json.dumps(arguments, sort_keys=True)}'.encode()):010d}"
    return [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    ]


def _response_schema(response_format: Any) -> dict[str, Any] | None:
    if isinstance(response_format, type) and hasattr(response_format, "model_json_schema"):
        return response_format.model_json_schema()
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        return dict(response_format.get("json_schema", {}).get("schema") or {"type": "object"})
    return None


def _wants_json_object(response_format: Any) -> bool:
    return isinstance(response_format, Mapping) and response_format.get("type") == "json_object"


# Quoted names ('setup', "name", `id`) that count as keys when the prompt talks of keys or fields.
_QUOTED_NAME = re.compile(r"""(['"`])([A-Za-z_][\w-]*)\1""")
_NAMES_KEYS = re.compile(r"\b(keys?|fields?|propert(?:y|ies)|attributes?)\b", re.IGNORECASE)


def _json_object_answer(text: str, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a model asked for a JSON object (JSON mode) answers: the object the prompt describes.

    JSON mode sends no schema, so the keys come from the instructions (system turns and the last
    user turn): the last JSON schema or example object quoted there (a schema is filled in
    as ``example_from_schema`` does, an example kept as it is); else the quoted names, when the
    prompt speaks of keys, fields or properties, each with a string value; else ``{"answer": text}``.
    """
    users = [m for m in messages if m.get("role") == "user"]
    turns = [m for m in messages if m.get("role") == "system"] + users[-1:]
    prompt = "\n".join(content_text(m.get("content")) for m in turns)
    quoted = _last_json_object(prompt)
    if quoted is not None:
        is_schema = isinstance(quoted.get("properties"), Mapping)
        return example_from_schema(quoted) if is_schema else quoted
    names = [name for _, name in _QUOTED_NAME.findall(prompt)] if _NAMES_KEYS.search(prompt) else []
    if not names:
        return {"answer": text}
    return {name: f"{name}: {text}" for name in dict.fromkeys(names)}  # in the order asked, once each


def _last_json_object(text: str) -> dict[str, Any] | None:
    """The last top-level JSON object written out in ``text`` (instructions put the schema last)."""
    decoder, found, start = json.JSONDecoder(), None, text.find("{")
    while start != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict) and value:
            found = value
        start = text.find("{", end)
    return found


def example_from_schema(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """A small value that satisfies a JSON schema: every property filled, first enum or type option."""
    root = schema if root is None else root
    if "$ref" in schema:
        return example_from_schema(_resolve_ref(schema["$ref"], root), root)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [option for option in schema.get(key, []) if option.get("type") != "null"]
        if options:
            return example_from_schema(options[0], root)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: example_from_schema(sub, root) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        item = example_from_schema(schema.get("items", {"type": "string"}), root)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _example_string(schema)


def _example_string(schema: Mapping[str, Any]) -> str:
    formats = {"date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "email": "user@example.com"}
    text = formats.get(schema.get("format", ""), "example")
    minimum = int(schema.get("minLength", 0))
    return text.ljust(minimum, "x")


def _resolve_ref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


# -------------------------------------------------------------------- streaming
def split_words(text: str) -> list[str]:
    """Text in chunks of one word each, spaces kept, so the chunks join back to the text."""
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]] if text else []


def scripted_chunk(
    text: str = "",
    *,
    tool_use: dict[str, Any] | None = None,
    is_finished: bool = False,
    finish_reason: str = "",
    usage: dict[str, int] | None = None,
) -> GenericStreamingChunk:
    return {
        "text": text,
        "tool_use": tool_use,
        "is_finished": is_finished,
        "finish_reason": finish_reason,
        "usage": usage,
        "index": 0,
    }


# ----------------------------------------------------------------------- errors
def provider_error(
    kind: FailureKind, model: str, provider: str, retry_after: float | None = None
) -> Exception:
    """The litellm exception a real provider's failure of this kind is mapped to."""
    message = f"scripted {kind} failure of {provider}/{model}"
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    status = {"rate_limit": 429, "permission_denied": 403}.get(kind, 400)
    response = httpx.Response(
        status, headers=headers, request=httpx.Request("POST", f"http://{provider}.invalid")
    )
    errors: dict[str, Any] = {
        "rate_limit": lambda: litellm.RateLimitError(
            message, llm_provider=provider, model=model, response=response
        ),
        "timeout": lambda: litellm.Timeout(message, model=model, llm_provider=provider),
        "server_error": lambda: litellm.InternalServerError(message, llm_provider=provider, model=model),
        "unavailable": lambda: litellm.ServiceUnavailableError(message, llm_provider=provider, model=model),
        "connection": lambda: litellm.APIConnectionError(message, llm_provider=provider, model=model),
        "context_window": lambda: litellm.ContextWindowExceededError(
            message, model=model, llm_provider=provider
        ),
        "auth": lambda: litellm.AuthenticationError(message, llm_provider=provider, model=model),
        "bad_request": lambda: litellm.BadRequestError(message, model=model, llm_provider=provider),
        "not_found": lambda: litellm.NotFoundError(message, model=model, llm_provider=provider),
        "payment_required": lambda: litellm.PaymentRequiredError(message, model=model, llm_provider=provider),
        "permission_denied": lambda: litellm.PermissionDeniedError(
            message, llm_provider=provider, model=model, response=response
        ),
        "unsupported_params": lambda: litellm.UnsupportedParamsError(
            message, llm_provider=provider, model=model
        ),
        "content_policy": lambda: litellm.ContentPolicyViolationError(
            message, model=model, llm_provider=provider
        ),
    }
    return errors[kind]()
