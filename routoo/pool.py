"""The candidate models a router chooses from, with their prices and capabilities resolved.

Each candidate is a ``ModelSpec``. What a spec leaves out comes from litellm's model
map (prices, context window, function calling, vision, response schemas); a model
litellm does not know needs its prices in the spec. Every candidate is scored by the
predictor as itself or, with ``like=``, as a model the predictor knows.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)

from routoo._litellm import litellm
from routoo.errors import ConfigError, PriceNotFoundError, UnknownModelError

# Expected output length of a call when neither the spec nor the predictor's training data says.
DEFAULT_OUTPUT_TOKENS = 256


class ModelSpec(BaseModel):
    """One candidate model; fields left as None are looked up in litellm's model map."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    like: str | None = None
    input_cost_per_token: NonNegativeFloat | None = None
    output_cost_per_token: NonNegativeFloat | None = None
    expected_output_tokens: PositiveFloat | None = None
    max_input_tokens: PositiveInt | None = None
    supports_function_calling: bool | None = None
    supports_vision: bool | None = None
    supports_response_schema: bool | None = None
    latency_s: NonNegativeFloat | None = None
    litellm_params: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ConfigError(_describe(error, f"ModelSpec {data.get('name', '')!r}")) from None

    @property
    def scored_as(self) -> str:
        """The predictor model this candidate is scored as."""
        return self.like or self.name


class ModelPool:
    """Candidate models, resolved against litellm and the predictor's models.

    ``specs`` holds every candidate with prices, capabilities and expected output
    tokens filled in; ``predictor_columns[i]`` is the column of ``specs[i]`` in the
    predictor's output. ``priced_by_spec[i]`` says whether the user set its prices.
    """

    def __init__(
        self,
        models: Sequence[str | ModelSpec | Mapping[str, Any]],
        predictor_models: Sequence[str],
        predictor_output_tokens: Mapping[str, float] | None = None,
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
        self.priced_by_spec: list[bool] = [
            spec.input_cost_per_token is not None and spec.output_cost_per_token is not None for spec in given
        ]
        output_tokens = dict(predictor_output_tokens or {})
        self.specs: list[ModelSpec] = [_resolve(spec, output_tokens) for spec in given]

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


def _resolve(spec: ModelSpec, predictor_output_tokens: Mapping[str, float]) -> ModelSpec:
    """The spec with every field litellm or the predictor can fill filled in."""
    info = _model_info(spec.name)
    prices = {}
    for field in ("input_cost_per_token", "output_cost_per_token"):
        value = getattr(spec, field)
        if value is None:
            value = info.get(field)
        if value is None:
            raise PriceNotFoundError(
                f"no {field} is known for model {spec.name!r}: litellm's price map does not list it; "
                "give input_cost_per_token and output_cost_per_token in its ModelSpec"
            )
        prices[field] = float(value)
    expected_output = spec.expected_output_tokens or predictor_output_tokens.get(
        spec.scored_as, DEFAULT_OUTPUT_TOKENS
    )
    return spec.model_copy(
        update={
            **prices,
            "expected_output_tokens": float(expected_output),
            "max_input_tokens": spec.max_input_tokens or info.get("max_input_tokens"),
            "supports_function_calling": _capability(spec, "supports_function_calling"),
            "supports_vision": _capability(spec, "supports_vision"),
            "supports_response_schema": _capability(spec, "supports_response_schema"),
        }
    )


def _model_info(name: str) -> dict[str, Any]:
    """litellm's entry for ``name``, or nothing when litellm does not know the model."""
    try:
        # get_model_info prints a provider list to stdout before it fails on an unknown model.
        with contextlib.redirect_stdout(io.StringIO()):
            return dict(litellm.get_model_info(name))
    except Exception:  # litellm raises bare Exceptions for models it has not mapped
        return {}


def _capability(spec: ModelSpec, field: str) -> bool:
    value = getattr(spec, field)
    if value is not None:
        return value
    try:
        return bool(getattr(litellm, field)(model=spec.name))
    except Exception:  # an unknown model or provider: assume it cannot
        return False


def _describe(error: ValidationError, owner: str) -> str:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or 'value'}: {issue['msg']}"
        for issue in error.errors()
    )
    return f"{owner}: {problems}"
