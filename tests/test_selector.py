"""The selector's rules, its vectorised form, calibration and batch allocation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from routoo.errors import BudgetExceededError, ConfigError, NoAdmissibleModelError
from routoo.selector import DEFAULT_RELATIVE_TRADEOFF, Selector, allocate_batch, calibrate

# Three models: cheap and weak, mid, expensive and strong.
QUALITY = np.array([0.60, 0.80, 0.90])
COST = np.array([0.001, 0.004, 0.020])
ALL = np.ones(3, dtype=bool)


def random_case(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quality = rng.random((n, m))
    cost = rng.uniform(0.5, 1.5, (n, m)) * np.geomspace(1e-4, 1e-2, m)
    return quality, cost


# ------------------------------------------------------------------------- rules
def test_zero_tradeoff_picks_the_best_predicted_model() -> None:
    selection = Selector(tradeoff=0).select(QUALITY, COST, ALL)
    assert (selection.index, selection.rule) == (2, "tradeoff")
    assert selection.ranking == [2, 1, 0]


def test_ties_go_to_the_cheaper_model() -> None:
    selection = Selector(tradeoff=0).select(np.array([0.9, 0.9, 0.9]), COST, ALL)
    assert selection.index == 0


def test_a_large_tradeoff_picks_the_cheapest_model() -> None:
    assert Selector(tradeoff=1e6).select(QUALITY, COST, ALL).index == 0


def test_the_tradeoff_maximises_quality_minus_lambda_cost() -> None:
    # lambda = 20: scores 0.58, 0.72, 0.50.
    selection = Selector(tradeoff=20).select(QUALITY, COST, ALL)
    assert selection.index == 1
    assert selection.ranking == [1, 0, 2]


def test_the_default_tradeoff_pays_only_for_a_clear_quality_gain() -> None:
    selector = Selector()
    # The priciest model costs 20x more and is predicted only 0.02 better: not worth it.
    assert selector.select(np.array([0.80, 0.81, 0.82]), COST, ALL).index == 0
    # Predicted 0.3 better than the cheap one: worth its price.
    assert selector.select(np.array([0.50, 0.55, 0.80]), COST, ALL).index == 2
    lam = selector.resolve_tradeoff(COST, ALL)
    assert lam == pytest.approx(DEFAULT_RELATIVE_TRADEOFF / COST.max())


def test_quality_floor_picks_the_cheapest_model_reaching_it() -> None:
    selection = Selector(quality_floor=0.75).select(QUALITY, COST, ALL)
    assert (selection.index, selection.rule) == (1, "quality_floor")
    assert selection.ranking == [1, 2, 0]


def test_an_unreachable_quality_floor_falls_back_to_the_best_predicted() -> None:
    selection = Selector().select(QUALITY, COST, ALL, quality_floor=0.95)
    assert (selection.index, selection.rule) == (2, "quality_floor_unreachable")


def test_max_cost_picks_the_best_model_within_it() -> None:
    selection = Selector(max_cost=0.005).select(QUALITY, COST, ALL)
    assert (selection.index, selection.rule) == (1, "max_cost")
    assert selection.ranking == [1, 0]


def test_max_cost_below_every_model_is_an_error() -> None:
    with pytest.raises(NoAdmissibleModelError, match="max_cost"):
        Selector().select(QUALITY, COST, ALL, max_cost=0.0001)


def test_max_cost_and_quality_floor_combine() -> None:
    # The floor's cheapest reaching model (1) is within the cap; the best (2) is not.
    selection = Selector(quality_floor=0.85).select(QUALITY, COST, ALL, max_cost=0.005)
    assert (selection.index, selection.rule) == (1, "quality_floor_unreachable")


def test_inadmissible_models_are_never_chosen() -> None:
    admissible = np.array([True, True, False])
    selection = Selector(tradeoff=0).select(QUALITY, COST, admissible)
    assert selection.index == 1
    assert 2 not in selection.ranking
    with pytest.raises(NoAdmissibleModelError):
        Selector().select(QUALITY, COST, np.zeros(3, dtype=bool))


def test_per_call_arguments_override_the_selector() -> None:
    selector = Selector(tradeoff=1e6)
    assert selector.select(QUALITY, COST, ALL, tradeoff=0).index == 2


def test_allow_deny_and_latency_filters() -> None:
    selector = Selector(allow=["a", "b"], deny=["b"], max_latency_s=2)
    assert selector.filter_reason("a", 1.0) is None
    assert selector.filter_reason("a", None) is None  # unknown latency is not held against a model
    assert "allow" in selector.filter_reason("c", 1.0)
    assert "deny" in selector.filter_reason("b", 1.0)
    assert "latency" in selector.filter_reason("a", 3.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tradeoff", -1),
        ("tradeoff", "high"),
        ("quality_floor", 1.5),
        ("max_cost", float("nan")),
        ("max_latency_s", True),
    ],
)
def test_bad_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        Selector(**{field: value})


def test_allow_must_be_a_list_of_names() -> None:
    with pytest.raises(ConfigError, match="allow"):
        Selector(allow="gpt-4o")


# ------------------------------------------------------------------- select_many
@pytest.mark.parametrize(
    "selector",
    [
        Selector(),
        Selector(tradeoff=0),
        Selector(tradeoff=50),
        Selector(quality_floor=0.7),
        Selector(max_cost=0.004),
    ],
    ids=["default", "best", "lambda", "floor", "max_cost"],
)
def test_select_many_matches_select_row_by_row(selector: Selector) -> None:
    quality, cost = random_case(200, 4, seed=1)
    admissible = np.random.default_rng(2).random((200, 4)) < 0.8
    admissible[:, 0] = True  # the cheapest stays, so max_cost always leaves a model
    chosen = selector.select_many(quality, cost, admissible)
    expected = [selector.select(q, c, a).index for q, c, a in zip(quality, cost, admissible, strict=True)]
    assert chosen.tolist() == expected


# ------------------------------------------------------------------- calibration
@pytest.mark.parametrize(
    ("target", "value"), [("avg_cost", 0.002), ("strong_share", 0.15), ("avg_quality", 0.7)]
)
def test_calibration_hits_its_target_on_the_sample(target: str, value: float) -> None:
    quality, cost = random_case(2000, 4, seed=3)
    lam = calibrate(quality, cost, target, value)
    chosen = Selector(tradeoff=lam).select_many(quality, cost)
    rows = np.arange(len(quality))
    achieved = {
        "avg_cost": cost[rows, chosen].mean(),
        "strong_share": np.mean(chosen == 3),
        "avg_quality": quality[rows, chosen].mean(),
    }[target]
    assert lam.achieved == pytest.approx(achieved)
    assert achieved == pytest.approx(value, rel=0.01)
    # The target holds on the side asked for: at most the cost or share, at least the quality.
    assert achieved >= value if target == "avg_quality" else achieved <= value


def test_two_model_calibration_is_a_threshold_on_the_quality_gap() -> None:
    quality, cost = random_case(500, 2, seed=4)
    cost[:] = [0.001, 0.03]  # fixed prices per call, as in RouteLLM
    lam = calibrate(quality, cost, "strong_share", 0.25, strong_model_index=1)
    chosen = Selector(tradeoff=lam).select_many(quality, cost)
    gap = quality[:, 1] - quality[:, 0]
    # Every prompt sent to the strong model has a larger predicted gap than every other one,
    # and the threshold sits where lambda says.
    assert gap[chosen == 1].min() > gap[chosen == 0].max()
    assert gap[chosen == 0].max() <= lam * (0.03 - 0.001) + 1e-9 < gap[chosen == 1].min()
    assert np.mean(chosen == 1) == pytest.approx(0.25, abs=1 / 500)


def test_calibration_rejects_unreachable_targets() -> None:
    quality, cost = random_case(100, 3, seed=5)
    with pytest.raises(ConfigError, match="unreachable"):
        calibrate(quality, cost, "avg_cost", cost.min(axis=1).mean() / 2)
    with pytest.raises(ConfigError, match="unreachable"):
        calibrate(quality, cost, "avg_quality", 1.01)
    with pytest.raises(ConfigError, match="target"):
        calibrate(quality, cost, "accuracy", 0.5)


# ------------------------------------------------------------ batch allocation
def lp_bound(quality: np.ndarray, cost: np.ndarray, budget: float) -> float:
    """The LP relaxation optimum: an upper bound on any integer allocation's total quality."""
    n, m = quality.shape
    one_per_prompt = np.kron(np.eye(n), np.ones(m))
    result = linprog(
        -quality.ravel(),
        A_ub=cost.ravel()[None, :],
        b_ub=[budget],
        A_eq=one_per_prompt,
        b_eq=np.ones(n),
        bounds=(0, 1),
        method="highs",
    )
    assert result.success
    return -result.fun


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("share", [0.2, 0.5, 0.8])
def test_allocate_batch_is_within_one_percent_of_the_lp_optimum(seed: int, share: float) -> None:
    quality, cost = random_case(150, 4, seed=seed)
    low, high = cost.min(axis=1).sum(), cost.max(axis=1).sum()
    budget = low + share * (high - low)
    chosen = allocate_batch(quality, cost, budget)
    rows = np.arange(len(quality))
    assert cost[rows, chosen].sum() <= budget + 1e-12
    assert quality[rows, chosen].sum() >= 0.99 * lp_bound(quality, cost, budget)


def test_allocate_batch_with_a_generous_budget_takes_the_best_everywhere() -> None:
    quality, cost = random_case(50, 3, seed=7)
    chosen = allocate_batch(quality, cost, budget_usd=10.0)
    np.testing.assert_array_equal(chosen, quality.argmax(axis=1))


def test_allocate_batch_rejects_a_budget_below_the_cheapest_models() -> None:
    quality, cost = random_case(20, 3, seed=8)
    with pytest.raises(BudgetExceededError, match="cheapest"):
        allocate_batch(quality, cost, budget_usd=cost.min(axis=1).sum() * 0.9)
    with pytest.raises(ConfigError, match="budget_usd"):
        allocate_batch(quality, cost, budget_usd=-1)
