"""The ``mf`` predictor: a two-tower model over frozen sentence embeddings (the shipped default).

One tower projects the prompt's frozen embedding (``routoo.embeddings``) through a small
MLP ``P``; the other is a learned vector ``v_m`` and bias ``b_m`` per model. A model's
score on a prompt is ``sigmoid(<P(e), v_m> + b_m)``. This generalises RouteLLM's matrix
factorisation router from two models to N.

Losses, on the quality records (missing records are ignored):

- ``"bce"``: binary cross-entropy against the quality in [0, 1] as a soft target;
- ``"pairwise"``: plus a logistic loss on ``score(i) - score(j)`` wherever model i did
  better than model j on a prompt (RouteLLM's objective, for every pair of models);
- ``"listwise"``: plus ListNet's softmax cross-entropy over each prompt's models.

The BCE term keeps the outputs calibrated qualities under every loss. From preference
battles alone it trains on the pairwise loss of the battles, and the predicted quality is
the win probability against the average other model. Training stops early on a
validation slice of the training prompts fixed by their hash, and is deterministic for a
given ``seed``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from routoo.data.dataset import RoutingDataset
from routoo.embeddings import get_encoder, hash_folds
from routoo.errors import ConfigError
from routoo.predictors.base import Predictor
from routoo.predictors.knn import average_win_probability, battle_array, check_encoder, training_mode
from routoo.prompts import PromptView, prompt_texts

Loss = Literal["bce", "pairwise", "listwise"]
LOSSES: tuple[str, ...] = ("bce", "pairwise", "listwise")
# One prompt in VALIDATION_FOLDS is held out for early stopping, when there are enough.
VALIDATION_FOLDS = 10
MIN_PROMPTS_FOR_VALIDATION = 50
VALIDATION_SALT = "validation"


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


class MFPredictor(Predictor):
    """Two-tower matrix factorisation over frozen prompt embeddings, trained in torch.

    ``dim`` is the size of the shared prompt/model space, ``hidden`` the width of the
    projection's hidden layer (0: a linear projection). Training runs at most ``epochs``
    passes of AdamW and stops after ``patience`` epochs without a better validation loss,
    keeping the best weights. ``encoder`` is what ``routoo.embeddings.get_encoder`` takes:
    a local sentence-transformers folder (None: the bundled all-MiniLM-L6-v2), or
    ``"static"`` for static embeddings distilled from it (no transformer at prediction time).
    """

    kind = "mf"

    def __init__(
        self,
        dim: int = 64,
        hidden: int = 256,
        epochs: int = 100,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        loss: Loss = "bce",
        batch_size: int = 128,
        patience: int = 5,
        seed: int = 0,
        prompt_view: PromptView = "last_user",
        encoder: str | None = None,
    ) -> None:
        super().__init__(prompt_view=prompt_view)
        self.dim = dim
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss = loss
        self.batch_size = batch_size
        self.patience = patience
        self.seed = seed
        self.encoder = encoder

    # --------------------------------------------------------------------------- fit
    def _fit(self, dataset: RoutingDataset) -> None:
        self._check_params()
        encoder = get_encoder(self.encoder)
        self.encoder_id_ = encoder.encoder_id
        self.mode_ = training_mode(dataset, self.kind)
        texts = prompt_texts(dataset.prompts, self.prompt_view)
        if self.mode_ == "quality":
            rows = np.flatnonzero(dataset.mask.any(axis=1))  # prompts without records add nothing
            items_texts = [texts[i] for i in rows]
            embeddings = torch.from_numpy(encoder.encode(items_texts))
            quality = torch.from_numpy(dataset.quality[rows].astype(np.float32))
            batch_loss = self._quality_loss(embeddings, quality)
            prior = np.nanmean(dataset.quality[rows], axis=0)
        else:
            used = sorted({battle.prompt_index for battle in dataset.battles})
            position = {prompt: row for row, prompt in enumerate(used)}
            battles = battle_array(dataset, position)
            embeddings = torch.from_numpy(encoder.encode([texts[i] for i in used]))
            items_texts = [texts[used[int(row)]] for row in battles[:, 0]]
            batch_loss = self._battle_loss(embeddings, torch.from_numpy(battles))
            prior = np.full(len(self.models_), 0.5)

        with torch.random.fork_rng(devices=[]):  # seeds torch without touching the caller's RNG
            torch.manual_seed(self.seed)
            self.network_ = TwoTower(embeddings.shape[1], self.hidden, self.dim, len(self.models_))
            with torch.no_grad():  # start each model at its average quality
                self.network_.model_bias.copy_(torch.logit(torch.tensor(prior), eps=1e-3))
            self._train(batch_loss, hash_folds(items_texts, VALIDATION_FOLDS, salt=VALIDATION_SALT) == 0)
        self.network_.eval()

    def _check_params(self) -> None:
        for name in ("dim", "epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 0:
            raise ConfigError(f"hidden must be a non-negative integer, not {self.hidden!r}")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ConfigError(
                f"lr must be positive and weight_decay at least 0, not {self.lr!r} and {self.weight_decay!r}"
            )
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; use one of {LOSSES}")

    def _train(self, batch_loss: Callable[[torch.Tensor], torch.Tensor], is_validation: np.ndarray) -> None:
        """AdamW on ``batch_loss`` over item batches, early-stopped on the validation items."""
        validation = torch.from_numpy(np.flatnonzero(is_validation))
        train = torch.from_numpy(np.flatnonzero(~is_validation))
        if len(is_validation) < MIN_PROMPTS_FOR_VALIDATION or len(validation) == 0:
            train, validation = torch.arange(len(is_validation)), None
        optimizer = torch.optim.AdamW(self.network_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        best_loss, best_state, stale = float("inf"), None, 0
        self.epochs_trained_ = 0
        for _ in range(self.epochs):
            self.network_.train()
            for batch in train[torch.randperm(len(train))].split(self.batch_size):
                optimizer.zero_grad()
                batch_loss(batch).backward()
                optimizer.step()
            self.epochs_trained_ += 1
            if validation is None:
                continue
            self.network_.eval()
            with torch.no_grad():
                loss = float(batch_loss(validation))
            if loss < best_loss:
                best_loss, best_state, stale = loss, copy.deepcopy(self.network_.state_dict()), 0
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is not None:
            self.network_.load_state_dict(best_state)

    def _quality_loss(
        self, embeddings: torch.Tensor, quality: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        observed = ~torch.isnan(quality)
        target = torch.nan_to_num(quality)
        ranking = {"bce": None, "pairwise": pairwise_loss, "listwise": listwise_loss}[self.loss]

        def loss(items: torch.Tensor) -> torch.Tensor:
            logits = self.network_(embeddings[items])
            total = masked_bce(logits, target[items], observed[items])
            if ranking is not None:
                total = total + ranking(logits, target[items], observed[items])
            return total

        return loss

    def _battle_loss(
        self, embeddings: torch.Tensor, battles: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        prompt, model_a, model_b = (battles[:, column].long() for column in range(3))
        outcome = battles[:, 3]

        def loss(items: torch.Tensor) -> torch.Tensor:
            logits = self.network_(embeddings[prompt[items]])
            rows = torch.arange(len(items))
            margin = logits[rows, model_a[items]] - logits[rows, model_b[items]]
            # A tie (outcome 0.5) pulls the two scores together.
            return functional.binary_cross_entropy_with_logits(margin, outcome[items])

        return loss

    # ----------------------------------------------------------------------- predict
    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        embeddings = torch.from_numpy(get_encoder(self.encoder).encode(texts))
        with torch.inference_mode():
            logits = self.network_(embeddings).double().numpy()
        if self.mode_ == "battles":
            return average_win_probability(logits)
        return 1.0 / (1.0 + np.exp(-logits))

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors = {name: value.detach().numpy() for name, value in self.network_.state_dict().items()}
        extra = {"mode": self.mode_, "encoder_id": self.encoder_id_, "epochs_trained": self.epochs_trained_}
        return tensors, extra

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.encoder_id_ = check_encoder(self.encoder, extra["encoder_id"]).encoder_id
        self.mode_ = extra["mode"]
        self.epochs_trained_ = int(extra["epochs_trained"])
        first = "project.0.weight" if self.hidden else "project.weight"
        self.network_ = TwoTower(tensors[first].shape[1], self.hidden, self.dim, len(self.models_))
        self.network_.load_state_dict({name: torch.from_numpy(value) for name, value in tensors.items()})
        self.network_.eval()


def masked_bce(logits: torch.Tensor, target: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the observed entries, with soft targets in [0, 1]."""
    per_entry = functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_entry * observed).sum() / observed.sum().clamp(min=1)


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
