"""Cost-aware selection on a predicted quality matrix, swept over its trade-off to trace curves.

For a trade-off ``λ ≥ 0`` a router sends each prompt to ``argmax_j predicted[i, j] - λ cost[i, j]``,
chosen by ``routoo.selector.select_columns``: the very rule (ties included) the Router runs.
``λ = 0`` picks the best predicted model; a large enough ``λ`` picks the cheapest. Ties go
to the cheaper model, so a perfect predictor at ``λ = 0`` is the oracle.
"""

from __future__ import annotations

import numpy as np

from routoo.selector import select_columns

# Elements of the largest temporary array the grid builds (prompts x models x models).
_CHUNK_ELEMENTS = 4_000_000
# Pairwise switch points kept to place the trade-off grid (a uniform sample beyond that).
_GRID_SAMPLE = 100_000


def choose_models(predicted: np.ndarray, cost: np.ndarray, trade_offs: np.ndarray) -> np.ndarray:
    """Model index per prompt and trade-off: shape ``(n_prompts, len(trade_offs))``.

    ``predicted`` is ``(n, m)``; ``cost`` is ``(m,)`` (one estimate per model) or ``(n, m)``.
    Each column is the selector's tradeoff rule at that ``λ``.
    """
    # Column-major, as select_columns works, once for every trade-off.
    predicted = np.asfortranarray(predicted, dtype=np.float64)
    cost = np.asfortranarray(np.broadcast_to(np.asarray(cost, dtype=np.float64), predicted.shape))
    trade_offs = np.asarray(trade_offs, dtype=np.float64)
    choices = np.empty((len(predicted), trade_offs.size), dtype=np.int64)
    for column, trade_off in enumerate(trade_offs):
        choices[:, column] = select_columns(predicted, cost, tradeoff=trade_off).index
    return choices


def trade_off_grid(predicted: np.ndarray, cost: np.ndarray, n_points: int = 200, seed: int = 0) -> np.ndarray:
    """Increasing trade-offs from 0 (best predicted) to one that picks the cheapest model everywhere.

    Between the two ends the grid sits at quantiles of the pairwise switch points
    ``(p_ij - p_ik) / (c_ij - c_ik)`` (the ``λ`` where prompt ``i`` would leave the cheaper
    model ``k`` for ``j``), so grid points fall where choices actually change.
    """
    if n_points < 3:
        raise ValueError(f"a trade-off grid needs at least 3 points, got {n_points}")
    predicted = np.asarray(predicted, dtype=np.float64)
    n, m = predicted.shape
    cost = np.broadcast_to(np.asarray(cost, dtype=np.float64), (n, m))
    rows = np.arange(n)
    cheapest = np.argmin(cost, axis=1)
    gain = predicted - predicted[rows, cheapest][:, None]
    extra_cost = cost - cost[rows, cheapest][:, None]
    leaves_cheapest = (gain > 0) & (extra_cost > 0)
    if not leaves_cheapest.any():
        return np.zeros(1)  # every prompt already goes to its cheapest model at λ = 0
    # Above this trade-off no model beats the cheapest one on any prompt.
    all_cheapest = float((gain[leaves_cheapest] / extra_cost[leaves_cheapest]).max()) * (1 + 1e-6)

    rng = np.random.default_rng(seed)
    keep_share = min(1.0, _GRID_SAMPLE / max(1, n * m * (m - 1) // 2))
    sampled = [np.array([all_cheapest])]
    chunk = max(1, _CHUNK_ELEMENTS // (m * m))
    for start in range(0, n, chunk):
        p, c = predicted[start : start + chunk], cost[start : start + chunk]
        gains = p[:, :, None] - p[:, None, :]
        extra = c[:, :, None] - c[:, None, :]
        leaves = (gains > 0) & (extra > 0)
        switch = gains[leaves] / extra[leaves]
        if switch.size:
            sampled.append(np.array([switch.min()]))
            sampled.append(switch[rng.random(switch.size) < keep_share])
    quantiles = np.quantile(np.concatenate(sampled), np.linspace(0.0, 1.0, n_points - 2))
    return np.unique(np.concatenate([[0.0], quantiles, [all_cheapest]]))


def strong_share_curve(
    score: np.ndarray, weak_quality: np.ndarray, strong_quality: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A two-model threshold sweep: ``(share of strong calls, average quality)`` per threshold.

    A prompt goes to the strong model when ``score >= threshold``; every distinct score is
    a threshold (the finest quantile grid), plus one above all scores (no strong calls).
    Tied prompts cannot be split by a threshold, so shares step over tie groups.
    """
    score = np.asarray(score, dtype=np.float64)
    n = score.size
    order = np.argsort(-score, kind="stable")
    gain = (np.asarray(strong_quality) - np.asarray(weak_quality))[order]
    cumulative_gain = np.concatenate([[0.0], np.cumsum(gain)])
    sorted_score = score[order]
    cuts = np.concatenate([[0], np.flatnonzero(sorted_score[1:] != sorted_score[:-1]) + 1, [n]])
    qualities = (np.sum(weak_quality) + cumulative_gain[cuts]) / n
    return cuts / n, qualities
