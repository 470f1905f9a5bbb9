"""The one training loop of the torch-backed kinds (``mf``, ``encoder``, ``causal-lm``).

AdamW on an ``Objective`` over shuffled item batches, early-stopped on a validation slice
of the training prompts fixed by their hash, keeping the weights of the best epoch. A
``TrainingPlan`` says how long it runs and its recipe: the transformer kinds warm their
learning rates up and decay them and clip the gradients; ``mf`` keeps a constant rate and
sets its own patience.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from routoo.data.splits import hash_folds
from routoo.embeddings import PROGRESS_MIN_TEXTS
from routoo.predictors._objectives import Objective

# One prompt in VALIDATION_FOLDS is held out for early stopping, when there are enough.
VALIDATION_FOLDS = 10
MIN_PROMPTS_FOR_VALIDATION = 50
VALIDATION_SALT = "validation"
# Epochs without a better validation loss before training stops (the best weights are kept).
PATIENCE = 2
WARMUP_SHARE = 0.1
MAX_GRAD_NORM = 1.0
# Batches are drawn from windows of this many batches sorted by length: little padding, still shuffled.
LENGTH_WINDOW_BATCHES = 50


@dataclass(frozen=True)
class TrainingPlan:
    """How ``train`` runs.

    At most ``epochs`` passes over the training items in batches of ``batch_size``, their
    order drawn from ``seed``; training stops after ``patience`` epochs without a better
    validation loss. With ``warmup_and_decay`` the learning rates rise linearly over the
    first ``WARMUP_SHARE`` of the steps and then fall towards 0, else they stay as given;
    ``max_grad_norm`` clips the gradients' norm (None: no clipping).
    """

    epochs: int
    batch_size: int
    seed: int
    patience: int = PATIENCE
    warmup_and_decay: bool = True
    max_grad_norm: float | None = MAX_GRAD_NORM


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
    plan: TrainingPlan,
    *,
    description: str,
    item_lengths: np.ndarray | None = None,
) -> TrainingResult:
    """AdamW on ``objective`` as ``plan`` says, keeping the weights of the best epoch.

    ``logits_for(items)`` gives the logits of the items' prompts; ``param_groups`` name the
    trained parameters and their learning rates (and weight decay, where not AdamW's default).
    With ``item_lengths``, each batch holds items of similar length. Call it inside
    ``torch.random.fork_rng`` with the torch seed set, so that dropout is reproducible too.
    """
    trained = [parameter for group in param_groups for parameter in group["params"]]
    train_items, validation = np.flatnonzero(~is_validation), np.flatnonzero(is_validation)
    rng = np.random.default_rng(plan.seed)
    steps_per_epoch = math.ceil(len(train_items) / plan.batch_size)
    optimizer = torch.optim.AdamW(param_groups, fused=True)  # fused: several times faster on CPU
    schedule = None
    if plan.warmup_and_decay:
        schedule = warmup_then_linear_decay(optimizer, steps_per_epoch * plan.epochs)
    best_loss, best_weights, stale, epochs_run = math.inf, None, 0, 0
    with tqdm(
        total=steps_per_epoch * plan.epochs,
        desc=description,
        unit="batch",
        disable=len(objective.rows) < PROGRESS_MIN_TEXTS,
    ) as bar:
        for _ in range(plan.epochs):
            network.train()
            for batch in shuffled_batches(train_items, plan.batch_size, rng, item_lengths):
                optimizer.zero_grad()
                loss = objective.loss(logits_for(batch), batch)
                loss.backward()
                if plan.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(trained, plan.max_grad_norm)
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
            epochs_run += 1
            if len(validation) == 0:
                continue
            held_out_loss = validation_loss(network, logits_for, objective, validation, plan.batch_size)
            bar.set_postfix(validation_loss=f"{held_out_loss:.4f}")
            if held_out_loss < best_loss:
                best_loss, stale = held_out_loss, 0
                best_weights = [parameter.detach().clone() for parameter in trained]
            else:
                stale += 1
                if stale >= plan.patience:
                    break
    if best_weights is not None:
        with torch.no_grad():
            for parameter, weights in zip(trained, best_weights, strict=True):
                parameter.copy_(weights)
    network.eval()
    return TrainingResult(epochs_run, best_loss if best_weights is not None else math.nan)


def validation_items(rows: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """True for the items held out for early stopping: one prompt hash fold in ``VALIDATION_FOLDS``.

    ``rows[i]`` is the prompt row of item ``i``. The fold depends on the prompt text alone,
    so a prompt and its duplicates always fall on the same side. Small training sets are not split.
    """
    if len(rows) < MIN_PROMPTS_FOR_VALIDATION:
        return np.zeros(len(rows), dtype=bool)
    # Salted: an unsalted hash would put the same prompts aside as a hash-based train/test split
    # does, and could leave a training split without a validation slice.
    is_validation = hash_folds([texts[row] for row in rows], VALIDATION_FOLDS, salt=VALIDATION_SALT) == 0
    return is_validation if is_validation.any() and not is_validation.all() else np.zeros_like(is_validation)


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
