"""Several routing datasets as one: prompts stacked, models joined, absent records masked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from routoo.data.dataset import RoutingDataset
from routoo.errors import DataError


def concat_datasets(datasets: Sequence[RoutingDataset], name: str | None = None) -> RoutingDataset:
    """Stack ``datasets``' prompts; the models are the union in order of first appearance.

    A model that a set does not have gets NaN (masked) quality, cost and output tokens on
    that set's prompts; categories are prefixed with the set's name so they stay distinct,
    and so are source ids. Each prompt keeps its source (``RoutingDataset.row_sources``).
    """
    if not datasets:
        raise DataError("concat_datasets needs at least one dataset")
    models = list(dict.fromkeys(model for dataset in datasets for model in dataset.models))

    def stacked(attribute: str) -> np.ndarray | None:
        if all(getattr(d, attribute) is None for d in datasets):
            return None
        blocks = []
        for dataset in datasets:
            block = np.full((len(dataset), len(models)), np.nan)
            values = getattr(dataset, attribute)
            if values is not None:
                block[:, [models.index(m) for m in dataset.models]] = values
            blocks.append(block)
        return np.concatenate(blocks)

    input_tokens = None
    if any(d.input_tokens is not None for d in datasets):
        input_tokens = np.concatenate(
            [d.input_tokens if d.input_tokens is not None else np.full(len(d), np.nan) for d in datasets]
        )
    offsets = np.cumsum([0] + [len(d) for d in datasets])
    return RoutingDataset(
        name=name or "+".join(d.name for d in datasets),
        prompts=[prompt for d in datasets for prompt in d.prompts],
        models=models,
        quality=stacked("quality"),
        cost=stacked("cost"),
        input_tokens=input_tokens,
        output_tokens=stacked("output_tokens"),
        latency_s=stacked("latency_s"),
        categories=[
            f"{d.name}/{category}" if category is not None else d.name
            for d in datasets
            for category in (d.categories or [None] * len(d))
        ],
        source_ids=[
            f"{d.name}:{source}" for d in datasets for source in (d.source_ids or map(str, range(len(d))))
        ],
        sources=[source for d in datasets for source in d.row_sources()],
        battles=[
            replace(b, prompt_index=b.prompt_index + int(offset))
            for d, offset in zip(datasets, offsets, strict=False)
            for b in d.battles
        ],
    )
