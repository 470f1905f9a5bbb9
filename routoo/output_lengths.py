"""How long each model's answer to a prompt will be: the output tokens an estimated cost is made of.

``OutputLengths`` is learned from the answers a data set records (never from lengths a
loader assumed, which it leaves NaN): ``log(1 + tokens)`` of model m on prompt p is
``exp(a_m) * (w · x_p)``, with ``x_p`` the prompt's static embedding and its log length,
fitted by alternating ridge regression over every recorded answer. The prompt's part
carries what the prompt asks for (one letter for a multiple-choice question, a proof or an
essay otherwise) and the model's scale how verbose it is where the prompt leaves room, so
a model scored on one-letter benchmarks still gets a chat-length estimate for a chat
prompt. The prediction is ``exp`` of the mean log length, the median, which is what a
ratio of estimated to real cost should be centred on, capped at the 99th percentile of
the recorded lengths. A model without recorded answers gets the mean scale of its catalog
family, else of all models.

``ObservedLengths`` corrects the estimates from the usage the Router sees: per model, a
running mean of ``log(real / estimated)`` over the last ``OBSERVED_WINDOW`` calls or so
(two numbers per model: bounded memory).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from routoo.errors import PredictorLoadError

if TYPE_CHECKING:
    from routoo.data.dataset import RoutingDataset

RIDGE = 1.0
FIT_ROUNDS = 10
# Expected lengths are capped at this quantile of the recorded answers' lengths.
CEILING_QUANTILE = 0.99
# Calls a model's correction averages over (an exponential window).
OBSERVED_WINDOW = 50
# A correction never moves an estimate by more than this factor either way.
MAX_CORRECTION = 20.0
ENCODER = "static"


def _prompt_features(texts: Sequence[str]) -> np.ndarray:
    from routoo.embeddings import get_encoder

    embeddings = get_encoder(ENCODER).encode(list(texts)).astype(np.float64)
    length = np.log1p([len(text) for text in texts])[:, None] / 10.0
    return np.concatenate([embeddings, length, np.ones((len(texts), 1))], axis=1)


class OutputLengths:
    """Expected output tokens of each model on each prompt, learned from recorded answers."""

    def __init__(self, weights: np.ndarray, offsets: Mapping[str, float], ceiling: float = math.inf) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.offsets = dict(offsets)
        self.ceiling = float(ceiling)

    @classmethod
    def fit(cls, dataset: RoutingDataset, texts: Sequence[str]) -> OutputLengths | None:
        """Fit on ``dataset``'s recorded output tokens (``texts``: its prompts as the predictor reads them).

        None when the set records no answer lengths.
        """
        if dataset.output_tokens is None:
            return None
        recorded = ~np.isnan(dataset.output_tokens) & (dataset.output_tokens >= 0)
        rows = np.flatnonzero(recorded.any(axis=1))
        models = [j for j in range(len(dataset.models)) if recorded[:, j].any()]
        if len(rows) == 0:
            return None
        x = _prompt_features([texts[i] for i in rows])
        mask = recorded[np.ix_(rows, models)].astype(np.float64)
        y = np.where(mask > 0, np.log1p(np.nan_to_num(dataset.output_tokens[np.ix_(rows, models)])), 0.0)
        weights, scales = np.zeros(x.shape[1]), np.ones(len(models))
        penalty = RIDGE * np.diag([1.0] * (x.shape[1] - 1) + [0.0])  # the intercept is not shrunk
        for _ in range(FIT_ROUNDS):  # alternating least squares: the prompt's part, then each model's scale
            # y_pm ~ scale_m * (x_p . w): least squares in w with the scales fixed ...
            per_prompt = mask @ scales**2
            gram = x.T @ (x * per_prompt[:, None]) + penalty
            weights = np.linalg.solve(gram, x.T @ ((y * mask) @ scales))
            # ... and in each scale with w fixed.
            prompt_part = x @ weights
            scales = ((y * mask).T @ prompt_part) / np.maximum(mask.T @ prompt_part**2, 1e-12)
        offsets = np.log(np.maximum(scales, 1e-6))
        # Never expect more than (nearly) the longest answers learned from: the log-linear fit
        # extrapolates steeply for prompts unlike its data.
        ceiling = float(np.quantile(dataset.output_tokens[np.ix_(rows, models)][mask > 0], CEILING_QUANTILE))
        return cls(weights, {dataset.models[j]: float(offsets[i]) for i, j in enumerate(models)}, ceiling)

    def predict(self, texts: Sequence[str], models: Sequence[str]) -> np.ndarray:
        """Expected (median) output tokens, (len(texts), len(models))."""
        prompt_part = np.maximum(_prompt_features(texts) @ self.weights, 0.0)
        scales = np.exp([self.offset(model) for model in models])
        return np.minimum(np.expm1(prompt_part[:, None] * scales[None, :]), self.ceiling)

    def offset(self, model: str) -> float:
        """The model's verbosity: its own, else its catalog family's mean, else every model's mean."""
        if model in self.offsets:
            return self.offsets[model]
        from routoo.catalog import default_catalog

        catalog = default_catalog()
        name = catalog.canonical_name(model)
        if name in self.offsets:
            return self.offsets[name]
        family = catalog.family_members(model, self.offsets)
        if family:
            return float(np.mean([self.offsets[member] for member in family]))
        return float(np.mean(list(self.offsets.values())))

    def to_json(self) -> dict[str, Any]:
        return {
            "embeddings": ENCODER,
            "weights": self.weights.tolist(),
            "offsets": self.offsets,
            "ceiling": self.ceiling if math.isfinite(self.ceiling) else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutputLengths:
        try:
            if data["embeddings"] != ENCODER:
                raise ValueError(f"embeddings {data['embeddings']!r}, expected {ENCODER!r}")
            weights = np.asarray(data["weights"], dtype=np.float64)
            offsets = {str(name): float(value) for name, value in data["offsets"].items()}
            ceiling = math.inf if data.get("ceiling") is None else float(data["ceiling"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise PredictorLoadError(f"the saved output lengths are malformed: {error}") from error
        if (
            weights.ndim != 1
            or not np.all(np.isfinite(weights))
            or not all(map(math.isfinite, offsets.values()))
        ):
            raise PredictorLoadError("the saved output lengths hold non-finite or misshapen weights")
        return cls(weights, offsets, ceiling)


class ObservedLengths:
    """Per-model corrections of estimated output tokens from observed usage; thread-safe, bounded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log_ratio: dict[str, float] = {}
        self._calls: dict[str, int] = {}

    def observe(self, model: str, estimated: float, actual: float) -> None:
        """Record one call's estimated and real output tokens."""
        if not (estimated > 0 and actual >= 0 and math.isfinite(estimated) and math.isfinite(actual)):
            return
        ratio = math.log1p(actual) - math.log1p(estimated)
        with self._lock:
            calls = self._calls.get(model, 0) + 1
            rate = 1.0 / min(calls, OBSERVED_WINDOW)
            previous = self._log_ratio.get(model, 0.0)
            self._log_ratio[model] = previous + rate * (ratio - previous)
            self._calls[model] = calls

    def factor(self, model: str) -> float:
        """What to multiply the model's estimates by (1 before any observation)."""
        with self._lock:
            value = self._log_ratio.get(model, 0.0)
        return float(np.clip(math.exp(value), 1 / MAX_CORRECTION, MAX_CORRECTION))

    def calls(self, model: str) -> int:
        with self._lock:
            return self._calls.get(model, 0)


class ExpectedOutputTokens:
    """The output tokens a Router expects of each pool model on a prompt.

    A length the user gave in a model's spec wins; otherwise the predictor's learned
    ``OutputLengths`` for the model it scores the candidate as, corrected by what this
    Router has observed of the model (``observed``); otherwise the spec's resolved constant.
    """

    def __init__(
        self,
        lengths: OutputLengths | None,
        scored_as: Sequence[str],
        names: Sequence[str],
        fixed: Sequence[float | None],
        fallback: Sequence[float],
    ) -> None:
        self.lengths = lengths
        self.scored_as = list(scored_as)
        self.names = list(names)
        self.fixed = np.array([np.nan if value is None else value for value in fixed], dtype=np.float64)
        self.fallback = np.asarray(fallback, dtype=np.float64)
        self.observed = ObservedLengths()

    def estimate(self, texts: Sequence[str]) -> np.ndarray:
        """Expected output tokens, (len(texts), pool size)."""
        if self.lengths is None:
            learned = np.tile(self.fallback, (len(texts), 1))
        else:
            learned = self.lengths.predict(texts, self.scored_as)
        factors = np.array([self.observed.factor(name) for name in self.names])
        return np.where(np.isnan(self.fixed), learned * factors, self.fixed)
