"""Routoo's own data format: one JSON object per line, scores or pairwise preferences.

A score line: ``{"prompt": str | [{"role", "content"}, ...], "scores": {model: 0..1 | null},
"costs": {model: usd}?, "output_tokens": {model: int}?, "latency_s": {model: seconds}?,
"input_tokens": int?, "category": str?, "id": str?}`` (``routoo label`` writes costs, tokens
and latencies of real calls). A ``null`` (or absent) score is a missing record. A missing cost is computed as
input tokens x input price + output tokens x output price, with prices from a ``PriceBook``
and, where the line gives no ``output_tokens``, ``DEFAULT_OUTPUT_TOKENS`` (the length itself
then stays unknown: NaN in ``RoutingDataset.output_tokens``).

A preference line: ``{"prompt", "model_a", "model_b", "winner": "model_a" | "model_b" | "tie",
"category"?, "id"?}`` becomes a ``Battle`` on the first prompt with the same content (a new
prompt, with no quality records, if there is none).

Models are the keys of all lines in order of first appearance, named by their catalog names
(``routoo.catalog``: ``openai/gpt-4o`` is ``gpt-4o``); a name the catalog does not know
stays. Each score line is its own prompt, even when its text repeats an earlier one.

The file is read strictly, and every error names the file, the line and what was wrong: bytes
that are not UTF-8, a line that is not JSON (``NaN`` and ``Infinity`` are not), a key given twice
in one object, ``true``/``false`` where a number belongs, and prompts ``validate_prompt``
refuses (an unknown role, ``content: null`` outside a tool-calling assistant turn).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from routoo.catalog import default_catalog
from routoo.data.costs import DEFAULT_OUTPUT_TOKENS, Prices, prompt_tokens
from routoo.data.dataset import Battle, RoutingDataset
from routoo.errors import DataError, DatasetNotFoundError, PriceNotFoundError
from routoo.pricing import PriceBook
from routoo.prompts import Prompt, validate_prompt

SCORE_FIELDS = frozenset(
    {"prompt", "scores", "costs", "output_tokens", "latency_s", "input_tokens", "category", "id"}
)
PREFERENCE_FIELDS = frozenset({"prompt", "model_a", "model_b", "winner", "category", "id"})
# Arena exports mark a tie where both answers were bad as "tie (bothbad)": for routing, a tie.
WINNERS = {"model_a": "model_a", "model_b": "model_b", "tie": "tie", "tie (bothbad)": "tie"}


def load_jsonl(path: str | Path, prices: Prices = None, name: str | None = None) -> RoutingDataset:
    """A ``RoutingDataset`` from a JSONL file of score and/or preference lines (format above)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} does not exist")
    rows: list[_Row] = []
    battles: list[Battle] = []
    first_row_of: dict[str, int] = {}
    models: dict[str, None] = {}  # ordered set
    for line, record in read_records(path):
        where = f"{path}:{line}"
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object")
        validate_prompt(record.get("prompt"), where=where)
        key = _prompt_key(record["prompt"])
        if "scores" in record:
            row = _score_row(record, where, default_id=f"{path.name}:{line}")
            first_row_of.setdefault(key, len(rows))
            rows.append(row)
            models.update(dict.fromkeys([*row.scores, *row.costs, *row.output_tokens, *row.latency_s]))
        elif "winner" in record:
            model_a, model_b, winner = _preference(record, where)
            if key not in first_row_of:
                first_row_of[key] = len(rows)
                rows.append(
                    _Row(
                        where,
                        record["prompt"],
                        record.get("category"),
                        record.get("id") or f"{path.name}:{line}",
                    )
                )
            battles.append(Battle(first_row_of[key], model_a, model_b, winner))
            models.update(dict.fromkeys((model_a, model_b)))
        else:
            raise DataError(f"{where}: a line needs either 'scores' or 'model_a', 'model_b' and 'winner'")
    if not rows:
        raise DataError(f"{path} is empty: it holds no lines")
    return _dataset(name or path.stem, rows, list(models), battles, prices)


def read_prompts_jsonl(path: str | Path) -> list[Prompt]:
    """Prompts from a JSONL file whose lines are ``{"prompt": ...}`` objects (other fields ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} does not exist")
    prompts = []
    for line, record in read_records(path):
        prompt = record.get("prompt") if isinstance(record, dict) else None
        validate_prompt(prompt, where=f"{path}:{line}")
        prompts.append(prompt)
    if not prompts:
        raise DataError(f"{path} is empty: it holds no prompts")
    return prompts


def save_jsonl(dataset: RoutingDataset, path: str | Path) -> None:
    """Write ``dataset`` in the format ``load_jsonl`` reads, so that loading it gives it back.

    Every prompt gets a score line listing every model (``null`` where there is no record),
    which keeps prompt and model order; battles follow as preference lines.
    """
    with Path(path).open("w", encoding="utf-8") as out:
        for index, prompt in enumerate(dataset.prompts):
            line: dict[str, Any] = {
                "prompt": prompt,
                "scores": {
                    m: _finite_or_none(q) for m, q in zip(dataset.models, dataset.quality[index], strict=True)
                },
            }
            tables = (("costs", dataset.cost), ("output_tokens", dataset.output_tokens))
            for key, table in (*tables, ("latency_s", dataset.latency_s)):
                if table is not None:
                    values = {
                        m: _plain(v)
                        for m, v in zip(dataset.models, table[index], strict=True)
                        if math.isfinite(v)
                    }
                    if values:
                        line[key] = values
            if dataset.input_tokens is not None and math.isfinite(dataset.input_tokens[index]):
                line["input_tokens"] = _plain(dataset.input_tokens[index])
            if dataset.categories is not None and dataset.categories[index] is not None:
                line["category"] = dataset.categories[index]
            if dataset.source_ids is not None and dataset.source_ids[index] is not None:
                line["id"] = dataset.source_ids[index]
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        for battle in dataset.battles:
            preference = {
                "prompt": dataset.prompts[battle.prompt_index],
                "model_a": battle.model_a,
                "model_b": battle.model_b,
                "winner": battle.winner,
            }
            out.write(json.dumps(preference, ensure_ascii=False) + "\n")


def read_records(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line, read strictly (see the module docstring)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{where}: not valid UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1})"
                ) from None
            if not text.strip():
                continue
            try:
                value = json.loads(
                    text, object_pairs_hook=_unique_keys(where), parse_constant=_not_json(where)
                )
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
            yield number, value


def _unique_keys(where: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        record = dict(pairs)
        if len(record) < len(pairs):
            twice = sorted(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
            raise DataError(f"{where}: an object gives the key(s) {twice} more than once")
        return record

    return build


def _not_json(where: str) -> Callable[[str], Any]:
    def refuse(constant: str) -> Any:
        raise DataError(f"{where}: {constant} is not valid JSON; give a number or null")

    return refuse


@dataclass
class _Row:
    """One prompt's fields as read from its line (``where``: file and line)."""

    where: str
    prompt: Prompt
    category: str | None
    source_id: str
    scores: dict[str, float | None] = field(default_factory=dict)  # None: named, but no record
    costs: dict[str, float] = field(default_factory=dict)
    output_tokens: dict[str, float] = field(default_factory=dict)
    latency_s: dict[str, float] = field(default_factory=dict)
    input_tokens: float | None = None


def _score_row(record: dict[str, Any], where: str, default_id: str) -> _Row:
    unknown = set(record) - SCORE_FIELDS
    if unknown:
        raise DataError(f"{where}: unknown fields {sorted(unknown)}; a score line has {sorted(SCORE_FIELDS)}")
    scores = _model_numbers(record["scores"], "scores", where, upper=1.0, nullable=True)
    costs = _model_numbers(record.get("costs", {}), "costs", where)
    output_tokens = _model_numbers(record.get("output_tokens", {}), "output_tokens", where)
    latency_s = _model_numbers(record.get("latency_s", {}), "latency_s", where)
    input_tokens = record.get("input_tokens")
    if input_tokens is not None and (
        isinstance(input_tokens, bool)
        or not isinstance(input_tokens, int | float)
        or not 0 <= input_tokens < math.inf
    ):
        raise DataError(f"{where}: input_tokens must be a non-negative number, got {input_tokens!r}")
    return _Row(
        where=where,
        prompt=record["prompt"],
        category=_optional_text(record, "category", where),
        source_id=_optional_text(record, "id", where) or default_id,
        scores=scores,
        costs=costs,
        output_tokens=output_tokens,
        latency_s=latency_s,
        input_tokens=input_tokens,
    )


def _preference(record: dict[str, Any], where: str) -> tuple[str, str, str]:
    unknown = set(record) - PREFERENCE_FIELDS
    if unknown:
        raise DataError(
            f"{where}: unknown fields {sorted(unknown)}; a preference line has {sorted(PREFERENCE_FIELDS)}"
        )
    model_a, model_b = record.get("model_a"), record.get("model_b")
    for side, model in (("model_a", model_a), ("model_b", model_b)):
        if not isinstance(model, str) or not model:
            raise DataError(f"{where}: {side} must be a model name, got {model!r}")
    if model_a == model_b:
        raise DataError(f"{where}: model_a and model_b are both {model_a!r}")
    given = record.get("winner")
    winner = WINNERS.get(given) if isinstance(given, str) else None
    if winner is None:
        raise DataError(f"{where}: winner must be 'model_a', 'model_b' or 'tie', got {given!r}")
    _optional_text(record, "category", where)
    _optional_text(record, "id", where)
    return model_a, model_b, winner


def _model_numbers(
    value: object, key: str, where: str, upper: float = math.inf, nullable: bool = False
) -> dict[str, float | None]:
    """``{model: number}`` with every number in [0, upper] (``null`` allowed where ``nullable``)."""
    if not isinstance(value, dict):
        raise DataError(f"{where}: {key} must be an object {{model: number}}, got {value!r}")
    numbers: dict[str, float | None] = {}
    for model, number in value.items():
        if number is None and nullable:
            numbers[model] = None
            continue
        valid = isinstance(number, int | float) and not isinstance(number, bool)
        if not valid or not 0 <= number <= upper or math.isinf(number):
            bounds = "in [0, 1]" if upper == 1.0 else "a non-negative number"
            raise DataError(f"{where}: {key} of {model!r} must be {bounds}, got {number!r}")
        numbers[model] = float(number)
    return numbers


def _optional_text(record: dict[str, Any], key: str, where: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise DataError(f"{where}: {key} must be a string, got {value!r}")
    return value


def _dataset(
    name: str,
    rows: list[_Row],
    models: list[str],
    battles: list[Battle],
    prices: Prices,
) -> RoutingDataset:
    prompts = [row.prompt for row in rows]
    column = {model: index for index, model in enumerate(models)}
    shape = (len(rows), len(models))
    quality, cost, output_tokens, latency_s = (np.full(shape, np.nan) for _ in range(4))
    input_tokens = np.array([np.nan if row.input_tokens is None else row.input_tokens for row in rows])
    unknown_length = np.isnan(input_tokens)
    if unknown_length.any():
        input_tokens[unknown_length] = prompt_tokens(
            [p for p, u in zip(prompts, unknown_length, strict=True) if u]
        )
    book = prices if isinstance(prices, PriceBook) else PriceBook(prices)
    for index, row in enumerate(rows):
        scored = [model for model, score in row.scores.items() if score is not None]
        for model in scored:
            quality[index, column[model]] = row.scores[model]
        for model, tokens in row.output_tokens.items():
            output_tokens[index, column[model]] = tokens
        for model, seconds in row.latency_s.items():
            latency_s[index, column[model]] = seconds
        for model, usd in row.costs.items():
            cost[index, column[model]] = usd
        for model in scored:
            if model in row.costs:
                continue
            # No recorded cost: price the call from its tokens, assuming the default answer length
            # where none is recorded (the length itself stays unknown).
            j = column[model]
            length = DEFAULT_OUTPUT_TOKENS if np.isnan(output_tokens[index, j]) else output_tokens[index, j]
            try:
                cost[index, j] = book.cost(model, input_tokens[index], length)
            except PriceNotFoundError as error:
                raise PriceNotFoundError(f"{row.where}: {error}") from None
    return RoutingDataset(
        name=name,
        prompts=prompts,
        models=_catalog_names(name, models),
        quality=quality,
        cost=None if np.isnan(cost).all() else cost,
        input_tokens=input_tokens,
        output_tokens=None if np.isnan(output_tokens).all() else output_tokens,
        latency_s=None if np.isnan(latency_s).all() else latency_s,
        categories=[row.category for row in rows],
        source_ids=[row.source_id for row in rows],
        battles=[
            replace(
                b,
                model_a=default_catalog().canonical_name(b.model_a),
                model_b=default_catalog().canonical_name(b.model_b),
            )
            for b in battles
        ],
    )


def _catalog_names(name: str, models: list[str]) -> list[str]:
    """The models by their catalog names; two spellings of one model are a ``DataError``."""
    catalog = default_catalog()
    names = [catalog.canonical_name(model) for model in models]
    for canonical in {n for n in names if names.count(n) > 1}:
        spellings = [model for model, n in zip(models, names, strict=True) if n == canonical]
        raise DataError(f"{name}: {spellings} are one model, {canonical!r}; name it one way")
    return names


def _prompt_key(prompt: Prompt) -> str:
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _plain(value: float) -> int | float:
    """A JSON number: an integer where the value is whole (token counts), else the float."""
    return int(value) if float(value).is_integer() else float(value)
