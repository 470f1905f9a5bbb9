"""``evaluate``: routers and baselines on a test split, with curves, metrics and bootstrap errors.

Only prompts where every model has both a quality and a cost record are evaluated: a
router's choice must always have a known outcome, and every router and baseline is then
scored on the very same prompts. The others are counted in ``EvaluationReport.n_dropped``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from routoo.data.dataset import RoutingDataset
from routoo.errors import DataError
from routoo.evaluate.curves import choose_models, strong_share_curve, trade_off_grid
from routoo.evaluate.metrics import (
    aiq,
    apgr,
    call_performance_threshold,
    cost_to_reach,
    nondecreasing_hull,
    quality_at_cost,
)
from routoo.evaluate.report import CostEstimateSource, EvaluationReport, ResultKind, RouterResult
from routoo.predictors.base import Predictor

Router = np.ndarray | Predictor
BASELINE_NAMES = ("oracle", "oracle frontier", "random mix")


@dataclass(frozen=True)
class _Split:
    """The evaluated prompts' true outcomes and what every result is measured against."""

    quality: np.ndarray  # (n, m)
    cost: np.ndarray  # (n, m)
    model_cost: np.ndarray  # (m,) average cost of each single model
    model_quality: np.ndarray  # (m,)
    best: int  # best single model: highest average quality, the cheaper one on ties
    weak: int | None  # two-model sets only: cheaper and dearer model by average cost
    strong: int | None
    resample_weights: np.ndarray  # (n_bootstrap, n): each row a bootstrap resample's prompt weights
    resampled_model_cost: np.ndarray  # (n_bootstrap, m): model_cost on each resample

    @property
    def cost_range(self) -> tuple[float, float]:
        return float(self.model_cost.min()), float(self.model_cost.max())


def evaluate(
    test: RoutingDataset,
    routers: Mapping[str, Router],
    cost_estimate: np.ndarray | None = None,
    *,
    seed: int = 0,
    n_trade_offs: int = 200,
    n_bootstrap: int = 200,
) -> EvaluationReport:
    """Evaluate each router on ``test`` beside the baselines, and return the report.

    A router is a predicted quality matrix ``(len(test), n_models)`` in ``test.models``'
    column order, a fitted ``Predictor`` (asked to predict ``test.prompts``), or a 1-D
    integer array holding a chosen model index per prompt (one operating point).
    A predicted matrix is turned into a curve by sweeping the trade-off ``λ`` of
    ``argmax_j predicted - λ * cost_estimate`` over ``n_trade_offs`` values.

    ``cost_estimate`` is the per-model cost a router trades quality against; pass the
    training split's ``mean_cost()``: a router cannot know a call's real cost before making
    it. Without one the test split's per-model average cost is used. Realised quality and
    cost are always the test prompt's true ones for the chosen model.

    The baselines (every single model, random mixing, the oracle and the oracle frontier)
    are always added. ``aiq_stderr`` is the standard deviation of AIQ over ``n_bootstrap``
    resamples of the test prompts (the same resamples for every result, drawn from ``seed``).
    """
    if test.cost is None:
        raise DataError(f"test set {test.name!r} has no costs: evaluation needs the cost of every call")
    if not routers:
        raise DataError("no routers to evaluate: pass a mapping of name -> router")
    for name in routers:
        if name in BASELINE_NAMES or name in test.models:
            raise DataError(f"router name {name!r} clashes with a baseline's name; rename it")
    if n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be at least 2, got {n_bootstrap}")

    complete = np.flatnonzero(np.isfinite(test.quality).all(axis=1) & np.isfinite(test.cost).all(axis=1))
    if complete.size == 0:
        raise DataError(f"test set {test.name!r} has no prompt with quality and cost records for every model")
    split = _make_split(test.quality[complete], test.cost[complete], n_bootstrap, seed)
    estimate, source = _cost_estimate(cost_estimate, test.models, split.model_cost)

    results = []
    for name, router in routers.items():
        predicted = _predicted_matrix(name, router, test, complete)
        if predicted is None:
            choices = _choice_array(name, router, test)[complete][:, None]
            results.append(_result(name, "router", choices, split))
        else:
            grid = trade_off_grid(predicted, estimate, n_trade_offs, seed)
            results.append(
                _result(name, "router", choose_models(predicted, estimate, grid), split, predicted)
            )
    results.extend(_baselines(test.models, split, n_trade_offs, seed))

    two_models = split.weak is not None and split.strong is not None
    return EvaluationReport(
        dataset=test.name,
        models=list(test.models),
        n_prompts=int(complete.size),
        n_dropped=len(test) - int(complete.size),
        cost_range=split.cost_range,
        best_model=test.models[split.best],
        cost_estimate=estimate,
        cost_estimate_source=source,
        n_bootstrap=n_bootstrap,
        seed=seed,
        results=results,
        weak_model=test.models[split.weak] if two_models else None,
        strong_model=test.models[split.strong] if two_models else None,
    )


def _make_split(quality: np.ndarray, cost: np.ndarray, n_bootstrap: int, seed: int) -> _Split:
    n, m = quality.shape
    model_cost, model_quality = _column_means(cost), _column_means(quality)
    best = int(np.lexsort((model_cost, -model_quality))[0])
    weak = strong = None
    if m == 2:
        weak, strong = (int(i) for i in np.lexsort((model_quality, model_cost)))
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap) / n
    return _Split(quality, cost, model_cost, model_quality, best, weak, strong, weights, weights @ cost)


def _cost_estimate(
    cost_estimate: np.ndarray | None, models: list[str], test_model_cost: np.ndarray
) -> tuple[np.ndarray, CostEstimateSource]:
    if cost_estimate is None:
        return test_model_cost.copy(), "test_mean"
    estimate = np.asarray(cost_estimate, dtype=np.float64)
    if estimate.shape != (len(models),):
        raise DataError(
            f"cost_estimate has shape {estimate.shape}; expected one cost per model, ({len(models)},)"
        )
    if not np.isfinite(estimate).all() or (estimate < 0).any():
        bad = [model for model, value in zip(models, estimate, strict=True) if not (value >= 0)]
        raise DataError(f"cost_estimate must be finite and non-negative; it is not for {bad}")
    return estimate, "given"


def _predicted_matrix(
    name: str, router: Router, test: RoutingDataset, complete: np.ndarray
) -> np.ndarray | None:
    """The router's predicted quality on the evaluated prompts; ``None`` for a choice array."""
    if isinstance(router, Predictor):
        known = router.models
        missing = [model for model in test.models if model not in known]
        if missing:
            raise DataError(f"router {name!r} was fitted without models {missing} of the test set")
        columns = [known.index(model) for model in test.models]
        predicted = router.predict([test.prompts[i] for i in complete])[:, columns]
    else:
        array = np.asarray(router)
        if array.ndim == 1:
            return None
        expected = (len(test), len(test.models))
        if array.shape != expected:
            raise DataError(
                f"router {name!r}: predicted quality has shape {array.shape}, expected {expected} "
                "(test prompts x test models)"
            )
        predicted = array[complete].astype(np.float64)
    if not np.isfinite(predicted).all():
        raise DataError(f"router {name!r}: predicted quality has NaN or infinite values")
    return predicted


def _choice_array(name: str, router: np.ndarray, test: RoutingDataset) -> np.ndarray:
    choices = np.asarray(router)
    if not np.issubdtype(choices.dtype, np.integer):
        raise DataError(
            f"router {name!r}: a 1-D router must hold integer model indices, got dtype {choices.dtype}"
        )
    if choices.shape != (len(test),):
        raise DataError(f"router {name!r}: {choices.shape[0]} choices for {len(test)} test prompts")
    if choices.min() < 0 or choices.max() >= len(test.models):
        raise DataError(f"router {name!r}: model indices must lie in [0, {len(test.models)})")
    return choices.astype(np.int64)


def _baselines(models: list[str], split: _Split, n_trade_offs: int, seed: int) -> list[RouterResult]:
    n = len(split.quality)
    grid = trade_off_grid(split.quality, split.cost, n_trade_offs, seed)
    frontier = choose_models(split.quality, split.cost, grid)
    # Per prompt the best true quality, the cheapest such model on ties: the frontier at λ = 0.
    oracle = frontier[:, :1]
    cheapest = int(np.lexsort((-split.model_quality, split.model_cost))[0])
    mixed = sorted({cheapest, split.best})
    results = [
        _result("oracle", "oracle", oracle, split),
        _result("oracle frontier", "oracle_frontier", frontier, split, split.quality),
        _result("random mix", "random", np.tile(np.array(mixed), (n, 1)), split),
    ]
    for model in np.argsort(split.model_cost, kind="stable"):
        results.append(_result(models[model], "model", np.full((n, 1), model), split))
    return results


def _result(
    name: str, kind: ResultKind, choices: np.ndarray, split: _Split, predicted: np.ndarray | None = None
) -> RouterResult:
    """Measure a router given its choices per prompt and operating point (one column each).

    ``predicted`` (two-model sets) gives the score of RouteLLM's threshold sweep.
    """
    changed = np.concatenate([[True], (choices[:, 1:] != choices[:, :-1]).any(axis=0)])
    choices = choices[:, changed]
    quality = np.take_along_axis(split.quality, choices, axis=1)
    cost = np.take_along_axis(split.cost, choices, axis=1)
    points = np.unique(np.stack([_column_means(cost), _column_means(quality)], axis=1), axis=0)
    costs, qualities = points[:, 0], points[:, 1]

    hull = nondecreasing_hull(costs, qualities)
    best_cost, best_quality = split.model_cost[split.best], split.model_quality[split.best]
    cost_to_match = cost_to_reach(hull, best_quality)
    top = qualities.max()
    result = {
        "name": name,
        "kind": kind,
        "costs": costs,
        "qualities": qualities,
        "aiq": aiq(costs, qualities, split.cost_range),
        "aiq_stderr": _aiq_stderr(quality, cost, split),
        "max_quality": float(top),
        "max_quality_cost": float(costs[qualities == top].min()),
        "quality_at_best_model_cost": quality_at_cost(hull, best_cost),
        "cost_to_match_best_model": None
        if cost_to_match is None or best_cost == 0
        else cost_to_match / best_cost,
    }
    if split.weak is not None and split.strong is not None:
        weak_quality, strong_quality = split.model_quality[split.weak], split.model_quality[split.strong]
        if predicted is None:
            shares, share_qualities = (choices == split.strong).mean(axis=0), _column_means(quality)
        else:
            score = predicted[:, split.strong] - predicted[:, split.weak]
            shares, share_qualities = strong_share_curve(
                score, split.quality[:, split.weak], split.quality[:, split.strong]
            )
        curve = (shares, share_qualities, weak_quality, strong_quality)
        result |= {
            "strong_shares": shares,
            "strong_qualities": share_qualities,
            "apgr": apgr(*curve),
            "cpt50": call_performance_threshold(*curve, level=0.5),
            "cpt80": call_performance_threshold(*curve, level=0.8),
        }
    return RouterResult(**result)


def _column_means(matrix: np.ndarray) -> np.ndarray:
    """Column means summed in one fixed order, so a router that always picks one model gets
    bit-for-bit that model's average (NumPy's sums over strided columns may differ in the last bit)."""
    return np.ascontiguousarray(matrix.T).mean(axis=1)


def _aiq_stderr(quality: np.ndarray, cost: np.ndarray, split: _Split) -> float:
    """Standard deviation of AIQ over the bootstrap resamples (choices stay fixed per prompt)."""
    resampled_quality = split.resample_weights @ quality
    resampled_cost = split.resample_weights @ cost
    values = [
        aiq(costs, qualities, (float(model_cost.min()), float(model_cost.max())))
        for costs, qualities, model_cost in zip(
            resampled_cost, resampled_quality, split.resampled_model_cost, strict=True
        )
    ]
    return float(np.std(values, ddof=1))
