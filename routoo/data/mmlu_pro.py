"""MMLU-Pro's published 5-shot chain-of-thought runs (TIGER-AI-Lab/MMLU-Pro): 29 models.

Each ``model_outputs_<model>_5shots.zip`` holds one JSON list of records ``question_id,
question, options, answer, category, src, pred`` and the generated text (``model_outputs``
or ``generated_text``). Records are joined on ``question_id``, keeping the questions every
model answered. A model is right when its ``pred`` equals the answer key of its own run
(some runs used an older revision of the answer keys); a missing ``pred`` counts as wrong.
Parsing the runs and counting ~300k answers' tokens is slow, so the joined set is cached
(safetensors + JSON) and later loads take seconds.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from routoo.data.cache import load_entry, save_entry, source_key
from routoo.data.costs import Prices, call_costs, dataset_price_book, prompt_tokens
from routoo.data.dataset import RoutingDataset
from routoo.data.download import RemoteFiles
from routoo.data.files import report_dropped
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
OPTION_LETTERS = "ABCDEFGHIJKLMNOP"
OUTPUT_FIELDS = ("model_outputs", "generated_text")
# Bump when the cached content changes meaning, so old cache entries are not reused.
LOADER_VERSION = 1

FILES = RemoteFiles(
    "TIGER-AI-Lab/MMLU-Pro",
    "f418b11",
    tuple(
        (f"eval_results/model_outputs_{model}_5shots.zip", f"mmlu_pro/model_outputs_{model}_5shots.zip")
        for model in MODELS
    ),
)


def format_question(question: str, options: Sequence[str]) -> str:
    """A question with lettered options, as MMLU-Pro's CoT prompt ends (without the 5 exemplars)."""
    lines = ["Question:", question, "Options:"]
    lines += [f"{OPTION_LETTERS[index]}. {option}" for index, option in enumerate(options)]
    return "\n".join(lines) + "\nAnswer: Let's think step by step."


def load_mmlu_pro(root: Path, prices: Prices = None) -> RoutingDataset:
    """The 29 runs joined on the questions all of them answered; category = MMLU-Pro's category.

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
    book = dataset_price_book("mmlu-pro", prices)
    return RoutingDataset(
        name="mmlu-pro",
        prompts=prompts,
        models=list(MODELS),
        quality=arrays["quality"].astype(np.float64),
        cost=call_costs(book, MODELS, input_tokens, output_tokens),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        categories=document["categories"],
        source_ids=document["source_ids"],
    )


def _join_runs(paths: Sequence[Path]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    runs: list[dict[int, dict[str, Any]]] = []
    non_records: dict[str, int] = {}
    for model, path in tqdm(
        list(zip(MODELS, paths, strict=True)), desc="Reading MMLU-Pro runs", disable=None
    ):
        records, skipped = _read_run(path)
        runs.append(records)
        if skipped:
            non_records[model] = skipped
    answered_by_all = set.intersection(*(set(records) for records in runs))
    question_ids = sorted(answered_by_all)
    if not question_ids:
        raise DataError("dataset 'mmlu-pro': no question was answered by every model")

    # The question text of the first run that has it (runs differ in a few typo fixes).
    reference = {qid: record for records in reversed(runs) for qid, record in records.items()}
    quality = np.array(
        [[records[qid]["pred"] == records[qid]["answer"] for records in runs] for qid in question_ids],
        dtype=np.float32,
    )
    output_tokens = np.stack(
        [
            count_tokens_many([_output_text(records[qid]) for qid in question_ids])
            for records in tqdm(runs, desc="Counting MMLU-Pro answer tokens", disable=None)
        ],
        axis=1,
    ).astype(np.int32)
    document = {
        "prompts": [
            format_question(reference[qid]["question"], reference[qid]["options"]) for qid in question_ids
        ],
        "categories": [reference[qid]["category"] for qid in question_ids],
        "source_ids": [str(qid) for qid in question_ids],
        "questions": len(reference),
        "unanswered_by_model": {
            model: len(reference) - len(records)
            for model, records in zip(MODELS, runs, strict=True)
            if len(records) < len(reference)
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
    if not isinstance(content, list):
        raise DataError(f"{path}: expected a JSON list of records")
    records: dict[int, dict[str, Any]] = {}
    skipped = 0
    for index, record in enumerate(content):
        if not isinstance(record, dict):
            skipped += 1  # e.g. DeepSeek-Coder-V2's run has stray category names between records
            continue
        where = f"{path}, entry {index}"
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
    return records, skipped


def _output_text(record: dict[str, Any]) -> str:
    return next(record[field] for field in OUTPUT_FIELDS if isinstance(record.get(field), str))


def _report(document: dict[str, Any]) -> None:
    unanswered = document["unanswered_by_model"]
    dropped = document["questions"] - len(document["prompts"])
    detail = ", ".join(f"{model} lacks {count}" for model, count in unanswered.items())
    report_dropped(
        "mmlu-pro", dropped, f"of {document['questions']} questions not answered by every model ({detail})"
    )
    for model, count in document["non_records"].items():
        report_dropped("mmlu-pro", count, f"entries of {model}'s run that are not question records")
