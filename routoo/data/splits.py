"""Train/test splits that put the same prompt on the same side, whatever the row order.

Each prompt is placed by a hash of its content and the seed, so a prompt that appears twice
(or in two data sets) always lands in the same split, and adding rows never moves others.
The sizes are therefore close to, not exactly, the requested fractions. ``key_hashes`` is
Routoo's one hash split: data-set splits here, and the predictors' validation and
cross-validation folds (``hash_folds``) inside a training set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

import numpy as np

from routoo.data.dataset import RoutingDataset
from routoo.errors import ConfigError, DataError
from routoo.prompts import Prompt


def key_hashes(keys: Iterable[str], salt: str = "") -> np.ndarray:
    """A 64-bit number (uint64) per key, fixed by the key and ``salt`` alone: sha256 of ``salt\\0key``.

    Distinct salts give independent assignments, so that a slice chosen inside a training
    set is not emptied by a train/test split that hashed the same texts.
    """
    digests = (hashlib.sha256(f"{salt}\0{key}".encode()).digest() for key in keys)
    return np.fromiter((int.from_bytes(digest[:8], "big") for digest in digests), dtype=np.uint64)


def hash_folds(texts: Sequence[str], n_folds: int, salt: str = "") -> np.ndarray:
    """A fold in ``range(n_folds)`` for each text, fixed by its hash (same text, same fold, anywhere)."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 1:
        raise ConfigError(f"n_folds must be a positive integer, got {n_folds!r}")
    return (key_hashes(texts, salt) % np.uint64(n_folds)).astype(np.int64)


def prompt_hashes(prompts: Sequence[Prompt], seed: int = 0) -> np.ndarray:
    """A number in [0, 1) per prompt, fixed by the prompt's content and ``seed``."""
    contents = (json.dumps(prompt, sort_keys=True, ensure_ascii=False) for prompt in prompts)
    return key_hashes(contents, str(seed)) / 2.0**64


def train_test_split(
    dataset: RoutingDataset, test_fraction: float = 0.2, seed: int = 0
) -> tuple[RoutingDataset, RoutingDataset]:
    """About ``test_fraction`` of the prompts for testing, chosen by prompt hash."""
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    in_test = prompt_hashes(dataset.prompts, seed) < test_fraction
    return _split(dataset, in_test, "train", "test")


def kfold(dataset: RoutingDataset, k: int = 5, seed: int = 0) -> list[tuple[RoutingDataset, RoutingDataset]]:
    """``k`` (train, test) pairs; every prompt is in exactly one test fold, chosen by prompt hash."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"k must be an integer of at least 2, got {k!r}")
    fold = np.floor(prompt_hashes(dataset.prompts, seed) * k).astype(np.int64)
    return [_split(dataset, fold == index, f"fold {index} train", f"fold {index} test") for index in range(k)]


def category_split(
    dataset: RoutingDataset, test_categories: Sequence[str]
) -> tuple[RoutingDataset, RoutingDataset]:
    """The prompts of ``test_categories`` for testing, all others for training."""
    if isinstance(test_categories, str):
        raise ConfigError("test_categories takes a sequence of category names, not one string")
    if dataset.categories is None:
        raise DataError(f"dataset {dataset.name!r} has no categories to split by")
    known = {category for category in dataset.categories if category is not None}
    unknown = [category for category in test_categories if category not in known]
    if unknown:
        raise DataError(f"dataset {dataset.name!r} has no category {unknown[0]!r}; it has {sorted(known)}")
    chosen = set(test_categories)
    in_test = np.array([category in chosen for category in dataset.categories])
    return _split(dataset, in_test, "train", "test")


def _split(
    dataset: RoutingDataset, in_test: np.ndarray, train_name: str, test_name: str
) -> tuple[RoutingDataset, RoutingDataset]:
    for side, rows in ((train_name, ~in_test), (test_name, in_test)):
        if not rows.any():
            raise DataError(
                f"dataset {dataset.name!r} ({len(dataset)} prompts) leaves the {side} split empty; "
                "use more prompts or another fraction"
            )
    return (
        dataset.subset(np.flatnonzero(~in_test), name=f"{dataset.name} [{train_name}]"),
        dataset.subset(np.flatnonzero(in_test), name=f"{dataset.name} [{test_name}]"),
    )
