"""What the reliability tests share: a predictor that needs no encoder, and a pool of HTTP models."""

from __future__ import annotations

from typing import Any

import numpy as np

from routoo.data.dataset import RoutingDataset
from routoo.predictors.base import Predictor

PREDICTOR_MODELS = ["math-model", "poet-model", "big-model"]


class TablePredictor(Predictor):
    """The same predicted quality for every prompt: ``quality`` per predictor model (NaN allowed)."""

    kind = "table"

    def __init__(self, quality: tuple[float, ...] = (0.9, 0.5, 0.95), prompt_view: str = "last_user") -> None:
        super().__init__(prompt_view)
        self.quality = quality

    def _fit(self, dataset: RoutingDataset) -> None:
        pass

    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array(self.quality, dtype=np.float64), (len(texts), 1))

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        pass


def fitted(quality: tuple[float, ...] = (0.9, 0.5, 0.95)) -> TablePredictor:
    """A ``TablePredictor`` fitted on two rows of the planted models."""
    n = 2
    dataset = RoutingDataset(
        name="table",
        prompts=["one prompt", "another prompt"],
        models=PREDICTOR_MODELS,
        quality=np.ones((n, 3)),
        cost=np.full((n, 3), 0.001),
        input_tokens=np.full(n, 10.0),
        output_tokens=np.full((n, 3), 50.0),
    )
    return TablePredictor(quality).fit(dataset)


def http_pool(base_url: str, names: list[str], windows: list[int] | None = None) -> list[dict[str, Any]]:
    """Pool models ``openai/<name>`` served by a ``ScriptedServer`` at ``base_url``, scored as the planted
    models in turn, priced in their specs, with a 1,000-token output limit and the given context windows."""
    windows = windows or [100_000] * len(names)
    return [
        {
            "name": f"openai/{name}",
            "like": PREDICTOR_MODELS[i % 3],
            "input_cost_per_token": 1e-6 * (i + 1),
            "output_cost_per_token": 2e-6 * (i + 1),
            "max_output_tokens": 1000,
            "max_input_tokens": window,
            "litellm_params": {"api_base": base_url, "api_key": "sk-routoo-test-key"},
        }
        for i, (name, window) in enumerate(zip(names, windows, strict=True))
    ]
