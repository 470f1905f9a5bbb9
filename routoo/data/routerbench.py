"""RouterBench's zero-shot split as RouterDC ships it (shuhao02/RouterDC): 11 models, real costs.

Each ``<task>_{train,test}.csv`` row holds a prompt (a stringified Python list of parts),
a 0/1 score per model (the column named after the model), what each call really cost
(``<model>|total_cost``, USD) and its response (``<model>|model_response``). Models are named
by their catalog identities (``routoo.catalog``): ``mistralai/mixtral-8x7b-chat`` is
``mistralai/Mixtral-8x7B-Instruct-v0.1``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from routoo.catalog import default_catalog
from routoo.data.costs import Prices, answer_tokens, prompt_tokens
from routoo.data.dataset import RoutingDataset
from routoo.data.download import RemoteFiles
from routoo.data.files import read_csv, report_dropped
from routoo.errors import DataError
from routoo.prompts import Prompt

MODELS = (
    "gpt-4-1106-preview", "gpt-3.5-turbo-1106", "claude-v1", "claude-v2", "claude-instant-v1",
    "meta/llama-2-70b-chat", "mistralai/mixtral-8x7b-chat", "mistralai/mistral-7b-chat",
    "zero-one-ai/Yi-34B-Chat", "WizardLM/WizardLM-13B-V1.2", "meta/code-llama-instruct-34b-chat",
)  # fmt: skip
TASKS = ("arc_challenge", "mbpp", "winograde")
SPLIT_FILES = tuple(f"{task}_{split}.csv" for task in TASKS for split in ("train", "test"))

FILES = RemoteFiles(
    "shuhao02/RouterDC",
    "0e63989",
    tuple((f"datasets/routerbench_zs/{name}", f"routerbench/routerbench_zs/{name}") for name in SPLIT_FILES),
)


def load_routerbench(root: Path, prices: Prices = None) -> RoutingDataset:
    """Both splits of the three tasks merged; costs are the recorded ones (``prices`` is not used).

    A blank score is a missing record (NaN): 14 ARC sample ids appear twice, once scored for
    gpt-3.5-turbo-1106 only and once for the ten other models. A row no model has a score
    for would be dropped and reported.
    """
    del prices  # RouterBench records what each call cost
    folder = root / "routerbench" / "routerbench_zs"
    required = ("sample_id", "prompt", "eval_name", *MODELS)
    required += tuple(f"{model}|{field}" for model in MODELS for field in ("total_cost", "model_response"))
    prompts: list[Prompt] = []
    quality: list[list[float]] = []
    cost: list[list[float]] = []
    answers: list[list[str]] = []
    categories: list[str | None] = []
    source_ids: list[str] = []
    unscored = 0
    for name in SPLIT_FILES:
        path = folder / name
        for row_number, row in enumerate(read_csv(path, required=required), start=1):
            where = f"{path}, row {row_number}"
            scores = [_number(row[model], f"{where}, {model}", blank_ok=True) for model in MODELS]
            if all(np.isnan(scores)):
                unscored += 1
                continue
            prompts.append("\n".join(_string_list(row["prompt"], f"{where}, prompt")))
            quality.append(scores)
            cost.append(
                [_number(row[f"{model}|total_cost"], f"{where}, {model}|total_cost") for model in MODELS]
            )
            answers.append(
                [
                    "".join(_string_list(row[f"{model}|model_response"], f"{where}, response"))
                    for model in MODELS
                ]
            )
            categories.append(row["eval_name"])
            source_ids.append(row["sample_id"])
    report_dropped("routerbench", unscored, "rows that no model has a score for")
    if not prompts:
        raise DataError(f"dataset 'routerbench': {folder} holds no scored rows")
    return RoutingDataset(
        name="routerbench",
        prompts=prompts,
        models=[default_catalog().canonical_name(model) for model in MODELS],
        quality=np.asarray(quality, dtype=np.float64),
        cost=np.asarray(cost, dtype=np.float64),
        input_tokens=prompt_tokens(prompts),
        output_tokens=answer_tokens(answers),
        categories=categories,
        source_ids=source_ids,
    )


def _string_list(cell: str, where: str) -> list[str]:
    """A stringified Python list of strings, as RouterBench stores prompts and responses."""
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError):
        raise DataError(f"{where}: expected a Python list literal, got {cell[:80]!r}") from None
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise DataError(f"{where}: expected a list of strings, got {cell[:80]!r}")
    return value


def _number(cell: str, where: str, blank_ok: bool = False) -> float:
    if blank_ok and not cell.strip():
        return float("nan")
    try:
        return float(cell)
    except ValueError:
        raise DataError(f"{where}: expected a number, got {cell!r}") from None
