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


class LogisticProbe(Predictor):
    """Per-model logistic regression on MiniLM embeddings; the inverse penalty ``C`` is
    picked from ``C_GRID`` by 3-fold cross-validation on the training split (log loss)."""

    kind = "logistic-probe"

    def _fit(self, dataset: RoutingDataset) -> None:
        features = get_encoder().encode(prompt_texts(dataset.prompts, self.prompt_view))
        folds = np.arange(len(dataset)) % 3
        self.weights_ = np.zeros((len(dataset.models), features.shape[1] + 1), dtype=np.float32)
        for column in range(len(dataset.models)):
            rows = ~np.isnan(dataset.quality[:, column])
            x, y = features[rows], dataset.quality[rows, column]

            def held_out_loss(c: float, x=x, y=y, fold=folds[rows]) -> float:
                losses = [
                    _log_loss(_fit_logistic(x[fold != k], y[fold != k], c), x[fold == k], y[fold == k])
                    for k in range(3)
                ]
                return float(np.mean(losses))

            best_c = min(C_GRID, key=held_out_loss)
            self.weights_[column] = _fit_logistic(x, y, best_c)

    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        features = get_encoder().encode(texts)
        return expit(features @ self.weights_[:, :-1].T + self.weights_[:, -1])

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"weights": self.weights_}, {}

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.weights_ = tensors["weights"]


def _fit_logistic(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    """Weights and bias minimising soft-target log loss + ||w||² / (2 C n)."""
    n, d = x.shape

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        p = expit(x @ w + b)
        eps = 1e-9
        loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)) + w @ w / (2 * c * n)
        residual = (p - y) / n
        return loss, np.concatenate([x.T @ residual + w / (c * n), [residual.sum()]])

    result = minimize(objective, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 200})
    return result.x.astype(np.float32)


def _log_loss(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(expit(x @ theta[:-1] + theta[-1]), 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
