"""A scripted litellm provider for offline tests and examples.

``register_scripted_provider()`` installs ``ScriptedLLM`` as the litellm provider
``scripted`` and registers prices and capabilities for ``scripted/tiny``,
``scripted/small``, ``scripted/medium`` and ``scripted/large`` (see
``SCRIPTED_MODELS``), so ``litellm.completion(model="scripted/small", ...)``,
``litellm.completion_cost`` and ``litellm.supports_function_calling`` work with no
network. The provider answers deterministically, calls tools with arguments built
from their JSON schema, honours ``response_format`` schemas, answers JSON mode with
the keys the prompt asks for, streams with a final usage chunk, and can be told to
fail like a real provider::

    llm = register_scripted_provider()
    llm.fail("scripted/small", "rate_limit", times=2)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from routoo._litellm import CustomLLM, GenericStreamingChunk, ModelResponse, litellm
from routoo._scripted_replies import answer_text, tool_calls_for
from routoo.errors import ConfigError
from routoo.model_info import forget_lookups

FailureKind = Literal[
    "rate_limit",
    "timeout",
    "server_error",
    "unavailable",
    "connection",
    "context_window",
    "auth",
    "bad_request",
]
FAILURE_KINDS: tuple[str, ...] = FailureKind.__args__

# Capabilities and USD prices of every registered scripted model unless overridden.
SCRIPTED_MODEL_DEFAULTS: dict[str, Any] = {
    "input_cost_per_token": 1e-7,
    "output_cost_per_token": 4e-7,
    "cache_creation_input_token_cost": 0.0,  # scripted models cache nothing; saying so silences litellm
    "cache_read_input_token_cost": 0.0,
    "max_input_tokens": 8192,
    "max_output_tokens": 4096,
    "supports_function_calling": True,
    "supports_vision": False,
    "supports_response_schema": True,
}

# A cheap text-only model, two mid-range ones and an expensive one that can do everything.
SCRIPTED_MODELS: dict[str, dict[str, Any]] = {
    "tiny": {
        "input_cost_per_token": 5e-8,
        "output_cost_per_token": 2e-7,
        "max_input_tokens": 2048,
        "supports_function_calling": False,
        "supports_response_schema": False,
    },
    "small": {"input_cost_per_token": 1.5e-7, "output_cost_per_token": 6e-7, "max_input_tokens": 16_000},
    "medium": {
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 4e-6,
        "max_input_tokens": 128_000,
        "supports_vision": True,
    },
    "large": {
        "input_cost_per_token": 5e-6,
        "output_cost_per_token": 1.5e-5,
        "max_input_tokens": 128_000,
        "supports_vision": True,
    },
}


@dataclass(frozen=True)
class ScriptedCall:
    """One request the scripted provider received."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    stream: bool


@dataclass(frozen=True)
class ScriptedReply:
    """What the scripted model answers: text or tool calls, and token counts."""

    content: str | None
    tool_calls: list[dict[str, Any]]
    prompt_tokens: int
    completion_tokens: int

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass
class _Failure:
    kind: FailureKind
    remaining: int | None  # None: every call fails
    after_chunks: int | None  # streams only: fail after this many chunks instead of at once


class ScriptedLLM(CustomLLM):
    """A litellm provider that answers like a deterministic chat model, without a network."""

    def __init__(self, provider: str = "scripted", *, latency_s: float = 0.0) -> None:
        super().__init__()
        self.provider = provider
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._failures: dict[str, _Failure] = {}
        self._calls: list[ScriptedCall] = []

    # ------------------------------------------------------------------ scripting
    def fail(
        self, model: str, error: FailureKind, times: int | None = 1, *, after_chunks: int | None = None
    ) -> None:
        """Make the next ``times`` calls to ``model`` raise litellm's error of that kind (None: all calls).

        With ``after_chunks``, streamed calls first yield that many chunks and then fail.
        """
        if error not in FAILURE_KINDS:
            raise ConfigError(f"unknown failure kind {error!r}; use one of {FAILURE_KINDS}")
        with self._lock:
            self._failures[self._short_name(model)] = _Failure(error, times, after_chunks)

    def clear(self) -> None:
        """Forget scripted failures and the call log."""
        with self._lock:
            self._failures.clear()
            self._calls.clear()

    @property
    def calls(self) -> list[ScriptedCall]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, model: str) -> int:
        """How many requests ``model`` received."""
        short = self._short_name(model)
        return sum(call.model == short for call in self.calls)

    def reply(
        self, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
    ) -> ScriptedReply:
        """The deterministic answer of ``model``: a tool call, JSON for a schema, or a short text."""
        tool_calls = tool_calls_for(params.get("tools"), params.get("tool_choice"), messages)
        content = None if tool_calls else answer_text(f"{self.provider}/{model}", messages, params)
        completion_text = content if content is not None else json.dumps(tool_calls)
        return ScriptedReply(
            content=content,
            tool_calls=tool_calls,
            prompt_tokens=litellm.token_counter(messages=list(messages)),
            completion_tokens=litellm.token_counter(text=completion_text, count_response_tokens=True),
        )

    # ----------------------------------------------------------- litellm interface
    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        failure = self._begin(model, messages, kwargs, stream=False)
        time.sleep(self.latency_s)
        if failure is not None:
            raise _provider_error(failure.kind, model, self.provider)
        return self._response(model, messages, kwargs)

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        failure = self._begin(model, messages, kwargs, stream=False)
        await asyncio.sleep(self.latency_s)
        if failure is not None:
            raise _provider_error(failure.kind, model, self.provider)
        return self._response(model, messages, kwargs)

    def streaming(
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> Iterator[GenericStreamingChunk]:
        # Checked before the generator starts, as an HTTP API answers an error before streaming.
        failure = self._begin(model, messages, kwargs, stream=True)
        time.sleep(self.latency_s)
        if failure is not None and failure.after_chunks is None:
            raise _provider_error(failure.kind, model, self.provider)
        return self._chunks(model, messages, kwargs, failure)

    def astreaming(  # type: ignore[override]  # litellm iterates what this returns: no coroutine
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        failure = self._begin(model, messages, kwargs, stream=True)
        if failure is not None and failure.after_chunks is None:
            raise _provider_error(failure.kind, model, self.provider)
        return self._async_chunks(self._chunks(model, messages, kwargs, failure))

    # -------------------------------------------------------------------- helpers
    def _short_name(self, model: str) -> str:
        return model.removeprefix(f"{self.provider}/")

    def _begin(self, model: str, messages: list, kwargs: dict[str, Any], *, stream: bool) -> _Failure | None:
        """Log the call and say whether it is scripted to fail."""
        params = dict(kwargs.get("optional_params") or {})
        with self._lock:
            self._calls.append(ScriptedCall(model, [dict(m) for m in messages], params, stream))
            failure = self._failures.get(model)
            if failure is None:
                return None
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._failures[model]
            return failure

    def _response(self, model: str, messages: list, kwargs: dict[str, Any]) -> ModelResponse:
        reply = self.reply(model, messages, kwargs.get("optional_params") or {})
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        return ModelResponse(
            model=f"{self.provider}/{model}",
            choices=[
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            usage=litellm.Usage(**reply.usage),
        )

    def _chunks(
        self, model: str, messages: list, kwargs: dict[str, Any], failure: _Failure | None
    ) -> Iterator[GenericStreamingChunk]:
        reply = self.reply(model, messages, kwargs.get("optional_params") or {})
        pieces: list[GenericStreamingChunk] = [_chunk(text=word) for word in _words(reply.content or "")] + [
            _chunk(tool_use={**call, "index": index}) for index, call in enumerate(reply.tool_calls)
        ]
        finish_reason = "tool_calls" if reply.tool_calls else "stop"
        pieces.append(_chunk(is_finished=True, finish_reason=finish_reason, usage=reply.usage))
        for sent, piece in enumerate(pieces):
            if failure is not None and sent == failure.after_chunks:
                raise _provider_error(failure.kind, model, self.provider)
            yield piece

    async def _async_chunks(
        self, chunks: Iterator[GenericStreamingChunk]
    ) -> AsyncIterator[GenericStreamingChunk]:
        await asyncio.sleep(self.latency_s)
        for chunk in chunks:
            await asyncio.sleep(0)  # let other tasks run between chunks, as a network stream would
            yield chunk


def register_scripted_provider(
    name: str = "scripted",
    models: Mapping[str, Mapping[str, Any]] | Sequence[str] | None = None,
    *,
    latency_s: float = 0.0,
) -> ScriptedLLM:
    """Install a ``ScriptedLLM`` as litellm provider ``name`` and register its models' prices.

    ``models`` maps short names (``"cheap"`` for ``"<name>/cheap"``) to overrides of
    ``SCRIPTED_MODEL_DEFAULTS``; a list of names takes the defaults; None registers
    ``SCRIPTED_MODELS``. Calling it again replaces the earlier handler of that name.
    """
    handler = ScriptedLLM(name, latency_s=latency_s)
    litellm.custom_provider_map = [
        entry for entry in litellm.custom_provider_map if entry["provider"] != name
    ] + [{"provider": name, "custom_handler": handler}]
    litellm.utils.custom_llm_setup()
    register_scripted_models(SCRIPTED_MODELS if models is None else models, provider=name)
    return handler


def register_scripted_models(
    models: Mapping[str, Mapping[str, Any]] | Sequence[str], provider: str = "scripted"
) -> list[str]:
    """Register prices and capabilities of scripted models with litellm; returns their full names."""
    overrides = {name: {} for name in models} if not isinstance(models, Mapping) else models
    entries = {
        f"{provider}/{name.removeprefix(f'{provider}/')}": {
            **SCRIPTED_MODEL_DEFAULTS,
            **settings,
            "litellm_provider": provider,
            "mode": "chat",
        }
        for name, settings in overrides.items()
    }
    litellm.register_model(entries)
    forget_lookups()  # litellm caches lookups, including failed ones
    return list(entries)


# -------------------------------------------------------------------- streaming
def _words(text: str) -> list[str]:
    """Text in chunks of one word each, spaces kept, so the chunks join back to the text."""
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]] if text else []


def _chunk(
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
def _provider_error(kind: FailureKind, model: str, provider: str) -> Exception:
    """The litellm exception a real provider's failure of this kind is mapped to."""
    message = f"scripted {kind} failure of {provider}/{model}"
    errors: dict[str, Any] = {
        "rate_limit": lambda: litellm.RateLimitError(message, llm_provider=provider, model=model),
        "timeout": lambda: litellm.Timeout(message, model=model, llm_provider=provider),
        "server_error": lambda: litellm.InternalServerError(message, llm_provider=provider, model=model),
        "unavailable": lambda: litellm.ServiceUnavailableError(message, llm_provider=provider, model=model),
        "connection": lambda: litellm.APIConnectionError(message, llm_provider=provider, model=model),
        "context_window": lambda: litellm.ContextWindowExceededError(
            message, model=model, llm_provider=provider
        ),
        "auth": lambda: litellm.AuthenticationError(message, llm_provider=provider, model=model),
        "bad_request": lambda: litellm.BadRequestError(message, model=model, llm_provider=provider),
    }
    return errors[kind]()
