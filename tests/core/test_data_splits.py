"""Splits by prompt hash (deterministic, order-independent, disjoint), the one hash behind them and the
predictors' folds, and splits by category."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from routoo.data import category_split, kfold, train_test_split
from routoo.data.splits import hash_folds, key_hashes, prompt_hashes
from routoo.errors import ConfigError, DataError


def prompt_set(dataset) -> set[str]:
    return {str(prompt) for prompt in dataset.prompts}


def test_train_test_split_is_disjoint_complete_and_deterministic(planted_dataset):
    dataset = planted_dataset(n=400)
    train, test = train_test_split(dataset, test_fraction=0.25, seed=3)
    assert len(train) + len(test) == len(dataset)
    assert not prompt_set(train) & prompt_set(test)
    assert 0.18 < len(test) / len(dataset) < 0.32
    again_train, again_test = train_test_split(dataset, test_fraction=0.25, seed=3)
    assert again_test.prompts == test.prompts and again_train.prompts == train.prompts
    other_seed = train_test_split(dataset, test_fraction=0.25, seed=4)[1]
    assert other_seed.prompts != test.prompts
    assert train.name == "planted [train]" and test.name == "planted [test]"


def test_split_does_not_depend_on_row_order(planted_dataset):
    dataset = planted_dataset(n=200)
    reversed_rows = dataset.subset(np.arange(len(dataset))[::-1])
    test = train_test_split(dataset, seed=1)[1]
    test_of_reversed = train_test_split(reversed_rows, seed=1)[1]
    assert prompt_set(test) == prompt_set(test_of_reversed)


def test_repeated_prompt_always_lands_on_the_same_side(planted_dataset):
    dataset = planted_dataset(n=60)
    doubled = dataset.subset(np.concatenate([np.arange(60), np.arange(60)]))
    train, test = train_test_split(doubled, test_fraction=0.5)
    assert not prompt_set(train) & prompt_set(test)


def test_kfold_tests_every_prompt_exactly_once(planted_dataset):
    dataset = planted_dataset(n=300)
    folds = kfold(dataset, k=4, seed=2)
    assert len(folds) == 4
    tested = [prompt for _, test in folds for prompt in map(str, test.prompts)]
    assert sorted(tested) == sorted(map(str, dataset.prompts))
    for train, test in folds:
        assert len(train) + len(test) == len(dataset)
        assert not prompt_set(train) & prompt_set(test)
    assert [test.prompts for _, test in kfold(dataset, k=4, seed=2)] == [test.prompts for _, test in folds]


def test_category_split(planted_dataset):
    dataset = planted_dataset(n=40)
    train, test = category_split(dataset, ["poetry"])
    assert set(test.categories) == {"poetry"} and set(train.categories) == {"math"}
    assert len(train) + len(test) == 40
    with pytest.raises(DataError, match="no category 'sports'"):
        category_split(dataset, ["sports"])
    with pytest.raises(DataError, match="train split empty"):
        category_split(dataset, ["poetry", "math"])
    with pytest.raises(ConfigError, match="not one string"):
        category_split(dataset, "poetry")


def test_bad_split_settings(planted_dataset):
    dataset = planted_dataset(n=20)
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match="test_fraction"):
            train_test_split(dataset, test_fraction=fraction)
    with pytest.raises(ConfigError, match="k must be"):
        kfold(dataset, k=1)
    with pytest.raises(DataError, match="test split empty"):
        train_test_split(dataset.subset([0]), test_fraction=0.01)


def test_one_hash_places_prompts_in_splits_and_texts_in_folds():
    texts = [f"prompt {i}" for i in range(1000)]
    expected = [
        int.from_bytes(hashlib.sha256(f"inner\0{text}".encode()).digest()[:8], "big") for text in texts
    ]
    assert key_hashes(texts, "inner").tolist() == expected
    assert hash_folds(texts, 7, salt="inner").tolist() == [value % 7 for value in expected]
    contents = [json.dumps(text) for text in texts]
    assert prompt_hashes(texts, seed=3).tolist() == (key_hashes(contents, "3") / 2.0**64).tolist()
    assert key_hashes([]).dtype == np.uint64 and hash_folds([], 3).shape == (0,)


def test_hash_folds_depend_only_on_the_text_and_salt():
    # The folds the predictors' validation and cross-validation slices have always used.
    texts = [f"prompt {i}" for i in range(1000)]
    for n_folds, salt in ((5, ""), (10, "inner"), (5, "knn-cross-validation")):
        digests = (hashlib.sha256(f"{salt}\0{text}".encode()).digest() for text in texts)
        expected = [int.from_bytes(digest[:8], "big") % n_folds for digest in digests]
        np.testing.assert_array_equal(hash_folds(texts, n_folds, salt), expected)
    folds = hash_folds(texts, 5)
    assert set(folds) == {0, 1, 2, 3, 4}
    np.testing.assert_array_equal(hash_folds(texts[::-1], 5), folds[::-1])
    # A slice of one fold, re-split with another salt, spreads over all folds.
    in_zero = [text for text, fold in zip(texts, folds, strict=True) if fold == 0]
    assert set(hash_folds(in_zero, 10, salt="inner")) == set(range(10))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="n_folds"):
            hash_folds(texts, bad)
