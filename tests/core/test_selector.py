"""The selector's rules, their one vectorised form, ties, pinning, calibration and batch allocation."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from scipy.optimize import linprog

from routoo.errors import (
    BudgetExceededError,
    ConfigError,
    DataError,
    NoAdmissibleModelError,
    UnknownModelError,
)
from routoo.policy import RoutingPolicy
from routoo.selector import DEFAULT_RELATIVE_TRADEOFF, Selector, allocate_batch, calibrate, select_columns

# Three models: cheap and weak, mid, expensive and strong.
QUALITY = np.array([0.60, 0.80, 0.90])
COST = np.array([0.001, 0.004, 0.020])
ALL = np.ones(3, dtype=bool)


def random_case(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quality = rng.random((n, m))
    cost = rng.uniform(0.5, 1.5, (n, m)) * np.geomspace(1e-4, 1e-2, m)
    return quality, cost


def tied_case(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Quality on a coarse grid (exact ties), some of it nudged by less than one 1e-12 step
    (near-ties) or by a few steps (no tie), and prices drawn from four (equal costs)."""
    rng = np.random.default_rng(seed)
    quality = rng.choice(np.linspace(0.0, 1.0, 6), (n, m))
    nudged = rng.random((n, m)) < 0.3
    quality[nudged] += rng.choice([-3e-12, -3e-13, 3e-13, 3e-12], nudged.sum())
    cost = rng.choice([1e-4, 2e-4, 1e-3, 4e-3], (n, m))
    return quality, cost


def switch_points(quality: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Every lambda at which some prompt's two models score exactly alike (in exact arithmetic)."""
    gains = quality[:, :, None] - quality[:, None, :]
    extra = cost[:, :, None] - cost[:, None, :]
    switch = (gains > 0) & (extra > 0)
    return np.unique(gains[switch] / extra[switch])


def reference_ranking(
    quality: np.ndarray, cost: np.ndarray, admissible: np.ndarray, policy: RoutingPolicy, lam: float
) -> list[int]:
    """The documented order, written out one model at a time: smallest key first."""

    def steps(score: float) -> int:
        return round(score / 1e-12)

    floor, cap = policy.quality_floor, policy.max_cost
    keys = {}
    for j, (q, c) in enumerate(zip(quality.tolist(), cost.tolist(), strict=True)):
        if not admissible[j] or (cap is not None and c > cap):
            continue
        if floor is not None:
            keys[j] = (0, steps(c), -q, j) if q >= floor else (1, steps(-q), c, j)
        elif cap is not None:
            keys[j] = (0, steps(-q), c, j)
        else:
            keys[j] = (0, steps(-(q - lam * c)), c, j)
    return sorted(keys, key=keys.__getitem__)


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


def test_allow_deny_and_latency_filters_are_the_policys() -> None:
    # The filters themselves moved to RoutingPolicy.filter_reason (tests/core/test_policy.py).
    selector = Selector(allow=["a", "b"], deny=["b"], max_latency_s=2)
    for model, latency in [("a", 1.0), ("a", None), ("c", 1.0), ("b", 1.0), ("a", 3.0)]:
        assert selector.filter_reason(model, latency) == selector.policy.filter_reason(model, latency)


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


def test_a_selector_holds_one_policy() -> None:
    selector = Selector(RoutingPolicy(tradeoff=2, deny=["a"]), max_cost=0.01, quality_floor=None)
    assert selector.policy == RoutingPolicy(tradeoff=2, deny=["a"], max_cost=0.01)
    assert (selector.tradeoff, selector.deny, selector.max_cost, selector.allow) == (2.0, ("a",), 0.01, None)
    assert (selector.quality_floor, selector.max_latency_s, selector.model) == (None, None, None)
    assert Selector(tradeoff=2) == Selector({"tradeoff": 2}) == Selector(RoutingPolicy(tradeoff=2))
    assert hash(Selector(deny=["a"])) == hash(Selector(deny=("a",)))
    with pytest.raises(FrozenInstanceError):
        selector.tradeoff = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"flor=0\.5: Extra inputs"):
        Selector(flor=0.5)


def test_per_call_arguments_are_validated_like_the_policy() -> None:
    with pytest.raises(ConfigError, match=r"quality_floor=1\.5"):
        Selector().select(QUALITY, COST, ALL, quality_floor=1.5)
    with pytest.raises(ConfigError, match="tradeoff"):
        Selector().resolve_tradeoff(COST, ALL, tradeoff=-1)
    with pytest.raises(DataError, match="finite"):
        Selector().select(np.array([0.5, np.nan, 0.9]), COST, ALL)


# ------------------------------------------------------------------------ pinning
NAMES = ["cheap", "mid", "strong"]


def test_a_pinned_model_is_chosen_while_it_is_admissible() -> None:
    selection = Selector(model="mid", tradeoff=0).select(QUALITY, COST, ALL, models=NAMES)
    assert (selection.index, selection.rule) == (1, "pinned")
    assert selection.ranking == [1, 2, 0]  # then the others, as the tradeoff rule ranks them
    floor = Selector(model="strong", quality_floor=0.75).select(QUALITY, COST, ALL, models=NAMES)
    assert (floor.index, floor.rule, floor.ranking) == (2, "pinned", [2, 1, 0])
    pinned_cheap = RoutingPolicy(model="cheap", quality_floor=0.75)
    batch = select_columns(np.tile(QUALITY, (4, 1)), np.tile(COST, (4, 1)), None, pinned_cheap, models=NAMES)
    assert batch.index.tolist() == [0] * 4 and batch.rule.tolist() == ["pinned"] * 4


def test_a_pinned_model_that_cannot_serve_says_why() -> None:
    without_strong = np.array([True, True, False])
    with pytest.raises(NoAdmissibleModelError, match=r"'strong' is not admissible.*deny list"):
        Selector(model="strong", deny=["strong"]).select(QUALITY, COST, without_strong, models=NAMES)
    with pytest.raises(NoAdmissibleModelError, match=r"'strong' is not admissible.*filters or budgets"):
        Selector(model="strong").select(QUALITY, COST, without_strong, models=NAMES)
    with pytest.raises(NoAdmissibleModelError, match=r"'strong' is estimated to cost \$0.02.*max_cost"):
        Selector(model="strong").select(QUALITY, COST, ALL, max_cost=0.005, models=NAMES)
    with pytest.raises(UnknownModelError, match=r"gpt-9.*\['cheap', 'mid', 'strong'\]"):
        Selector(model="gpt-9").select(QUALITY, COST, ALL, models=NAMES)
    with pytest.raises(ConfigError, match="models="):
        Selector(model="mid").select(QUALITY, COST, ALL)


# --------------------------------------------------------------------------- ties
def test_near_ties_within_one_step_go_to_the_cheaper_model() -> None:
    cost = np.array([0.002, 0.001, 0.003])
    # Scores 1e-13 apart tie: the cheaper one (1) wins; 5e-12 apart do not: the better one (2) wins.
    for quality, expected in [([0.5, 0.7, 0.7 + 1e-13], 1), ([0.5, 0.7, 0.7 + 5e-12], 2)]:
        selection = Selector(tradeoff=0).select(np.array(quality), cost, ALL)
        assert selection.index == selection.ranking[0] == expected
        assert Selector(tradeoff=0).select_many(np.array([quality]), cost[None]).tolist() == [expected]
    # Equal prices and near-equal quality: the lower column.
    assert Selector(tradeoff=0).select(np.array([0.7, 0.7 + 1e-13, 0.1]), np.full(3, 0.001), ALL).index == 0
    # Above a floor the cheapest wins; equal prices go to the better model.
    floor = Selector(quality_floor=0.6).select(np.array([0.65, 0.9, 0.3]), np.full(3, 0.001), ALL)
    assert (floor.index, floor.ranking) == (1, [1, 0, 2])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "policy",
    [
        RoutingPolicy(),
        RoutingPolicy(tradeoff=0),
        RoutingPolicy(quality_floor=0.6),
        RoutingPolicy(max_cost=1e-3),
        RoutingPolicy(quality_floor=0.8, max_cost=1e-3),
    ],
    ids=["default", "best", "floor", "max_cost", "floor+max_cost"],
)
def test_rankings_follow_the_documented_order_ties_included(seed: int, policy: RoutingPolicy) -> None:
    quality, cost = tied_case(60, 5, seed)
    admissible = np.random.default_rng(seed).random(quality.shape) < 0.8
    admissible[np.arange(60), np.argmin(cost, axis=1)] = True
    tradeoffs = [None]  # and, for the tradeoff rule, lambdas where models tie exactly
    if policy.quality_floor is None and policy.max_cost is None:
        tradeoffs += switch_points(quality, cost)[::7].tolist()
    for lam in tradeoffs:
        selector = Selector(policy, tradeoff=lam)
        for q, c, a in zip(quality, cost, admissible, strict=True):
            if policy.max_cost is not None and c.min() > policy.max_cost:
                with pytest.raises(NoAdmissibleModelError, match="max_cost"):
                    selector.select(q, c, a)
                continue
            selection = selector.select(q, c, a)
            expected = reference_ranking(q, c, a, selector.policy, selector.resolve_tradeoff(c, a))
            assert selection.index == selection.ranking[0]
            assert selection.ranking == expected


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
@pytest.mark.parametrize("case", [random_case, tied_case], ids=["random", "tied"])
def test_select_many_matches_select_row_by_row(selector: Selector, case) -> None:
    quality, cost = case(200, 4, seed=1)
    admissible = np.random.default_rng(2).random((200, 4)) < 0.8
    admissible[np.arange(200), np.argmin(cost, axis=1)] = True  # max_cost always leaves a model
    chosen = selector.select_many(quality, cost, admissible)
    selections = [selector.select(q, c, a) for q, c, a in zip(quality, cost, admissible, strict=True)]
    assert chosen.tolist() == [selection.index for selection in selections]
    batch = select_columns(quality, cost, admissible, selector.policy)
    assert batch.index.tolist() == chosen.tolist()
    assert batch.rule.tolist() == [selection.rule for selection in selections]


def test_select_columns_takes_a_lambda_per_row_and_names_failing_rows() -> None:
    quality, cost = random_case(50, 3, seed=9)
    lam = np.where(np.arange(50) % 2 == 0, 0.0, np.inf)
    chosen = select_columns(quality, cost, tradeoff=lam).index
    assert chosen[::2].tolist() == quality[::2].argmax(axis=1).tolist()
    assert chosen[1::2].tolist() == cost[1::2].argmin(axis=1).tolist()
    admissible = np.ones((50, 3), dtype=bool)
    admissible[[3, 7]] = False
    with pytest.raises(NoAdmissibleModelError, match=r"rows \[3, 7\] of 50"):
        select_columns(quality, cost, admissible)
    with pytest.raises(NoAdmissibleModelError, match="max_cost"):
        select_columns(quality, cost, None, RoutingPolicy(max_cost=0.0))
    with pytest.raises(ConfigError, match="tradeoff"):
        select_columns(quality, cost, tradeoff=np.full(3, 1.0))
    with pytest.raises(ConfigError, match=r"\(n, m\)"):
        select_columns(quality[0], cost[0])


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
