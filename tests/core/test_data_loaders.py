"""The named-set loaders and the registry, on tiny copies of each set's on-disk layout."""

from __future__ import annotations

import csv
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from routoo.catalog import default_catalog
from routoo.data import DATASETS, list_datasets, load_dataset, mmlu_pro, routellm, routerbench
from routoo.data.cache import entry_dir
from routoo.data.costs import DEFAULT_OUTPUT_TOKENS, dataset_price_book
from routoo.data.llmrouter import load_llmrouter
from routoo.data.mmlu_pro import format_question, load_mmlu_pro
from routoo.data.routellm import load_routellm_gsm8k, load_routellm_mmlu, load_routellm_mt_bench
from routoo.data.routerbench import load_routerbench
from routoo.errors import DataError, DatasetNotFoundError, PriceNotFoundError
from routoo.pricing import ModelPrice
from routoo.tokens import count_tokens

WEAK, STRONG = routellm.MODELS


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Keep caches and downloads of these tests in a temporary folder, and no ambient data root."""
    monkeypatch.setenv("ROUTOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ROUTOO_DATA_DIR", raising=False)


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_jsonl(path: Path, records: list[object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def contamination(*prompts: str) -> list[dict[str, object]]:
    return [{"train_prompt": p, "eval_prompt": p, "train_idx": 0, "eval_idx": 0} for p in prompts]


def expected_cost(family: str, model: str, prompt: str, output_tokens: float) -> float:
    return dataset_price_book(family).cost(model, count_tokens(prompt), output_tokens)


# ------------------------------------------------------------------ RouteLLM
def make_routellm_mmlu(root: Path) -> None:
    for domain in routellm.MMLU_DOMAINS:
        rows = [[f"{domain} question {i}?\nA. x\nB. y\nAnswer:", i % 2 == 0, True] for i in range(2)]
        write_csv(root / "routellm/mmlu/responses" / f"mmlu_{domain}.csv", ["prompt", WEAK, STRONG], rows)
    write_jsonl(
        root / "routellm/mmlu/contaminated_prompts.jsonl",
        contamination("anatomy question 1?\nA. x\nB. y\nAnswer:"),
    )


def test_routellm_mmlu(tmp_path, caplog):
    make_routellm_mmlu(tmp_path)
    with caplog.at_level(logging.WARNING, logger="routoo.data"):
        dataset = load_routellm_mmlu(tmp_path)
    assert "routellm-mmlu: dropped 1 contaminated prompts" in caplog.text
    assert len(dataset) == 2 * 57 - 1
    assert dataset.models == [WEAK, STRONG]
    assert set(dataset.categories) == set(routellm.MMLU_DOMAINS)
    assert dataset.quality[:, 1].tolist() == [1.0] * len(dataset)
    first = dataset.prompts[0]
    assert dataset.quality[0].tolist() == [1.0, 1.0] and dataset.source_ids[0] == "abstract_algebra/1"
    # No answers are recorded: lengths stay unknown, the costs assume one-letter answers.
    assert np.isnan(dataset.output_tokens).all()
    assert dataset.cost[0, 1] == pytest.approx(
        expected_cost("routellm", STRONG, first, routellm.MMLU_ANSWER_TOKENS)
    )
    assert dataset.cost[0, 1] > dataset.cost[0, 0] > 0


def test_routellm_mmlu_bad_cell_names_file_and_row(tmp_path):
    make_routellm_mmlu(tmp_path)
    write_csv(
        tmp_path / "routellm/mmlu/responses/mmlu_virology.csv",
        ["prompt", WEAK, STRONG],
        [["q", "maybe", True]],
    )
    with pytest.raises(DataError, match=r"mmlu_virology\.csv, row 1, mistralai/Mixtral.*'maybe'"):
        load_routellm_mmlu(tmp_path)


def test_routellm_mmlu_missing_column(tmp_path):
    make_routellm_mmlu(tmp_path)
    write_csv(tmp_path / "routellm/mmlu/responses/mmlu_virology.csv", ["prompt", WEAK], [["q", True]])
    with pytest.raises(DataError, match=r"mmlu_virology\.csv: missing columns \['gpt-4-1106-preview'\]"):
        load_routellm_mmlu(tmp_path)


def make_routellm_gsm8k(root: Path) -> None:
    header = ["prompt", WEAK, STRONG, f"{WEAK}_response", f"{STRONG}_response"]
    rows = [
        [
            "Tom has 3 apples and eats one. How many are left?",
            False,
            True,
            "3",
            "He has 3 - 1 = 2 apples left. #### 2",
        ],
        ["Contaminated question?", True, True, "a", "b"],
        ["What is 2 + 2?", True, True, "4", "2 + 2 = 4"],
    ]
    write_csv(root / "routellm/gsm8k/gsm8k_responses.csv", header, rows)
    write_jsonl(root / "routellm/gsm8k/contaminated_prompts.jsonl", contamination("Contaminated question?"))


def test_routellm_gsm8k_counts_output_tokens_from_responses(tmp_path):
    make_routellm_gsm8k(tmp_path)
    dataset = load_routellm_gsm8k(tmp_path)
    assert len(dataset) == 2 and dataset.source_ids == ["1", "3"]
    assert dataset.quality.tolist() == [[0.0, 1.0], [1.0, 1.0]]
    answer = "He has 3 - 1 = 2 apples left. #### 2"
    assert dataset.output_tokens[0].tolist() == [count_tokens("3"), count_tokens(answer)]
    assert dataset.cost[0, 1] == pytest.approx(
        expected_cost("routellm", STRONG, dataset.prompts[0], count_tokens(answer))
    )


def judge_prompt(turn: int, first: str, second: str, answer: str) -> str:
    if turn == 1:
        return (
            f"[Instruction]\nJudge.\n\n[Question]\n{first}\n\n[The Start of Assistant's Answer]\n{answer}\n"
            "[The End of Assistant's Answer]"
        )
    return (
        "<|The Start of Assistant A's Conversation with User|>\n\n"
        f"### User:\n{first}\n\n### Assistant A:\nearlier answer\n\n### User:\n{second}\n\n"
        f"### Assistant A:\n{answer}\n\n<|The End of Assistant A's Conversation with User|>"
    )


def make_mt_bench(root: Path) -> None:
    folder = root / "routellm/mt_bench"
    questions = [
        {"question_id": 81, "category": "writing", "turns": ["Write a poem.", "Make it rhyme."]},
        {"question_id": 82, "category": "math", "turns": ["What is 3 * 7?", "And 3 * 8?"]},
    ]
    write_jsonl(folder / "question.jsonl", questions)
    write_jsonl(folder / "contaminated_prompts.jsonl", contamination("And 3 * 8?"))  # drops question 82
    judgements = []
    for question in questions:
        for model, score in ((WEAK, 4), (STRONG, 10)):
            for turn in (1, 2):
                answer = f"answer of {model} to turn {turn} " + "word " * (5 if model == WEAK else 20)
                judgements.append(
                    {
                        "question_id": question["question_id"],
                        "model": model,
                        "judge": ["gpt-4", "single-v1"],
                        "user_prompt": judge_prompt(turn, *question["turns"], answer.strip()),
                        "judgment": "...",
                        "score": score,
                        "turn": turn,
                    }
                )
    write_jsonl(folder / "judgements.jsonl", judgements)


def test_routellm_mt_bench(tmp_path, caplog):
    make_mt_bench(tmp_path)
    with caplog.at_level(logging.WARNING, logger="routoo.data"):
        dataset = load_routellm_mt_bench(tmp_path)
    assert "dropped 1 contaminated questions" in caplog.text
    assert dataset.source_ids == ["81/turn1", "81/turn2"]
    assert dataset.prompts[0] == "Write a poem."
    assert dataset.prompts[1] == [
        {"role": "user", "content": "Write a poem."},
        {"role": "user", "content": "Make it rhyme."},
    ]
    np.testing.assert_allclose(dataset.quality, [[3 / 9, 1.0], [3 / 9, 1.0]])
    assert dataset.categories == ["writing", "writing"]
    answer = "answer of gpt-4-1106-preview to turn 2 " + " ".join(["word"] * 20)
    assert dataset.output_tokens[1, 1] == count_tokens(answer)


def test_routellm_mt_bench_score_out_of_range(tmp_path):
    make_mt_bench(tmp_path)
    path = tmp_path / "routellm/mt_bench/judgements.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    record["score"] = -1
    lines[2] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"judgements\.jsonl:3: judge score must lie in 1..10, got -1"):
        load_routellm_mt_bench(tmp_path)


# ------------------------------------------------------------------ RouterBench
def make_routerbench(root: Path) -> None:
    header = ["", "sample_id", "prompt", "eval_name", *routerbench.MODELS]
    header += [f"{m}|model_response" for m in routerbench.MODELS] + [
        f"{m}|total_cost" for m in routerbench.MODELS
    ]
    header += ["oracle_model_to_route_to"]
    for task in routerbench.TASKS:
        for split in ("train", "test"):
            rows = []
            for i in range(2):
                scores = [float((i + j) % 2) for j in range(len(routerbench.MODELS))]
                if task == "mbpp" and split == "test" and i == 1:
                    scores = [""] * len(routerbench.MODELS)  # a row with no score at all
                responses = [repr([f"answer {j}"]) for j in range(len(routerbench.MODELS))]
                costs = [0.001 * (j + 1) for j in range(len(routerbench.MODELS))]
                prompt = repr([f"{task} {split} prompt {i}", "second part"])
                rows.append(
                    [
                        i,
                        f"{task}.{split}.{i}",
                        prompt,
                        task,
                        *scores,
                        *responses,
                        *costs,
                        "gpt-4-1106-preview",
                    ]
                )
            write_csv(root / "routerbench/routerbench_zs" / f"{task}_{split}.csv", header, rows)


def test_routerbench(tmp_path, caplog):
    make_routerbench(tmp_path)
    with caplog.at_level(logging.WARNING, logger="routoo.data"):
        dataset = load_routerbench(tmp_path)
    assert "routerbench: dropped 1 rows that no model has a score for" in caplog.text
    assert len(dataset) == 11
    assert dataset.models == [default_catalog().canonical_name(model) for model in routerbench.MODELS]
    assert dataset.prompts[0] == "arc_challenge train prompt 0\nsecond part"
    assert dataset.source_ids[0] == "arc_challenge.train.0" and dataset.categories[0] == "arc_challenge"
    np.testing.assert_allclose(
        dataset.cost[0], [0.001 * (j + 1) for j in range(11)]
    )  # recorded, not computed
    assert dataset.output_tokens[0, 3] == count_tokens("answer 3")
    assert dataset.quality[0, :2].tolist() == [0.0, 1.0]


def test_routerbench_malformed_prompt(tmp_path):
    make_routerbench(tmp_path)
    path = tmp_path / "routerbench/routerbench_zs/winograde_test.csv"
    text = path.read_text().replace("\"['winograde test prompt 0', 'second part']\"", "not a list")
    path.write_text(text)
    with pytest.raises(
        DataError, match=r"winograde_test\.csv, row 1, prompt: expected a Python list literal"
    ):
        load_routerbench(tmp_path)


# ------------------------------------------------------------------ LLMRouter
def make_llmrouter(root: Path, extra_model: str | None = None) -> None:
    folder = root / "llmrouter"
    candidates = {
        "small-model": {"input_price": 0.2, "output_price": 0.4, "size": "7B"},
        "large-model": {"input_price": 0.9, "output_price": 0.9, "size": "70B"},
    }
    (folder / "llm_candidates").mkdir(parents=True)
    (folder / "llm_candidates/default_llm.json").write_text(json.dumps(candidates))
    train = [
        {"question": "Solve x + 1 = 2.", "scores": {"small-model": 0.0, "large-model": 1.0}, "cluster_id": 1},
        {
            "question": "Write a function.",
            "scores": str({"small-model": 0.5, "large-model": 1.0}),
            "cluster_id": 0,
        },
    ]
    test = [
        {
            "question": "Name a prime.",
            "scores": {"small-model": 1.0, **({extra_model: 1.0} if extra_model else {})},
        }
    ]
    (folder / "dcrouter_preprocessed").mkdir()
    (folder / "dcrouter_preprocessed/train.json").write_text(json.dumps(train))
    (folder / "dcrouter_preprocessed/test.json").write_text(json.dumps(test))


def test_llmrouter(tmp_path):
    make_llmrouter(tmp_path)
    dataset = load_llmrouter(tmp_path)
    assert dataset.models == ["small-model", "large-model"]
    assert dataset.categories == ["cluster 1", "cluster 0", None]
    assert dataset.source_ids == ["train/0", "train/1", "test/0"]
    np.testing.assert_array_equal(dataset.quality, [[0.0, 1.0], [0.5, 1.0], [1.0, np.nan]])
    assert np.isnan(dataset.output_tokens).all()  # no answers recorded; costed at DEFAULT_OUTPUT_TOKENS
    tokens = count_tokens("Solve x + 1 = 2.")
    assert dataset.cost[0, 0] == pytest.approx(tokens * 0.2e-6 + DEFAULT_OUTPUT_TOKENS * 0.4e-6)
    assert dataset.cost[0, 1] == pytest.approx((tokens + DEFAULT_OUTPUT_TOKENS) * 0.9e-6)


def test_llmrouter_user_prices_win(tmp_path):
    make_llmrouter(tmp_path)
    dataset = load_llmrouter(tmp_path, prices={"large-model": ModelPrice(0.0, 0.0)})
    assert dataset.cost[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_llmrouter_model_without_price(tmp_path):
    make_llmrouter(tmp_path, extra_model="mystery-7b")
    with pytest.raises(PriceNotFoundError, match="mystery-7b"):
        load_llmrouter(tmp_path)


# ------------------------------------------------------------------ MMLU-Pro
def mmlu_pro_record(qid: int, model_index: int) -> dict[str, object]:
    answer = "ABCD"[qid % 4]
    pred = answer if (qid + model_index) % 3 else "A" if answer != "A" else "B"
    if qid == 1 and model_index == 2:
        pred = None  # no answer extracted: counts as wrong
    output = "model_outputs" if model_index % 2 else "generated_text"
    if model_index >= len(mmlu_pro.MODELS):
        output = "response"  # the API runs' field
    return {
        "question_id": qid,
        "question": f"Question number {qid}?",
        "options": ["one", "two", "three", "four"],
        "answer": answer,
        "answer_index": "ABCD".index(answer),
        "cot_content": "",
        "category": ["math", "law"][qid % 2],
        "src": "test",
        "pred": pred,
        output: f"Let's think. The answer is ({pred})." + " more" * qid,
    }


def make_mmlu_pro(root: Path) -> None:
    folder = root / "mmlu_pro"
    folder.mkdir(parents=True)
    for index, model in enumerate(mmlu_pro.MODELS):
        records: list[object] = [
            mmlu_pro_record(qid, index) for qid in range(6) if not (index == 0 and qid == 5)
        ]
        if index == 0:
            records.insert(2, "total")  # a stray non-record entry, as in DeepSeek-Coder-V2's run
        with zipfile.ZipFile(folder / f"model_outputs_{model}_5shots.zip", "w") as archive:
            archive.writestr(f"model_outputs_{model}_5shots.json", json.dumps(records))
    (folder / "api_runs").mkdir()
    for index, run in enumerate(mmlu_pro.API_RUNS, start=len(mmlu_pro.MODELS)):
        # The deepseek run lacks question 3, which every other run answered: a masked record.
        by_category: dict[str, list[object]] = {}
        for qid in range(6):
            if not (run == "deepseek" and qid == 3):
                record = mmlu_pro_record(qid, index)
                by_category.setdefault(str(record["category"]), []).append(record)
        with zipfile.ZipFile(folder / f"api_runs/{run}_results.zip", "w") as archive:
            for category, records in by_category.items():
                archive.writestr(f"{run}/{category}_result.json", json.dumps(records))
                archive.writestr(f"{run}/{category}_summary.json", json.dumps({"total": {"corr": 1.0}}))


def test_mmlu_pro_joins_runs_and_reports_drops(tmp_path, caplog):
    make_mmlu_pro(tmp_path)
    with caplog.at_level(logging.WARNING, logger="routoo.data"):
        dataset = load_mmlu_pro(tmp_path)
    assert (
        "mmlu-pro: dropped 1 of 6 questions not answered by all 29 published runs (DeepSeek-Coder-V2 lacks 1)"
        in caplog.text
    )
    assert (
        "mmlu-pro: dropped 1 entries of DeepSeek-Coder-V2's run that are not question records" in caplog.text
    )
    assert len(dataset) == 5 and dataset.models == mmlu_pro.model_names()
    assert dataset.models[-2:] == ["gpt-4o", "deepseek-ai/DeepSeek-V2-Chat"]
    assert dataset.source_ids == ["0", "1", "2", "3", "4"]
    assert dataset.categories == ["math", "law", "math", "law", "math"]
    assert dataset.prompts[1] == format_question("Question number 1?", ["one", "two", "three", "four"])
    assert dataset.prompts[1].startswith("Question:\nQuestion number 1?\nOptions:\nA. one\nB. two\n")
    expected = [[float(bool((qid + m) % 3)) for m in range(31)] for qid in range(5)]
    expected[1][2] = 0.0
    expected[3][30] = np.nan  # the deepseek run lacks question 3: masked, not dropped
    np.testing.assert_array_equal(dataset.quality, expected)
    record = mmlu_pro_record(3, 4)
    assert dataset.output_tokens[3, 4] == count_tokens(record["generated_text"])
    assert dataset.output_tokens[4, 29] == count_tokens(mmlu_pro_record(4, 29)["response"])
    assert np.isnan(dataset.output_tokens[3, 30]) and np.isnan(dataset.cost[3, 30])
    assert np.isfinite(dataset.cost[dataset.mask]).all() and (dataset.cost[dataset.mask] > 0).all()


def test_mmlu_pro_second_load_comes_from_the_cache(tmp_path):
    make_mmlu_pro(tmp_path)
    first = load_mmlu_pro(tmp_path)
    entries = list((tmp_path / "cache/datasets").iterdir())
    assert len(entries) == 1 and entry_dir(entries[0].name).is_dir()
    assert {path.name for path in entries[0].iterdir()} == {"arrays.safetensors", "document.json"}
    # Break the sources without touching size or mtime: the cached join must still be used.
    zip_path = tmp_path / "mmlu_pro/model_outputs_gemma-7b_5shots.zip"
    stat = zip_path.stat()
    zip_path.write_bytes(b"x" * stat.st_size)
    os.utime(zip_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = load_mmlu_pro(tmp_path)
    assert second.fingerprint() == first.fingerprint()
    np.testing.assert_array_equal(second.cost, first.cost)
    # A changed source (new mtime) misses the cache and is read again.
    os.utime(zip_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(DataError, match=r"gemma-7b_5shots\.zip: not a zip"):
        load_mmlu_pro(tmp_path)


def test_mmlu_pro_prices_are_applied_at_load_time(tmp_path):
    make_mmlu_pro(tmp_path)
    load_mmlu_pro(tmp_path)
    free = load_mmlu_pro(tmp_path, prices={"gemma-7b": ModelPrice(0.0, 0.0)})
    assert (free.cost[:, free.models.index("google/gemma-7b")] == 0).all()


# ------------------------------------------------------------------ registry
def make_all(root: Path) -> None:
    make_routellm_mmlu(root)
    make_routellm_gsm8k(root)
    make_mt_bench(root)
    make_routerbench(root)
    make_llmrouter(root)
    make_mmlu_pro(root)


def test_load_dataset_by_name_from_data_dir_or_environment(tmp_path, monkeypatch):
    make_all(tmp_path / "data")
    assert {info.name: info.path for info in list_datasets(tmp_path / "data")} == dict.fromkeys(
        DATASETS, tmp_path / "data"
    )
    for name in DATASETS:
        dataset = load_dataset(name, data_dir=tmp_path / "data")
        assert dataset.name == name and np.isfinite(dataset.cost[dataset.mask]).all()
    monkeypatch.setenv("ROUTOO_DATA_DIR", str(tmp_path / "data"))
    assert len(load_dataset("routellm-gsm8k")) == 2


def test_every_loader_gives_identical_costs_when_litellms_map_is_empty(tmp_path, monkeypatch):
    import litellm

    make_all(tmp_path)
    before = {name: load_dataset(name, data_dir=tmp_path).cost for name in DATASETS}

    def unknown(model: str, *args: object, **kwargs: object) -> dict[str, object]:
        raise Exception(f"This model isn't mapped yet. model={model}")  # as litellm says it

    monkeypatch.setattr(litellm, "model_cost", {})
    monkeypatch.setattr(litellm, "get_model_info", unknown)
    for name in DATASETS:
        np.testing.assert_array_equal(load_dataset(name, data_dir=tmp_path).cost, before[name], err_msg=name)


def test_list_datasets_when_nothing_is_here(tmp_path):
    infos = list_datasets(tmp_path)
    assert [info.name for info in infos] == list(DATASETS)
    assert all(info.path is None and info.source_url.startswith("https://github.com/") for info in infos)


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_missing_set_offline_names_set_url_and_variable(tmp_path):
    # The suite blocks sockets, so the download fails as it would offline.
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset("routellm-gsm8k", data_dir=tmp_path / "empty")
    message = str(caught.value)
    assert "'routellm-gsm8k'" in message
    assert "https://raw.githubusercontent.com/lm-sys/RouteLLM/0b64fda/routellm/evals/gsm8k/" in message
    assert "ROUTOO_DATA_DIR" in message and str(tmp_path / "empty") in message
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_unknown_name_and_jsonl_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"unknown dataset 'mmlu-prime'.*routellm-mmlu"):
        load_dataset("mmlu-prime")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset(tmp_path / "nothing.jsonl")
    path = tmp_path / "mine.jsonl"
    write_jsonl(path, [{"prompt": "hi", "scores": {"gpt-4o": 1.0}}])
    dataset = load_dataset(path)
    assert dataset.name == "mine" and dataset.models == ["gpt-4o"]
