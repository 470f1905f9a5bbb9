"""LLMRouter's preprocessed RouterDC data (ulab-uiuc/LLMRouter): 9 open models, many tasks.

Each record holds a question and ``scores`` (``{model: 0..1}``, a dict or its Python literal);
the training split also a ``cluster_id``. The set keeps no responses, so every call is
costed with ``DEFAULT_OUTPUT_TOKENS`` output tokens (its ``output_tokens`` stay NaN: no
length was recorded), at the prices of LLMRouter's own
candidate list (``llm_candidates/default_llm.json``, USD per million tokens). Models are named
by their catalog identities (``routoo.catalog``); a name the catalog does not know stays as it is.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

import numpy as np

from routoo.catalog import default_catalog
from routoo.data.costs import DEFAULT_OUTPUT_TOKENS, Prices, call_costs, dataset_price_book, prompt_tokens
from routoo.data.dataset import RoutingDataset
from routoo.data.download import RemoteFiles
from routoo.data.files import read_json
from routoo.errors import DataError
from routoo.pricing import ModelPrice
from routoo.prompts import Prompt

SPLITS = ("train", "test")
CANDIDATES_FILE = "llmrouter/llm_candidates/default_llm.json"

FILES = RemoteFiles(
    "ulab-uiuc/LLMRouter",
    "4e7a796",
    (
        *(
            (f"data/dcrouter_preprocessed/{split}.json", f"llmrouter/dcrouter_preprocessed/{split}.json")
            for split in SPLITS
        ),
        ("llmrouter/data/example_data/llm_candidates/default_llm.json", CANDIDATES_FILE),
    ),
)


def load_llmrouter(root: Path, prices: Prices = None) -> RoutingDataset:
    """Train and test splits merged; category = ``cluster <id>`` (train) or the record's task, if any."""
    prompts: list[Prompt] = []
    scores: list[dict[str, float]] = []
    categories: list[str | None] = []
    source_ids: list[str] = []
    for split in SPLITS:
        path = root / "llmrouter" / "dcrouter_preprocessed" / f"{split}.json"
        records = read_json(path)
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a JSON list of records")
        for index, record in enumerate(records):
            where = f"{path}, record {index}"
            if not isinstance(record, dict) or not isinstance(record.get("question"), str):
                raise DataError(f"{where}: expected an object with a 'question' string")
            prompts.append(record["question"])
            scores.append(_scores(record.get("scores"), where))
            categories.append(_category(record))
            source_ids.append(f"{split}/{index}")
    if not prompts:
        raise DataError(f"dataset 'llmrouter': {root / 'llmrouter'} holds no records")

    sources = list(dict.fromkeys(model for row in scores for model in row))
    quality = np.array([[row.get(model, np.nan) for model in sources] for row in scores], dtype=np.float64)
    models = [default_catalog().canonical_name(model) for model in sources]
    input_tokens = prompt_tokens(prompts)
    assumed_output = np.full(quality.shape, float(DEFAULT_OUTPUT_TOKENS))
    book = dataset_price_book("llmrouter", prices, extra=_candidate_prices(root / CANDIDATES_FILE))
    return RoutingDataset(
        name="llmrouter",
        prompts=prompts,
        models=models,
        quality=quality,
        cost=call_costs(book, models, input_tokens, assumed_output),
        input_tokens=input_tokens,
        output_tokens=np.full(quality.shape, np.nan),  # no answers recorded: lengths unknown
        categories=categories,
        source_ids=source_ids,
    )


def _scores(value: Any, where: str) -> dict[str, float]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise DataError(f"{where}: scores is not a dict literal: {value[:80]!r}") from None
    if not isinstance(value, dict) or not value:
        raise DataError(f"{where}: expected non-empty scores {{model: score}}, got {value!r}")
    for model, score in value.items():
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            raise DataError(f"{where}: score of {model!r} must be a number in [0, 1], got {score!r}")
    return {str(model): float(score) for model, score in value.items()}


def _category(record: dict[str, Any]) -> str | None:
    for field in ("task", "task_name"):
        if isinstance(record.get(field), str):
            return record[field]
    if record.get("cluster_id") is not None:
        return f"cluster {record['cluster_id']}"
    return None


def _candidate_prices(path: Path) -> dict[str, ModelPrice]:
    """LLMRouter's candidate list: ``{model: {"input_price", "output_price"}}`` in USD per million tokens,
    by catalog name."""
    candidates = read_json(path)
    if not isinstance(candidates, dict):
        raise DataError(f"{path}: expected an object {{model: candidate}}")
    prices: dict[str, ModelPrice] = {}
    named_as: dict[str, str] = {}
    for model, candidate in candidates.items():
        try:
            per_million = (float(candidate["input_price"]), float(candidate["output_price"]))
        except (TypeError, KeyError, ValueError) as error:
            raise DataError(
                f"{path}: candidate {model!r} needs numeric input_price and output_price"
            ) from error
        if not all(math.isfinite(value) and value >= 0 for value in per_million):
            raise DataError(f"{path}: candidate {model!r} has a negative or non-finite price")
        name = default_catalog().canonical_name(model)
        if name in named_as:
            raise DataError(f"{path}: candidates {named_as[name]!r} and {model!r} are one model, {name!r}")
        named_as[name] = model
        prices[name] = ModelPrice(per_million[0] / 1e6, per_million[1] / 1e6)
    return prices
