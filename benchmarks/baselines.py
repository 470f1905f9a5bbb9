"""The logistic-regression probe baseline: one L2-regularised logistic regression per model.

Independent router studies find that most published routers do not beat a probe on frozen
sentence embeddings, so the quality table reports it beside Routoo's predictors. It follows
the Predictor contract so the evaluation harness scores it like any other router.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from routoo.data.dataset import RoutingDataset
from routoo.embeddings import get_encoder
from routoo.predictors.base import Predictor
from routoo.prompts import prompt_texts

C_GRID = (0.1, 1.0, 10.0)
FOLDS = 2


class LogisticProbe(Predictor):
    """Per-model logistic regression on MiniLM embeddings; each model's inverse penalty ``C``
    is picked from ``C_GRID`` by 2-fold cross-validation on the training split (log loss).

    The per-model problems are independent, so all models are fitted in one L-BFGS run over
    their summed (separable) objective; masked records do not count.
    """

    kind = "logistic-probe"

    def _fit(self, dataset: RoutingDataset) -> None:
        x = get_encoder().encode(prompt_texts(dataset.prompts, self.prompt_view)).astype(np.float64)
        observed = ~np.isnan(dataset.quality)
        y = np.nan_to_num(dataset.quality)
        folds = np.arange(len(dataset)) % FOLDS
        held_out = np.zeros((len(C_GRID), len(dataset.models)))
        for c_index, c in enumerate(C_GRID):
            for k in range(FOLDS):
                train, test = folds != k, folds == k
                theta = _fit_logistic(x[train], y[train], observed[train], np.full(y.shape[1], c))
                held_out[c_index] += _log_loss(theta, x[test], y[test], observed[test])
        best_c = np.array(C_GRID)[held_out.argmin(axis=0)]
        self.weights_ = _fit_logistic(x, y, observed, best_c).astype(np.float32)

    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        features = get_encoder().encode(texts)
        return expit(features @ self.weights_[:, :-1].T + self.weights_[:, -1])

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"weights": self.weights_}, {}

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.weights_ = tensors["weights"]


def _fit_logistic(x: np.ndarray, y: np.ndarray, observed: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(models, dim + 1) weights and biases minimising, per model, soft-target log loss over
    its observed rows + ||w||^2 / (2 C n), n its observed count."""
    d = x.shape[1]
    m = y.shape[1]
    counts = np.maximum(observed.sum(axis=0), 1)

    def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
        theta = flat.reshape(m, d + 1)
        w, b = theta[:, :d], theta[:, d]
        p = expit(x @ w.T + b)
        eps = 1e-9
        losses = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)) * observed
        penalty = (w * w).sum(axis=1) / (2 * c * counts)
        loss = (losses.sum(axis=0) / counts + penalty).sum()
        residual = (p - y) * observed / counts
        gradient = np.concatenate(
            [residual.T @ x + w / (c * counts)[:, None], residual.sum(axis=0)[:, None]], axis=1
        )
        return float(loss), gradient.ravel()

    result = minimize(objective, np.zeros(m * (d + 1)), jac=True, method="L-BFGS-B", options={"maxiter": 300})
    return result.x.reshape(m, d + 1)


def _log_loss(theta: np.ndarray, x: np.ndarray, y: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Mean held-out log loss of each model over its observed rows."""
    p = np.clip(expit(x @ theta[:, :-1].T + theta[:, -1]), 1e-9, 1 - 1e-9)
    losses = -(y * np.log(p) + (1 - y) * np.log(1 - p)) * observed
    return losses.sum(axis=0) / np.maximum(observed.sum(axis=0), 1)
