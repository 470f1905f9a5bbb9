"""Per-call costs of the data sets that record none: token counts times per-token prices.

``model_prices.json`` (beside this module) holds, for each model of a named set without
recorded costs, its per-token prices with their source and date, or the set's own price file.
They are numbers kept here, not keys of litellm's live map, so a set's costs never move
with a litellm release. Models are keyed by their catalog names (``routoo.catalog``), as the
loaders name their columns; a user's price overrides may use any name the catalog resolves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from routoo.catalog import default_catalog
from routoo.data.files import read_json
from routoo.errors import ConfigError
from routoo.pricing import ModelPrice, PriceBook, PriceOverrides
from routoo.prompts import Prompt, prompt_texts
from routoo.tokens import count_tokens_many

MODEL_PRICES_FILE = Path(__file__).with_name("model_prices.json")

# Output length assumed where a set records no answers (LLMRouter, JSONL without output_tokens):
# about a short chain-of-thought answer or a small function.
DEFAULT_OUTPUT_TOKENS = 256

Prices = PriceBook | PriceOverrides | str | Path | None


@lru_cache(maxsize=1)
def _model_prices() -> Mapping[str, Any]:
    return read_json(MODEL_PRICES_FILE)


def bundled_price_entries(family: str) -> dict[str, dict[str, Any]]:
    """``model_prices.json``'s entries for one family of sets ("routellm", "llmrouter", "mmlu-pro")."""
    return {model: dict(entry) for model, entry in _model_prices()[family].items()}


def dataset_price_book(family: str, prices: Prices = None, extra: PriceOverrides | None = None) -> PriceBook:
    """Bundled prices of ``family``, then ``extra`` (prices read from the set), then the user's ``prices``.

    The book never falls back to litellm's map: a model none of these prices is an error.
    The user's models are renamed to their catalog names, the names the sets' columns have.
    """
    bundled = {
        model: entry
        for model, entry in bundled_price_entries(family).items()
        if "prices_file" not in entry  # those the loader reads from the set itself, as ``extra``
    }
    book = PriceBook(bundled, litellm_fallback=False).with_overrides(extra)
    return book if prices is None else book.with_overrides(_by_catalog_name(prices))


def _by_catalog_name(prices: PriceBook | PriceOverrides | str | Path) -> PriceBook:
    """The overrides of ``prices`` keyed by catalog name; two names of one model are a ``ConfigError``."""
    overrides = (prices if isinstance(prices, PriceBook) else PriceBook(prices)).overrides
    renamed: dict[str, ModelPrice | dict[str, str]] = {}
    given_as: dict[str, str] = {}
    for model, price in overrides.items():
        name = default_catalog().canonical_name(model)
        if name in given_as:
            raise ConfigError(
                f"the prices name one model, {name!r}, twice: as {given_as[name]!r} and {model!r}"
            )
        given_as[name] = model
        renamed[name] = price if isinstance(price, ModelPrice) else {"litellm_model": price}
    return PriceBook(renamed)


def call_costs(
    book: PriceBook, models: Sequence[str], input_tokens: np.ndarray, output_tokens: np.ndarray
) -> np.ndarray:
    """USD per call, prompts x models: ``input_tokens`` (n,) and ``output_tokens`` (n, m) priced per model."""
    cost = np.empty(output_tokens.shape, dtype=np.float64)
    for column, model in enumerate(models):
        cost[:, column] = book.cost(model, input_tokens, output_tokens[:, column])
    return cost


def prompt_tokens(prompts: Sequence[Prompt]) -> np.ndarray:
    """Input tokens of each prompt: its text, or for a conversation every turn with its role."""
    return count_tokens_many(prompt_texts(prompts, "conversation")).astype(np.float64)


def answer_tokens(answers: Sequence[Sequence[str]]) -> np.ndarray:
    """Output tokens of a prompts x models table of answer texts."""
    flat = [text for row in answers for text in row]
    width = len(answers[0]) if answers else 0
    return count_tokens_many(flat).reshape(len(answers), width).astype(np.float64)
