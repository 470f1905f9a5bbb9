"""Per-provider rate limits: the pure limiter on a clock the test moves, then the Router booking
every attempt with its provider and tokens and waiting what the limiter says.

The sleep functions are replaced by recorders: nothing here waits, nor asserts on timings.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from types import ModuleType
from typing import Any

import pytest
from conftest import MATH_PROMPT, POOL
from reliability_support import fitted

import routoo.router
from routoo.budget import budget_scope
from routoo.errors import ConfigError, RateLimitWaitError
from routoo.model_info import provider_of
from routoo.rate_limits import ProviderLimit, RateLimiter, RateLimits
from routoo.router import Router
from routoo.testing import ScriptedLLM, register_scripted_provider


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def waits(limiter: RateLimiter, provider: str, tokens: int, n: int) -> list[float]:
    return [limiter.reserve(provider, tokens) for _ in range(n)]


# ------------------------------------------------------------------------- the settings
def test_limits_are_built_from_a_mapping_of_providers_or_of_fields() -> None:
    bare = RateLimits.coerce({"openai": {"requests_per_minute": 500, "tokens_per_minute": 200_000}})
    fields = RateLimits.coerce(
        {"providers": {"openai": {"requests_per_minute": 500, "tokens_per_minute": 2e5}}}
    )
    limit = ProviderLimit(requests_per_minute=500, tokens_per_minute=2e5)
    assert bare == fields == RateLimits(providers={"openai": limit})
    assert bare.limit("openai") == limit and bare.limit("anthropic") is None
    assert RateLimits.coerce(None).providers == {}


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({"openai": {"requests_per_minute": -1}}, "requests_per_minute=-1"),
        ({"openai": {"requests_per_minute": 0}}, "requests_per_minute=0: Input should be greater than 0"),
        ({"openai": {"tokens_per_minute": True}}, "tokens_per_minute=True: Input should be a real number"),
        ({"openai": {"tokens_per_minute": "500"}}, "tokens_per_minute='500': Input should be a real number"),
        (
            {"openai": {"tokens_per_minute": math.inf}},
            "tokens_per_minute=inf: Input should be a finite number",
        ),
        ({"openai": {"rpm": 500}}, "rpm=500: Extra inputs are not permitted"),
        ({"openai": 500}, "providers.openai=500"),
        ({"": {"requests_per_minute": 1}}, "providers..[key]='': String should have at least 1 character"),
        ({1: {"requests_per_minute": 1}}, "providers.1.[key]=1: Input should be a valid string"),
        ({"providers": {}, "openai": {}}, "openai={}: Extra inputs are not permitted"),
    ],
)
def test_invalid_limits_raise_a_config_error_naming_the_field(limits: dict[Any, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=r"^RateLimits: ") as caught:
        RateLimiter(limits)
    assert named in str(caught.value)
    if isinstance(limits.get("openai"), dict) and "providers" not in limits:
        assert "providers.openai=" in str(caught.value)


def test_reserve_checks_what_it_is_given() -> None:
    limiter = RateLimiter({"*": {"requests_per_minute": 1}})
    with pytest.raises(ConfigError, match="tokens must be a finite number >= 0, not -1"):
        limiter.reserve("openai", -1)
    with pytest.raises(ConfigError, match="provider must be a litellm provider name"):
        limiter.reserve(None, 1)  # type: ignore[arg-type]


# -------------------------------------------------------------------------- the limiter
def test_requests_per_minute_allow_a_minute_of_burst_then_space_requests_evenly() -> None:
    clock = Clock()
    limiter = RateLimiter({"openai": {"requests_per_minute": 60}}, clock)
    assert waits(limiter, "openai", 10, 60) == [0.0] * 60  # a full bucket: one minute's worth at once
    assert waits(limiter, "openai", 10, 3) == [1.0, 2.0, 3.0]  # then one a second, each its own slot
    clock.now += 63
    assert waits(limiter, "openai", 10, 1) == [0.0]


def test_tokens_per_minute_space_requests_by_their_tokens() -> None:
    clock = Clock()
    limiter = RateLimiter({"anthropic": {"tokens_per_minute": 6000}}, clock)
    assert waits(limiter, "anthropic", 1000, 6) == [0.0] * 6
    assert waits(limiter, "anthropic", 1000, 2) == [10.0, 20.0]  # 1,000 tokens are 10 s of the rate
    assert limiter.reserve("anthropic", 100) == pytest.approx(21.0)


def test_the_burst_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter({"openai": {"requests_per_minute": 60}}, clock)
    waits(limiter, "openai", 1, 60)
    clock.now += 30  # half a minute idle refills half the bucket
    assert waits(limiter, "openai", 1, 31) == [0.0] * 30 + [1.0]
    clock.now += 600  # a long idle spell refills it, never beyond a minute's worth
    assert waits(limiter, "openai", 1, 61) == [0.0] * 60 + [1.0]


def test_the_longer_of_the_requests_and_tokens_waits_is_waited() -> None:
    clock = Clock()
    limiter = RateLimiter({"openai": {"requests_per_minute": 2, "tokens_per_minute": 1000}}, clock)
    assert waits(limiter, "openai", 100, 3) == [0.0, 0.0, 30.0]  # two requests a minute bind
    clock.now += 120  # both buckets are full again
    assert limiter.reserve("openai", 1000) == 0.0
    assert limiter.reserve("openai", 100) == pytest.approx(6.0)  # the tokens bind: 100 refill in 6 s


def test_a_request_held_back_by_its_tokens_takes_its_request_slot_when_it_is_sent() -> None:
    limiter = RateLimiter({"openai": {"requests_per_minute": 60, "tokens_per_minute": 600}}, Clock())
    assert waits(limiter, "openai", 600, 2) == [0.0, 60.0]
    # At 60 s the requests bucket is full but for the one sent then: 59 more go with it.
    assert waits(limiter, "openai", 0, 60) == [60.0] * 59 + [61.0]


def test_fewer_than_one_request_a_minute_still_lets_one_through() -> None:
    limiter = RateLimiter({"slow": {"requests_per_minute": 0.5}}, Clock())
    assert waits(limiter, "slow", 1, 3) == [0.0, 120.0, 240.0]


def test_concurrent_callers_get_distinct_slots() -> None:
    limiter = RateLimiter({"openai": {"requests_per_minute": 60}}, Clock())  # the clock stands still
    results: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        for _ in range(10):
            wait = limiter.reserve("openai", 1)
            with lock:
                results.append(wait)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0.0] * 60 + [float(second) for second in range(1, 21)]


def test_a_request_bigger_than_the_bucket_waits_for_a_full_bucket_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limiter = RateLimiter({"openai": {"tokens_per_minute": 1000}}, clock)
    assert limiter.reserve("openai", 500) == 0.0
    with caplog.at_level(logging.WARNING, logger="routoo.rate_limits"):
        assert limiter.reserve("openai", 5000) == pytest.approx(30.0)  # the 500 tokens drain first
    assert "5000 tokens is more than openai's whole tokens_per_minute (1000)" in caplog.text
    assert limiter.reserve("openai", 100) == pytest.approx(30.0 + 6.0)  # it emptied the bucket at 30 s


def test_a_wait_past_max_wait_books_nothing() -> None:
    limiter = RateLimiter({"openai": {"requests_per_minute": 1}}, Clock())
    assert limiter.reserve("openai", 1) == 0.0
    assert limiter.reserve("openai", 1, max_wait_s=10) == 60.0  # refused: not booked
    assert limiter.reserve("openai", 1, max_wait_s=60) == 60.0  # as long as the time left: refused too
    assert limiter.reserve("openai", 1, max_wait_s=61) == 60.0  # booked
    assert limiter.reserve("openai", 1) == 120.0


def test_the_star_limits_each_provider_not_named_on_its_own() -> None:
    limiter = RateLimiter(
        {"*": {"requests_per_minute": 1}, "openai": {"requests_per_minute": 2}, "ollama": {}}, Clock()
    )
    assert waits(limiter, "anthropic", 1, 2) == [0.0, 60.0]
    assert waits(limiter, "bedrock", 1, 2) == [0.0, 60.0]  # not sharing anthropic's bucket
    assert waits(limiter, "openai", 1, 3) == [0.0, 0.0, 30.0]
    assert waits(limiter, "ollama", 10**9, 3) == [0.0] * 3  # named without limits: exempt


def test_providers_without_a_limit_never_wait() -> None:
    limiter = RateLimiter({"openai": {"requests_per_minute": 1}}, Clock())
    assert waits(limiter, "anthropic", 10**9, 5) == [0.0] * 5
    assert limiter._buckets == {}  # nothing booked, nothing kept


# ----------------------------------------------------------------------- the providers
def test_the_provider_is_litellms_honouring_the_models_params() -> None:
    register_scripted_provider()
    assert provider_of("scripted/small", {}) == "scripted"
    assert provider_of("gpt-4o-mini", {}) == "openai"
    assert provider_of("my-deployment", {"custom_llm_provider": "anthropic"}) == "anthropic"
    with pytest.raises(ConfigError, match="cannot tell the provider of 'no-such-model'"):
        provider_of("no-such-model", {})


# ---------------------------------------------------------------------------- the router
class RecordingLimiter:
    """A limiter that books nothing: it records each reservation and answers ``wait``."""

    def __init__(self, wait: float = 0.0) -> None:
        self.wait = wait
        self.booked: list[tuple[str, int, float | None]] = []

    def reserve(self, provider: str, tokens: int, *, max_wait_s: float | None = None) -> float:
        self.booked.append((provider, tokens, max_wait_s))
        return self.wait


@pytest.fixture
def llm() -> ScriptedLLM:
    return register_scripted_provider()


class SleepRecorder:
    """``module`` as the router sees it, but its ``sleep`` records the seconds asked and returns at once."""

    def __init__(self, module: ModuleType, asked: list[float]) -> None:
        self.module = module
        self.asked = asked

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)

    def sleep(self, seconds: float) -> Any:
        self.asked.append(seconds)
        return asyncio.sleep(0) if self.module is asyncio else None


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds the router asked ``time.sleep`` and ``asyncio.sleep`` to wait (others sleep as usual)."""
    asked: list[float] = []
    monkeypatch.setattr(routoo.router, "time", SleepRecorder(time, asked))
    monkeypatch.setattr(routoo.router, "asyncio", SleepRecorder(asyncio, asked))
    return asked


def test_every_attempt_books_its_provider_and_its_tokens(llm: ScriptedLLM) -> None:
    limiter = RecordingLimiter()
    router = Router(POOL, fitted(), rate_limits=limiter)
    llm.fail("scripted/small", "server_error")
    routed = router.completion(MATH_PROMPT, max_tokens=50)
    assert [call.model for call in llm.calls] == ["small", routed.model.removeprefix("scripted/")]
    prompt = routed.decision.prompt_tokens
    assert [(provider, tokens) for provider, tokens, _ in limiter.booked] == [("scripted", prompt + 50)] * 2

    limiter.booked.clear()
    llm.clear()
    llm.fail("scripted/small", "rate_limit")
    routed = router.completion(MATH_PROMPT)  # without max_tokens: the expected answer of each model
    tried = ["scripted/small", routed.model]
    expected = [math.ceil(routed.decision.candidate(model).expected_output_tokens) for model in tried]
    assert [tokens for _, tokens, _ in limiter.booked] == [prompt + output for output in expected]


def test_a_models_own_max_tokens_is_its_allowance(llm: ScriptedLLM) -> None:
    limiter = RecordingLimiter()
    pool = [{**POOL[0], "litellm_params": {"max_tokens": 70}}, *POOL[1:]]
    routed = Router(pool, fitted(), rate_limits=limiter).completion(MATH_PROMPT)
    assert routed.model == "scripted/small"
    assert limiter.booked[0][:2] == ("scripted", routed.decision.prompt_tokens + 70)


def test_sync_calls_sleep_what_the_limiter_says_before_sending(llm: ScriptedLLM, sleeps: list[float]) -> None:
    router = Router(POOL, fitted(), rate_limits=RecordingLimiter(wait=2.5))
    router.completion(MATH_PROMPT)
    assert sleeps == [2.5]
    assert llm.calls[-1].timeout == router.faults.attempt_timeout_s - 2.5  # the wait is the attempt's time
    chunks = list(router.stream(MATH_PROMPT))
    assert chunks and sleeps == [2.5, 2.5]


async def test_async_calls_sleep_what_the_limiter_says_before_sending(
    llm: ScriptedLLM, sleeps: list[float]
) -> None:
    limiter = RecordingLimiter(wait=1.5)
    router = Router(POOL, fitted(), rate_limits=limiter)
    await router.acompletion(MATH_PROMPT)
    stream = await router.astream(MATH_PROMPT)
    assert [chunk async for chunk in stream]
    assert sleeps == [1.5, 1.5] and len(limiter.booked) == 2
    assert llm.calls[-1].timeout == router.faults.attempt_timeout_s - 1.5


def test_without_limits_nothing_is_booked_nor_waited(llm: ScriptedLLM, sleeps: list[float]) -> None:
    router = Router(POOL, fitted())
    assert router.rate_limiter is None
    router.completion(MATH_PROMPT)
    assert sleeps == []


async def test_concurrent_calls_through_one_limiter_are_staggered(
    llm: ScriptedLLM, sleeps: list[float]
) -> None:
    limiter = RateLimiter({"scripted": {"requests_per_minute": 1}}, Clock())  # the clock stands still
    first, second = Router(POOL, fitted(), rate_limits=limiter), Router(POOL, fitted(), rate_limits=limiter)
    await asyncio.gather(*(router.acompletion(MATH_PROMPT) for router in (first, second, first)))
    assert sorted(sleeps) == [60.0, 120.0]  # one at once, then a minute apart, across both routers


def test_a_wait_past_the_deadline_sends_nothing_and_costs_nothing(
    llm: ScriptedLLM, sleeps: list[float]
) -> None:
    limiter = RateLimiter({"scripted": {"requests_per_minute": 1}}, Clock())
    router = Router(POOL, fitted(), rate_limits=limiter)
    router.completion(MATH_PROMPT)
    with budget_scope(1.0) as budget, pytest.raises(RateLimitWaitError, match="scripted's rate limit"):
        router.completion(MATH_PROMPT, timeout=10)
    assert len(llm.calls) == 1 and sleeps == []
    assert budget.spent == budget.reserved == 0
    assert router.cooldowns.remaining_s("scripted/small") == 0
    router.completion(MATH_PROMPT)  # the refused call booked nothing: the next slot is still a minute away
    assert sleeps == [60.0]


def test_a_wait_past_the_attempt_timeout_is_refused_too(llm: ScriptedLLM, sleeps: list[float]) -> None:
    limiter = RecordingLimiter(wait=30.0)
    router = Router(POOL, fitted(), rate_limits=limiter, faults={"attempt_timeout_s": 20})
    with pytest.raises(RateLimitWaitError, match=r"hold scripted/small 30s, and the call has 20s left"):
        router.completion(MATH_PROMPT)
    assert limiter.booked[0][2] == 20 and llm.calls == [] and sleeps == []


async def test_an_async_wait_past_the_deadline_is_refused_too(llm: ScriptedLLM, sleeps: list[float]) -> None:
    router = Router(POOL, fitted(), rate_limits=RecordingLimiter(wait=30.0))
    with pytest.raises(RateLimitWaitError, match="nothing was sent"):
        await router.acompletion(MATH_PROMPT, timeout=10)
    with pytest.raises(RateLimitWaitError, match="nothing was sent"):
        await router.astream(MATH_PROMPT, timeout=10)
    assert llm.calls == [] and sleeps == []


def test_the_router_takes_limits_as_settings_a_mapping_or_a_limiter(llm: ScriptedLLM) -> None:
    limits = {"scripted": {"tokens_per_minute": 10_000}}
    settings = RateLimits(providers=limits)
    assert Router(POOL, fitted(), rate_limits=limits).rate_limiter.limits == settings
    assert Router(POOL, fitted(), rate_limits=settings).rate_limiter.limits == settings
    shared = RateLimiter(limits)
    assert Router(POOL, fitted(), rate_limits=shared).rate_limiter is shared
    with pytest.raises(ConfigError, match=r"rate_limits must be a RateLimits.*not int"):
        Router(POOL, fitted(), rate_limits=42)
    with pytest.raises(ConfigError, match="the rate limiter's wait must be a finite number >= 0, not nan"):
        Router(POOL, fitted(), rate_limits=RecordingLimiter(wait=math.nan)).completion(MATH_PROMPT)


def test_waiting_is_logged_at_debug_level(
    llm: ScriptedLLM, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    router = Router(POOL, fitted(), rate_limits=RecordingLimiter(wait=4.0))
    with caplog.at_level(logging.DEBUG, logger="routoo.router"):
        router.completion(MATH_PROMPT)
    waited = [record for record in caplog.records if "rate limit" in record.getMessage()]
    assert [record.levelno for record in waited] == [logging.DEBUG]
    assert "waiting 4s for scripted's rate limit before calling scripted/small" in waited[0].getMessage()
