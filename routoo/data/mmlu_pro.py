"""MMLU-Pro's published 5-shot chain-of-thought runs (TIGER-AI-Lab/MMLU-Pro): 29 models, plus two API runs.

Each ``model_outputs_<model>_5shots.zip`` holds one JSON list of records ``question_id,
question, options, answer, category, src, pred`` and the generated text (``model_outputs``
or ``generated_text``). The API runs of gpt-4o (the 2024-05-13 snapshot) and of DeepSeek's
deepseek-chat in May 2024 (DeepSeek-V2-Chat), ``eval_results/{gpt4o,deepseek}/`` at a later
commit, hold one ``<category>_result.json`` list per category with the text in ``response``;
the shared data keeps each folder as one zip (``api_runs/<run>_results.zip``).
Records are joined on ``question_id``, keeping the questions all 29 runs answered; a question
an API run lacks is kept, with that run's record masked (NaN). A model is right when its
``pred`` equals the answer key of its own run (some runs used an older revision of the answer
keys); a missing ``pred`` counts as wrong. Every model is named by its catalog identity
(``routoo.catalog``). Parsing the runs and counting ~320k answers' tokens is slow, so the
joined set is cached (safetensors + JSON) and later loads take seconds.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from routoo.catalog import default_catalog
from routoo.data.cache import load_entry, save_entry, source_key
from routoo.data.costs import Prices, call_costs, dataset_price_book, prompt_tokens
from routoo.data.dataset import RoutingDataset
from routoo.data.download import RemoteFiles, RemoteSources, ZippedFolders
from routoo.data.files import logger, report_dropped
from routoo.errors import DataError
from routoo.tokens import count_tokens_many, encoding_name

MODELS = (
    "DeepSeek-Coder-V2", "Llama-2-13b-hf", "Llama-2-70b-hf", "Llama-2-7b-hf", "Meta-Llama-3-70B",
    "Meta-Llama-3-8B", "Meta-Llama-3_1-70B-Instruct", "Meta-Llama-3_1-70B", "Meta-Llama-3_1-8B-Instruct",
    "Meta-Llama-3_1-8B", "Mistral-7B-Instruct-v0.1", "Mistral-7B-Instruct-v0.2", "Mistral-7B-v0.1",
    "Mistral-7B-v0.2-hf", "Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B-v0.1", "Phi-3-mini-4k-instruct",
    "Qwen1.5-110B", "Qwen1.5-72B-Chat", "Qwen1.5-7B-Chat", "Yi-34B", "Yi-6B", "Yi-6b-Chat",
    "c4ai-command-r-v01", "gemini-1.5-flash-002", "gemini-1.5-pro-002", "gemma-7b", "jamba-1.5-large",
    "mathstral-7B",
)  # fmt: skip
# The API runs, by folder of eval_results/: the model each called, as the run's README names it.
API_RUNS = {"gpt4o": "gpt-4o-2024-05-13", "deepseek": "DeepSeek-V2-Chat"}
OPTION_LETTERS = "ABCDEFGHIJKLMNOP"
OUTPUT_FIELDS = ("model_outputs", "generated_text", "response")
# Bump when the cached content changes meaning, so old cache entries are not reused.
LOADER_VERSION = 2

_REPO = "TIGER-AI-Lab/MMLU-Pro"
RUN_FILES = RemoteFiles(
    _REPO,
    "f418b11",
    tuple(
        (f"eval_results/model_outputs_{model}_5shots.zip", f"mmlu_pro/model_outputs_{model}_5shots.zip")
        for model in MODELS
    ),
)
API_RUN_FILES = ZippedFolders(
    _REPO,
    "ff991b5",
    tuple((f"eval_results/{run}", f"mmlu_pro/api_runs/{run}_results.zip") for run in API_RUNS),
)
FILES = RemoteSources((RUN_FILES, API_RUN_FILES))


def format_question(question: str, options: Sequence[str]) -> str:
    """A question with lettered options, as MMLU-Pro's CoT prompt ends (without the 5 exemplars)."""
    lines = ["Question:", question, "Options:"]
    lines += [f"{OPTION_LETTERS[index]}. {option}" for index, option in enumerate(options)]
    return "\n".join(lines) + "\nAnswer: Let's think step by step."


def model_names() -> list[str]:
    """The set's models by catalog name: the 29 published runs', then the API runs'."""
    return [default_catalog().canonical_name(model) for model in (*MODELS, *API_RUNS.values())]


def load_mmlu_pro(root: Path, prices: Prices = None) -> RoutingDataset:
    """The 29 runs joined on the questions all of them answered, and the API runs' records of those
    questions (NaN where a run lacks one); category = MMLU-Pro's category.

    Input tokens are those of the formatted question (what a router sees), not of the 5-shot
    prompt the runs used; output tokens are counted from each model's generated text.
    """
    paths = [root / local for _, local in FILES.files]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise DataError(f"dataset 'mmlu-pro': {len(missing)} run files are missing, e.g. {missing[0]}")
    # Token counts depend on the encoding too.
    key = source_key("mmlu-pro", f"{LOADER_VERSION}/{encoding_name()}", paths)
    cached = load_entry(key)
    if cached is None:
        cached = _join_runs(paths)
        save_entry(key, *cached)
    arrays, document = cached
    _report(document)

    prompts = document["prompts"]
    input_tokens = prompt_tokens(prompts)
    output_tokens = arrays["output_tokens"].astype(np.float64)
    models = model_names()
    book = dataset_price_book("mmlu-pro", prices)
    return RoutingDataset(
        name="mmlu-pro",
        prompts=prompts,
        models=models,
        quality=arrays["quality"].astype(np.float64),
        cost=call_costs(book, models, input_tokens, output_tokens),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        categories=document["categories"],
        source_ids=document["source_ids"],
    )


def _join_runs(paths: Sequence[Path]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    names = [*MODELS, *API_RUNS.values()]
    runs: list[dict[int, dict[str, Any]]] = []
    non_records: dict[str, int] = {}
    for model, path in tqdm(list(zip(names, paths, strict=True)), desc="Reading MMLU-Pro runs", disable=None):
        records, skipped = _read_run(path) if model in MODELS else _read_api_run(path)
        runs.append(records)
        if skipped:
            non_records[model] = skipped
    answered_by_all = set.intersection(*(set(records) for records in runs[: len(MODELS)]))
    question_ids = sorted(answered_by_all)
    if not question_ids:
        raise DataError(f"dataset 'mmlu-pro': no question was answered by all {len(MODELS)} published runs")

    # The question text of the first run that has it (runs differ in a few typo fixes).
    reference = {qid: record for records in reversed(runs) for qid, record in records.items()}
    quality = np.array(
        [[_correct(records[qid]) if qid in records else np.nan for records in runs] for qid in question_ids],
        dtype=np.float32,
    )
    output_tokens = np.full(quality.shape, np.nan, dtype=np.float32)
    for column, records in enumerate(tqdm(runs, desc="Counting MMLU-Pro answer tokens", disable=None)):
        rows = [row for row, qid in enumerate(question_ids) if qid in records]
        texts = [_output_text(records[question_ids[row]]) for row in rows]
        output_tokens[rows, column] = count_tokens_many(texts)
    document = {
        "prompts": [
            format_question(reference[qid]["question"], reference[qid]["options"]) for qid in question_ids
        ],
        "categories": [reference[qid]["category"] for qid in question_ids],
        "source_ids": [str(qid) for qid in question_ids],
        "questions": len(reference),
        "unanswered_by_model": {
            model: len(reference) - len(records)
            for model, records in zip(MODELS, runs, strict=False)
            if len(records) < len(reference)
        },
        "masked_by_model": {
            model: int(np.isnan(quality[:, column]).sum())
            for column, model in enumerate(names)
            if np.isnan(quality[:, column]).any()
        },
        "non_records": non_records,
    }
    return {"quality": quality, "output_tokens": output_tokens}, document


def _read_run(path: Path) -> tuple[dict[int, dict[str, Any]], int]:
    """One run's records by question id, and how many list entries were not records (skipped)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".json")]
            if len(members) != 1:
                raise DataError(f"{path}: expected one JSON file inside, found {members}")
            content = json.loads(archive.read(members[0]))
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a zip holding a JSON list ({error})") from None
    records: dict[int, dict[str, Any]] = {}
    return records, _add_records(records, content, str(path))


def _read_api_run(path: Path) -> tuple[dict[int, dict[str, Any]], int]:
    """An API run's records by question id, from its ``<folder>/<category>_result.json`` lists."""
    records: dict[int, dict[str, Any]] = {}
    skipped = 0
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(name for name in archive.namelist() if name.endswith("_result.json"))
            if not members:
                raise DataError(f"{path}: holds no <category>_result.json file")
            for member in members:
                content = json.loads(archive.read(member))
                skipped += _add_records(records, content, f"{path}, {member}")
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a zip holding JSON lists ({error})") from None
    return records, skipped


def _add_records(records: dict[int, dict[str, Any]], content: Any, source: str) -> int:
    """Add the records of one JSON list to ``records``; how many entries were not records (skipped)."""
    if not isinstance(content, list):
        raise DataError(f"{source}: expected a JSON list of records")
    skipped = 0
    for index, record in enumerate(content):
        if not isinstance(record, dict):
            skipped += 1  # e.g. DeepSeek-Coder-V2's run has stray category names between records
            continue
        where = f"{source}, entry {index}"
        for field in ("question_id", "question", "options", "answer", "category"):
            if field not in record:
                raise DataError(f"{where}: missing {field!r}")
        if not any(isinstance(record.get(field), str) for field in OUTPUT_FIELDS):
            raise DataError(f"{where}: no generated text (a string in one of {OUTPUT_FIELDS})")
        options = record["options"]
        if not isinstance(record["question"], str) or not isinstance(options, list):
            raise DataError(f"{where}: expected a question string and a list of options")
        if not all(isinstance(option, str) for option in options):
            raise DataError(f"{where}: options must be strings")
        if record["question_id"] in records:
            raise DataError(f"{where}: question_id {record['question_id']} appears twice")
        records[record["question_id"]] = record
    return skipped


def _correct(record: dict[str, Any]) -> float:
    return float(record.get("pred") == record["answer"])


def _output_text(record: dict[str, Any]) -> str:
    return next(record[field] for field in OUTPUT_FIELDS if isinstance(record.get(field), str))


def _report(document: dict[str, Any]) -> None:
    unanswered = document["unanswered_by_model"]
    dropped = document["questions"] - len(document["prompts"])
    detail = ", ".join(f"{model} lacks {count}" for model, count in unanswered.items())
    report_dropped(
        "mmlu-pro",
        dropped,
        f"of {document['questions']} questions not answered by all {len(MODELS)} published runs ({detail})",
    )
    for model, count in document["masked_by_model"].items():
        logger.info("mmlu-pro: %s's run lacks %d of the kept questions; those records are NaN", model, count)
    for model, count in document["non_records"].items():
        report_dropped("mmlu-pro", count, f"entries of {model}'s run that are not question records")
