"""Routing data: the ``RoutingDataset``, loaders for the named sets and JSONL, and splits."""

from routoo.data.dataset import Battle, RoutingDataset
from routoo.data.jsonl import load_jsonl, read_prompts_jsonl, save_jsonl
from routoo.data.registry import DATASETS, DatasetInfo, list_datasets, load_dataset
from routoo.data.splits import category_split, kfold, train_test_split
from routoo.data.union import concat_datasets

__all__ = [
    "DATASETS",
    "Battle",
    "DatasetInfo",
    "RoutingDataset",
    "category_split",
    "concat_datasets",
    "kfold",
    "list_datasets",
    "load_dataset",
    "load_jsonl",
    "read_prompts_jsonl",
    "save_jsonl",
    "train_test_split",
]
