"""A scripted litellm provider for offline tests and examples.

``register_scripted_provider()`` installs ``ScriptedLLM`` as the litellm provider
``scripted`` and registers prices and capabilities for ``scripted/tiny``,
``scripted/small``, ``scripted/medium`` and ``scripted/large`` (see
``SCRIPTED_MODELS``), so ``litellm.completion(model="scripted/small", ...)``,
``litellm.completion_cost`` and ``litellm.supports_function_calling`` work with no
network. The provider answers deterministically, calls tools with arguments built
from their JSON schema, honours ``response_format`` schemas, answers JSON mode with
the keys the prompt asks for, streams with a final usage chunk, and can be told to
fail like a real provider, to answer at length, without usage, or slowly::

    llm = register_scripted_provider()
    llm.fail("scripted/small", "rate_limit", times=2)
    llm.fail("scripted/large", "server_error", times=None, rate=0.2)   # one call in five, at random
    llm.behave("scripted/small", answer_words=2000, usage=False, latency_s=(0.0, 0.02))

Answers never pass the call's ``max_tokens`` nor the model's ``max_output_tokens`` (in
tokens, as a real model stops), and a call whose latency exceeds its ``timeout`` raises
litellm's ``Timeout`` after waiting that long. ``routoo.testing.ScriptedServer`` is the
same answers behind a real OpenAI-compatible HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from routoo._litellm import CustomLLM, GenericStreamingChunk, ModelResponse, litellm
from routoo._scripted_replies import (
    FAILURE_KINDS,
    FailureKind,
    answer_text,
    at_length,
    provider_error,
    scripted_chunk,
    split_words,
    tool_calls_for,
)
from routoo._scripted_server import ScriptedServer
from routoo.errors import ConfigError
from routoo.model_info import forget_lookups

__all__ = [
    "FAILURE_KINDS",
    "SCRIPTED_MODELS",
    "SCRIPTED_MODEL_DEFAULTS",
    "FailureKind",
    "ScriptedCall",
    "ScriptedLLM",
    "ScriptedReply",
    "ScriptedServer",
    "register_scripted_models",
    "register_scripted_provider",
]


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
    timeout: float | None = None  # the seconds litellm gave the call


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
    rate: float | None = None  # None: every call it covers fails; else each one with this chance
    retry_after: float | None = None  # seconds the error's Retry-After header asks for


@dataclass(frozen=True)
class _Behaviour:
    answer_words: int | None = None  # None: the short scripted answer
    usage: bool = True  # False: answers (and streams) carry no token usage
    latency_s: float | tuple[float, float] | None = None  # None: the provider's; a pair: uniform
    chunk_delay_s: float = 0.0  # async streams: a wait before every chunk after the first
    answer: Callable[[list[dict[str, Any]]], str] | None = None  # None: the scripted echo


class ScriptedLLM(CustomLLM):
    """A litellm provider that answers like a deterministic chat model, without a network."""

    def __init__(self, provider: str = "scripted", *, latency_s: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        self.provider = provider
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._failures: dict[str, _Failure] = {}
        self._behaviours: dict[str, _Behaviour] = {}
        self._calls: list[ScriptedCall] = []

    # ------------------------------------------------------------------ scripting
    def fail(
        self,
        model: str,
        error: FailureKind,
        times: int | None = 1,
        *,
        after_chunks: int | None = None,
        rate: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``model`` raise litellm's error of that kind (None: all calls).

        With ``after_chunks``, streamed calls first yield that many chunks and then fail.
        With ``rate``, each of those calls fails with that chance (seeded: the same run fails alike).
        ``retry_after`` puts a ``Retry-After`` header of that many seconds on the error.
        """
        if error not in FAILURE_KINDS:
            raise ConfigError(f"unknown failure kind {error!r}; use one of {FAILURE_KINDS}")
        if rate is not None and not 0 <= rate <= 1:
            raise ConfigError(f"rate must be a chance in [0, 1], not {rate!r}")
        with self._lock:
            self._failures[self._short_name(model)] = _Failure(error, times, after_chunks, rate, retry_after)

    def behave(
        self,
        model: str,
        *,
        answer_words: int | None = None,
        usage: bool = True,
        latency_s: float | tuple[float, float] | None = None,
        chunk_delay_s: float = 0.0,
        answer: Callable[[list[dict[str, Any]]], str] | None = None,
    ) -> None:
        """How ``model`` answers from now on: ``answer_words`` words at least (longer than the
        router expects), without token usage, with this latency (a pair: uniform at random),
        or, streaming asynchronously, with ``chunk_delay_s`` between chunks. ``answer`` writes
        the text from the messages (a model that knows some answers, a judge's verdict)."""
        if answer_words is not None and answer_words < 0:
            raise ConfigError(f"answer_words must be >= 0, not {answer_words!r}")
        with self._lock:
            self._behaviours[self._short_name(model)] = _Behaviour(
                answer_words, usage, latency_s, chunk_delay_s, answer
            )

    def clear(self) -> None:
        """Forget scripted failures, behaviours and the call log."""
        with self._lock:
            self._failures.clear()
            self._behaviours.clear()
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
        write = self._behaviour(model).answer
        if tool_calls:
            content = None
        elif write is not None:
            content = write([dict(message) for message in messages])
        else:
            content = answer_text(f"{self.provider}/{model}", messages, params)
        if content is not None:
            limits = [params.get("max_tokens"), params.get("max_completion_tokens"), self._max_output(model)]
            words = None if params.get("response_format") else self._behaviour(model).answer_words
            content = at_length(content, words, [int(limit) for limit in limits if limit])
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
        latency, timeout = self._latency(model), kwargs.get("timeout")
        time.sleep(_waited(latency, timeout))
        self._raise_if(failure, model, latency, timeout)
        return self._response(model, messages, kwargs)

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        failure = self._begin(model, messages, kwargs, stream=False)
        latency, timeout = self._latency(model), kwargs.get("timeout")
        await asyncio.sleep(_waited(latency, timeout))
        self._raise_if(failure, model, latency, timeout)
        return self._response(model, messages, kwargs)

    def streaming(
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> Iterator[GenericStreamingChunk]:
        # Checked before the generator starts, as an HTTP API answers an error before streaming.
        failure = self._begin(model, messages, kwargs, stream=True)
        latency, timeout = self._latency(model), kwargs.get("timeout")
        time.sleep(_waited(latency, timeout))
        at_once = failure if failure is not None and failure.after_chunks is None else None
        self._raise_if(at_once, model, latency, timeout)
        return self._chunks(model, messages, kwargs, failure)

    def astreaming(  # type: ignore[override]  # litellm iterates what this returns: no coroutine
        self, model: str, messages: list, *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        failure = self._begin(model, messages, kwargs, stream=True)
        if failure is not None and failure.after_chunks is None:
            raise provider_error(failure.kind, model, self.provider, failure.retry_after)
        chunks = self._chunks(model, messages, kwargs, failure)
        return self._async_chunks(chunks, self._latency(model), self._behaviour(model).chunk_delay_s)

    # -------------------------------------------------------------------- helpers
    def _short_name(self, model: str) -> str:
        return model.removeprefix(f"{self.provider}/")

    def _behaviour(self, model: str) -> _Behaviour:
        with self._lock:
            return self._behaviours.get(self._short_name(model), _Behaviour())

    def _latency(self, model: str) -> float:
        latency = self._behaviour(model).latency_s
        if latency is None:
            return self.latency_s
        if isinstance(latency, tuple):
            with self._lock:
                return self._random.uniform(*latency)
        return latency

    def _max_output(self, model: str) -> int | None:
        entry = litellm.model_cost.get(f"{self.provider}/{self._short_name(model)}") or {}
        return entry.get("max_output_tokens")

    def _raise_if(self, failure: _Failure | None, model: str, latency: float, timeout: Any) -> None:
        """Raise the scripted failure, or litellm's Timeout when the call outlasted its timeout."""
        if isinstance(timeout, int | float) and latency > timeout:
            raise litellm.Timeout(f"scripted {model} took longer than {timeout}s", model, self.provider)
        if failure is not None:
            raise provider_error(failure.kind, model, self.provider, failure.retry_after)

    def _begin(self, model: str, messages: list, kwargs: dict[str, Any], *, stream: bool) -> _Failure | None:
        """Log the call and say whether it is scripted to fail."""
        params = dict(kwargs.get("optional_params") or {})
        with self._lock:
            timeout = kwargs.get("timeout")
            timeout = float(timeout) if isinstance(timeout, int | float) else None
            self._calls.append(ScriptedCall(model, [dict(m) for m in messages], params, stream, timeout))
            failure = self._failures.get(model)
            if failure is None:
                return None
            if failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._failures[model]
            if failure.rate is not None and self._random.random() >= failure.rate:
                return None
            return failure

    def _response(self, model: str, messages: list, kwargs: dict[str, Any]) -> ModelResponse:
        reply = self.reply(model, messages, kwargs.get("optional_params") or {})
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        usage = {"usage": litellm.Usage(**reply.usage)} if self._behaviour(model).usage else {}
        return ModelResponse(
            model=f"{self.provider}/{model}",
            choices=[
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            **usage,
        )

    def _chunks(
        self, model: str, messages: list, kwargs: dict[str, Any], failure: _Failure | None
    ) -> Iterator[GenericStreamingChunk]:
        reply = self.reply(model, messages, kwargs.get("optional_params") or {})
        pieces: list[GenericStreamingChunk] = [
            scripted_chunk(text=word) for word in split_words(reply.content or "")
        ] + [scripted_chunk(tool_use={**call, "index": index}) for index, call in enumerate(reply.tool_calls)]
        finish_reason = "tool_calls" if reply.tool_calls else "stop"
        usage = reply.usage if self._behaviour(model).usage else None
        pieces.append(scripted_chunk(is_finished=True, finish_reason=finish_reason, usage=usage))
        for sent, piece in enumerate(pieces):
            if failure is not None and sent == failure.after_chunks:
                raise provider_error(failure.kind, model, self.provider, failure.retry_after)
            yield piece

    async def _async_chunks(
        self, chunks: Iterator[GenericStreamingChunk], latency_s: float, chunk_delay_s: float
    ) -> AsyncIterator[GenericStreamingChunk]:
        await asyncio.sleep(latency_s)
        for sent, chunk in enumerate(chunks):
            # Other tasks run between chunks, as over a network.
            await asyncio.sleep(chunk_delay_s if sent else 0)
            yield chunk


def register_scripted_provider(
    name: str = "scripted",
    models: Mapping[str, Mapping[str, Any]] | Sequence[str] | None = None,
    *,
    latency_s: float = 0.0,
    seed: int = 0,
) -> ScriptedLLM:
    """Install a ``ScriptedLLM`` as litellm provider ``name`` and register its models' prices.

    ``models`` maps short names (``"cheap"`` for ``"<name>/cheap"``) to overrides of
    ``SCRIPTED_MODEL_DEFAULTS``; a list of names takes the defaults; None registers
    ``SCRIPTED_MODELS``. ``seed`` seeds random latencies and failures. Calling it again
    replaces the earlier handler of that name.
    """
    handler = ScriptedLLM(name, latency_s=latency_s, seed=seed)
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


def _waited(latency: float, timeout: Any) -> float:
    """How long a call waits: its latency, cut off at its timeout."""
    return min(latency, timeout) if isinstance(timeout, int | float) else latency
