"""The ``knn`` predictor: what the most similar training prompts say about each model.

Prompts are embedded with the sentence encoder (``routoo.embeddings``). For a new prompt,
each model's expected quality is the similarity-weighted mean of its quality on the ``k``
nearest training prompts that have a record for it, or its overall mean where none has.
``k="auto"`` picks ``k`` and the temperature by cross-validation on the training set; this
tuned kNN is the baseline every other predictor must beat.

From preference battles alone (no quality records) it is RouteLLM's similarity-weighted
Bradley-Terry ranking: every training battle is weighted by the softmax similarity of its
prompt to the new one, Bradley-Terry scores are fitted to the weighted battles, and a
model's quality is its win probability against the average other model.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from scipy import sparse
from scipy.special import expit, softmax

from routoo.data.dataset import RoutingDataset
from routoo.data.splits import hash_folds
from routoo.embeddings import get_encoder
from routoo.predictors._training_data import (
    average_win_probability,
    battle_array,
    check_encoder,
    training_mode,
)
from routoo.predictors.base import Predictor
from routoo.predictors.constraints import Constraint, integer, number, one_of
from routoo.prompts import PromptView, prompt_texts

Weighting = Literal["softmax", "uniform"]
WEIGHTINGS: tuple[str, ...] = ("softmax", "uniform")
# The grid ``k="auto"`` searches, each k capped at the training-fold size.
K_GRID: tuple[int, ...] = (5, 10, 20, 50, 100, 200)
TEMPERATURE_GRID: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2)
CV_FOLDS = 5
# Queries handled at once: bounds the queries x training-prompts similarity matrix.
QUERY_CHUNK = 512
BT_QUERY_CHUNK = 64
BT_NEWTON_STEPS = 10
# Keeps Bradley-Terry scores finite when the weighted battles separate the models perfectly.
BT_RIDGE = 0.01


class KNNPredictor(Predictor):
    """Similarity-weighted nearest neighbours over sentence embeddings of the training prompts.

    ``weighting="softmax"`` weights neighbour i by ``exp(similarity_i / temperature)``;
    ``"uniform"`` weights all k alike. ``encoder`` is what ``routoo.embeddings.get_encoder``
    takes: a local sentence-transformers folder (None: the bundled all-MiniLM-L6-v2), or
    ``"static"`` for static embeddings distilled from it. With battles only,
    ``temperature`` sets the softmax over all training battles and ``k`` is not used.
    """

    kind = "knn"
    _tensors_with_gaps = frozenset({"quality", "global_mean"})  # NaN: no record of that model there
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **Predictor._parameter_constraints,
        "k": integer(minimum=1) | one_of("auto"),
        "weighting": one_of(*WEIGHTINGS),
        "temperature": number(above=0),
    }

    def __init__(
        self,
        k: int | Literal["auto"] = 20,
        weighting: Weighting = "softmax",
        temperature: float = 0.05,
        prompt_view: PromptView = "last_user",
        encoder: str | None = None,
    ) -> None:
        super().__init__(prompt_view=prompt_view)
        self.k = k
        self.weighting = weighting
        self.temperature = temperature
        self.encoder = encoder

    # --------------------------------------------------------------------------- fit
    def _fit(self, dataset: RoutingDataset) -> None:
        encoder = get_encoder(self.encoder)
        self.encoder_id_ = encoder.encoder_id
        texts = prompt_texts(dataset.prompts, self.prompt_view)
        self.mode_ = training_mode(dataset, self.kind)
        if self.mode_ == "quality":
            rows = np.flatnonzero(dataset.mask.any(axis=1))  # prompts without records add nothing
            self._use_embeddings(encoder.encode([texts[i] for i in rows]).astype(np.float16))
            self.quality_ = dataset.quality[rows].astype(np.float32)
            self.global_mean_ = np.nanmean(self.quality_, axis=0)
            if self.k == "auto":
                self.k_, self.temperature_ = self._tune([texts[i] for i in rows])
            else:
                self.k_, self.temperature_ = int(self.k), float(self.temperature)
        else:
            used = sorted({battle.prompt_index for battle in dataset.battles})
            position = {prompt: row for row, prompt in enumerate(used)}
            self._use_embeddings(encoder.encode([texts[i] for i in used]).astype(np.float16))
            self.battles_ = battle_array(dataset, position)
            self.k_, self.temperature_ = 0, float(self.temperature)

    def _use_embeddings(self, embeddings: np.ndarray) -> None:
        # Saved as float16 (half the file); computed on in float32, the same before and after a save.
        self.embeddings_ = embeddings
        self._keys = embeddings.astype(np.float32)

    def _tune(self, texts: list[str]) -> tuple[int, float]:
        """The (k, temperature) with the lowest cross-validated squared error on the records."""
        folds = hash_folds(texts, CV_FOLDS, salt="knn-cross-validation")
        smallest_train_fold = len(texts) - np.bincount(folds, minlength=CV_FOLDS).max()
        k_grid = [k for k in K_GRID if k <= smallest_train_fold] or [1]
        temperatures = TEMPERATURE_GRID if self.weighting == "softmax" else (1.0,)
        errors = np.zeros((len(k_grid), len(temperatures)))
        embeddings = self._keys
        for fold in range(CV_FOLDS):
            held_out, train = folds == fold, folds != fold
            if not held_out.any():
                continue
            similarity, index = _top_neighbours(embeddings[held_out], embeddings[train], max(k_grid))
            quality = self.quality_[train]
            truth = self.quality_[held_out]
            observed = ~np.isnan(truth)
            for i, k in enumerate(k_grid):
                for j, temperature in enumerate(temperatures):
                    predicted = self._neighbour_mean(similarity[:, :k], index[:, :k], quality, temperature)
                    errors[i, j] += np.sum((predicted[observed] - truth[observed]) ** 2)
        best_k, best_t = np.unravel_index(np.argmin(errors), errors.shape)  # ties: smallest k, t
        return k_grid[best_k], float(temperatures[best_t])

    # ----------------------------------------------------------------------- predict
    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        queries = get_encoder(self.encoder).encode(texts)
        embeddings = self._keys
        scores = np.empty((len(texts), len(self.models_)))
        chunk = QUERY_CHUNK if self.mode_ == "quality" else BT_QUERY_CHUNK
        for start in range(0, len(texts), chunk):
            block = queries[start : start + chunk]
            if self.mode_ == "quality":
                similarity, index = _top_neighbours(block, embeddings, self.k_)
                scores[start : start + chunk] = self._neighbour_mean(
                    similarity, index, self.quality_, self.temperature_
                )
            else:
                scores[start : start + chunk] = self._bradley_terry(block @ embeddings.T)
        return scores

    def _neighbour_mean(
        self, similarity: np.ndarray, index: np.ndarray, quality: np.ndarray, temperature: float
    ) -> np.ndarray:
        """Weighted mean quality of each query's neighbours, per model, over those with a record."""
        if self.weighting == "softmax":
            weights = softmax(similarity / temperature, axis=1)
        else:
            weights = np.ones_like(similarity)
        neighbours = quality[index]  # (queries, k, models)
        observed = ~np.isnan(neighbours)
        total = np.einsum("qk,qkm->qm", weights, observed)
        weighted = np.einsum("qk,qkm->qm", weights, np.where(observed, neighbours, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = weighted / total
        # No neighbour has a record for that model: fall back to its overall mean.
        return np.where(total > 0, mean, self.global_mean_)

    def _bradley_terry(self, similarity: np.ndarray) -> np.ndarray:
        """Win probability against the average other model, from battles weighted by similarity."""
        prompt, model_a, model_b, outcome = self.battles_.T
        prompt, model_a, model_b = prompt.astype(int), model_a.astype(int), model_b.astype(int)
        n_models = len(self.models_)
        weights = softmax(similarity[:, prompt] / self.temperature_, axis=1)  # (queries, battles)
        # Battle b adds +1 for its model_a and -1 for its model_b to the design matrix.
        design = np.zeros((len(prompt), n_models))
        np.add.at(design, (np.arange(len(prompt)), model_a), 1.0)
        np.add.at(design, (np.arange(len(prompt)), model_b), -1.0)
        # Curvature is summed per model pair, not per battle: pairs are few, battles many.
        pairs, pair_of_battle = np.unique(np.stack([model_a, model_b], axis=1), axis=0, return_inverse=True)
        to_pairs = sparse.csr_matrix(
            (np.ones(len(prompt)), (np.arange(len(prompt)), pair_of_battle.ravel())),
            shape=(len(prompt), len(pairs)),
        )
        scores = np.zeros((len(similarity), n_models))
        eye = BT_RIDGE * np.eye(n_models)
        for _ in range(BT_NEWTON_STEPS):
            win = expit(scores[:, model_a] - scores[:, model_b])
            gradient = (weights * (outcome - win)) @ design - BT_RIDGE * scores
            curvature = np.asarray((to_pairs.T @ (weights * win * (1.0 - win)).T).T)  # (queries, pairs)
            hessian = np.broadcast_to(eye, (len(similarity), n_models, n_models)).copy()
            for column, (a, b) in enumerate(pairs):
                hessian[:, a, a] += curvature[:, column]
                hessian[:, b, b] += curvature[:, column]
                hessian[:, a, b] -= curvature[:, column]
                hessian[:, b, a] -= curvature[:, column]
            scores += np.linalg.solve(hessian, gradient[..., None])[..., 0]
        return average_win_probability(scores)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors = {"embeddings": self.embeddings_}
        if self.mode_ == "quality":
            tensors |= {"quality": self.quality_, "global_mean": self.global_mean_}
        else:
            tensors["battles"] = self.battles_
        extra = {
            "mode": self.mode_,
            "encoder_id": self.encoder_id_,
            "k": self.k_,
            "temperature": self.temperature_,
        }
        return tensors, extra

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.encoder_id_ = check_encoder(self.encoder, extra["encoder_id"]).encoder_id
        self.mode_ = extra["mode"]
        self.k_, self.temperature_ = int(extra["k"]), float(extra["temperature"])
        self._use_embeddings(tensors["embeddings"])
        if self.mode_ == "quality":
            self.quality_, self.global_mean_ = tensors["quality"], tensors["global_mean"]
            if self.quality_.shape != (len(self.embeddings_), len(self.models_)):
                raise ValueError(f"quality has shape {self.quality_.shape}")
        else:
            self.battles_ = tensors["battles"]


def _top_neighbours(queries: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity and index of each query's k most similar keys, most similar first."""
    similarity = queries @ keys.T
    k = min(k, keys.shape[0])
    index = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(similarity, index, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(index, order, axis=1)
