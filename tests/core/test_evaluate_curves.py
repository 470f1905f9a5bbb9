"""The evaluator's curves choose exactly as the Router does: one selection rule, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from test_selector import switch_points, tied_case

from routoo.evaluate import choose_models, strong_share_curve, trade_off_grid
from routoo.selector import Selector


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("per_model_cost", [False, True], ids=["per-prompt cost", "per-model cost"])
def test_the_evaluator_chooses_what_the_router_deploys(seed: int, per_model_cost: bool) -> None:
    quality, cost = tied_case(150, 5, seed)
    if per_model_cost:  # what evaluate() trades against: one estimate per model
        cost = cost[0]
    full_cost = np.broadcast_to(cost, quality.shape)
    # The sweep's own grid, plus lambdas at which two models of a prompt tie exactly.
    switches = switch_points(quality, full_cost)
    trade_offs = np.concatenate(
        [trade_off_grid(quality, cost, 30, seed), switches[:: max(1, switches.size // 30)]]
    )
    choices = choose_models(quality, cost, trade_offs)
    admissible = np.ones(quality.shape[1], dtype=bool)
    decided_by_a_tie = 0
    for column, trade_off in enumerate(trade_offs):
        selector = Selector(tradeoff=trade_off)  # as the Router holds it, or as route(tradeoff=...) sets it
        routed = [selector.select(q, c, admissible) for q, c in zip(quality, full_cost, strict=True)]
        assert choices[:, column].tolist() == [selection.index for selection in routed]
        score = quality - trade_off * full_cost
        best = score.max(axis=1, keepdims=True)
        decided_by_a_tie += int(((best - score < 1e-12).sum(axis=1) > 1).sum())
    assert decided_by_a_tie > 100  # the cases really hinge on ties and near-ties


def test_two_model_threshold_curve_points_are_choices_of_the_rule() -> None:
    # With one price per model, RouteLLM's threshold on the predicted gap is the tradeoff rule
    # at lambda = threshold / price gap: each curve point is the rule's choice there.
    rng = np.random.default_rng(11)
    quality = rng.integers(0, 9, (300, 2)) / 8  # exact gaps in binary, many of them tied
    cost = np.array([0.001, 0.004])
    truth = rng.random(quality.shape)
    gap = quality[:, 1] - quality[:, 0]
    shares, qualities = strong_share_curve(gap, truth[:, 0], truth[:, 1])
    positive = np.unique(gap[gap > 0])[::-1]  # thresholds the rule reaches with lambda >= 0
    thresholds = (positive[1:] + positive[:-1]) / 2  # between two distinct gaps
    choices = choose_models(quality, cost, thresholds / (cost[1] - cost[0]))
    for k, choice in enumerate(choices.T):
        share = np.mean(choice == 1)
        assert share == pytest.approx(shares[k + 1])
        assert truth[np.arange(len(truth)), choice].mean() == pytest.approx(qualities[k + 1])
