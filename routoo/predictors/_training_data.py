"""What the kinds share about their training data, without torch.

A predictor learns from a dataset's quality records where it has any, else from its
preference battles (``training_mode``); battles travel as a float array
(``battle_array``); a score learnt from battles becomes a quality as the win probability
against the average other model (``average_win_probability``). The kinds over frozen
sentence embeddings (``knn``, ``mf``) load only with the encoder they were trained with
(``check_encoder``).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from scipy.special import expit

from routoo.data.dataset import RoutingDataset
from routoo.embeddings import Encoder, get_encoder
from routoo.errors import DataError, PredictorLoadError
from routoo.predictors.constraints import Constraint, integer, number, one_of

TrainingMode = Literal["quality", "battles"]
Loss = Literal["bce", "pairwise", "listwise"]
LOSSES: tuple[str, ...] = Loss.__args__

# The settings every torch-backed kind trains with, and what their values must be.
TRAINING_CONSTRAINTS: dict[str, Constraint] = {
    "epochs": integer(minimum=1),
    "lr": number(above=0),
    "batch_size": integer(minimum=1),
    "loss": one_of(*LOSSES),
    "seed": integer(minimum=0),
}


def training_mode(dataset: RoutingDataset, kind: str, *, stacklevel: int = 4) -> TrainingMode:
    """Learn from quality records where there are any, else from battles; name what is unusable.

    ``stacklevel`` points the warning about unused battles at the code that called ``fit``
    (4 when a kind's ``_fit`` calls this).
    """
    mask = dataset.mask
    if mask.any():
        empty = [model for model, has in zip(dataset.models, mask.any(axis=0), strict=True) if not has]
        if empty:
            raise DataError(
                f"dataset {dataset.name!r} has no quality records for {empty}; drop them with select_models"
            )
        if dataset.battles:
            warnings.warn(
                f"dataset {dataset.name!r} has quality records and {len(dataset.battles)} battles; "
                f"the {kind} predictor learns from the quality records and ignores the battles",
                stacklevel=stacklevel,
            )
        return "quality"
    if dataset.battles:
        if len({battle.model_a for battle in dataset.battles} | {b.model_b for b in dataset.battles}) < 2:
            raise DataError(f"dataset {dataset.name!r}: battles need at least two distinct models")
        return "battles"
    raise DataError(f"dataset {dataset.name!r} has neither quality records nor battles to learn from")


def battle_array(dataset: RoutingDataset, position: dict[int, int]) -> np.ndarray:
    """Battles as float32 rows (prompt row, model_a, model_b, outcome for model_a: 1, 0.5 or 0).

    ``position`` maps a battle's dataset prompt index to the row recorded for it.
    """
    outcome = {"model_a": 1.0, "tie": 0.5, "model_b": 0.0}
    return np.array(
        [
            (
                position[battle.prompt_index],
                dataset.model_index(battle.model_a),
                dataset.model_index(battle.model_b),
                outcome[battle.winner],
            )
            for battle in dataset.battles
        ],
        dtype=np.float32,
    )


def average_win_probability(scores: np.ndarray) -> np.ndarray:
    """Bradley-Terry win probability of each model against the average other model, (n, models)."""
    n_models = scores.shape[1]
    if n_models == 1:
        return np.full(scores.shape, 0.5)
    wins = expit(scores[:, :, None] - scores[:, None, :])
    return (wins.sum(axis=2) - 0.5) / (n_models - 1)  # minus the model against itself


def check_encoder(spec: str | None, trained_id: str) -> Encoder:
    """The encoder ``spec`` names, if it is the one a saved predictor was trained with."""
    encoder = get_encoder(spec)
    if encoder.encoder_id != trained_id:
        raise PredictorLoadError(
            f"the predictor was trained on embeddings of encoder {trained_id!r}, "
            f"but {encoder.model_path} is {encoder.encoder_id!r}"
        )
    return encoder
