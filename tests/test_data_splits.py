"""Splits by prompt hash (deterministic, order-independent, disjoint) and by category."""

from __future__ import annotations

import numpy as np
import pytest

from routoo.data import category_split, kfold, train_test_split
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
