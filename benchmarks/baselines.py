"""The logistic-regression probe baseline: one L2-regularised logistic regression per model.

Independent router studies find that most published routers do not beat a probe on frozen
sentence embeddings, so the quality table reports it beside Routoo's predictors. It follows
the Predictor contract so the evaluation harness scores it like any other router.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from routoo.data.dataset import RoutingDataset
from routoo.embeddings import get_encoder
from routoo.predictors.base import Predictor
from routoo.prompts import prompt_texts

C_GRID = (0.1, 1.0, 10.0)
FOLDS = 2
NEWTON_STEPS = 30


class LogisticProbe(Predictor):
    """Per-model logistic regression on MiniLM embeddings; each model's inverse penalty ``C``
    is picked from ``C_GRID`` by 2-fold cross-validation on the training split (log loss).

    Masked records do not count.
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
    """(models, dim + 1) weights and biases minimising, per model, the soft-target log loss over
    its observed rows + ||w||^2 / (2 C n), n its observed count, by Newton's method (the
    problem is strictly convex and small: a few steps converge)."""
    features = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros((y.shape[1], features.shape[1]))
    for model in range(y.shape[1]):
        rows = observed[:, model]
        xs, ys = features[rows], y[rows, model]
        penalty = np.full(features.shape[1], 1.0 / (c[model] * max(len(ys), 1)))
        penalty[-1] = 0.0  # the bias is not penalised
        for _ in range(NEWTON_STEPS):
            p = expit(xs @ theta[model])
            gradient = xs.T @ (p - ys) / len(ys) + penalty * theta[model]
            hessian = (xs.T * (p * (1 - p))) @ xs / len(ys) + np.diag(penalty + 1e-9)
            step = np.linalg.solve(hessian, gradient)
            theta[model] -= step
            if np.abs(step).max() < 1e-6:
                break
    return theta


def _log_loss(theta: np.ndarray, x: np.ndarray, y: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Mean held-out log loss of each model over its observed rows."""
    p = np.clip(expit(x @ theta[:, :-1].T + theta[:, -1]), 1e-9, 1 - 1e-9)
    losses = -(y * np.log(p) + (1 - y) * np.log(1 - p)) * observed
    return losses.sum(axis=0) / np.maximum(observed.sum(axis=0), 1)
