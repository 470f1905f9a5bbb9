"""Faults as litellm's Router handles them: the fault policy, every error class, retries that honour
Retry-After, per-model cooldowns, context-window fallbacks, deadlines and logging.

The scripted provider raises litellm's exceptions directly; ``ScriptedServer`` answers over HTTP on
127.0.0.1, so the same errors also come through litellm's real OpenAI path (statuses, headers,
dropped streams, missing usage). Nothing here asserts on timings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import litellm
import pytest
from conftest import MATH_PROMPT, POOL
from reliability_support import fitted, http_pool

from routoo.budget import budget_scope
from routoo.errors import AllModelsFailedError, ConfigError, DataError, DeadlineExceededError
from routoo.faults import FAULT_KINDS, Cooldowns, FaultPolicy, classify, retry_after_s
from routoo.router import Router
from routoo.testing import ScriptedLLM, ScriptedServer, register_scripted_provider

SECRET = "sk-routoo-test-key"


@pytest.fixture
def llm() -> ScriptedLLM:
    return register_scripted_provider()


@pytest.fixture
def router(llm: ScriptedLLM) -> Router:
    return Router(POOL, fitted())


class Clock:
    """A clock the test moves by hand, for cooldowns."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------ the policy
def test_the_policy_is_a_checked_value_object_merged_per_call() -> None:
    policy = FaultPolicy()
    assert (policy.rate_limit, policy.authentication, policy.context_window) == (
        "fallback",
        "raise",
        "fallback",
    )
    assert policy.attempt_timeout_s == 600 and policy.call_timeout_s is None
    assert policy.merged({"rate_limit": "retry"}).rate_limit == "retry" and policy.rate_limit == "fallback"
    assert FaultPolicy.coerce({"cooldown_s": 0}).cooldown_s == 0
    for bad in (
        {"rate_limit": "ignore"},
        {"max_retries": True},
        {"attempt_timeout_s": 0},
        {"allowed_fails": 0},
    ):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            FaultPolicy(**bad)
    with pytest.raises(ConfigError, match="FaultPolicy or a mapping"):
        FaultPolicy.coerce("fallback")


def scripted_error(llm: ScriptedLLM, kind: str) -> Exception:
    llm.fail("scripted/small", kind, retry_after=2.5 if kind == "rate_limit" else None)
    with pytest.raises(Exception) as caught:
        litellm.completion(model="scripted/small", messages=[{"role": "user", "content": "hi"}])
    return caught.value


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        ("rate_limit", "rate_limit"),
        ("timeout", "timeout"),
        ("server_error", "server_error"),
        ("unavailable", "server_error"),
        ("connection", "server_error"),
        ("context_window", "context_window"),
        ("auth", "authentication"),
        ("bad_request", "bad_request"),
        ("not_found", "not_found"),
        ("payment_required", "payment_required"),
        ("permission_denied", "permission_denied"),
        ("unsupported_params", "unsupported_params"),
        ("content_policy", "content_policy"),
    ],
)
def test_every_litellm_error_has_a_class(llm: ScriptedLLM, failure: str, kind: str) -> None:
    error = scripted_error(llm, failure)
    assert classify(error) == kind
    assert retry_after_s(error) == (2.5 if failure == "rate_limit" else None)


def test_errors_without_a_class_are_not_provider_errors() -> None:
    assert classify(ValueError("a bug")) is None
    assert classify(TimeoutError()) == "timeout"  # an attempt's own deadline
    parameter = litellm.BadRequestError("Unrecognized request argument supplied: foo", "m", "openai")
    assert classify(parameter) == "unsupported_params"
    assert set(FAULT_KINDS) == {name for name in FaultPolicy.model_fields if name in FAULT_KINDS}


# ------------------------------------------------------------ every class, end to end
FALLS_BACK = ["rate_limit", "timeout", "server_error", "not_found", "payment_required"]
FALLS_BACK += ["permission_denied", "unsupported_params", "context_window", "connection", "unavailable"]


@pytest.mark.parametrize("failure", FALLS_BACK)
def test_by_default_these_fall_back_to_another_pool_model(
    router: Router, llm: ScriptedLLM, failure: str
) -> None:
    llm.fail("scripted/small", failure)
    routed = router.completion(MATH_PROMPT)
    assert routed.decision.model == "scripted/small" and routed.model != "scripted/small"
    assert routed.decision.fallbacks[0].model == "scripted/small"


@pytest.mark.parametrize("failure", ["auth", "bad_request", "content_policy"])
def test_by_default_these_raise_without_trying_another_model(
    router: Router, llm: ScriptedLLM, failure: str
) -> None:
    llm.fail("scripted/small", failure)
    with pytest.raises(litellm.BadRequestError if failure != "auth" else litellm.AuthenticationError):
        router.completion(MATH_PROMPT)
    assert len(llm.calls) == 1


def test_the_policy_changes_what_a_class_does_per_router_and_per_call(
    llm: ScriptedLLM,
) -> None:
    router = Router(POOL, fitted(), faults={"not_found": "raise"})
    llm.fail("scripted/small", "not_found")
    with pytest.raises(litellm.NotFoundError):
        router.completion(MATH_PROMPT)
    llm.fail("scripted/small", "not_found")
    assert router.completion(MATH_PROMPT, faults={"not_found": "fallback"}).model != "scripted/small"
    llm.fail("scripted/small", "auth")  # a deployment may choose to hide a bad key after all
    assert (
        router.completion(MATH_PROMPT, faults=FaultPolicy(authentication="fallback")).model
        != "scripted/small"
    )


def test_an_unencodable_prompt_raises_before_any_model_is_tried(router: Router, llm: ScriptedLLM) -> None:
    with pytest.raises(DataError, match=r"message 0 cannot be encoded.*no model was called"):
        router.completion("half an emoji: \ud83d")
    assert llm.calls == []


# --------------------------------------------------------------------------- retries
def test_a_retry_waits_what_retry_after_asks_then_the_same_model_answers(llm: ScriptedLLM) -> None:
    router = Router(POOL, fitted(), faults={"rate_limit": "retry", "retry_backoff_s": 0})
    llm.fail("scripted/small", "rate_limit", times=2, retry_after=0.01)
    routed = router.completion(MATH_PROMPT)
    assert routed.model == "scripted/small" and llm.calls_to("scripted/small") == 3
    assert [f.error_type for f in routed.decision.fallbacks] == ["RateLimitError", "RateLimitError"]


def test_retries_are_bounded_and_a_long_retry_after_is_not_waited_for(llm: ScriptedLLM) -> None:
    router = Router(POOL, fitted(), faults={"rate_limit": "retry", "max_retries": 1, "retry_backoff_s": 0})
    llm.fail("scripted/small", "rate_limit", times=None)
    assert router.completion(MATH_PROMPT).model != "scripted/small"
    assert llm.calls_to("scripted/small") == 2  # one try and one retry, then the next model
    llm.clear()
    llm.fail("scripted/small", "rate_limit", times=None, retry_after=3600)
    assert router.completion(MATH_PROMPT).model != "scripted/small"
    assert llm.calls_to("scripted/small") == 1


# ------------------------------------------------------------------------- cooldowns
def test_a_failing_model_cools_down_then_is_tried_again(router: Router, llm: ScriptedLLM) -> None:
    clock = Clock()
    router.caller.cooldowns = Cooldowns(clock)
    llm.fail("scripted/small", "rate_limit", times=None)
    answered = [router.completion(MATH_PROMPT).model for _ in range(20)]
    assert "scripted/small" not in answered
    assert llm.calls_to("scripted/small") == router.faults.allowed_fails  # not 20: it cooled down
    skipped = router.completion(MATH_PROMPT).decision.fallbacks[0]
    assert (skipped.model, skipped.error_type) == ("scripted/small", "CoolingDown")
    clock.now += router.faults.cooldown_s + 1
    llm.clear()
    assert router.completion(MATH_PROMPT).model == "scripted/small"  # tried again, and it answers


def test_calls_specific_errors_do_not_cool_a_model_down(router: Router, llm: ScriptedLLM) -> None:
    for _ in range(5):
        llm.fail("scripted/small", "unsupported_params")
        router.completion(MATH_PROMPT)
    assert router.cooldowns.remaining_s("scripted/small") == 0


def test_when_every_model_cools_down_they_are_tried_all_the_same(router: Router, llm: ScriptedLLM) -> None:
    for model in router.models:
        llm.fail(model, "server_error", times=None)
    for _ in range(router.faults.allowed_fails):
        with pytest.raises(AllModelsFailedError):
            router.completion(MATH_PROMPT)
    assert all(router.cooldowns.remaining_s(model) > 0 for model in router.models)
    llm.clear()
    assert router.completion(MATH_PROMPT).model == "scripted/small"


async def test_cooldowns_are_shared_by_threads_and_tasks(router: Router, llm: ScriptedLLM) -> None:
    llm.fail("scripted/small", "rate_limit", times=None)
    sync_calls = [asyncio.to_thread(router.completion, MATH_PROMPT) for _ in range(20)]
    async_calls = [router.acompletion(MATH_PROMPT) for _ in range(20)]
    results = await asyncio.gather(*sync_calls, *async_calls)
    assert all(result.model != "scripted/small" for result in results)
    assert router.cooldowns.remaining_s("scripted/small") > 0
    tried = llm.calls_to("scripted/small")
    await asyncio.gather(*(router.acompletion(MATH_PROMPT) for _ in range(10)))
    assert llm.calls_to("scripted/small") == tried  # skipped while it cools down


# ------------------------------------------------------------ context windows, deadlines
def test_a_context_window_error_moves_on_to_larger_windows_only(router: Router, llm: ScriptedLLM) -> None:
    # small (16,000 tokens) overflows; large (128,000) is busy; tiny (2,048) is smaller: skipped.
    llm.fail("scripted/small", "context_window")
    llm.fail("scripted/large", "rate_limit")
    with pytest.raises(AllModelsFailedError) as caught:
        router.completion(MATH_PROMPT)
    assert "scripted/tiny: ContextWindowTooSmall" in str(caught.value)
    assert llm.calls_to("scripted/tiny") == 0


def test_timeout_bounds_the_whole_routed_call(router: Router, llm: ScriptedLLM) -> None:
    for model in router.models:
        llm.behave(model, latency_s=0.3)
    llm.fail("scripted/small", "server_error")
    with pytest.raises(DeadlineExceededError, match="ran out of time") as caught:
        router.completion(MATH_PROMPT, timeout=0.4)  # the first try eats most of it
    assert isinstance(caught.value, TimeoutError)
    assert all(call.timeout is not None and call.timeout <= 0.4 for call in llm.calls)


def test_each_attempt_has_a_default_timeout(router: Router, llm: ScriptedLLM) -> None:
    router.completion(MATH_PROMPT)
    assert llm.calls[-1].timeout == router.faults.attempt_timeout_s == 600


async def test_an_async_call_is_cut_off_at_its_deadline(router: Router, llm: ScriptedLLM) -> None:
    for model in router.models:
        llm.behave(model, latency_s=30.0)
    with budget_scope(1.0) as budget, pytest.raises(DeadlineExceededError):
        await router.acompletion(MATH_PROMPT, timeout=0.2)
    assert budget.reserved == 0 and {record.basis for record in budget.records} == {"reserved"}


# --------------------------------------------------------------------------- logging
def test_fallbacks_retries_and_cooldowns_are_logged_without_secrets(
    llm: ScriptedLLM, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router(POOL, fitted(), faults={"rate_limit": "retry", "retry_backoff_s": 0, "max_retries": 1})
    llm.fail("scripted/small", "rate_limit", times=None)
    with caplog.at_level(logging.INFO, logger="routoo"):
        for _ in range(2):
            router.completion(MATH_PROMPT, api_key=SECRET)
    text = caplog.text
    assert "retry 1 of 1" in text and "trying the next model" in text and "cools down" in text
    assert all(record.name.startswith("routoo") for record in caplog.records)
    assert SECRET not in text


# ---------------------------------------------------------------- over real HTTP
pytestmark_http = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def http(server: ScriptedServer) -> Router:
    server.clear()
    return Router(http_pool(server.base_url, ["first", "second", "third"], [4096, 100_000, 1000]), fitted())


@pytestmark_http
@pytest.mark.parametrize("status", [402, 403, 404, 429, 500, 502, 503, 400])
def test_over_http_these_statuses_fall_back(server: ScriptedServer, http: Router, status: int) -> None:
    first = http.route(MATH_PROMPT).model
    server.script(first.removeprefix("openai/"), status=status, retry_after=7)
    routed = http.completion(MATH_PROMPT)
    assert routed.model != first and routed.decision.fallbacks[0].model == first
    assert server.requests_for(first.removeprefix("openai/")) == 1  # the client itself retried nothing


@pytestmark_http
def test_over_http_a_bad_key_raises(server: ScriptedServer, http: Router) -> None:
    first = http.route(MATH_PROMPT).model
    server.script(first.removeprefix("openai/"), status=401)
    with pytest.raises(litellm.AuthenticationError):
        http.completion(MATH_PROMPT)
    assert len(server.requests) == 1


@pytestmark_http
def test_over_http_retry_after_is_honoured(server: ScriptedServer, http: Router) -> None:
    first = http.route(MATH_PROMPT).model.removeprefix("openai/")
    server.script(first, status=429, retry_after=0.01)
    routed = http.completion(MATH_PROMPT, faults={"rate_limit": "retry"})
    assert routed.model == f"openai/{first}" and server.requests_for(first) == 2


@pytestmark_http
def test_over_http_a_model_that_always_rate_limits_cools_down(server: ScriptedServer, http: Router) -> None:
    first = http.route(MATH_PROMPT).model.removeprefix("openai/")
    server.script(first, status=429, times=None)
    for _ in range(10):
        assert http.completion(MATH_PROMPT).model != f"openai/{first}"
    assert server.requests_for(first) == http.faults.allowed_fails


@pytestmark_http
def test_over_http_a_context_window_error_goes_to_a_larger_window(
    server: ScriptedServer, http: Router
) -> None:
    from routoo._scripted_server import CONTEXT_WINDOW_ERROR

    decision = http.route(MATH_PROMPT)
    first = decision.model
    server.script(first.removeprefix("openai/"), status=400, message=CONTEXT_WINDOW_ERROR)
    routed = http.completion(MATH_PROMPT)
    window = {spec.name: spec.max_input_tokens for spec in http.pool.specs}
    assert window[routed.model] > window[first]


@pytestmark_http
def test_over_http_missing_usage_is_counted(
    server: ScriptedServer, http: Router, caplog: pytest.LogCaptureFixture
) -> None:
    first = http.route(MATH_PROMPT).model.removeprefix("openai/")
    server.script(first, usage=False, times=2)
    with caplog.at_level(logging.WARNING, logger="routoo"), budget_scope(1.0) as budget:
        routed = http.completion(MATH_PROMPT)
        stream = http.stream(MATH_PROMPT)
        list(stream)
    assert routed.cost_usd > 0 and routed.usage["completion_tokens"] > 0
    assert stream.cost_usd > 0 and [r.basis for r in budget.records] == ["counted", "counted"]
    assert caplog.text.count("without token usage") == 2


@pytestmark_http
async def test_over_http_a_dropped_stream_is_charged_its_reservation(
    server: ScriptedServer, http: Router
) -> None:
    first = http.route(MATH_PROMPT).model.removeprefix("openai/")
    server.script(first, drop_after_chunks=3, answer_words=50)
    with budget_scope(1.0) as budget:
        stream = await http.astream(MATH_PROMPT)
        with pytest.raises(Exception, match=r"(?i)connection|peer|incomplete|stream"):
            async for _ in stream:
                pass
    assert stream.cost_usd == pytest.approx(stream.decision.candidate(stream.model).cost_bound)
    assert budget.reserved == 0 and budget.records[-1].basis == "reserved"
