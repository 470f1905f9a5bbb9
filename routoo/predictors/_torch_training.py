"""What the transformer predictors share: the training objective, token batches and the training loop.

Both ``encoder`` and ``causal-lm`` read a prompt as token ids, mean-pool a backbone's last
hidden states over the real (non-pad) tokens and map the pooled vector to one logit per
model. They learn from the quality records with ``mf``'s losses, or from battles alone
with a Bradley-Terry loss, and stop early on a validation slice fixed by the prompts' hash.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from tqdm.auto import tqdm

from routoo.data.dataset import RoutingDataset
from routoo.embeddings import PROGRESS_MIN_TEXTS, hash_folds
from routoo.errors import ConfigError
from routoo.predictors.knn import battle_array, training_mode
from routoo.predictors.mf import (
    LOSSES,
    MIN_PROMPTS_FOR_VALIDATION,
    VALIDATION_FOLDS,
    VALIDATION_SALT,
    listwise_loss,
    masked_bce,
    pairwise_loss,
)

# Epochs without a better validation loss before training stops (the best weights are kept).
PATIENCE = 2
WARMUP_SHARE = 0.1
MAX_GRAD_NORM = 1.0
# Batches are drawn from windows of this many batches sorted by length: little padding, still shuffled.
LENGTH_WINDOW_BATCHES = 50


@dataclass(frozen=True)
class Objective:
    """What training fits: its items (prompts with quality records, or battles) and their loss.

    ``rows[i]`` is the dataset row of the prompt item ``i`` reads; ``prior`` is each model's
    average quality, the starting point of the head's bias.
    """

    mode: Literal["quality", "battles"]
    rows: np.ndarray
    prior: np.ndarray
    loss: Callable[[torch.Tensor, np.ndarray], torch.Tensor]  # (logits of the items' prompts, items)


def make_objective(dataset: RoutingDataset, loss: str, kind: str) -> Objective:
    """The objective for ``dataset``: its quality records under ``loss``, else its battles."""
    mode = training_mode(dataset, kind)
    if mode == "quality":
        rows = np.flatnonzero(dataset.mask.any(axis=1))  # prompts without records add nothing
        quality = torch.from_numpy(dataset.quality[rows].astype(np.float32))
        observed, target = ~torch.isnan(quality), torch.nan_to_num(quality)
        ranking = {"bce": None, "pairwise": pairwise_loss, "listwise": listwise_loss}[loss]

        def quality_loss(logits: torch.Tensor, items: np.ndarray) -> torch.Tensor:
            index = torch.from_numpy(items)
            total = masked_bce(logits, target[index], observed[index])
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


def check_common_params(epochs: object, batch_size: object, max_length: object, loss: object) -> None:
    """``ConfigError`` naming the first invalid shared setting."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("max_length", max_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, not {value!r}")
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r}; use one of {LOSSES}")


def check_learning_rates(**rates: object) -> None:
    """``ConfigError`` naming the first learning rate that is not a positive number."""
    for name, value in rates.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"{name} must be a positive number, not {value!r}")


# ------------------------------------------------------------------------------ modules
def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each sequence's hidden states over its real tokens."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class PooledScorer(nn.Module):
    """A transformer backbone, mean pooling over the real tokens, then ``head``: one logit per model."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(states, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(input_ids, attention_mask))


def start_at_prior(linear: nn.Linear, prior: np.ndarray) -> None:
    """Start the head at every model's average quality, whatever the prompt: zero weights, prior bias.

    A randomly initialised head would add noise to every prediction that small data cannot remove.
    """
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(torch.logit(torch.tensor(prior, dtype=torch.float32), eps=1e-3))


# ------------------------------------------------------------------------------- tokens
def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` for token-id lists."""
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def batched_by_length(
    token_ids: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    compute: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    description: str,
) -> torch.Tensor:
    """``compute(input_ids, attention_mask)`` over length-sorted batches, rows back in input order."""
    order = np.argsort([-len(ids) for ids in token_ids], kind="stable")
    outputs: list[torch.Tensor] = []
    with (
        torch.inference_mode(),
        tqdm(
            total=len(order), desc=description, unit="prompt", disable=len(order) < PROGRESS_MIN_TEXTS
        ) as bar,
    ):
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            outputs.append(compute(*pad_batch([token_ids[i] for i in rows], pad_id)))
            bar.update(len(rows))
    result = torch.cat(outputs)
    return result[torch.from_numpy(np.argsort(order, kind="stable"))]


def shuffled_batches(
    items: np.ndarray, batch_size: int, rng: np.random.Generator, lengths: np.ndarray | None
) -> list[np.ndarray]:
    """A shuffled epoch of item batches; with ``lengths``, each batch holds items of similar length."""
    order = rng.permutation(items)
    if lengths is not None:
        window = batch_size * LENGTH_WINDOW_BATCHES
        chunks = [order[start : start + window] for start in range(0, len(order), window)]
        order = np.concatenate([chunk[np.argsort(lengths[chunk], kind="stable")] for chunk in chunks])
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


# ---------------------------------------------------------------------------- training
def validation_items(objective: Objective, texts: Sequence[str]) -> np.ndarray:
    """True for the items held out for early stopping: one prompt hash fold in ``VALIDATION_FOLDS``.

    The fold depends on the prompt text alone, so a prompt and its duplicates always fall on
    the same side. Small training sets are not split.
    """
    if len(objective.rows) < MIN_PROMPTS_FOR_VALIDATION:
        return np.zeros(len(objective.rows), dtype=bool)
    # Salted: an unsalted hash would put the same prompts aside as a hash-based train/test split
    # does, and could leave a training split without a validation slice.
    texts_used = [texts[row] for row in objective.rows]
    is_validation = hash_folds(texts_used, VALIDATION_FOLDS, salt=VALIDATION_SALT) == 0
    return is_validation if is_validation.any() and not is_validation.all() else np.zeros_like(is_validation)


@dataclass(frozen=True)
class TrainingResult:
    """How training went: epochs run, and the best validation loss (NaN without a validation slice)."""

    epochs: int
    validation_loss: float


def train(
    network: nn.Module,
    param_groups: list[dict[str, Any]],
    logits_for: Callable[[np.ndarray], torch.Tensor],
    objective: Objective,
    is_validation: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    description: str,
    item_lengths: np.ndarray | None = None,
) -> TrainingResult:
    """AdamW with linear warm-up and decay on ``objective``, keeping the weights of the best epoch.

    ``logits_for(items)`` gives the logits of the items' prompts; ``param_groups`` name the
    trained parameters and their learning rates. Call it inside ``torch.random.fork_rng`` with
    the torch seed set, so that dropout is reproducible too.
    """
    trained = [parameter for group in param_groups for parameter in group["params"]]
    train_items, validation = np.flatnonzero(~is_validation), np.flatnonzero(is_validation)
    rng = np.random.default_rng(seed)
    steps_per_epoch = math.ceil(len(train_items) / batch_size)
    optimizer = torch.optim.AdamW(param_groups, fused=True)  # fused: several times faster on CPU
    schedule = warmup_then_linear_decay(optimizer, steps_per_epoch * epochs)
    best_loss, best_weights, stale, epochs_run = math.inf, None, 0, 0
    with tqdm(
        total=steps_per_epoch * epochs,
        desc=description,
        unit="batch",
        disable=len(objective.rows) < PROGRESS_MIN_TEXTS,
    ) as bar:
        for _ in range(epochs):
            network.train()
            for batch in shuffled_batches(train_items, batch_size, rng, item_lengths):
                optimizer.zero_grad()
                loss = objective.loss(logits_for(batch), batch)
                loss.backward()
                nn.utils.clip_grad_norm_(trained, MAX_GRAD_NORM)
                optimizer.step()
                schedule.step()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            epochs_run += 1
            if len(validation) == 0:
                continue
            held_out_loss = validation_loss(network, logits_for, objective, validation, batch_size)
            bar.set_postfix(validation_loss=f"{held_out_loss:.4f}")
            if held_out_loss < best_loss:
                best_loss, stale = held_out_loss, 0
                best_weights = [parameter.detach().clone() for parameter in trained]
            else:
                stale += 1
                if stale >= PATIENCE:
                    break
    if best_weights is not None:
        with torch.no_grad():
            for parameter, weights in zip(trained, best_weights, strict=True):
                parameter.copy_(weights)
    network.eval()
    return TrainingResult(epochs_run, best_loss if best_weights is not None else math.nan)


def warmup_then_linear_decay(
    optimizer: torch.optim.Optimizer, steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rates rising linearly over the first ``WARMUP_SHARE`` of ``steps``, then falling towards 0.

    Unlike transformers' schedule, no step has a zero rate: a run of a few steps still learns.
    """
    warmup = max(1, math.ceil(WARMUP_SHARE * steps))

    def factor(step: int) -> float:
        return (step + 1) / warmup if step < warmup else (steps - step) / max(1, steps - warmup)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def validation_loss(
    network: nn.Module,
    logits_for: Callable[[np.ndarray], torch.Tensor],
    objective: Objective,
    items: np.ndarray,
    batch_size: int,
) -> float:
    """The objective's loss on ``items``, averaged over batches weighted by their size."""
    network.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            total += float(objective.loss(logits_for(batch), batch)) * len(batch)
    return total / len(items)
