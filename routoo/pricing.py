"""Per-token prices of LLMs: the user's overrides first, then litellm's model cost map.

The one price lookup of Routoo: data sets' costs and the router's model pool (``routoo.pool``)
both price models here. A model with no known price is an error (``PriceNotFoundError``),
never a silent zero.
Prices that must never move (those of the benchmark data sets) come from a book that does
not fall back to litellm's map, whose keys and numbers change between releases.
Overrides come as a mapping or a JSON file ``{model: entry}`` where an entry is either
``{"input_cost_per_token": ..., "output_cost_per_token": ...}`` or
``{"litellm_model": "<a key of litellm's map>"}`` to price a model as another one; an
optional ``"source"`` string says where the price comes from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routoo.errors import ConfigError, PriceNotFoundError
from routoo.model_info import PRICE_FIELDS, listed_prices

ENTRY_FIELDS = frozenset({*PRICE_FIELDS, "litellm_model", "source"})

PriceOverrides = Mapping[str, "ModelPrice | Mapping[str, Any]"]


@dataclass(frozen=True)
class ModelPrice:
    """USD per input token and per output token of one model."""

    input_cost_per_token: float
    output_cost_per_token: float

    def __post_init__(self) -> None:
        for name in PRICE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
            if value < 0:
                raise ConfigError(f"{name} must not be negative, got {value!r}")

    def cost(self, input_tokens: Any, output_tokens: Any) -> float | np.ndarray:
        """USD for calls with these token counts (numbers or arrays, broadcast together)."""
        total = (
            np.asarray(input_tokens, dtype=np.float64) * self.input_cost_per_token
            + np.asarray(output_tokens, dtype=np.float64) * self.output_cost_per_token
        )
        return float(total) if total.ndim == 0 else total


class PriceBook:
    """Looks up per-token prices: overrides first, then litellm's model cost map.

    ``overrides`` is a mapping ``{model: ModelPrice | entry dict}`` or the path of a JSON
    file holding one (entries as in this module's docstring). With ``litellm_fallback=False``
    only the overrides price anything (an entry naming a litellm key still resolves it).
    """

    def __init__(
        self, overrides: PriceOverrides | str | Path | None = None, *, litellm_fallback: bool = True
    ) -> None:
        if isinstance(overrides, str | Path):
            overrides = _read_price_file(Path(overrides))
        elif overrides is not None and not isinstance(overrides, Mapping):
            raise ConfigError(f"price overrides must be a mapping or a JSON file path, got {overrides!r}")
        self._overrides: dict[str, ModelPrice | str] = {
            str(model): _parse_entry(model, entry) for model, entry in (overrides or {}).items()
        }
        self.litellm_fallback = litellm_fallback

    @property
    def overrides(self) -> Mapping[str, ModelPrice | str]:
        """The overrides: a ``ModelPrice``, or the litellm key a model is priced as."""
        return dict(self._overrides)

    def with_overrides(self, overrides: PriceBook | PriceOverrides | str | Path | None) -> PriceBook:
        """A new book whose overrides are this one's, updated by ``overrides`` (which win)."""
        extra = overrides if isinstance(overrides, PriceBook) else PriceBook(overrides)
        book = PriceBook(litellm_fallback=self.litellm_fallback)
        book._overrides = {**self._overrides, **extra._overrides}
        return book

    def price(self, model: str) -> ModelPrice:
        """The model's price; raises ``PriceNotFoundError`` naming it when none is known."""
        override = self._overrides.get(model)
        if isinstance(override, ModelPrice):
            return override
        if isinstance(override, str):
            price = litellm_price(override)
            if price is None:
                raise PriceNotFoundError(
                    f"model {model!r} is priced as litellm model {override!r}, "
                    "which litellm's model cost map does not have"
                )
            return price
        if not self.litellm_fallback:
            raise PriceNotFoundError(
                f"no price is known for model {model!r}: this price book does not consult litellm's "
                "model cost map; pass its prices as overrides"
            )
        price = litellm_price(model)
        if price is None:
            raise PriceNotFoundError(
                f"no price is known for model {model!r}: litellm's model cost map has no per-token "
                "price for it; give its input_cost_per_token and output_cost_per_token (in its "
                "ModelSpec, or as a price override: PriceBook({model: {'input_cost_per_token': ..., "
                "'output_cost_per_token': ...}}))"
            )
        return price

    def __contains__(self, model: object) -> bool:
        if not isinstance(model, str):
            return False
        try:
            self.price(model)
        except PriceNotFoundError:
            return False
        return True

    def cost(self, model: str, input_tokens: Any, output_tokens: Any) -> float | np.ndarray:
        """USD for calls to ``model`` with these token counts (numbers or numpy arrays)."""
        return self.price(model).cost(input_tokens, output_tokens)

    def __repr__(self) -> str:
        fallback = "" if self.litellm_fallback else ", litellm_fallback=False"
        return f"PriceBook({len(self._overrides)} overrides{fallback})"


def litellm_price(model: str) -> ModelPrice | None:
    """The price litellm's model cost map gives ``model`` (by exact key, then its lookup), or None."""
    listed = listed_prices(model)
    return None if listed is None else ModelPrice(*listed)


def _parse_entry(model: object, entry: object) -> ModelPrice | str:
    if not isinstance(model, str) or not model:
        raise ConfigError(f"a price override needs a model name, got {model!r}")
    if isinstance(entry, ModelPrice):
        return entry
    if not isinstance(entry, Mapping):
        raise ConfigError(f"price of {model!r}: expected a ModelPrice or a dict, got {entry!r}")
    unknown = set(entry) - ENTRY_FIELDS
    if unknown:
        raise ConfigError(f"price of {model!r}: unknown fields {sorted(unknown)}; use {sorted(ENTRY_FIELDS)}")
    if "litellm_model" in entry:
        if any(name in entry for name in PRICE_FIELDS):
            raise ConfigError(f"price of {model!r}: give either litellm_model or per-token prices, not both")
        alias = entry["litellm_model"]
        if not isinstance(alias, str) or not alias:
            raise ConfigError(f"price of {model!r}: litellm_model must be a model name, got {alias!r}")
        return alias
    missing = [name for name in PRICE_FIELDS if name not in entry]
    if missing:
        raise ConfigError(f"price of {model!r}: missing {missing}")
    try:
        return ModelPrice(entry["input_cost_per_token"], entry["output_cost_per_token"])
    except ConfigError as error:
        raise ConfigError(f"price of {model!r}: {error}") from None


def _read_price_file(path: Path) -> Mapping[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"price file {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"price file {path} is not valid JSON: {error}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"price file {path} must hold a JSON object {{model: prices}}")
    return content
