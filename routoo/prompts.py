"""Prompts as plain text or chat messages, and the text a predictor reads from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from routoo.errors import DataError

Message = Mapping[str, Any]
Prompt = str | Sequence[Message]
PromptView = Literal["last_user", "conversation"]
PROMPT_VIEWS: tuple[str, ...] = ("last_user", "conversation")
# The chat roles of OpenAI's format, which litellm speaks to every provider.
ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant", "tool", "function")


def validate_prompt(prompt: object, where: str = "prompt") -> None:
    """Raise ``DataError`` naming ``where`` unless ``prompt`` is text or a list of chat messages.

    Each message needs a role of ``ROLES`` and content: text or a list of content parts; only
    an assistant turn that calls tools may have ``content: null``. A prompt a provider would
    refuse is refused here, before any model is chosen or paid for.
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise DataError(f"{where}: the prompt is empty")
        return
    if not isinstance(prompt, Sequence) or isinstance(prompt, bytes) or not prompt:
        raise DataError(f"{where}: a prompt must be a string or a non-empty list of messages")
    for turn, message in enumerate(prompt):
        _check_message(message, f"{where}: message {turn}")


def _check_message(message: object, where: str) -> None:
    if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
        raise DataError(f"{where} needs 'role' and 'content'")
    role, content = message["role"], message["content"]
    if role not in ROLES:
        raise DataError(f"{where} has role {role!r}; the roles are {ROLES}")
    if content is None:
        if role != "assistant" or not (message.get("tool_calls") or message.get("function_call")):
            raise DataError(f"{where} ({role}) has content null; only an assistant turn calling tools may")
    elif not isinstance(content, Sequence) or isinstance(content, bytes):
        raise DataError(
            f"{where} has content of type {type(content).__name__}; use text or a list of content parts"
        )


def content_text(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a multimodal list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
        return "\n".join(parts)
    return str(content)


def prompt_text(prompt: Prompt, view: PromptView = "last_user") -> str:
    """The text a predictor sees: the last user turn, or the whole conversation."""
    if isinstance(prompt, str):
        return prompt
    if view not in PROMPT_VIEWS:
        raise DataError(f"unknown prompt view {view!r}; use one of {PROMPT_VIEWS}")
    if view == "last_user":
        for message in reversed(prompt):
            if message.get("role") == "user":
                return content_text(message.get("content"))
        # No user turn (e.g. a bare system prompt): fall back to everything there is.
    return "\n\n".join(
        f"{message.get('role', 'user')}: {content_text(message.get('content'))}" for message in prompt
    )


def prompt_texts(prompts: Sequence[Prompt], view: PromptView = "last_user") -> list[str]:
    return [prompt_text(prompt, view) for prompt in prompts]


def as_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """A prompt as chat messages (plain text becomes one user turn)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]
