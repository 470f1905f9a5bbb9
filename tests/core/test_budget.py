"""Budgets: the ledger, hard refusals, soft pressure, scopes and thread safety."""

from __future__ import annotations

import asyncio
import threading

import pytest

from routoo.budget import (
    MAX_TRADEOFF_PRESSURE,
    Budget,
    SpendRecord,
    budget_scope,
    carry_budgets,
    open_budgets,
)
from routoo.errors import BudgetExceededError, ConfigError, RoutooError


def record(cost: float) -> SpendRecord:
    return SpendRecord("m", cost, prompt_tokens=10, completion_tokens=5)


def test_reserve_settle_and_release_keep_the_books() -> None:
    budget = Budget(1.0)
    first, second = budget.reserve(0.3), budget.reserve(0.2)
    assert budget.reserved == pytest.approx(0.5)
    assert budget.remaining == pytest.approx(0.5)
    budget.settle(first, 0.25, record(0.25))
    budget.release(second)
    assert (budget.spent, budget.reserved) == (pytest.approx(0.25), 0.0)
    assert budget.remaining == pytest.approx(0.75)
    assert [r.cost_usd for r in budget.records] == [0.25]
    budget.release(second)  # releasing twice is harmless
    with pytest.raises(RoutooError, match="not open"):
        budget.settle(first, 0.1, record(0.1))


def test_a_hard_budget_refuses_what_does_not_fit_and_says_how_much() -> None:
    budget = Budget(0.10, name="team")
    budget.settle(budget.reserve(0.06), 0.06, record(0.06))
    budget.reserve(0.03)
    with pytest.raises(
        BudgetExceededError, match=r"'team'.*\$0\.06 spent.*\$0\.03 reserved.*\$0\.1"
    ) as caught:
        budget.reserve(0.02)
    assert "0.02" in str(caught.value)


def test_a_soft_budget_refuses_nothing() -> None:
    budget = Budget(0.01, mode="soft")
    budget.settle(budget.reserve(0.05), 0.05, record(0.05))
    assert budget.spent == pytest.approx(0.05)
    assert budget.remaining == 0.0
    assert budget.tradeoff_pressure() == MAX_TRADEOFF_PRESSURE


def test_soft_pressure_stays_at_one_on_pace_and_grows_when_overspending() -> None:
    budget = Budget(1.0, mode="soft", expected_calls=10)
    assert budget.tradeoff_pressure() == 1.0
    for _ in range(5):  # half the calls for half the money: on pace
        budget.settle(budget.reserve(0.1), 0.1, record(0.1))
    assert budget.tradeoff_pressure() == pytest.approx(1.0)
    budget.settle(budget.reserve(0.3), 0.3, record(0.3))
    # Pace 0.8/6 per call against 0.2 left for 4 calls: pressure (0.8/6)/(0.2/4).
    assert budget.tradeoff_pressure() == pytest.approx((0.8 / 6) / (0.2 / 4))


def test_soft_pressure_without_expected_calls_grows_as_the_budget_drains() -> None:
    budget = Budget(1.0, mode="soft")
    assert budget.tradeoff_pressure() == 1.0
    budget.settle(budget.reserve(0.5), 0.5, record(0.5))
    assert budget.tradeoff_pressure() == pytest.approx(2.0)
    budget.settle(budget.reserve(0.25), 0.25, record(0.25))
    assert budget.tradeoff_pressure() == pytest.approx(4.0)


def test_hard_budgets_exert_no_pressure() -> None:
    budget = Budget(1.0)
    budget.settle(budget.reserve(0.9), 0.9, record(0.9))
    assert budget.tradeoff_pressure() == 1.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit_usd": -1}, "limit_usd"),
        ({"limit_usd": "ten"}, "limit_usd"),
        ({"limit_usd": float("inf")}, "limit_usd"),
        ({"limit_usd": 1, "mode": "strict"}, "mode"),
        ({"limit_usd": 1, "expected_calls": 0}, "expected_calls"),
        ({"limit_usd": 1, "expected_calls": 2.5}, "expected_calls"),
    ],
)
def test_bad_budgets_name_what_is_wrong(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        Budget(**kwargs)


def test_a_negative_estimate_is_refused() -> None:
    with pytest.raises(ConfigError, match="estimate_usd"):
        Budget(1.0).reserve(-0.1)


def test_scopes_nest_outermost_first_and_close() -> None:
    assert open_budgets() == ()
    with budget_scope(1.0) as outer:
        with budget_scope(Budget(0.5, mode="soft")) as inner:
            assert open_budgets() == (outer, inner)
        assert open_budgets() == (outer,)
    assert open_budgets() == ()
    with pytest.raises(ConfigError, match="limit_usd"), budget_scope(-5):
        pass
    with pytest.raises(ConfigError, match="existing Budget"), budget_scope(Budget(1.0), mode="soft"):
        pass
    with budget_scope(2.0, mode="soft", expected_calls=4, name="trial") as made:
        assert (made.limit_usd, made.mode, made.expected_calls, made.name) == (2.0, "soft", 4, "trial")


async def test_scopes_reach_asyncio_tasks_started_inside() -> None:
    async def seen() -> tuple[Budget, ...]:
        return open_budgets()

    with budget_scope(1.0) as budget:
        task = asyncio.create_task(seen())
    assert await task == (budget,)


def test_a_budget_opened_twice_is_charged_once_and_none_opens_nothing() -> None:
    shared = Budget(1.0, name="shared")
    with budget_scope(shared), budget_scope(None) as nothing, budget_scope(shared) as again:
        assert nothing is None and again is shared
        assert open_budgets() == (shared,)
    assert open_budgets() == ()


def test_concurrent_reservations_never_pass_a_hard_limit() -> None:
    budget = Budget(1.0)
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            try:
                reservation = budget.reserve(0.01)
            except BudgetExceededError:
                continue
            with lock:
                granted.append(1)
            budget.settle(reservation, 0.01, record(0.01))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 99 <= len(granted) == len(budget.records) <= 100  # float sums may stop one short
    assert budget.spent <= 1.0 + 1e-9
    assert budget.spent == pytest.approx(0.01 * len(granted))


def test_a_reservation_says_why_and_a_refusal_repeats_it() -> None:
    budget = Budget(0.01, name="why")
    reservation = budget.reserve(0.004, "gpt: 10 prompt + up to 100 output tokens")
    assert reservation.why == "gpt: 10 prompt + up to 100 output tokens"
    with pytest.raises(BudgetExceededError, match=r"reserving \$0\.007 \(gpt: 10 prompt \+ up to 100"):
        budget.reserve(0.007, "gpt: 10 prompt + up to 100 output tokens")


def test_carry_budgets_binds_a_function_to_the_open_budgets_in_any_thread() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with budget_scope(1.0) as outer, budget_scope(Budget(0.5, mode="soft")) as inner:
        carried = carry_budgets(open_budgets)
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert pool.submit(open_budgets).result() == ()
        assert set(pool.map(lambda _: carried(), range(8))) == {(outer, inner)}
    with budget_scope(outer), budget_scope(2.0) as own:
        assert carried() == (outer, inner, own)  # scopes open where it runs nest inside, each once
    assert open_budgets() == ()
