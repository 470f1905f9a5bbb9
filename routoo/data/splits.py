"""Train/test splits that put the same prompt on the same side, whatever the row order.

Each prompt is placed by a hash of its content and the seed, so a prompt that appears twice
(or in two data sets) always lands in the same split, and adding rows never moves others.
The sizes are therefore close to, not exactly, the requested fractions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from routoo.data.dataset import RoutingDataset
from routoo.errors import ConfigError, DataError
from routoo.prompts import Prompt


def prompt_hashes(prompts: Sequence[Prompt], seed: int = 0) -> np.ndarray:
    """A number in [0, 1) per prompt, fixed by the prompt's content and ``seed``."""
    values = np.empty(len(prompts), dtype=np.float64)
    for index, prompt in enumerate(prompts):
        content = json.dumps(prompt, sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(f"{seed}\0{content}".encode()).digest()
        values[index] = int.from_bytes(digest[:8], "big") / 2.0**64
    return values


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
