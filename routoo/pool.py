"""The candidate models a router chooses from, with their prices and capabilities resolved.

Each candidate is a ``ModelSpec``. What a spec leaves out comes from litellm's model
map: its prices through ``routoo.pricing.PriceBook`` (the price lookup data sets use too),
its context window and capabilities (function calling, vision, response schemas) through
``routoo.model_info``. A model litellm does not price needs its prices in the spec. Every
candidate is scored by the predictor as itself or, with ``like=``, as a model the
predictor knows.

Names are resolved through the model catalog (``routoo.catalog``): ``gpt-4o``,
``openai/gpt-4o`` and an Azure deployment whose ``litellm_params["base_model"]`` is
``azure/gpt-4o`` are one model, scored by the predictor's column of that model whatever
name it was trained under (a name the predictor has itself wins). A name litellm does
not price is priced as its ``base_model``, its catalog identity or its catalog litellm
name, the first the price book knows; its context window and output limit come from its
catalog litellm name when litellm does not know its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
)

from routoo import model_info
from routoo.catalog import CatalogEntry, ModelCatalog, default_catalog
from routoo.errors import ConfigError, PriceNotFoundError, UnknownModelError
from routoo.policy import NonNegativeNumber, Settings
from routoo.pricing import PRICE_FIELDS, ModelPrice, PriceBook
from routoo.secrets import hide_secrets

# Expected output length of a call when neither the spec nor the predictor's training data says.
DEFAULT_OUTPUT_TOKENS = 256


class ModelSpec(Settings):
    """One candidate model; fields left as None are looked up in litellm's model map.

    ``litellm_params`` go to every call of this model; the secrets among them (``api_key``,
    ``aws_secret_access_key``, ...: ``routoo.secrets``) are kept as ``SecretStr``, shown as
    ``'**********'`` in reprs and JSON and revealed only in the call sent to litellm.
    """

    name: str = Field(min_length=1)
    like: str | None = None
    input_cost_per_token: NonNegativeNumber | None = None
    output_cost_per_token: NonNegativeNumber | None = None
    expected_output_tokens: PositiveFloat | None = None
    max_input_tokens: PositiveInt | None = None
    max_output_tokens: PositiveInt | None = None
    supports_function_calling: bool | None = None
    supports_vision: bool | None = None
    supports_response_schema: bool | None = None
    latency_s: NonNegativeNumber | None = None
    litellm_params: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def _owner(cls, fields: Mapping[str, Any]) -> str:
        return f"ModelSpec {fields.get('name', '')!r}"

    @field_validator("litellm_params")
    @classmethod
    def _hide_secrets(cls, params: dict[str, Any]) -> dict[str, Any]:
        return hide_secrets(params)

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
    override of ``prices``) rather than litellm's map. ``catalog_entries[i]`` is the
    ``catalog`` entry (by default the bundled one) ``specs[i]`` resolved to, or None.
    """

    def __init__(
        self,
        models: Sequence[str | ModelSpec | Mapping[str, Any]],
        predictor_models: Sequence[str],
        predictor_output_tokens: Mapping[str, float] | None = None,
        prices: PriceBook | None = None,
        catalog: ModelCatalog | None = None,
    ) -> None:
        if isinstance(models, str | ModelSpec | Mapping) or len(models) == 0:
            raise ConfigError("a model pool needs a non-empty list of models")
        given = [_as_spec(model) for model in models]
        names = [spec.name for spec in given]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"the model pool names {duplicates} more than once")
        catalog = default_catalog() if catalog is None else catalog
        self.catalog_entries: list[CatalogEntry | None] = [
            catalog.resolve(spec.name, base_model=_base_model(spec)) for spec in given
        ]
        known = list(predictor_models)
        known_by_identity = _columns_by_identity(known, catalog)
        self.predictor_columns: list[int] = [
            _predictor_column(
                spec, entry if spec.like is None else catalog.resolve(spec.like), known, known_by_identity
            )
            for spec, entry in zip(given, self.catalog_entries, strict=True)
        ]
        prices = PriceBook() if prices is None else prices
        listed = [
            _listed_price(spec, entry, prices)
            for spec, entry in zip(given, self.catalog_entries, strict=True)
        ]
        self.priced_by_spec: list[bool] = [found is None or found[0] in prices.overrides for found in listed]
        # Lengths the user set win over learned ones (routoo.output_lengths.ExpectedOutputTokens).
        self.output_tokens_given: list[float | None] = [spec.expected_output_tokens for spec in given]
        output_tokens = dict(predictor_output_tokens or {})
        self.specs: list[ModelSpec] = [
            _resolve(spec, entry, found, output_tokens.get(known[column], DEFAULT_OUTPUT_TOKENS))
            for spec, entry, found, column in zip(
                given, self.catalog_entries, listed, self.predictor_columns, strict=True
            )
        ]

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

    def max_output_tokens(self) -> np.ndarray:
        """The most tokens each candidate writes in one answer; NaN where neither spec nor litellm says."""
        return np.array(
            [np.nan if spec.max_output_tokens is None else spec.max_output_tokens for spec in self.specs],
            dtype=np.float64,
        )

    def expected_output_tokens(self) -> np.ndarray:
        """Expected output tokens of every candidate."""
        return np.array([spec.expected_output_tokens for spec in self.specs], dtype=np.float64)


def unscored_models(
    models: Sequence[str | ModelSpec | Mapping[str, Any]],
    predictor_models: Sequence[str],
    catalog: ModelCatalog | None = None,
) -> list[tuple[ModelSpec, CatalogEntry | None]]:
    """The pool models that no predictor column scores, with the catalog entry each is scored as.

    A model is scored as itself, or with ``like=`` as that model; one the catalog knows but
    the predictor does not is scored from a prior (``routoo.predictors.onboarded.with_priors``).
    A ``like=`` naming a model neither knows is left to ``ModelPool``'s error.
    """
    catalog = default_catalog() if catalog is None else catalog
    known = list(predictor_models)
    by_identity = _columns_by_identity(known, catalog)
    missing = []
    for spec in map(_as_spec, models):
        entry = catalog.resolve(spec.scored_as, base_model=None if spec.like else _base_model(spec))
        if spec.scored_as in known or (entry is not None and entry.name in by_identity):
            continue
        if spec.like is None or entry is not None:
            missing.append((spec, entry))
    return missing


def _as_spec(model: str | ModelSpec | Mapping[str, Any]) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return ModelSpec(name=model)
    if isinstance(model, Mapping):
        return ModelSpec(**model)
    raise ConfigError(f"a pool model must be a name, a ModelSpec or a mapping, not {type(model).__name__}")


def _base_model(spec: ModelSpec) -> str | None:
    """The model an Azure-style deployment runs, as its ``litellm_params["base_model"]`` names it."""
    base_model = spec.litellm_params.get("base_model")
    return base_model if isinstance(base_model, str) and base_model else None


def _columns_by_identity(known: list[str], catalog: ModelCatalog) -> dict[str, list[int]]:
    """The predictor's columns by the catalog identity of their names (several where it was trained
    on several names of one model, as a predictor trained before the catalog may be)."""
    columns: dict[str, list[int]] = {}
    for column, name in enumerate(known):
        entry = catalog.resolve(name)
        if entry is not None:
            columns.setdefault(entry.name, []).append(column)
    return columns


def _predictor_column(
    spec: ModelSpec, scored: CatalogEntry | None, known: list[str], known_by_identity: Mapping[str, list[int]]
) -> int:
    """The predictor column scoring ``spec``: the one named ``spec.scored_as``, else the one of the
    catalog identity ``scored`` (what ``scored_as`` resolves to); ``UnknownModelError`` otherwise."""
    if spec.scored_as in known:
        return known.index(spec.scored_as)
    columns = known_by_identity.get(scored.name, []) if scored is not None else []
    if len(columns) == 1:
        return columns[0]
    if columns:
        raise UnknownModelError(
            f"pool model {spec.name!r} is {scored.name!r} (routoo.catalog), which the predictor knows under "
            f"several names, {[known[column] for column in columns]}: choose one with like=<that name>"
        )
    if spec.like is not None:
        raise UnknownModelError(
            f"pool model {spec.name!r} is scored like {spec.like!r}, which the predictor does not know; "
            f"it knows {known}"
        )
    raise UnknownModelError(
        f"the predictor does not know pool model {spec.name!r}: map it with like=<one of {known}>"
    )


def _resolve(
    spec: ModelSpec, entry: CatalogEntry | None, listed: tuple[str, ModelPrice] | None, output_tokens: float
) -> ModelSpec:
    """The spec with what litellm, the catalog or the predictor (``output_tokens``) can fill filled in."""
    price = _price(spec, listed)
    # litellm's facts of the catalog's litellm name, for a name litellm does not know (a deployment).
    info_name = spec.name
    if entry is not None and entry.litellm_name is not None and not model_info.model_entry(spec.name):
        info_name = entry.litellm_name
    capabilities = {field: _capability(spec, field) for field in model_info.CAPABILITIES}
    return spec.model_copy(
        update={
            "input_cost_per_token": price.input_cost_per_token,
            "output_cost_per_token": price.output_cost_per_token,
            "expected_output_tokens": float(spec.expected_output_tokens or output_tokens),
            "max_input_tokens": spec.max_input_tokens or model_info.max_input_tokens(info_name),
            "max_output_tokens": spec.max_output_tokens or model_info.max_output_tokens(info_name),
            **capabilities,
        }
    )


def _listed_price(
    spec: ModelSpec, entry: CatalogEntry | None, prices: PriceBook
) -> tuple[str, ModelPrice] | None:
    """The book's price for what the spec leaves unpriced, and the name it is listed under; None when
    the spec sets both prices.

    The names tried, in order: the spec's own, its ``base_model``, its catalog identity and its
    catalog litellm name. When the book knows none, the error is the one for the spec's own name.
    """
    if all(getattr(spec, field) is not None for field in PRICE_FIELDS):
        return None
    names = [spec.name, _base_model(spec)]
    if entry is not None:
        names += [entry.name, entry.litellm_name]
    first_error: PriceNotFoundError | None = None
    for name in dict.fromkeys(name for name in names if name):
        try:
            return name, prices.price(name)
        except PriceNotFoundError as error:
            first_error = first_error or error
    assert first_error is not None  # the spec's own name was tried
    raise first_error


def _price(spec: ModelSpec, listed: tuple[str, ModelPrice] | None) -> ModelPrice:
    """The spec's prices, with those it leaves out from the price book's ``listed`` price."""
    given = {field: getattr(spec, field) for field in PRICE_FIELDS if getattr(spec, field) is not None}
    try:
        if listed is None:
            return ModelPrice(**given)
        return dataclasses.replace(listed[1], **given)
    except ConfigError as error:  # an infinite price, which the spec's own checks let through
        raise ConfigError(f"ModelSpec {spec.name!r}: {error}") from None


def _capability(spec: ModelSpec, field: model_info.Capability) -> bool:
    value = getattr(spec, field)
    return model_info.supports(spec.name, field) if value is None else value
