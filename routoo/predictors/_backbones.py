"""What the transformer-backed kinds (``encoder``, ``causal-lm``) share: a pooled backbone and token batches.

Both read a prompt as token ids, mean-pool a backbone's last hidden states over the real
(non-pad) tokens and map the pooled vector to one logit per model with a head that starts
at every model's average quality.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from routoo.embeddings import PROGRESS_MIN_TEXTS
from routoo.predictors._objectives import prior_logits


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
    """Start the head at every model's average quality, whatever the prompt: zero weights, prior bias."""
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(prior_logits(prior))


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
