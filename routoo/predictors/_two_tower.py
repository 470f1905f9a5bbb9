"""The ``mf`` predictor's network in torch, for training; ``mf`` predicts from its weights in numpy."""

from __future__ import annotations

import torch
from torch import nn


class TwoTower(nn.Module):
    """Logits ``<P(e), v_m> + b_m`` for every model m, from frozen prompt embeddings ``e``."""

    def __init__(self, input_dim: int, hidden: int, dim: int, n_models: int) -> None:
        super().__init__()
        if hidden:
            self.project: nn.Module = nn.Sequential(
                nn.Linear(input_dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
            )
        else:
            self.project = nn.Linear(input_dim, dim)
        self.model_vectors = nn.Parameter(torch.randn(n_models, dim) / dim**0.5)
        self.model_bias = nn.Parameter(torch.zeros(n_models))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.project(embeddings) @ self.model_vectors.T + self.model_bias
