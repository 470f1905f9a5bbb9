"""The in-memory routing dataset: prompts x models quality records, costs and token counts."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from routoo.errors import DataError
from routoo.prompts import Prompt, validate_prompt

Winner = Literal["model_a", "model_b", "tie"]


@dataclass(frozen=True)
class Battle:
    """One pairwise preference: on prompt ``prompt_index``, ``winner`` beat the other model."""

    prompt_index: int
    model_a: str
    model_b: str
    winner: Winner


@dataclass(frozen=True, eq=False)
class RoutingDataset:
    """Per-prompt quality records of several models.

    ``quality`` is prompts x models in [0, 1]; NaN marks a missing record (the model did
    not answer that prompt). ``cost`` is the USD cost of each call (NaN where unknown),
    ``input_tokens`` one count per prompt, ``output_tokens`` prompts x models.
    ``latency_s`` the seconds each call took (prompts x models, NaN where unknown), where the
    records come from real calls (``routoo label``). ``battles`` holds pairwise preferences
    (RouteLLM/Arena style) when the data has them.
    ``sources`` names the set each prompt's records come from, where a dataset joins several
    (each with a grading scale, difficulty and prompt format of its own); None: one source,
    the dataset itself (``row_sources``).
    """

    name: str
    prompts: list[Prompt]
    models: list[str]
    quality: np.ndarray
    cost: np.ndarray | None = None
    input_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    categories: list[str | None] | None = None
    source_ids: list[str] | None = None
    battles: list[Battle] = field(default_factory=list)
    sources: list[str] | None = None
    latency_s: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, m = len(self.prompts), len(self.models)
        if n == 0:
            raise DataError(f"dataset {self.name!r} is empty: it has no prompts")
        if m == 0:
            raise DataError(f"dataset {self.name!r} has no models")
        if len(set(self.models)) != m:
            raise DataError(f"dataset {self.name!r} names a model twice: {self.models}")
        for index, prompt in enumerate(self.prompts):
            validate_prompt(prompt, where=f"dataset {self.name!r}, prompt {index}")
        object.__setattr__(self, "quality", _matrix(self.quality, (n, m), "quality", self.name))
        finite = self.quality[~np.isnan(self.quality)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise DataError(f"dataset {self.name!r}: quality must lie in [0, 1]")
        if self.cost is not None:
            object.__setattr__(self, "cost", _matrix(self.cost, (n, m), "cost", self.name))
            if np.any(self.cost[~np.isnan(self.cost)] < 0):
                raise DataError(f"dataset {self.name!r}: a cost is negative")
        for table in ("output_tokens", "latency_s"):
            if getattr(self, table) is not None:
                object.__setattr__(self, table, _matrix(getattr(self, table), (n, m), table, self.name))
        if self.input_tokens is not None:
            object.__setattr__(
                self, "input_tokens", _matrix(self.input_tokens, (n,), "input_tokens", self.name)
            )
        for attribute in ("categories", "source_ids", "sources"):
            values = getattr(self, attribute)
            if values is not None and len(values) != n:
                raise DataError(
                    f"dataset {self.name!r}: {attribute} has {len(values)} entries for {n} prompts"
                )
        known = set(self.models)
        for battle in self.battles:
            if not 0 <= battle.prompt_index < n:
                raise DataError(f"dataset {self.name!r}: battle on prompt {battle.prompt_index} of {n}")
            for model in (battle.model_a, battle.model_b):
                if model not in known:
                    raise DataError(f"dataset {self.name!r}: battle names unknown model {model!r}")

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def mask(self) -> np.ndarray:
        """Boolean prompts x models: True where a quality record exists."""
        return ~np.isnan(self.quality)

    def row_sources(self) -> list[str]:
        """The source of every prompt: ``sources``, or the dataset's name for all of them."""
        return list(self.sources) if self.sources is not None else [self.name] * len(self)

    def model_index(self, model: str) -> int:
        try:
            return self.models.index(model)
        except ValueError:
            raise DataError(f"dataset {self.name!r} has no model {model!r}; it has {self.models}") from None

    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> RoutingDataset:
        """The dataset restricted to the given prompt indices (battles re-indexed)."""
        rows = np.asarray(indices, dtype=np.int64)
        position = {int(old): new for new, old in enumerate(rows)}
        sources = None
        if self.sources is not None or name not in (None, self.name):
            row_sources = self.row_sources()
            sources = [row_sources[i] for i in rows]  # a renamed part (a split) keeps its prompts' source
        return replace(
            self,
            name=name or self.name,
            prompts=[self.prompts[i] for i in rows],
            quality=self.quality[rows],
            cost=None if self.cost is None else self.cost[rows],
            input_tokens=None if self.input_tokens is None else self.input_tokens[rows],
            output_tokens=None if self.output_tokens is None else self.output_tokens[rows],
            latency_s=None if self.latency_s is None else self.latency_s[rows],
            categories=None if self.categories is None else [self.categories[i] for i in rows],
            source_ids=None if self.source_ids is None else [self.source_ids[i] for i in rows],
            sources=sources,
            battles=[
                replace(b, prompt_index=position[b.prompt_index])
                for b in self.battles
                if b.prompt_index in position
            ],
        )

    def select_models(self, models: Sequence[str]) -> RoutingDataset:
        """The dataset restricted to (and ordered as) ``models``."""
        columns = [self.model_index(model) for model in models]
        keep = set(models)
        return replace(
            self,
            models=list(models),
            quality=self.quality[:, columns],
            cost=None if self.cost is None else self.cost[:, columns],
            output_tokens=None if self.output_tokens is None else self.output_tokens[:, columns],
            latency_s=None if self.latency_s is None else self.latency_s[:, columns],
            battles=[b for b in self.battles if b.model_a in keep and b.model_b in keep],
        )

    def fingerprint(self) -> str:
        """A short content hash: prompts, models and quality records."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.models).encode())
        for prompt in self.prompts:
            digest.update(json.dumps(prompt, sort_keys=True).encode())
            digest.update(b"\0")
        digest.update(np.nan_to_num(self.quality, nan=-1.0).astype(np.float64).tobytes())
        return digest.hexdigest()[:16]

    def mean_cost(self) -> np.ndarray:
        """Average USD cost per call of each model (NaN where the data has no cost)."""
        if self.cost is None:
            return np.full(len(self.models), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as meant
            return np.nanmean(self.cost, axis=0)

    def describe(self) -> dict[str, object]:
        """Counts for listings: prompts, models, records, whether costs are known."""
        return {
            "name": self.name,
            "prompts": len(self),
            "models": len(self.models),
            "records": int(self.mask.sum()),
            "battles": len(self.battles),
            "has_cost": self.cost is not None and bool(np.isfinite(self.cost).any()),
            "categories": len({c for c in self.categories or [] if c is not None}),
        }


def _matrix(values: object, shape: tuple[int, ...], what: str, dataset: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape:
        raise DataError(f"dataset {dataset!r}: {what} has shape {array.shape}, expected {shape}")
    return array
