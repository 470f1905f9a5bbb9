"""The training objectives every torch-backed kind shares: what it fits and the losses.

On quality records (missing ones are ignored) the loss is binary cross-entropy against the
quality in [0, 1] as a soft target, plus, with ``loss="pairwise"``, a logistic loss on
``score(i) - score(j)`` wherever model i did better than model j on a prompt (RouteLLM's
objective, for every pair of models), or with ``loss="listwise"`` ListNet's softmax
cross-entropy over each prompt's models. The BCE term keeps the outputs calibrated
qualities under every loss. From preference battles alone it is the Bradley-Terry
(logistic) loss of each battle's score margin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from routoo.data.dataset import RoutingDataset
from routoo.predictors._training_data import Loss, TrainingMode, battle_array, training_mode


@dataclass(frozen=True)
class Objective:
    """What training fits: its items (prompts with quality records, or battles) and their loss.

    ``rows[i]`` is the dataset row of the prompt item ``i`` reads; ``prior`` is each model's
    average quality, the starting point of the output bias (``prior_logits``).
    """

    mode: TrainingMode
    rows: np.ndarray
    prior: np.ndarray
    loss: Callable[[torch.Tensor, np.ndarray], torch.Tensor]  # (logits of the items' prompts, items)


def make_objective(dataset: RoutingDataset, loss: Loss, kind: str, source_balance: float = 0.0) -> Objective:
    """The objective for ``dataset``: its quality records under ``loss``, else its battles.

    ``source_balance`` weighs each source's records by ``1 / records ** source_balance``
    (0: every record alike; 1: every source alike), so that a small set pooled with large
    ones still shapes the shared parameters.
    """
    mode = training_mode(dataset, kind, stacklevel=5)
    if mode == "quality":
        rows = np.flatnonzero(dataset.mask.any(axis=1))  # prompts without records add nothing
        quality = torch.from_numpy(dataset.quality[rows].astype(np.float32))
        observed, target = ~torch.isnan(quality), torch.nan_to_num(quality)
        weight = observed.float()
        if source_balance:
            weight = weight * torch.from_numpy(_source_weights(dataset, rows, source_balance))[:, None]
        ranking = {"bce": None, "pairwise": pairwise_loss, "listwise": listwise_loss}[loss]

        def quality_loss(logits: torch.Tensor, items: np.ndarray) -> torch.Tensor:
            index = torch.from_numpy(items)
            total = masked_bce(logits, target[index], weight[index])
            if ranking is not None:
                total = total + ranking(logits, target[index], observed[index])
            return total

        return Objective(mode, rows, np.nanmean(dataset.quality[rows], axis=0), quality_loss)

    battles = torch.from_numpy(battle_array(dataset, {row: row for row in range(len(dataset))}))
    model_a, model_b, outcome = battles[:, 1].long(), battles[:, 2].long(), battles[:, 3]

    def battle_loss(logits: torch.Tensor, items: np.ndarray) -> torch.Tensor:
        index = torch.from_numpy(items)
        rows = torch.arange(len(items))
        margin = logits[rows, model_a[index]] - logits[rows, model_b[index]]
        return functional.binary_cross_entropy_with_logits(margin, outcome[index])  # a tie is 0.5

    rows = battles[:, 0].long().numpy()
    return Objective(mode, rows, np.full(len(dataset.models), 0.5), battle_loss)


def _source_weights(dataset: RoutingDataset, rows: np.ndarray, balance: float) -> np.ndarray:
    """Per-row weights ``1 / records_of_its_source ** balance``, averaging 1 over the records."""
    sources = np.array(dataset.row_sources())[rows]
    records = dataset.mask[rows].sum(axis=1)
    names, index = np.unique(sources, return_inverse=True)
    per_source = np.bincount(index, weights=records, minlength=len(names))
    weights = per_source[index] ** -balance
    return (weights * records.sum() / (weights * records).sum()).astype(np.float32)


def prior_logits(prior: np.ndarray) -> torch.Tensor:
    """Each model's average quality as a float32 logit: where an output bias starts.

    Starting there, rather than at random, keeps small data from adding noise to every prediction.
    """
    return torch.logit(torch.tensor(prior, dtype=torch.float32), eps=1e-3)


def masked_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean binary cross-entropy, soft targets in [0, 1]; ``weight`` is 0 where missing."""
    per_entry = functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_entry * weight).sum() / weight.sum().clamp(min=1)


def pairwise_loss(logits: torch.Tensor, target: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Mean ``-log sigmoid(score_i - score_j)`` over same-prompt pairs where model i did better."""
    both = observed[:, :, None] & observed[:, None, :]
    better = both & (target[:, :, None] > target[:, None, :])
    margin = logits[:, :, None] - logits[:, None, :]
    return (functional.softplus(-margin) * better).sum() / better.sum().clamp(min=1)


def listwise_loss(logits: torch.Tensor, target: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """ListNet: cross-entropy from the qualities (as shares) to the softmax of the scores.

    Only prompts whose observed qualities differ say anything about the ranking.
    """
    filled = target.masked_fill(~observed, float("nan"))
    spread = torch.nan_to_num(filled, nan=-1.0).amax(dim=1) - torch.nan_to_num(filled, nan=2.0).amin(dim=1)
    ranked = spread > 0
    if not ranked.any():
        return logits.sum() * 0.0
    share = (target * observed)[ranked]
    share = share / share.sum(dim=1, keepdim=True)
    log_probability = torch.log_softmax(logits[ranked].masked_fill(~observed[ranked], float("-inf")), dim=1)
    return -(share * log_probability.masked_fill(~observed[ranked], 0.0)).sum(dim=1).mean()
