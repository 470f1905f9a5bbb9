"""Curve metrics and the trade-off sweep, checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from routoo.errors import DataError
from routoo.evaluate import (
    aiq,
    apgr,
    call_performance_threshold,
    choose_models,
    cost_to_reach,
    nondecreasing_hull,
    quality_at_cost,
    strong_share_curve,
    trade_off_grid,
)


def test_hull_keeps_the_concave_nondecreasing_front():
    # (2.5, .3) and (3, .4) are beaten by the cheaper (2, .5); (2, .5) lies above the chord
    # from (1, .2) to (4, .9), which passes 0.2 + 0.7/3 ≈ 0.433 at cost 2; (5, .8) is dearer
    # and worse than (4, .9).
    costs = np.array([3.0, 1.0, 2.5, 4.0, 2.0, 5.0])
    qualities = np.array([0.4, 0.2, 0.3, 0.9, 0.5, 0.8])
    hull_costs, hull_qualities = nondecreasing_hull(costs, qualities)
    assert hull_costs.tolist() == [1.0, 2.0, 4.0]
    assert hull_qualities.tolist() == [0.2, 0.5, 0.9]


def test_hull_drops_a_vertex_below_the_chord():
    # (2, .4) is under the chord from (1, .2) to (3, .9), which passes 0.55 at cost 2.
    hull_costs, _ = nondecreasing_hull(np.array([1.0, 2.0, 3.0]), np.array([0.2, 0.4, 0.9]))
    assert hull_costs.tolist() == [1.0, 3.0]


def test_aiq_interpolates_points_beyond_the_cost_range():
    # The hull from (0.5, .4) to (3, .8) rises 0.16 per dollar: 0.48 at c_min = 1 and 0.64 at
    # c_max = 2, so the area is (0.48 + 0.64) / 2 over a range of 1.
    assert aiq(np.array([0.5, 3.0]), np.array([0.4, 0.8]), (1.0, 2.0)) == pytest.approx(0.56)


def test_aiq_counts_budgets_below_the_router_as_zero():
    # One point at cost 2 in range [1, 3]: zero on [1, 2], flat 0.6 on [2, 3]: 0.6 / 2.
    assert aiq(np.array([2.0]), np.array([0.6]), (1.0, 3.0)) == pytest.approx(0.3)
    # The router's hull starts at cost 4 beyond the whole range: nothing is reachable.
    assert aiq(np.array([4.0]), np.array([0.9]), (1.0, 3.0)) == 0.0


def test_aiq_on_a_single_budget_is_the_hull_there():
    assert aiq(np.array([1.0, 2.0]), np.array([0.5, 0.7]), (2.0, 2.0)) == pytest.approx(0.7)
    assert aiq(np.array([3.0]), np.array([0.7]), (2.0, 2.0)) == 0.0


def test_quality_at_cost_and_cost_to_reach_read_the_hull():
    hull = nondecreasing_hull(np.array([1.0, 3.0]), np.array([0.2, 0.6]))
    assert quality_at_cost(hull, 2.0) == pytest.approx(0.4)
    assert quality_at_cost(hull, 10.0) == pytest.approx(0.6)  # flat beyond the last point
    assert quality_at_cost(hull, 0.5) is None  # cheaper than the router can run
    assert cost_to_reach(hull, 0.5) == pytest.approx(2.5)
    assert cost_to_reach(hull, 0.1) == pytest.approx(1.0)
    assert cost_to_reach(hull, 0.7) is None


def test_apgr_and_cpt_on_a_hand_drawn_curve():
    # PGR = (q - 0.2) / 0.4: 0, 0.5, 1 at shares 0, 0.5, 1. Area: 0.125 + 0.375 = 0.5.
    shares, qualities = np.array([0.0, 0.5, 1.0]), np.array([0.2, 0.4, 0.6])
    assert apgr(shares, qualities, 0.2, 0.6) == pytest.approx(0.5)
    assert call_performance_threshold(shares, qualities, 0.2, 0.6, level=0.5) == pytest.approx(0.5)
    # 0.8 lies 0.3 of the way up the second segment's rise of 0.5: 0.5 + 0.6 * 0.5.
    assert call_performance_threshold(shares, qualities, 0.2, 0.6, level=0.8) == pytest.approx(0.8)
    # A curve that does not span 0..1, or models with no gap, have no APGR.
    assert apgr(np.array([0.5]), np.array([0.4]), 0.2, 0.6) is None
    assert apgr(shares, qualities, 0.4, 0.4) is None


def test_strong_share_curve_steps_over_tied_scores():
    # Scores sorted: 0.9 (gain 0), then 0.5 and 0.5 tied (gains 1 and 0): the tie moves together.
    weak, strong = np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.0])
    shares, qualities = strong_share_curve(np.array([0.5, 0.9, 0.5]), weak, strong)
    assert shares.tolist() == pytest.approx([0.0, 1 / 3, 1.0])
    assert qualities.tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3])


def test_trade_off_grid_runs_from_best_predicted_to_cheapest():
    rng = np.random.default_rng(0)
    predicted = rng.random((50, 4))
    cost = np.array([0.5, 0.1, 2.0, 1.0])
    grid = trade_off_grid(predicted, cost, n_points=40)
    assert grid[0] == 0.0 and np.all(np.diff(grid) > 0) and grid.size <= 40
    choices = choose_models(predicted, cost, grid)
    assert np.array_equal(choices[:, 0], predicted.argmax(axis=1))
    assert np.all(choices[:, -1] == 1)


def test_choose_models_breaks_ties_toward_the_cheaper_model():
    predicted = np.array([[0.7, 0.7, 0.7]])
    cost = np.array([[3.0, 1.0, 2.0]])
    assert choose_models(predicted, cost, np.array([0.0, 1.0])).tolist() == [[1, 1]]


def test_curve_metrics_reject_malformed_points():
    with pytest.raises(DataError, match="equally long"):
        aiq(np.array([1.0, 2.0]), np.array([0.5]), (1.0, 2.0))
    with pytest.raises(DataError, match="finite"):
        nondecreasing_hull(np.array([1.0, np.nan]), np.array([0.5, 0.6]))
