"""The ``mf`` predictor: a two-tower model over frozen sentence embeddings (the shipped default).

One tower projects the prompt's frozen embedding (``routoo.embeddings``) through a small
MLP ``P``; the other is a learned vector ``v_m`` and bias ``b_m`` per model. A model's
score on a prompt is ``sigmoid(<P(e), v_m> + b_m)``. This generalises RouteLLM's matrix
factorisation router from two models to N.

It is trained on the shared objectives (``_objectives``: binary cross-entropy on the
quality records, plus a pairwise or listwise ranking term with ``loss="pairwise"`` or
``"listwise"``; from preference battles alone, their Bradley-Terry loss, the predicted
quality then being the win probability against the average other model) by the shared
training loop (``_training``) at a constant learning rate. Training stops early on a
validation slice of the training prompts fixed by their hash, and is deterministic for a
given ``seed``. Trained on records from several sources (``RoutingDataset.row_sources``: the
pooled shared sets), each source reads the logits through an affine map of its own (a
grading scale and a difficulty) while every model keeps one vector and bias, so models never
scored on the same prompts are compared through the models they share; predictions are on
the scale of the average source. Predicting needs no torch: the trained weights are applied in numpy, so
routing with an ``mf`` predictor never loads torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import erf

from routoo.data.dataset import RoutingDataset
from routoo.embeddings import get_encoder
from routoo.predictors._training_data import (
    LOSSES,
    TRAINING_CONSTRAINTS,
    Loss,
    average_win_probability,
    check_encoder,
)
from routoo.predictors.base import Predictor
from routoo.predictors.constraints import Constraint, integer, number, one_of
from routoo.prompts import Prompt, PromptView, prompt_texts

__all__ = ["LOSSES", "MFPredictor"]
# Training prompts kept to tell a familiar prompt from an unfamiliar one (``familiarity``),
# and the share of training prompts that would count as unfamiliar.
FAMILIAR_PROMPTS = 2048
MIN_PROMPTS_FOR_FAMILIARITY = 20
UNFAMILIAR_QUANTILE = 0.01
# Moved to routoo.predictors._objectives, ._training and ._two_tower, which load torch; shims
# kept for one release, resolved on first use so that predicting with mf never loads torch.
_MOVED = {
    "masked_bce": "_objectives",
    "pairwise_loss": "_objectives",
    "listwise_loss": "_objectives",
    "VALIDATION_FOLDS": "_training",
    "MIN_PROMPTS_FOR_VALIDATION": "_training",
    "VALIDATION_SALT": "_training",
    "TwoTower": "_two_tower",
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"routoo.predictors.{_MOVED[name]}"), name)


class MFPredictor(Predictor):
    """Two-tower matrix factorisation over frozen prompt embeddings, trained in torch.

    ``dim`` is the size of the shared prompt/model space, ``hidden`` the width of the
    projection's hidden layer (0: a linear projection). Training runs at most ``epochs``
    passes of AdamW at the constant rate ``lr`` and stops after ``patience`` epochs without
    a better validation loss, keeping the best weights. ``encoder`` is what
    ``routoo.embeddings.get_encoder`` takes: a local sentence-transformers folder (None: the
    bundled all-MiniLM-L6-v2), or ``"static"`` for static embeddings distilled from it (no
    transformer at prediction time). ``source_terms`` gives each source of the training
    records its own grading scale and difficulty (when there are several sources), and
    ``source_balance`` weighs each source's records by ``1 / its records ** source_balance``
    so that small sets still shape the shared parameters.
    """

    kind = "mf"
    min_labels_per_model = 200
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **Predictor._parameter_constraints,
        **TRAINING_CONSTRAINTS,
        "dim": integer(minimum=1),
        "hidden": integer(minimum=0),
        "weight_decay": number(at_least=0),
        "patience": integer(minimum=1),
        "source_terms": one_of(True, False),
        "source_balance": number(at_least=0),
    }

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
        source_terms: bool = True,
        source_balance: float = 0.75,
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
        self.source_terms = source_terms
        self.source_balance = source_balance

    # --------------------------------------------------------------------------- fit
    def _fit(self, dataset: RoutingDataset) -> None:
        import torch

        from routoo.predictors._objectives import make_objective, prior_logits
        from routoo.predictors._training import TrainingPlan, train, validation_items
        from routoo.predictors._two_tower import TwoTower

        encoder = get_encoder(self.encoder)
        self.encoder_id_ = encoder.encoder_id
        objective = make_objective(dataset, self.loss, self.kind, self.source_balance)
        self.mode_ = objective.mode
        texts = prompt_texts(dataset.prompts, self.prompt_view)
        # Each distinct prompt is encoded once; item i reads the embedding of prompt item_prompt[i].
        prompts, item_prompt = np.unique(objective.rows, return_inverse=True)
        embeddings = torch.from_numpy(encoder.encode([texts[row] for row in prompts]))
        item_prompt = torch.from_numpy(item_prompt.ravel())
        row_sources = dataset.row_sources()
        self.sources_ = sorted(set(row_sources)) if self.source_terms else []
        if len(self.sources_) > 1:
            source_of = {source: index for index, source in enumerate(self.sources_)}
            item_source = torch.tensor([source_of[row_sources[row]] for row in objective.rows])
        else:
            self.sources_, item_source = [], None

        def logits_for(items: np.ndarray) -> torch.Tensor:
            index = torch.from_numpy(items)
            return network(
                embeddings[item_prompt[index]], None if item_source is None else item_source[index]
            )

        with torch.random.fork_rng(devices=[]):  # seeds torch without touching the caller's RNG
            torch.manual_seed(self.seed)
            network = TwoTower(
                embeddings.shape[1], self.hidden, self.dim, len(self.models_), max(1, len(self.sources_))
            )
            with torch.no_grad():  # start each model at its average quality
                network.model_bias.copy_(prior_logits(objective.prior))
            result = train(
                network,
                [
                    {
                        "params": list(network.parameters()),
                        "lr": self.lr,
                        "weight_decay": self.weight_decay,
                    }
                ],
                logits_for,
                objective,
                validation_items(objective.rows, texts),
                TrainingPlan(
                    self.epochs,
                    self.batch_size,
                    self.seed,
                    patience=self.patience,
                    warmup_and_decay=False,
                    max_grad_norm=None,
                ),
                description="training the mf predictor",
            )
        self.epochs_trained_ = result.epochs
        self.weights_ = {name: value.detach().numpy().copy() for name, value in network.state_dict().items()}
        self._keep_familiar_prompts(embeddings.numpy())

    def _keep_familiar_prompts(self, embeddings: np.ndarray) -> None:
        """Keep a sample of the training prompts' projections, and how close a training prompt usually is.

        ``familiarity`` compares a new prompt with them; a prompt less similar to its nearest
        one than ``UNFAMILIAR_QUANTILE`` of the training prompts are is outside what the
        predictor learned from.
        """
        self.familiarity_threshold_ = None
        if len(embeddings) < MIN_PROMPTS_FOR_FAMILIARITY:
            return
        projected = _unit_rows(self._project(embeddings.astype(np.float32)))
        order = np.random.default_rng(self.seed).permutation(len(projected))
        kept, others = order[:FAMILIAR_PROMPTS], order[FAMILIAR_PROMPTS : 2 * FAMILIAR_PROMPTS]
        if len(others) == 0:  # few prompts: compare each with the others of the half it is not in
            kept, others = order[: len(order) // 2], order[len(order) // 2 :]
        self.weights_["familiar_prompts"] = projected[kept]
        nearest = (projected[others] @ projected[kept].T).max(axis=1)
        self.familiarity_threshold_ = float(np.quantile(nearest, UNFAMILIAR_QUANTILE))

    def familiarity(self, prompts: Sequence[Prompt]) -> np.ndarray | None:
        """Each prompt's cosine similarity to the nearest kept training prompt; None if none were kept."""
        self._check_fitted()
        if "familiar_prompts" not in self.weights_:
            return None
        texts = prompt_texts(prompts, self.prompt_view)
        projected = _unit_rows(self._project(get_encoder(self.encoder).encode(texts)))
        return (projected @ self.weights_["familiar_prompts"].T).max(axis=1).astype(np.float64)

    def unfamiliar(self, prompts: Sequence[Prompt]) -> np.ndarray | None:
        similarity = self.familiarity(prompts)
        return None if similarity is None else similarity < self.familiarity_threshold_

    # ----------------------------------------------------------------------- predict
    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        logits = self._logits(get_encoder(self.encoder).encode(texts)).astype(np.float64)
        if self.mode_ == "battles":
            return average_win_probability(logits)
        return 1.0 / (1.0 + np.exp(-logits))

    def _logits(self, embeddings: np.ndarray) -> np.ndarray:
        """The two-tower network (``_two_tower.TwoTower``) applied in float32 numpy."""
        return self._project(embeddings) @ self.weights_["model_vectors"].T + self.weights_["model_bias"]

    def _project(self, embeddings: np.ndarray) -> np.ndarray:
        """The prompt tower, ``P(e)``."""
        weights = self.weights_
        if self.hidden:
            hidden = embeddings @ weights["project.0.weight"].T + weights["project.0.bias"]
            hidden = 0.5 * hidden * (1.0 + erf(hidden / np.float32(np.sqrt(2.0))))  # exact GELU, as torch's
            return hidden @ weights["project.2.weight"].T + weights["project.2.bias"]
        return embeddings @ weights["project.weight"].T + weights["project.bias"]

    def source_map(self, source: str) -> tuple[float, float]:
        """Scale and offset that turn a predicted logit into ``source``'s; (1, 0) for any other source."""
        self._check_fitted()
        if source not in self.sources_:
            return 1.0, 0.0
        index = self.sources_.index(source)
        log_scale, offset = self.weights_["source_log_scale"], self.weights_["source_offset"]
        return float(np.exp(log_scale[index] - log_scale.mean())), float(offset[index] - offset.mean())

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors = dict(self.weights_)
        extra = {
            "mode": self.mode_,
            "encoder_id": self.encoder_id_,
            "epochs_trained": self.epochs_trained_,
            "sources": self.sources_,
            "familiarity_threshold": self.familiarity_threshold_,
        }
        return tensors, extra

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.encoder_id_ = check_encoder(self.encoder, extra["encoder_id"]).encoder_id
        self.mode_ = extra["mode"]
        self.epochs_trained_ = int(extra["epochs_trained"])
        self.sources_ = list(extra.get("sources", []))  # saved before sources were modelled: none
        self.familiarity_threshold_ = extra.get("familiarity_threshold")
        # Shapes as TwoTower lays them out (None: the embedding size, any).
        n_models, dim, hidden = len(self.models_), self.dim, self.hidden
        if hidden:
            expected = {"project.0.weight": (hidden, None), "project.0.bias": (hidden,)}
            expected |= {"project.2.weight": (dim, hidden), "project.2.bias": (dim,)}
        else:
            expected = {"project.weight": (dim, None), "project.bias": (dim,)}
        expected |= {"model_vectors": (n_models, dim), "model_bias": (n_models,)}
        if self.sources_:
            expected |= {"source_log_scale": (len(self.sources_),), "source_offset": (len(self.sources_),)}
        if self.familiarity_threshold_ is not None:
            expected |= {"familiar_prompts": (None, dim)}
        if set(tensors) != set(expected):
            raise ValueError(f"mf weights hold {sorted(tensors)}, expected {sorted(expected)}")
        for name, shape in expected.items():
            actual = tensors[name].shape
            sizes = zip(shape, actual, strict=False)
            if len(actual) != len(shape) or any(want not in (None, got) for want, got in sizes):
                raise ValueError(f"mf weight {name} has shape {actual}, expected {shape}")
        self.weights_ = {name: np.asarray(value, dtype=np.float32) for name, value in tensors.items()}


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
