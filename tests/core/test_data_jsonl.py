"""Routoo's JSONL format: score lines, preference lines, errors that name file:line, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routoo.data import Battle, RoutingDataset, load_jsonl, read_prompts_jsonl, save_jsonl
from routoo.data.costs import DEFAULT_OUTPUT_TOKENS
from routoo.errors import DataError, DatasetNotFoundError, PriceNotFoundError
from routoo.pricing import ModelPrice, PriceBook
from routoo.tokens import count_tokens

PRICES = {"cheap": ModelPrice(1e-7, 2e-7), "dear": ModelPrice(1e-5, 3e-5)}


def write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_score_lines(tmp_path):
    path = write(
        tmp_path / "scores.jsonl",
        [
            {
                "prompt": "What is 2 + 2?",
                "scores": {"cheap": 1.0, "dear": 1.0},
                "category": "math",
                "id": "q1",
            },
            {
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "A haiku?"},
                ],
                "scores": {"dear": 0.75, "new": None},
                "costs": {"dear": 0.02},
                "output_tokens": {"dear": 40},
            },
            "",  # blank lines are skipped
            {"prompt": "Say hi.", "scores": {"cheap": 1}, "output_tokens": {"cheap": 3}},
        ],
    )
    dataset = load_jsonl(path, prices=PRICES)
    assert dataset.name == "scores"
    assert dataset.models == ["cheap", "dear", "new"]
    np.testing.assert_array_equal(
        dataset.quality, [[1.0, 1.0, np.nan], [np.nan, 0.75, np.nan], [1.0, np.nan, np.nan]]
    )
    assert dataset.categories == ["math", None, None]
    assert dataset.source_ids == ["q1", "scores.jsonl:2", "scores.jsonl:4"]
    tokens = count_tokens("What is 2 + 2?")
    assert dataset.input_tokens[0] == tokens
    # No costs on line 1: tokens x prices, with the default output length.
    assert np.isnan(dataset.output_tokens[0, 0])  # not recorded: the cost assumes DEFAULT_OUTPUT_TOKENS
    assert dataset.cost[0, 1] == pytest.approx(tokens * 1e-5 + DEFAULT_OUTPUT_TOKENS * 3e-5)
    assert dataset.cost[1, 1] == 0.02  # recorded cost kept as is
    assert dataset.cost[2, 0] == pytest.approx(count_tokens("Say hi.") * 1e-7 + 3 * 2e-7)
    assert np.isnan(dataset.cost[1, 0]) and np.isnan(dataset.cost[0, 2])  # no record, no call


def test_costs_fall_back_to_litellm_prices(tmp_path):
    path = write(
        tmp_path / "d.jsonl",
        [{"prompt": "Hello", "scores": {"gpt-4o-mini": 0.5}, "output_tokens": {"gpt-4o-mini": 10}}],
    )
    dataset = load_jsonl(path)
    assert dataset.cost[0, 0] == pytest.approx(PriceBook().cost("gpt-4o-mini", count_tokens("Hello"), 10))


def test_models_take_their_catalog_names(tmp_path):
    path = write(
        tmp_path / "d.jsonl",
        [
            {
                "prompt": "Hello",
                "scores": {"openai/gpt-4o": 0.5, "Meta-Llama-3_1-8B-Instruct": 1},
                "costs": {"openai/gpt-4o": 0.01, "Meta-Llama-3_1-8B-Instruct": 0.001},
            },
            {"prompt": "Hi", "model_a": "openai/gpt-4o", "model_b": "my-own-model", "winner": "tie"},
        ],
    )
    dataset = load_jsonl(path)
    assert dataset.models == ["gpt-4o", "meta-llama/Llama-3.1-8B-Instruct", "my-own-model"]
    assert (dataset.battles[0].model_a, dataset.battles[0].model_b) == ("gpt-4o", "my-own-model")
    twice = write(tmp_path / "twice.jsonl", [{"prompt": "Hi", "scores": {"gpt-4o": 1, "openai/gpt-4o": 0}}])
    with pytest.raises(DataError, match=r"\['gpt-4o', 'openai/gpt-4o'\] are one model, 'gpt-4o'"):
        load_jsonl(twice)


def test_unknown_price_names_model_and_file(tmp_path):
    path = write(tmp_path / "d.jsonl", [{"prompt": "Hello", "scores": {"in-house-llm": 0.5}}])
    with pytest.raises(PriceNotFoundError, match=r"d\.jsonl.*'in-house-llm'"):
        load_jsonl(path)
    # A recorded cost needs no price.
    write(path, [{"prompt": "Hello", "scores": {"in-house-llm": 0.5}, "costs": {"in-house-llm": 0.001}}])
    assert load_jsonl(path).cost[0, 0] == 0.001


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"bad\.jsonl:2: not valid JSON"),
        ('["a list"]', r"bad\.jsonl:2: expected a JSON object"),
        ('{"scores": {"cheap": 1}}', r"bad\.jsonl:2: a prompt must be a string"),
        ('{"prompt": "  ", "scores": {"cheap": 1}}', r"bad\.jsonl:2: the prompt is empty"),
        ('{"prompt": [{"content": "x"}], "scores": {"cheap": 1}}', r"bad\.jsonl:2: message 0 needs 'role'"),
        ('{"prompt": "x", "scores": {"cheap": 1.5}}', r"bad\.jsonl:2: scores of 'cheap' must be in \[0, 1\]"),
        ('{"prompt": "x", "scores": [1]}', r"bad\.jsonl:2: scores must be an object"),
        (
            '{"prompt": "x", "scores": {"cheap": 1}, "costs": {"cheap": -1}}',
            r"bad\.jsonl:2: costs of 'cheap'",
        ),
        ('{"prompt": "x", "scores": {"cheap": 1}, "score": 2}', r"bad\.jsonl:2: unknown fields \['score'\]"),
        (
            '{"prompt": "x", "scores": {"cheap": 1}, "category": 3}',
            r"bad\.jsonl:2: category must be a string",
        ),
        ('{"prompt": "x"}', r"bad\.jsonl:2: a line needs either 'scores' or"),
        (
            '{"prompt": "x", "model_a": "cheap", "model_b": "dear", "winner": "both"}',
            r"bad\.jsonl:2: winner must",
        ),
        (
            '{"prompt": "x", "model_a": "cheap", "model_b": "dear", "winner": ["model_a"]}',
            r"bad\.jsonl:2: winner must",
        ),
        (
            '{"prompt": "x", "model_a": "cheap", "model_b": "cheap", "winner": "tie"}',
            r"bad\.jsonl:2: model_a and",
        ),
        (
            '{"prompt": "x", "model_a": "", "model_b": "dear", "winner": "tie"}',
            r"bad\.jsonl:2: model_a must be",
        ),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "bad.jsonl", [{"prompt": "fine", "scores": {"cheap": 1.0}}, line])
    with pytest.raises(DataError, match=message):
        load_jsonl(path, prices=PRICES)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(DataError, match=r"empty\.jsonl is empty"):
        load_jsonl(empty)
    with pytest.raises(DatasetNotFoundError, match=r"absent\.jsonl does not exist"):
        load_jsonl(tmp_path / "absent.jsonl")


def test_preference_lines(tmp_path):
    path = write(
        tmp_path / "arena.jsonl",
        [
            {"prompt": "Tell a joke.", "model_a": "cheap", "model_b": "dear", "winner": "model_b"},
            {
                "prompt": "Prove it.",
                "model_a": "dear",
                "model_b": "other",
                "winner": "tie (bothbad)",
                "category": "math",
            },
            {"prompt": "Tell a joke.", "model_a": "other", "model_b": "cheap", "winner": "tie"},
        ],
    )
    dataset = load_jsonl(path)
    assert dataset.prompts == ["Tell a joke.", "Prove it."]  # the same text is the same prompt
    assert dataset.models == ["cheap", "dear", "other"]
    assert np.isnan(dataset.quality).all()
    assert dataset.cost is None and dataset.output_tokens is None
    assert dataset.categories == [None, "math"]
    assert dataset.battles == [
        Battle(0, "cheap", "dear", "model_b"),
        Battle(1, "dear", "other", "tie"),
        Battle(0, "other", "cheap", "tie"),
    ]


def test_mixed_score_and_preference_lines_share_prompts(tmp_path):
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]
    path = write(
        tmp_path / "mixed.jsonl",
        [
            {"prompt": conversation, "scores": {"cheap": 0.2, "dear": 0.9}},
            {"prompt": conversation, "model_a": "cheap", "model_b": "dear", "winner": "model_b"},
        ],
    )
    dataset = load_jsonl(path, prices=PRICES)
    assert len(dataset) == 1 and dataset.battles == [Battle(0, "cheap", "dear", "model_b")]


def assert_same(loaded: RoutingDataset, original: RoutingDataset) -> None:
    assert loaded.prompts == original.prompts
    assert loaded.models == original.models
    np.testing.assert_array_equal(loaded.quality, original.quality)
    for field in ("cost", "input_tokens", "output_tokens"):
        expected = getattr(original, field)
        if expected is None:
            assert getattr(loaded, field) is None
        else:
            np.testing.assert_array_equal(getattr(loaded, field), expected)
    assert loaded.categories == original.categories
    assert loaded.source_ids == original.source_ids
    assert loaded.battles == original.battles
    assert loaded.fingerprint() == original.fingerprint()


def test_save_and_load_round_trip(tmp_path, planted_dataset):
    original = planted_dataset(n=30, noise=0.2)
    quality = original.quality.copy()
    quality[3, 1] = np.nan  # a missing record survives too
    cost = original.cost.copy()
    cost[5, 2] = 0.123456789
    original = RoutingDataset(
        name="planted",
        prompts=[
            *original.prompts[:-1],
            [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Again"}],
        ],
        models=original.models,
        quality=quality,
        cost=cost,
        input_tokens=original.input_tokens,
        output_tokens=original.output_tokens,
        categories=original.categories,
        source_ids=original.source_ids,
        battles=[
            Battle(2, "math-model", "big-model", "model_b"),
            Battle(0, "poet-model", "math-model", "tie"),
        ],
    )
    path = tmp_path / "planted.jsonl"
    save_jsonl(original, path)
    assert_same(load_jsonl(path), original)


def test_round_trip_of_preferences_only(tmp_path):
    original = RoutingDataset(
        name="arena",
        prompts=["a", "b"],
        models=["x", "y"],
        quality=np.full((2, 2), np.nan),
        input_tokens=np.array([1.0, 1.0]),
        categories=[None, "c"],
        source_ids=["1", "2"],
        battles=[Battle(1, "x", "y", "model_a")],
    )
    path = tmp_path / "arena.jsonl"
    save_jsonl(original, path)
    assert_same(load_jsonl(path), original)


def test_read_prompts_jsonl(tmp_path):
    path = write(
        tmp_path / "p.jsonl",
        [{"prompt": "one", "extra": 1}, {"prompt": [{"role": "user", "content": "two"}]}],
    )
    assert read_prompts_jsonl(path) == ["one", [{"role": "user", "content": "two"}]]
    write(path, [{"prompt": "one"}, {"text": "two"}])
    with pytest.raises(DataError, match=r"p\.jsonl:2"):
        read_prompts_jsonl(path)
