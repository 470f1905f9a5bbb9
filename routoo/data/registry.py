"""The named routing data sets: where to find them, how to fetch them, and loading by name or path.

A named set is looked for under the data root (the ``data_dir`` argument, else
``$ROUTOO_DATA_DIR``), then in the download cache (``$ROUTOO_CACHE_DIR/data``); if it is in
neither, its original files are downloaded into the cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from routoo.data import llmrouter, mmlu_pro, routellm, routerbench
from routoo.data.costs import Prices
from routoo.data.dataset import RoutingDataset
from routoo.data.download import DataSource, download_root
from routoo.data.jsonl import load_jsonl
from routoo.errors import DatasetNotFoundError


@dataclass(frozen=True)
class DatasetInfo:
    """A named set: what it is, where it was found on this machine (or None) and its source."""

    name: str
    description: str
    path: Path | None
    source_url: str


@dataclass(frozen=True)
class _NamedSet:
    description: str
    files: DataSource
    load: Callable[[Path, Prices], RoutingDataset]


_NAMED_SETS: dict[str, _NamedSet] = {
    "routellm-mmlu": _NamedSet(
        "RouteLLM's MMLU records, 57 domains, Mixtral-8x7B vs GPT-4 (correct or not)",
        routellm.MMLU_FILES,
        routellm.load_routellm_mmlu,
    ),
    "routellm-gsm8k": _NamedSet(
        "RouteLLM's GSM8K records, Mixtral-8x7B vs GPT-4 (correct or not)",
        routellm.GSM8K_FILES,
        routellm.load_routellm_gsm8k,
    ),
    "routellm-mt-bench": _NamedSet(
        "RouteLLM's MT-Bench records, Mixtral-8x7B vs GPT-4 (GPT-4 judge scores)",
        routellm.MT_BENCH_FILES,
        routellm.load_routellm_mt_bench,
    ),
    "routerbench": _NamedSet(
        "RouterBench (RouterDC's zero-shot split): ARC, MBPP, Winogrande; 11 models with real costs",
        routerbench.FILES,
        routerbench.load_routerbench,
    ),
    "llmrouter": _NamedSet(
        "LLMRouter's preprocessed RouterDC data: 9 open models over many tasks (scores in [0, 1])",
        llmrouter.FILES,
        llmrouter.load_llmrouter,
    ),
    "mmlu-pro": _NamedSet(
        "MMLU-Pro's 5-shot CoT runs, 14 categories (correct or not): 29 published models, gpt-4o, DeepSeek-V2"
        " (their API runs)",
        mmlu_pro.FILES,
        mmlu_pro.load_mmlu_pro,
    ),
}
DATASETS: tuple[str, ...] = tuple(_NAMED_SETS)


def data_root(data_dir: str | Path | None = None) -> Path | None:
    """The user's data root: ``data_dir``, else ``$ROUTOO_DATA_DIR``, else None."""
    chosen = data_dir or os.environ.get("ROUTOO_DATA_DIR")
    return Path(chosen).expanduser() if chosen else None


def locate(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The root folder holding every file of the named set, or None if it is not on this machine."""
    named = _named(name)
    for root in (data_root(data_dir), download_root()):
        if root is not None and named.files.present_under(root):
            return root
    return None


def list_datasets(data_dir: str | Path | None = None) -> list[DatasetInfo]:
    """Every named set with its description, where it was found (None: not yet) and source URL."""
    return [
        DatasetInfo(name, named.description, locate(name, data_dir), named.files.homepage)
        for name, named in _NAMED_SETS.items()
    ]


def load_dataset(
    name_or_path: str | Path, data_dir: str | Path | None = None, prices: Prices = None
) -> RoutingDataset:
    """A named set (downloading it if needed) or a ``.jsonl`` file, with every call's cost filled in.

    ``prices`` (a ``PriceBook``, a mapping or a JSON file) overrides the list prices a set's
    costs are computed from; RouterBench keeps its recorded costs.
    """
    named = _NAMED_SETS.get(str(name_or_path))
    if named is None:
        path = Path(name_or_path)
        if path.suffix == ".jsonl":
            return load_jsonl(path, prices)
        raise DatasetNotFoundError(
            f"unknown dataset {str(name_or_path)!r}: use one of {list(DATASETS)} or the path of a .jsonl file"
        )
    root = locate(str(name_or_path), data_dir)
    if root is None:
        root = download_root()
        searched = [str(folder) for folder in (data_root(data_dir), root) if folder is not None]
        try:
            named.files.download(str(name_or_path), root)
        except DatasetNotFoundError as error:
            raise DatasetNotFoundError(f"{error} (looked in {', '.join(searched)})") from error.__cause__
    return named.load(root, prices)


def _named(name: str) -> _NamedSet:
    try:
        return _NAMED_SETS[name]
    except KeyError:
        raise DatasetNotFoundError(f"unknown dataset {name!r}: use one of {list(DATASETS)}") from None
