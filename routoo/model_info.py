"""What litellm's model map says about a model: list prices, context window, output limit, capabilities.

The one place Routoo asks litellm about models: the price book, the model pool and the
LlamaIndex adapter read litellm through these functions, never ``litellm.get_model_info``
or ``litellm.supports_*`` themselves. litellm raises a bare ``Exception`` (after printing a
provider list) for a model it does not know; here such a model has no entry: ``None`` for a
number, ``False`` for a capability. Token counts have their own home, ``routoo.tokens``.
litellm is imported on first use, so that importing the price book stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Literal

from routoo.errors import ConfigError

PRICE_FIELDS = ("input_cost_per_token", "output_cost_per_token")
Capability = Literal["supports_function_calling", "supports_vision", "supports_response_schema"]
CAPABILITIES: tuple[Capability, ...] = (
    "supports_function_calling",
    "supports_vision",
    "supports_response_schema",
)


def _litellm() -> ModuleType:
    from routoo._litellm import litellm

    return litellm


def quiet_litellm() -> contextlib.AbstractContextManager[object]:
    """litellm prints a provider list to stdout before it fails on an unknown model: keep it out."""
    return contextlib.redirect_stdout(io.StringIO())


def model_entry(model: str) -> Mapping[str, Any]:
    """litellm's entry for ``model``, resolved as litellm resolves names; empty when it does not know it."""
    try:
        with quiet_litellm():
            return dict(_litellm().get_model_info(model))
    except Exception:  # litellm raises bare Exceptions for models it has not mapped
        return {}


def listed_prices(model: str) -> tuple[float, float] | None:
    """USD per input and per output token in litellm's map, or None where it lists no price.

    The map's own key is read first: litellm's name lookup reports a price of 0 for the
    entries (image, audio, rerank models) that list none, which must not pass as free.
    """
    entry: Mapping[str, Any] | None = _litellm().model_cost.get(model)
    if entry is None:
        entry = model_entry(model)
    values = [entry.get(name) for name in PRICE_FIELDS]
    if any(value is None for value in values):
        return None
    return float(values[0]), float(values[1])


def max_input_tokens(model: str) -> int | None:
    """The model's context window in tokens, if litellm knows it."""
    return model_entry(model).get("max_input_tokens")


def max_output_tokens(model: str) -> int | None:
    """The most tokens the model writes in one answer, if litellm knows it."""
    return model_entry(model).get("max_output_tokens")


def supports(model: str, capability: Capability) -> bool:
    """Whether litellm says the model has ``capability``; an unknown model or provider cannot."""
    if capability not in CAPABILITIES:
        raise ConfigError(f"unknown capability {capability!r}; use one of {CAPABILITIES}")
    try:
        with quiet_litellm():
            return bool(getattr(_litellm(), capability)(model=model))
    except Exception:  # litellm raises bare Exceptions for models and providers it does not know
        return False


def forget_lookups() -> None:
    """Drop litellm's cached name lookups (failed ones too), after models were registered with it."""
    _litellm().get_model_info.cache_clear()
    _provider_route.cache_clear()


def provider_route(model: str, litellm_params: Mapping[str, Any]) -> tuple[str, str]:
    """Where litellm sends ``model`` with ``litellm_params`` (its ``custom_llm_provider``,
    ``api_base``): the model as its provider names it, and the provider; ``ConfigError`` when
    litellm cannot tell."""
    return _provider_route(model, litellm_params.get("custom_llm_provider"), litellm_params.get("api_base"))


@functools.lru_cache(maxsize=1024)  # asked before every rate-limited attempt: once per model is enough
def _provider_route(model: str, custom_llm_provider: str | None, api_base: str | None) -> tuple[str, str]:
    try:
        with quiet_litellm():
            provider_model, provider, _, _ = _litellm().get_llm_provider(
                model, custom_llm_provider=custom_llm_provider, api_base=api_base
            )
    except Exception as error:  # litellm raises its BadRequestError, or a bare Exception
        raise ConfigError(f"litellm cannot tell the provider of {model!r}: {error}") from None
    return provider_model, provider


def provider_of(model: str, litellm_params: Mapping[str, Any]) -> str:
    """litellm's provider of ``model`` as sent with ``litellm_params`` (``provider_route``)."""
    return provider_route(model, litellm_params)[1]
