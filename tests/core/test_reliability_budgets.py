"""Hard budgets as true caps under attack: answers longer than estimated, missing usage, random
latency and failures, hundreds of concurrent calls, thread pools, nested scopes, cancellation and
dropped streams. After every attack: spend within each hard limit, nothing left reserved, books that agree.

Calls go to ``routoo.testing``'s scripted provider; nothing here asserts on timings.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import MATH_PROMPT, POEM_PROMPT, POOL
from reliability_support import fitted

from routoo.budget import Budget, budget_scope, carry_budgets, open_budgets
from routoo.errors import BudgetExceededError
from routoo.router import Router
from routoo.testing import ScriptedLLM, register_scripted_provider


@pytest.fixture
def llm() -> ScriptedLLM:
    return register_scripted_provider(seed=13)


@pytest.fixture
def router(llm: ScriptedLLM) -> Router:
    return Router(POOL, fitted())


def bound(router: Router, prompt: str = MATH_PROMPT, **call: object) -> float:
    """What a hard budget reserves for the call's chosen model."""
    decision = router.route(prompt, **call)
    return decision.candidate(decision.model).cost_bound


def assert_closed(*budgets: Budget) -> None:
    for budget in budgets:
        assert budget.reserved == 0, budget
        if budget.mode == "hard":
            assert budget.spent <= budget.limit_usd, budget


# --------------------------------------------------------------------- concurrency
async def test_hundreds_of_concurrent_long_answers_never_pass_nested_hard_caps(
    router: Router, llm: ScriptedLLM
) -> None:
    for model in router.models:  # answers far longer than expected, slow at random, failing at random
        llm.behave(model, answer_words=3000, latency_s=(0.0, 0.005))
        llm.fail(model, "server_error", times=None, rate=0.1)
    per_call = bound(router, max_tokens=300)
    chains = [Budget(6 * per_call, name=f"chain {i}") for i in range(10)]

    async def chain_run(chain: Budget, calls: int) -> list[object]:
        with budget_scope(chain):  # a chain's budget inside the global one, as LangChain runs nest
            return await asyncio.gather(
                *(router.acompletion(MATH_PROMPT, max_tokens=300) for _ in range(calls)),
                return_exceptions=True,
            )

    with budget_scope(40 * per_call, name="global") as total:
        results = [r for rs in await asyncio.gather(*(chain_run(c, 25) for c in chains)) for r in rs]
    assert len(results) == 250
    answered = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert (
        answered
        and refused
        and len(answered) + len(refused) + sum(type(r).__name__ == "AllModelsFailedError" for r in results)
        == len(results)
    )
    assert_closed(total, *chains)
    # The answers really ran past their estimates, so reserving the estimate would have overspent.
    assert max(r.cost_usd - r.decision.candidate(r.model).estimated_cost for r in answered) > 0
    assert total.spent == pytest.approx(sum(chain.spent for chain in chains))
    assert total.spent == pytest.approx(sum(r.cost_usd for r in answered)) == router.spent


def test_a_thread_pool_is_capped_through_carry_budgets(router: Router, llm: ScriptedLLM) -> None:
    llm.behave("scripted/small", answer_words=3000, latency_s=(0.0, 0.002))
    per_call = bound(router, max_tokens=200)
    with budget_scope(10 * per_call, name="pool") as budget, ThreadPoolExecutor(max_workers=8) as pool:
        call = carry_budgets(lambda prompt: router.completion(prompt, max_tokens=200))
        outcomes = [f.exception() or f.result() for f in [pool.submit(call, MATH_PROMPT) for _ in range(40)]]
    answered = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert answered and refused and all(isinstance(o, BudgetExceededError) for o in refused)
    assert len(budget.records) == len(answered) == len(llm.calls)
    assert_closed(budget)


def test_a_plain_thread_pool_does_not_see_the_scope_as_documented(router: Router) -> None:
    # contextvars do not cross into a ThreadPoolExecutor's threads: carry_budgets (above) is the way.
    with budget_scope(1.0), ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(open_budgets).result() == ()
        assert len(pool.submit(carry_budgets(open_budgets)).result()) == 1


def test_a_budget_open_twice_is_charged_once(router: Router) -> None:
    shared = Budget(1.0, name="shared")
    with budget_scope(shared), budget_scope(Budget(1.0, name="inner")) as inner, budget_scope(shared):
        routed = carry_budgets(router.completion)(MATH_PROMPT)  # carried onto the same budgets: no double
    assert shared.spent == pytest.approx(routed.cost_usd) == inner.spent
    assert len(shared.records) == 1


# ------------------------------------------------------------------- missing usage
def test_answers_without_usage_are_counted_never_free(
    router: Router, llm: ScriptedLLM, caplog: pytest.LogCaptureFixture
) -> None:
    for model in router.models:
        llm.behave(model, usage=False)
    with caplog.at_level(logging.WARNING, logger="routoo"), budget_scope(0.001, name="tiny cap") as budget:
        outcomes = []
        for _ in range(200):
            try:
                outcomes.append(router.completion(POEM_PROMPT, max_tokens=40))
            except BudgetExceededError as error:
                outcomes.append(error)
    answered = [o for o in outcomes if not isinstance(o, BudgetExceededError)]
    assert answered and len(answered) < 200  # the cap was reached, not passed by $0 answers
    assert all(r.cost_usd > 0 and r.usage["completion_tokens"] > 0 for r in answered)
    assert {record.basis for record in budget.records} == {"counted"}
    assert "without token usage" in caplog.text
    assert_closed(budget)


def test_a_stream_without_usage_is_counted(router: Router, llm: ScriptedLLM) -> None:
    llm.behave("scripted/small", usage=False)
    with budget_scope(1.0) as budget:
        stream = router.stream(MATH_PROMPT)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text and stream.usage["completion_tokens"] > 0 and stream.cost_usd > 0
    assert budget.records[-1].basis == "counted"
    assert_closed(budget)


# -------------------------------------------------------------------- cancellation
async def test_wait_for_timeouts_charge_their_reservations_and_leak_nothing(
    router: Router, llm: ScriptedLLM
) -> None:
    llm.behave("scripted/small", latency_s=30.0)  # never answers in time
    per_call = bound(router)
    with budget_scope(100 * per_call) as budget:
        outcomes = await asyncio.gather(
            *(asyncio.wait_for(router.acompletion(MATH_PROMPT), 1.0) for _ in range(50)),
            return_exceptions=True,
        )
    assert all(isinstance(outcome, TimeoutError) for outcome in outcomes)
    # A call handed to litellm may have reached the provider: it is charged what it reserved (what
    # it billed is unknown); one cancelled while it was still being decided reserved nothing.
    charged = len(budget.records)
    assert llm.calls_to("scripted/small") <= charged <= 50 and charged > 0
    assert {record.basis for record in budget.records} == {"reserved"}
    assert budget.spent == pytest.approx(charged * per_call)
    assert router.spent == pytest.approx(budget.spent)
    assert_closed(budget)


def test_an_interrupted_call_charges_its_reservation(
    router: Router, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(llm, "completion", interrupted)
    with budget_scope(1.0) as budget, pytest.raises(KeyboardInterrupt):
        router.completion(MATH_PROMPT)
    assert budget.records[-1].basis == "reserved" and budget.spent == pytest.approx(bound(router))
    assert_closed(budget)


def test_a_dropped_stream_settles_when_collected(router: Router) -> None:
    with budget_scope(1.0) as budget:
        stream = router.stream(POEM_PROMPT)
        next(stream)
        charge = stream.decision.candidate(stream.model).cost_bound
        del stream
        gc.collect()
    assert budget.spent == pytest.approx(charge) and budget.records[-1].basis == "reserved"
    assert_closed(budget)


async def test_a_dropped_async_stream_settles_when_collected(router: Router) -> None:
    with budget_scope(1.0) as budget:
        stream = await router.astream(POEM_PROMPT)
        await anext(stream)
        del stream
        gc.collect()
    assert len(budget.records) == 1 and budget.records[0].basis == "reserved"
    assert_closed(budget)


async def test_a_stream_cancelled_while_opening_or_reading_is_settled(
    router: Router, llm: ScriptedLLM
) -> None:
    llm.behave("scripted/small", latency_s=30.0)  # the first chunk never comes in time
    with budget_scope(1.0) as budget, pytest.raises(TimeoutError):
        await asyncio.wait_for(router.astream(MATH_PROMPT), 1.0)
    assert [record.basis for record in budget.records] == ["reserved"]
    llm.behave("scripted/small", chunk_delay_s=30.0)  # then every chunk is slow
    with budget_scope(1.0) as budget:
        stream = await router.astream(MATH_PROMPT)
        await anext(stream)  # the first chunk came with the opening
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(stream), 0.05)
    assert stream.cost_usd == pytest.approx(stream.decision.candidate(stream.model).cost_bound)
    assert [record.basis for record in budget.records] == ["reserved"]
    assert_closed(budget)


# ------------------------------------------------------------------ the cap itself
def test_the_budget_error_says_how_much_was_reserved_and_why(router: Router) -> None:
    cheapest = min(c.cost_bound for c in router.route(MATH_PROMPT, max_tokens=50).candidates)
    with budget_scope(cheapest / 2, name="small"), pytest.raises(BudgetExceededError) as caught:
        router.completion(MATH_PROMPT, max_tokens=50)
    message = str(caught.value)
    assert "'small'" in message and "must reserve $" in message and "up to 50 output tokens" in message
    assert "max_tokens" in message and "a smaller max_tokens" not in message


def test_a_model_without_any_output_limit_cannot_be_capped(llm: ScriptedLLM) -> None:
    mystery = {
        "name": "scripted/mystery",  # litellm knows neither its output limit nor its context window
        "like": "math-model",
        "input_cost_per_token": 1e-6,
        "output_cost_per_token": 2e-6,
    }
    router = Router([mystery], fitted())
    with budget_scope(1.0), pytest.raises(BudgetExceededError, match=r"can be bounded.*pass max_tokens"):
        router.completion(MATH_PROMPT)
    with budget_scope(1.0) as budget:
        routed = router.completion(MATH_PROMPT, max_tokens=20)  # max_tokens bounds it
    assert routed.decision.candidate("scripted/mystery").cost_bound is not None
    assert router.completion(MATH_PROMPT).model == "scripted/mystery"  # without a hard budget: fine
    assert_closed(budget)


def test_an_answer_billed_above_its_bound_is_the_one_exception(llm: ScriptedLLM) -> None:
    # The spec says the model writes at most 10 tokens; the provider writes far more.
    lying = {**POOL[0], "max_output_tokens": 10}
    router = Router([lying], fitted())
    llm.behave("scripted/small", answer_words=400)
    per_call = bound(router)
    with budget_scope(1.5 * per_call) as budget:
        routed = router.completion(MATH_PROMPT)
        with pytest.raises(BudgetExceededError):
            router.completion(MATH_PROMPT)  # the budget refuses everything after the overshoot
    assert routed.cost_usd > per_call and budget.spent == pytest.approx(routed.cost_usd)
    assert budget.spent > budget.limit_usd
    assert budget.reserved == 0


# -------------------------------------------------------------------- soft budgets
@pytest.mark.parametrize("rule", [{"quality_floor": 0.92}, {"max_cost": 1.0}])
def test_a_soft_budget_steers_every_rule(router: Router, rule: dict[str, float]) -> None:
    unsteered = router.route(MATH_PROMPT, **rule)
    assert unsteered.model == "scripted/large"  # the rule alone pays for the priciest model
    large = unsteered.candidate("scripted/large").estimated_cost
    with budget_scope(Budget(10 * large, mode="soft", expected_calls=40)) as budget:
        decisions = [router.completion(MATH_PROMPT, **rule).decision for _ in range(40)]
    steered = [d for d in decisions if d.model != "scripted/large"]
    assert steered and all(d.rule == "budget" for d in steered)
    assert budget.spent < 0.5 * 40 * large  # unsteered, 40 calls would cost 40 large answers


def test_max_tokens_given_to_the_router_or_a_model_bounds_the_reservation(llm: ScriptedLLM) -> None:
    capped = [{**POOL[0], "litellm_params": {"max_tokens": 30}}, *POOL[1:]]
    router = Router(capped, fitted(), litellm_params={"max_tokens": 60})
    decision = router.route(MATH_PROMPT)
    assert "up to 30 output tokens, max_tokens" in decision.candidate("scripted/small").bound_basis
    assert "up to 60 output tokens, max_tokens" in decision.candidate("scripted/large").bound_basis
    assert (
        "up to 10 output tokens"
        in router.route(MATH_PROMPT, max_tokens=10).candidate("scripted/small").bound_basis
    )
