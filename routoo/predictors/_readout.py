"""The Bayesian read-out that onboarding learns, and what it reads public scores against.

A new model's logit is a linear read-out of a base predictor's logits (``readout_features``).
``posterior`` turns a Gaussian prior on the read-out and some labels into its Laplace
posterior; ``probe`` orders prompts by how much their labels would teach (greedy Bayesian
D-optimal design); ``benchmark_references`` gives the base's logits on reference prompts
of each public benchmark, read on that benchmark's own grading scale, and ``bias_shift``
moves a prior until its average there matches a published score. ``onboarded`` builds the
predictor kind on these.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routoo.errors import ConfigError, DataError
from routoo.predictors.base import Predictor
from routoo.prompts import Prompt

# Predicted qualities are clipped this far from 0 and 1 before taking logits.
EPSILON = 1e-3
# Public benchmark names a score may be given for -> the shared set holding its prompts.
BENCHMARKS: dict[str, str] = {
    "mmlu-pro": "mmlu-pro",
    "mmlu": "routellm-mmlu",
    "gsm8k": "routellm-gsm8k",
    "mt-bench": "routellm-mt-bench",
    "routerbench": "routerbench",
    "llmrouter": "llmrouter",
}
REFERENCE_PROMPTS = 256
REFERENCES_FILE = "references.safetensors"


@dataclass(frozen=True)
class Readout:
    """A fitted read-out: its posterior mean and covariance, the prior width chosen, and the evidence."""

    weights: np.ndarray
    covariance: np.ndarray
    prior_std: float
    log_evidence: float


def posterior(
    features: np.ndarray, labels: np.ndarray, prior_mean: np.ndarray, prior_precision: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Laplace posterior of logistic read-out weights under a Gaussian prior: mean, covariance, log evidence.

    Newton's method with backtracking on the soft-label cross-entropy plus the prior's
    quadratic penalty; the covariance is the inverse Hessian at the optimum, and the log
    evidence (marginal likelihood) its Laplace approximation. With no labels it is the prior.
    """

    def objective(w: np.ndarray) -> float:
        logits = features @ w
        return float(
            np.sum(np.logaddexp(0.0, logits) - labels * logits)
            + 0.5 * (w - prior_mean) @ prior_precision @ (w - prior_mean)
        )

    weights = prior_mean.copy()
    current = objective(weights)
    for _ in range(100):
        p = expit(features @ weights)
        gradient = features.T @ (p - labels) + prior_precision @ (weights - prior_mean)
        hessian = features.T @ (features * (p * (1 - p))[:, None]) + prior_precision
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while (candidate := objective(weights - scale * step)) > current and scale > 1e-6:
            scale /= 2  # saturated logits make full Newton steps overshoot: backtrack
        weights, current = weights - scale * step, candidate
        if np.max(np.abs(scale * step)) < 1e-8:
            break
    p = expit(features @ weights)
    hessian = features.T @ (features * (p * (1 - p))[:, None]) + prior_precision
    log_evidence = -current + 0.5 * (np.linalg.slogdet(prior_precision)[1] - np.linalg.slogdet(hessian)[1])
    return weights, np.linalg.inv(hessian), float(log_evidence)


def fit_readout(
    features: np.ndarray,
    labels: np.ndarray,
    prior_mean: np.ndarray,
    prior_stds: Sequence[float],
    bias_prior_std: float,
) -> Readout:
    """The read-out under the prior width in ``prior_stds`` the labels make most likely (empirical Bayes).

    How far a new model's read-out may stray from its prior differs by model (a close
    ``like=`` needs little, a poor one much): the Laplace evidence picks it. Without labels
    every width explains them equally: the middle one is kept, for the uncertainty.
    """
    fits = []
    for std in prior_stds if len(labels) else [sorted(prior_stds)[len(prior_stds) // 2]]:
        precision = np.diag([std**-2] * (len(prior_mean) - 1) + [bias_prior_std**-2])
        weights, covariance, evidence = posterior(features, labels, prior_mean, precision)
        fits.append(Readout(weights, covariance, float(std), evidence))
    return max(fits, key=lambda fit: fit.log_evidence)


def probe(
    predictor: Predictor,
    prompts: Sequence[Prompt],
    n: int,
    *,
    like: str | None = None,
    prior_std: float = 0.3,
) -> list[int]:
    """The ``n`` prompts whose labels would teach most about a new model, most useful first.

    Greedy Bayesian D-optimal design for the onboarding read-out: each pick maximises the
    information its label adds, ``log(1 + p(1-p) f' S f)``, under the current posterior
    covariance ``S`` (a prompt like one already picked adds little, so picks are diverse),
    with ``p`` the prior's predicted quality (a prompt the prior is sure about adds little).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive integer, not {n!r}")
    if len(prompts) == 0:
        raise DataError("probe needs at least one prompt to choose from")
    base_scores = predictor.predict(prompts)
    features = readout_features(base_scores)
    known = list(predictor.models_)
    mean = np.zeros(len(known) + 1)
    if like is not None:
        if like not in known:
            raise ConfigError(f"like={like!r} is not a model the predictor knows: {known}")
        mean[known.index(like)] = 1.0
    else:
        mean[:-1] = 1.0 / len(known)
    informative = expit(features @ mean) * (1 - expit(features @ mean))
    covariance = np.eye(len(mean)) * prior_std**2
    chosen: list[int] = []
    available = np.ones(len(features), dtype=bool)
    for _ in range(min(n, len(features))):
        spread = np.einsum("ni,ij,nj->n", features, covariance, features)
        gain = np.where(available, np.log1p(informative * spread), -np.inf)
        pick = int(np.argmax(gain))
        chosen.append(pick)
        available[pick] = False
        shared = covariance @ features[pick]
        covariance = covariance - informative[pick] * np.outer(shared, shared) / (
            1 + informative[pick] * features[pick] @ shared
        )
    return chosen


def benchmark_references(predictor: Predictor, benchmarks: Sequence[str]) -> dict[str, np.ndarray]:
    """For each benchmark, the predictor's logits on reference prompts, read on that benchmark's scale.

    The shipped default carries them (``references.safetensors``); for other predictors they
    are computed from the shared sets (``REFERENCE_PROMPTS`` prompts of each, drawn with seed 0).
    """
    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown:
        raise ConfigError(
            f"no reference prompts for benchmark(s) {unknown}; scores can be given for {list(BENCHMARKS)}"
        )
    stored = stored_references(predictor)
    references = {}
    for benchmark in benchmarks:
        if benchmark in stored:
            references[benchmark] = stored[benchmark]
            continue
        references[benchmark] = reference_logits(
            predictor, list(_reference_prompts(benchmark)), BENCHMARKS[benchmark]
        )
    return references


def reference_logits(predictor: Predictor, prompts: Sequence[Prompt], source: str) -> np.ndarray:
    """The predictor's features on ``prompts`` as the source ``source`` grades them, offset last.

    A predictor that models its training sources (``mf``: ``source_map``) reads each on a
    scale and offset of its own; a read-out ``w`` then gives that source's logits
    ``reference[:, :-1] @ w + reference[:, -1]``.
    """
    features = readout_features(predictor.predict(prompts))
    source_map = getattr(predictor, "source_map", None)
    scale, offset = source_map(source) if source_map is not None else (1.0, 0.0)
    return np.concatenate([features * scale, np.full((len(features), 1), offset)], axis=1)


@functools.lru_cache(maxsize=len(BENCHMARKS))
def _reference_prompts(benchmark: str) -> tuple[Prompt, ...]:
    """``REFERENCE_PROMPTS`` prompts of the benchmark's shared set, drawn with seed 0 (loaded once)."""
    from routoo.data import load_dataset

    dataset = load_dataset(BENCHMARKS[benchmark])
    rows = np.random.default_rng(0).permutation(len(dataset))[:REFERENCE_PROMPTS]
    return tuple(dataset.prompts[i] for i in rows)


def expit(logits: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow (scipy's, whose import would slow routing's start)."""
    return 0.5 * (1.0 + np.tanh(0.5 * logits))


def readout_features(scores: np.ndarray) -> np.ndarray:
    """Logits of predicted qualities, plus a constant column for the bias."""
    clipped = np.clip(scores, EPSILON, 1 - EPSILON)
    logits = np.log(clipped) - np.log1p(-clipped)
    return np.concatenate([logits, np.ones((len(logits), 1))], axis=1)


def bias_shift(mean: np.ndarray, reference: np.ndarray, score: float) -> float:
    """The bias shift that makes the prior's average quality on the reference prompts ``score``.

    ``reference`` is ``reference_logits``' output: features (bias column last) and the offset.
    """
    from scipy.optimize import brentq  # loaded only when a score is given

    features, offset = reference[:, :-1], reference[:, -1]
    logits = features @ mean + offset

    def gap(shift: float) -> float:
        return float(np.mean(expit(logits + shift * features[:, -1])) - score)

    return float(brentq(gap, -30.0, 30.0))


def stored_references(predictor: Predictor) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    from routoo.predictors._folder import check_hashes
    from routoo.predictors.base import CONFIG_FILE, read_config
    from routoo.predictors.registry import DEFAULT_PREDICTOR_DIR

    file = DEFAULT_PREDICTOR_DIR / REFERENCES_FILE
    if not file.is_file():
        return {}
    config = read_config(DEFAULT_PREDICTOR_DIR)  # the default's config, not the whole predictor
    if predictor.train_fingerprint_ != config["train_fingerprint"]:
        return {}
    check_hashes(DEFAULT_PREDICTOR_DIR, config, DEFAULT_PREDICTOR_DIR / CONFIG_FILE)
    return {name: np.asarray(array, dtype=np.float64) for name, array in load_file(file).items()}
