"""The candidate models a router chooses from, with their prices and capabilities resolved.

Each candidate is a ``ModelSpec``. What a spec leaves out comes from litellm's model
map: its prices through ``routoo.pricing.PriceBook`` (the price lookup data sets use too),
its context window and capabilities (function calling, vision, response schemas) through
``routoo.model_info``. A model litellm does not price needs its prices in the spec. Every
candidate is scored by the predictor as itself or, with ``like=``, as a model the
predictor knows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)

from routoo import model_info
from routoo.errors import ConfigError, UnknownModelError
from routoo.policy import NonNegativeNumber, describe_validation_error
from routoo.pricing import PRICE_FIELDS, ModelPrice, PriceBook

# Expected output length of a call when neither the spec nor the predictor's training data says.
DEFAULT_OUTPUT_TOKENS = 256


class ModelSpec(BaseModel):
    """One candidate model; fields left as None are looked up in litellm's model map."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    like: str | None = None
    input_cost_per_token: NonNegativeNumber | None = None
    output_cost_per_token: NonNegativeNumber | None = None
    expected_output_tokens: PositiveFloat | None = None
    max_input_tokens: PositiveInt | None = None
    supports_function_calling: bool | None = None
    supports_vision: bool | None = None
    supports_response_schema: bool | None = None
    latency_s: NonNegativeNumber | None = None
    litellm_params: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            owner = f"ModelSpec {data.get('name', '')!r}"
            raise ConfigError(describe_validation_error(error, owner)) from None

    @property
    def scored_as(self) -> str:
        """The predictor model this candidate is scored as."""
        return self.like or self.name


class ModelPool:
    """Candidate models, resolved against litellm and the predictor's models.

    ``specs`` holds every candidate with prices, capabilities and expected output
    tokens filled in; ``predictor_columns[i]`` is the column of ``specs[i]`` in the
    predictor's output. Prices a spec leaves out come from ``prices`` (by default
    ``PriceBook()``: litellm's map), the price book data sets are priced with too.
    ``priced_by_spec[i]`` says whether the user set its prices (in the spec or as an
    override of ``prices``) rather than litellm's map.
    """

    def __init__(
        self,
        models: Sequence[str | ModelSpec | Mapping[str, Any]],
        predictor_models: Sequence[str],
        predictor_output_tokens: Mapping[str, float] | None = None,
        prices: PriceBook | None = None,
    ) -> None:
        if isinstance(models, str | ModelSpec | Mapping) or len(models) == 0:
            raise ConfigError("a model pool needs a non-empty list of models")
        given = [_as_spec(model) for model in models]
        names = [spec.name for spec in given]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"the model pool names {duplicates} more than once")
        known = list(predictor_models)
        self.predictor_columns: list[int] = [_predictor_column(spec, known) for spec in given]
        prices = PriceBook() if prices is None else prices
        self.priced_by_spec: list[bool] = [
            all(getattr(spec, field) is not None for field in PRICE_FIELDS) or spec.name in prices.overrides
            for spec in given
        ]
        output_tokens = dict(predictor_output_tokens or {})
        self.specs: list[ModelSpec] = [_resolve(spec, output_tokens, prices) for spec in given]

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    def __len__(self) -> int:
        return len(self.specs)

    def index(self, name: str) -> int:
        """Position of ``name`` in the pool; ``UnknownModelError`` listing the pool otherwise."""
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownModelError(f"{name!r} is not in the model pool {self.names}") from None

    def input_prices(self) -> np.ndarray:
        """USD per input token of every candidate."""
        return np.array([spec.input_cost_per_token for spec in self.specs], dtype=np.float64)

    def output_prices(self) -> np.ndarray:
        """USD per output token of every candidate."""
        return np.array([spec.output_cost_per_token for spec in self.specs], dtype=np.float64)

    def expected_output_tokens(self) -> np.ndarray:
        """Expected output tokens of every candidate."""
        return np.array([spec.expected_output_tokens for spec in self.specs], dtype=np.float64)


def _as_spec(model: str | ModelSpec | Mapping[str, Any]) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return ModelSpec(name=model)
    if isinstance(model, Mapping):
        return ModelSpec(**model)
    raise ConfigError(f"a pool model must be a name, a ModelSpec or a mapping, not {type(model).__name__}")


def _predictor_column(spec: ModelSpec, known: list[str]) -> int:
    if spec.scored_as in known:
        return known.index(spec.scored_as)
    if spec.like is not None:
        raise UnknownModelError(
            f"pool model {spec.name!r} is scored like {spec.like!r}, which the predictor does not know; "
            f"it knows {known}"
        )
    raise UnknownModelError(
        f"the predictor does not know pool model {spec.name!r}: map it with like=<one of {known}>"
    )


def _resolve(spec: ModelSpec, predictor_output_tokens: Mapping[str, float], prices: PriceBook) -> ModelSpec:
    """The spec with every field litellm or the predictor can fill filled in."""
    price = _price(spec, prices)
    expected_output = spec.expected_output_tokens or predictor_output_tokens.get(
        spec.scored_as, DEFAULT_OUTPUT_TOKENS
    )
    capabilities = {field: _capability(spec, field) for field in model_info.CAPABILITIES}
    return spec.model_copy(
        update={
            "input_cost_per_token": price.input_cost_per_token,
            "output_cost_per_token": price.output_cost_per_token,
            "expected_output_tokens": float(expected_output),
            "max_input_tokens": spec.max_input_tokens or model_info.max_input_tokens(spec.name),
            **capabilities,
        }
    )


def _price(spec: ModelSpec, prices: PriceBook) -> ModelPrice:
    """The spec's prices, with those it leaves out from the price book (by default litellm's map)."""
    given = {field: getattr(spec, field) for field in PRICE_FIELDS if getattr(spec, field) is not None}
    try:
        if len(given) == len(PRICE_FIELDS):
            return ModelPrice(**given)
        return dataclasses.replace(prices.price(spec.name), **given)
    except ConfigError as error:  # an infinite price, which the spec's own checks let through
        raise ConfigError(f"ModelSpec {spec.name!r}: {error}") from None


def _capability(spec: ModelSpec, field: model_info.Capability) -> bool:
    value = getattr(spec, field)
    return model_info.supports(spec.name, field) if value is None else value
