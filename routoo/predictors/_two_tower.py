"""The ``mf`` predictor's network in torch, for training; ``mf`` predicts from its weights in numpy."""

from __future__ import annotations

import torch
from torch import nn


class TwoTower(nn.Module):
    """Logits ``<P(e), v_m> + b_m`` for every model m, from frozen prompt embeddings ``e``.

    With ``n_sources`` > 1 the records of each source s are read through an affine map of
    their own, ``exp(g_s) * logit + c_s``: a grading scale and a difficulty per source,
    while every model keeps one vector and bias across all sources (IRT-style linking).
    ``g`` and ``c`` are centred, so the plain logits (what routing reads) are on the scale of
    the average source, whichever sources taught each model.
    """

    def __init__(self, input_dim: int, hidden: int, dim: int, n_models: int, n_sources: int = 1) -> None:
        super().__init__()
        if hidden:
            self.project: nn.Module = nn.Sequential(
                nn.Linear(input_dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
            )
        else:
            self.project = nn.Linear(input_dim, dim)
        self.model_vectors = nn.Parameter(torch.randn(n_models, dim) / dim**0.5)
        self.model_bias = nn.Parameter(torch.zeros(n_models))
        self.source_log_scale = nn.Parameter(torch.zeros(n_sources)) if n_sources > 1 else None
        self.source_offset = nn.Parameter(torch.zeros(n_sources)) if n_sources > 1 else None

    def forward(self, embeddings: torch.Tensor, sources: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.project(embeddings) @ self.model_vectors.T + self.model_bias
        if sources is None or self.source_log_scale is None or self.source_offset is None:
            return logits
        log_scale = self.source_log_scale - self.source_log_scale.mean()
        offset = self.source_offset - self.source_offset.mean()
        return logits * torch.exp(log_scale[sources])[:, None] + offset[sources][:, None]
