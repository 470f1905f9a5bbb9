"""RouteLLM's evaluation records (lm-sys/RouteLLM): MMLU, GSM8K and MT-Bench, two models each.

Prompts RouteLLM found in its own router training data (``contaminated_prompts.jsonl``) are
dropped exactly as its ``benchmarks.py`` does. The files record no costs: each call is priced
from its token counts and the list prices in ``model_prices.json``. RouteLLM's model names are
already their catalog identities (``routoo.catalog``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from routoo.catalog import default_catalog
from routoo.data.costs import Prices, answer_tokens, call_costs, dataset_price_book, prompt_tokens
from routoo.data.dataset import RoutingDataset
from routoo.data.download import RemoteFiles
from routoo.data.files import parse_bool, read_csv, read_jsonl, report_dropped
from routoo.errors import DataError
from routoo.prompts import Prompt

MODELS = ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview")
# MMLU answers are one letter; the files keep no responses to count.
MMLU_ANSWER_TOKENS = 1

MMLU_DOMAINS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine",
    "college_physics", "computer_security", "conceptual_physics", "econometrics", "electrical_engineering",
    "elementary_mathematics", "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry",
    "high_school_computer_science", "high_school_european_history", "high_school_geography",
    "high_school_government_and_politics", "high_school_macroeconomics", "high_school_mathematics",
    "high_school_microeconomics", "high_school_physics", "high_school_psychology", "high_school_statistics",
    "high_school_us_history", "high_school_world_history", "human_aging", "human_sexuality",
    "international_law", "jurisprudence", "logical_fallacies", "machine_learning", "management", "marketing",
    "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition", "philosophy",
    "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy",
    "virology", "world_religions",
)  # fmt: skip

_REPO, _COMMIT, _EVALS = "lm-sys/RouteLLM", "0b64fda", "routellm/evals"
MMLU_FILES = RemoteFiles(
    _REPO,
    _COMMIT,
    (
        (f"{_EVALS}/mmlu/contaminated_prompts.jsonl", "routellm/mmlu/contaminated_prompts.jsonl"),
        *(
            (f"{_EVALS}/mmlu/responses/mmlu_{domain}.csv", f"routellm/mmlu/responses/mmlu_{domain}.csv")
            for domain in MMLU_DOMAINS
        ),
    ),
)
GSM8K_FILES = RemoteFiles(
    _REPO,
    _COMMIT,
    tuple(
        (f"{_EVALS}/gsm8k/{name}", f"routellm/gsm8k/{name}")
        for name in ("gsm8k_responses.csv", "contaminated_prompts.jsonl")
    ),
)
MT_BENCH_FILES = RemoteFiles(
    _REPO,
    _COMMIT,
    tuple(
        (f"{_EVALS}/mt_bench/{name}", f"routellm/mt_bench/{name}")
        for name in ("judgements.jsonl", "question.jsonl", "contaminated_prompts.jsonl")
    ),
)


def load_routellm_mmlu(root: Path, prices: Prices = None) -> RoutingDataset:
    """MMLU, 57 domains: quality = the model answered correctly, category = domain."""
    folder = root / "routellm" / "mmlu"
    contaminated = _contaminated_prompts(folder / "contaminated_prompts.jsonl")
    prompts: list[Prompt] = []
    quality: list[list[float]] = []
    categories: list[str | None] = []
    source_ids: list[str] = []
    dropped = 0
    for domain in MMLU_DOMAINS:
        path = folder / "responses" / f"mmlu_{domain}.csv"
        for row_number, row in enumerate(read_csv(path, required=("prompt", *MODELS)), start=1):
            if row["prompt"] in contaminated:
                dropped += 1
                continue
            prompts.append(row["prompt"])
            quality.append([parse_bool(row[model], f"{path}, row {row_number}, {model}") for model in MODELS])
            categories.append(domain)
            source_ids.append(f"{domain}/{row_number}")
    report_dropped("routellm-mmlu", dropped, "contaminated prompts (RouteLLM's contaminated_prompts.jsonl)")
    # Costed as one-letter answers; the set records no answers, so their lengths stay unknown (NaN).
    answer_tokens = np.full((len(prompts), len(MODELS)), MMLU_ANSWER_TOKENS, dtype=np.float64)
    return _priced(
        "routellm-mmlu", prompts, quality, answer_tokens, categories, source_ids, prices, recorded=False
    )


def load_routellm_gsm8k(root: Path, prices: Prices = None) -> RoutingDataset:
    """GSM8K: quality = the final answer was correct; output tokens counted from the responses."""
    folder = root / "routellm" / "gsm8k"
    path = folder / "gsm8k_responses.csv"
    contaminated = _contaminated_prompts(folder / "contaminated_prompts.jsonl")
    responses = [f"{model}_response" for model in MODELS]
    prompts: list[Prompt] = []
    quality: list[list[float]] = []
    answers: list[list[str]] = []
    source_ids: list[str] = []
    dropped = 0
    for row_number, row in enumerate(read_csv(path, required=("prompt", *MODELS, *responses)), start=1):
        if row["prompt"] in contaminated:
            dropped += 1
            continue
        prompts.append(row["prompt"])
        quality.append([parse_bool(row[model], f"{path}, row {row_number}, {model}") for model in MODELS])
        answers.append([row[column] for column in responses])
        source_ids.append(str(row_number))
    report_dropped("routellm-gsm8k", dropped, "contaminated prompts (RouteLLM's contaminated_prompts.jsonl)")
    output_tokens = answer_tokens(answers)
    return _priced("routellm-gsm8k", prompts, quality, output_tokens, None, source_ids, prices)


def load_routellm_mt_bench(root: Path, prices: Prices = None) -> RoutingDataset:
    """MT-Bench: one prompt per (question, turn); quality = GPT-4 judge score mapped to [0, 1].

    A score s in 1..10 becomes (s - 1) / 9. Turn 1's prompt is its user message; turn 2's is
    the two user messages as a conversation: the assistant's first answer differs per model,
    so none is put between them. Output tokens are counted from the answer quoted in the
    judge's prompt.
    """
    folder = root / "routellm" / "mt_bench"
    contaminated = _contaminated_prompts(folder / "contaminated_prompts.jsonl")
    questions = {}
    for line, record in read_jsonl(folder / "question.jsonl"):
        turns = record.get("turns") if isinstance(record, dict) else None
        if not isinstance(turns, list) or len(turns) != 2 or "question_id" not in record:
            raise DataError(f"{folder / 'question.jsonl'}:{line}: expected question_id and two turns")
        questions[record["question_id"]] = record
    # RouteLLM drops a question when either of its turns is contaminated.
    kept = {qid: q for qid, q in questions.items() if not contaminated.intersection(q["turns"])}
    report_dropped(
        "routellm-mt-bench", len(questions) - len(kept), "contaminated questions, with both their turns"
    )

    keys = [(qid, turn) for qid in kept for turn in (1, 2)]
    row_of = {key: row for row, key in enumerate(keys)}
    quality = np.full((len(keys), len(MODELS)), np.nan)
    answers = [["" for _ in MODELS] for _ in keys]
    judgements = folder / "judgements.jsonl"
    for line, record in read_jsonl(judgements):
        where = f"{judgements}:{line}"
        try:
            key, model, score = (record["question_id"], record["turn"]), record["model"], record["score"]
        except (TypeError, KeyError) as error:
            raise DataError(f"{where}: missing field {error}") from None
        if key[0] not in kept:
            continue
        if model not in MODELS or key not in row_of:
            raise DataError(f"{where}: unexpected model {model!r} or turn {key[1]!r}")
        if not isinstance(score, int | float) or not 1 <= score <= 10:
            raise DataError(f"{where}: judge score must lie in 1..10, got {score!r}")
        row, column = row_of[key], MODELS.index(model)
        if not np.isnan(quality[row, column]):
            raise DataError(f"{where}: a second judgement of {model!r} on question {key[0]}, turn {key[1]}")
        quality[row, column] = (float(score) - 1.0) / 9.0
        answers[row][column] = _judged_answer(str(record.get("user_prompt", "")), turn=key[1], where=where)
    missing = np.argwhere(np.isnan(quality))
    if missing.size:
        (qid, turn), model = keys[missing[0][0]], MODELS[missing[0][1]]
        raise DataError(f"{judgements}: no judgement of {model!r} on question {qid}, turn {turn}")

    prompts: list[Prompt] = []
    for qid, turn in keys:
        first, second = kept[qid]["turns"]
        prompts.append(
            first if turn == 1 else [{"role": "user", "content": first}, {"role": "user", "content": second}]
        )
    categories: list[str | None] = [kept[qid].get("category") for qid, _ in keys]
    source_ids = [f"{qid}/turn{turn}" for qid, turn in keys]
    return _priced(
        "routellm-mt-bench", prompts, quality, answer_tokens(answers), categories, source_ids, prices
    )


_SINGLE_ANSWER = re.compile(
    r"\[The Start of Assistant's Answer\]\n(.*)\n\[The End of Assistant's Answer\]", re.S
)
_CONVERSATION = re.compile(
    r"<\|The Start of Assistant A's Conversation with User\|>(.*)<\|The End of Assistant A's Conversation",
    re.S,
)


def _judged_answer(user_prompt: str, turn: int, where: str) -> str:
    """The judged model's answer, as the judge's prompt quotes it (turn 2: the last assistant turn)."""
    if turn == 1:
        match = _SINGLE_ANSWER.search(user_prompt)
        answer = match.group(1) if match else None
    else:
        match = _CONVERSATION.search(user_prompt)
        answer = match.group(1).rsplit("### Assistant A:", 1)[-1] if match else None
    if answer is None:
        raise DataError(f"{where}: cannot find the judged answer in the judge's user_prompt")
    return answer.strip()


def _contaminated_prompts(path: Path) -> set[str]:
    prompts = set()
    for line, record in read_jsonl(path):
        if not isinstance(record, dict) or not isinstance(record.get("eval_prompt"), str):
            raise DataError(f"{path}:{line}: expected an object with an eval_prompt string")
        prompts.add(record["eval_prompt"])
    return prompts


def _priced(
    name: str,
    prompts: list[Prompt],
    quality: list[list[float]] | np.ndarray,
    output_tokens: np.ndarray,
    categories: list[str | None] | None,
    source_ids: list[str],
    prices: Prices,
    *,
    recorded: bool = True,
) -> RoutingDataset:
    """The set with its costs; ``recorded`` False: ``output_tokens`` were assumed, kept only in the costs."""
    if not prompts:
        raise DataError(f"dataset {name!r}: the source files hold no prompts")
    input_tokens = prompt_tokens(prompts)
    models = [default_catalog().canonical_name(model) for model in MODELS]
    book = dataset_price_book("routellm", prices)
    return RoutingDataset(
        name=name,
        prompts=prompts,
        models=models,
        quality=np.asarray(quality, dtype=np.float64),
        cost=call_costs(book, models, input_tokens, output_tokens),
        input_tokens=input_tokens,
        output_tokens=output_tokens if recorded else np.full(output_tokens.shape, np.nan),
        categories=categories,
        source_ids=source_ids,
    )
