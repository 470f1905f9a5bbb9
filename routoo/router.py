"""The Router: predict every candidate's quality, estimate its cost, choose, call through litellm.

``Router.route`` only decides (``routoo.decision``). ``completion`` / ``acompletion`` /
``stream`` / ``astream`` decide, then call the chosen model through the call layer
(``routoo.calls``): handle provider failures as the router's ``FaultPolicy`` says
(``routoo.faults``: fall back, retry or raise; cooldowns; timeouts), reserve each call's
worst-case cost in the open hard budgets, and charge the real cost to every open budget
scope and to the router's ledger. Every response carries the decision and its cost, also
inside the litellm response as ``response._hidden_params["routoo"]``. litellm itself
loads on the first call.

(Over 400 lines: the four documented entry points, sync and async, completion and stream,
each spell out their keywords; what they share lives in ``_plan`` and ``routoo.calls``.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routoo.budget import Budget, open_budgets
from routoo.calls import Caller
from routoo.decision import (
    CandidateScore,
    CostBounds,
    FallbackAttempt,
    RoutingDecision,
    cost_bounds,
    decide,
    serving_reasons,
)
from routoo.decision_log import DecisionLog
from routoo.errors import ConfigError, DataError, PredictorError, RateLimitWaitError
from routoo.faults import Cooldowns, FaultPolicy
from routoo.ledger import Attempt, CallPlan, Ledger, RoutedResponse
from routoo.model_info import provider_of
from routoo.output_lengths import ExpectedOutputTokens
from routoo.policy import RoutingPolicy, check_non_negative
from routoo.pool import ModelPool, ModelSpec
from routoo.predictors.base import Predictor
from routoo.predictors.onboarded import with_priors
from routoo.prompts import PROMPT_VIEWS, Prompt, PromptView, as_messages, prompt_text, validate_prompt
from routoo.rate_limits import RateLimits, SupportsReserve, rate_limiter
from routoo.secrets import hide_secrets, reveal_secrets, secret_texts
from routoo.selector import Selector
from routoo.streams import AsyncRoutedStream, RoutedStream
from routoo.tokens import count_prompt_tokens

log = logging.getLogger(__name__)

# Per-call keywords that are shorthand for ``policy={...}``.
SHORTHAND_FIELDS = ("tradeoff", "quality_floor", "max_cost")

__all__ = [
    "AsyncRoutedStream",
    "CandidateScore",
    "FallbackAttempt",
    "FaultPolicy",
    "RoutedResponse",
    "RoutedStream",
    "Router",
    "RoutingDecision",
]


class Router:
    """Routes each call to the model with the best predicted quality for its cost.

    ``predictor`` is a fitted ``Predictor``, a directory saved by one, or None for
    ``routoo.predictors.load_default()``. ``policy`` (a ``RoutingPolicy`` or a mapping of
    its fields) holds the routing settings; each call may override them. ``faults`` (a
    ``FaultPolicy`` or a mapping of its fields) says what a provider failure does (fall
    back, retry or raise), how long attempts and calls may take and when a failing model
    cools down; each call may override it (``faults=``). ``litellm_params``
    go to every litellm call (a pool model's own ``litellm_params`` and the call's keywords
    override them); the secrets among them are kept hidden (``routoo.secrets``). ``log`` (a
    ``DecisionLog`` or the path of its SQLite file) records every routed call once it settles.
    ``rate_limits`` (a ``RateLimits``, a mapping of its fields, or a limiter with a
    ``reserve(provider, tokens, max_wait_s=)`` method, e.g. a ``RateLimiter`` shared by several
    routers) books every attempt in its litellm provider's requests and tokens per minute and
    waits what it says before sending it (``routoo.rate_limits``).
    """

    def __init__(
        self,
        models: Sequence[str | ModelSpec | Mapping[str, Any]],
        predictor: Predictor | str | Path | None = None,
        policy: RoutingPolicy | Mapping[str, Any] | Selector | None = None,
        *,
        prompt_view: PromptView | None = None,
        max_fallbacks: int = 2,
        litellm_params: Mapping[str, Any] | None = None,
        selector: Selector | None = None,
        faults: FaultPolicy | Mapping[str, Any] | None = None,
        log: DecisionLog | str | Path | None = None,
        rate_limits: RateLimits | Mapping[str, Any] | SupportsReserve | None = None,
    ) -> None:
        self.predictor = _load_predictor(predictor)
        # A Selector (or selector=) is the old way to give the policy; shim kept for one release.
        if selector is not None:
            if policy is not None:
                raise ConfigError("give the routing policy once: policy=, not also selector=")
            policy = selector
        self.policy = RoutingPolicy.coerce(policy.policy if isinstance(policy, Selector) else policy)
        self.prompt_view: PromptView = prompt_view or self.predictor.prompt_view
        if self.prompt_view not in PROMPT_VIEWS:
            raise ConfigError(f"unknown prompt_view {self.prompt_view!r}; use one of {PROMPT_VIEWS}")
        if isinstance(max_fallbacks, bool) or not isinstance(max_fallbacks, int) or max_fallbacks < 0:
            raise ConfigError(f"max_fallbacks must be an integer >= 0, not {max_fallbacks!r}")
        self.max_fallbacks = max_fallbacks
        self.faults = FaultPolicy.coerce(faults)
        if litellm_params is not None and not isinstance(litellm_params, Mapping):
            raise ConfigError(f"litellm_params must be a mapping, not {type(litellm_params).__name__}")
        self.litellm_params = hide_secrets(litellm_params or {})
        self.predictor = with_priors(self.predictor, models)
        self.pool = ModelPool(models, self.predictor.models, self.predictor.output_tokens_)
        self.output_tokens = ExpectedOutputTokens(
            getattr(self.predictor, "output_lengths_", None),
            scored_as=[self.predictor.models[column] for column in self.pool.predictor_columns],
            names=self.pool.names,
            fixed=self.pool.output_tokens_given,
            fallback=self.pool.expected_output_tokens(),
        )
        self.models: list[str] = self.pool.names
        # Pool models the predictor scores from a prior alone (with_priors, or onboarded without labels).
        self.prior_only: list[str] = [
            name
            for name, column in zip(self.models, self.pool.predictor_columns, strict=True)
            if self.predictor.models[column] in getattr(self.predictor, "unlabelled_", ())
        ]
        self._check_names(self.policy)
        self.log = DecisionLog.coerce(log)
        self._warned_unfamiliar = False
        secrets = secret_texts(self.litellm_params, *(spec.litellm_params for spec in self.pool.specs))
        self.caller = Caller(
            self.pool, max_fallbacks, observed=self.output_tokens.observed, log=self.log, secrets=secrets
        )
        self.rate_limiter = rate_limiter(rate_limits)

    def __repr__(self) -> str:
        return f"Router(models={self.models}, predictor={type(self.predictor).__name__})"

    @property
    def spent(self) -> float:
        """Total real USD spent through this router."""
        return self.ledger.spent

    @property
    def ledger(self) -> Ledger:
        """What this router has spent."""
        return self.caller.ledger

    @property
    def cooldowns(self) -> Cooldowns:
        """The models cooling down after failures in a row (shared by sync and async calls)."""
        return self.caller.cooldowns

    @property
    def selector(self) -> Selector:
        """The selection rules under the router's policy."""
        return Selector(self.policy)

    def policy_for(self, override: RoutingPolicy | Mapping[str, Any] | None = None) -> RoutingPolicy:
        """The router's policy with a call's ``override`` merged in, its model names checked."""
        policy = self.policy.merged(override)
        if policy is not self.policy:
            self._check_names(policy)
        return policy

    def _check_names(self, policy: RoutingPolicy) -> None:
        for field in ("allow", "deny"):
            unknown = sorted(set(getattr(policy, field) or ()) - set(self.models))
            if unknown:
                raise ConfigError(f"the policy's {field} names {unknown}, not in the pool {self.models}")
        if policy.model is not None and policy.model not in self.models:
            raise ConfigError(f"the policy pins model {policy.model!r}, not in the pool {self.models}")

    # ------------------------------------------------------------------ deciding
    def estimate(
        self, prompts: Sequence[Prompt], max_tokens: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predicted quality and estimated USD cost of every pool model on every prompt, (n, m) each.

        The inputs of ``calibrate`` and ``allocate_batch``.
        """
        if isinstance(prompts, str):
            raise DataError("estimate takes a list of prompts, not one string")
        messages = [_checked_messages(prompt) for prompt in prompts]
        if not messages:
            empty = np.zeros((0, len(self.pool)))
            return empty, empty.copy()
        texts = [prompt_text(turns, self.prompt_view) for turns in messages]
        quality = self._checked_predictions(self.predictor.predict(texts)[:, self.pool.predictor_columns])
        tokens = np.array([count_prompt_tokens(turns) for turns in messages], dtype=np.float64)
        output_tokens = self.output_tokens.estimate(texts)
        cost = np.stack(
            [
                self._estimated_costs(count, out, max_tokens)
                for count, out in zip(tokens, output_tokens, strict=True)
            ]
        )
        return quality, cost

    def route(
        self,
        messages: Prompt,
        *,
        policy: RoutingPolicy | Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        response_format: Any = None,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
        predictor_text: str | None = None,
        max_tokens: int | None = None,
    ) -> RoutingDecision:
        """Choose a model for ``messages`` without calling it.

        Only models that can serve the call stay admissible: tools need function calling,
        images vision, a JSON schema ``response_format`` response schemas, and the prompt
        must fit the context window. Hard budgets in ``open_budgets()`` drop models whose
        estimate exceeds what is left (``BudgetExceededError`` when none fits); soft ones
        raise lambda. ``policy`` is merged over the router's (``tradeoff``, ``quality_floor``
        and ``max_cost`` are shorthand for it). ``predictor_text`` replaces what the predictor
        reads (e.g. only the question of a RAG prompt); cost and context still count all of
        ``messages``.
        """
        turns = _checked_messages(messages)
        shorthand = {"tradeoff": tradeoff, "quality_floor": quality_floor, "max_cost": max_cost}
        return self._decide(
            turns,
            self.policy_for(policy).merged(shorthand),
            tools=tools,
            response_format=response_format,
            predictor_text=predictor_text,
            max_tokens=max_tokens,
            budgets=open_budgets(),
        )

    def _decide(
        self,
        messages: list[dict[str, Any]],
        policy: RoutingPolicy,
        *,
        tools: Sequence[Mapping[str, Any]] | None,
        response_format: Any,
        predictor_text: str | None,
        max_tokens: int | None,
        budgets: tuple[Budget, ...],
    ) -> RoutingDecision:
        if predictor_text is not None and (not isinstance(predictor_text, str) or not predictor_text.strip()):
            raise DataError("predictor_text must be a non-empty string")
        text = predictor_text if predictor_text is not None else prompt_text(messages, self.prompt_view)
        quality = self._checked_predictions(self.predictor.predict([text])[:, self.pool.predictor_columns])[0]
        prompt_tokens = count_prompt_tokens(messages, tools)
        reasons = serving_reasons(self.pool.specs, policy, messages, tools, response_format, prompt_tokens)
        output_tokens = self.output_tokens.estimate([text])[0]
        cost = self._estimated_costs(prompt_tokens, output_tokens, max_tokens)
        return decide(
            self.models,
            quality,
            cost,
            reasons,
            policy,
            budgets=budgets,
            prompt_tokens=prompt_tokens,
            bounds=self._cost_bounds(prompt_tokens, max_tokens, cost),
            output_tokens=output_tokens,
            warnings=self._warnings(text),
        )

    def _warnings(self, text: str) -> list[str]:
        """What makes a decision on ``text`` less sure: an unfamiliar prompt, models known by a prior only."""
        warnings = []
        unfamiliar = self.predictor.unfamiliar([text])
        if unfamiliar is not None and unfamiliar[0]:
            warnings.append(
                "the prompt is far from every prompt the predictor was trained on: its predicted "
                "qualities are an extrapolation"
            )
            # Once per router at warning level: a stream of unfamiliar traffic must not flood the
            # logs; every decision still carries it in ``warnings``.
            level = logging.DEBUG if self._warned_unfamiliar else logging.WARNING
            self._warned_unfamiliar = True
            log.log(level, "%s (further ones: see RoutingDecision.warnings)", warnings[-1])
        if self.prior_only:
            warnings.append(f"scored from a prior only, without labels: {self.prior_only}")
        return warnings

    def _checked_predictions(self, quality: np.ndarray) -> np.ndarray:
        """The predictor's (n, m) answer, or ``PredictorError`` naming it and the models it failed."""
        finite = np.isfinite(quality)
        if not finite.all():
            failed = [name for name, ok in zip(self.models, finite.all(axis=0), strict=True) if not ok]
            rows = np.flatnonzero(~finite.all(axis=1)).tolist()
            predictor = getattr(self.predictor, "kind", None) or type(self.predictor).__name__
            raise PredictorError(
                f"the {predictor!r} predictor ({type(self.predictor).__name__}) predicted a non-finite "
                f"quality (NaN or infinity) for {failed} on prompt(s) {rows[:10]}: it cannot route "
                "them; check its weights"
            )
        return quality

    def _estimated_costs(
        self, prompt_tokens: float, output_tokens: np.ndarray, max_tokens: int | None
    ) -> np.ndarray:
        """Expected USD cost of every pool model: the prompt plus the expected answer (``output_tokens``)."""
        if max_tokens is not None:
            output_tokens = np.minimum(output_tokens, check_non_negative(max_tokens, "max_tokens"))
        return prompt_tokens * self.pool.input_prices() + output_tokens * self.pool.output_prices()

    def _cost_bounds(self, prompt_tokens: int, max_tokens: int | None, expected: np.ndarray) -> CostBounds:
        """The most a call can cost on each model: what a hard budget reserves (``cost_bounds``).

        The output cap of each model is the call's ``max_tokens``, else the one in its
        ``litellm_params``, else the router's: what the model will be sent.
        """
        caps = []
        for spec in self.pool.specs:
            sent = {**self.litellm_params, **spec.litellm_params}
            cap = (
                max_tokens
                if max_tokens is not None
                else sent.get("max_tokens") or sent.get("max_completion_tokens")
            )
            caps.append(np.nan if cap is None else check_non_negative(cap, "max_tokens"))
        return cost_bounds(
            prompt_tokens,
            np.array(caps, dtype=np.float64),
            max_output_tokens=self.pool.max_output_tokens(),
            context_windows=np.array(
                [
                    np.nan if spec.max_input_tokens is None else spec.max_input_tokens
                    for spec in self.pool.specs
                ],
                dtype=np.float64,
            ),
            input_prices=self.pool.input_prices(),
            output_prices=self.pool.output_prices(),
            expected=expected,
        )

    # ------------------------------------------------------------------- calling
    def completion(
        self,
        messages: Prompt,
        *,
        policy: RoutingPolicy | Mapping[str, Any] | None = None,
        predictor_text: str | None = None,
        **litellm_kwargs: Any,
    ) -> RoutedResponse:
        """Route and call; the other keywords go to ``litellm.completion``.

        ``policy`` is merged over the router's; ``tradeoff=``, ``quality_floor=`` and
        ``max_cost=`` are shorthand for it.
        """
        from routoo._litellm import litellm

        plan = self._plan(messages, policy, predictor_text, litellm_kwargs, stream=False)

        def send(attempt: Attempt) -> Any:
            if wait := self._rate_limit_wait(plan, attempt):
                time.sleep(wait)
            return litellm.completion(**self._litellm_kwargs(plan, attempt))

        return self.caller.complete(plan, send)

    async def acompletion(
        self,
        messages: Prompt,
        *,
        policy: RoutingPolicy | Mapping[str, Any] | None = None,
        predictor_text: str | None = None,
        **litellm_kwargs: Any,
    ) -> RoutedResponse:
        """Async ``completion``."""
        from routoo._litellm import litellm

        # Predicting and token counting take CPU time: off the event loop.
        plan = await asyncio.to_thread(
            self._plan, messages, policy, predictor_text, litellm_kwargs, stream=False
        )

        async def send(attempt: Attempt) -> Any:
            if wait := self._rate_limit_wait(plan, attempt):
                await asyncio.sleep(wait)
            return await litellm.acompletion(**self._litellm_kwargs(plan, attempt))

        return await self.caller.acomplete(plan, send)

    def stream(
        self,
        messages: Prompt,
        *,
        policy: RoutingPolicy | Mapping[str, Any] | None = None,
        predictor_text: str | None = None,
        **litellm_kwargs: Any,
    ) -> RoutedStream:
        """Route and stream; falls back only until the first chunk arrives."""
        from routoo._litellm import litellm

        plan = self._plan(messages, policy, predictor_text, litellm_kwargs, stream=True)

        def open_stream(attempt: Attempt) -> tuple[Iterator[Any], Any]:
            if wait := self._rate_limit_wait(plan, attempt):
                time.sleep(wait)
            chunks = litellm.completion(**self._litellm_kwargs(plan, attempt))
            return chunks, next(chunks, None)

        attempt, (chunks, first) = self.caller.run(plan, open_stream)
        try:
            return RoutedStream(self.ledger, plan, attempt, chunks, first)
        except BaseException:
            self.ledger.abandon(attempt)
            raise

    async def astream(
        self,
        messages: Prompt,
        *,
        policy: RoutingPolicy | Mapping[str, Any] | None = None,
        predictor_text: str | None = None,
        **litellm_kwargs: Any,
    ) -> AsyncRoutedStream:
        """Async ``stream``."""
        from routoo._litellm import litellm

        plan = await asyncio.to_thread(
            self._plan, messages, policy, predictor_text, litellm_kwargs, stream=True
        )

        async def open_stream(attempt: Attempt) -> tuple[AsyncIterator[Any], Any]:
            if wait := self._rate_limit_wait(plan, attempt):
                await asyncio.sleep(wait)
            chunks = await litellm.acompletion(**self._litellm_kwargs(plan, attempt))
            return chunks, await anext(aiter(chunks), None)

        attempt, (chunks, first) = await self.caller.arun(plan, open_stream)
        try:
            return AsyncRoutedStream(self.ledger, plan, attempt, chunks, first)
        except BaseException:
            self.ledger.abandon(attempt)
            raise

    def _plan(
        self,
        messages: Prompt,
        policy: RoutingPolicy | Mapping[str, Any] | None,
        predictor_text: str | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
    ) -> CallPlan:
        started = time.monotonic()  # the call's latency counts the routing too
        kwargs = dict(kwargs)
        shorthand = {field: kwargs.pop(field, None) for field in SHORTHAND_FIELDS}
        faults = self.faults.merged(kwargs.pop("faults", None))
        call_timeout = kwargs.pop("timeout", None)
        if call_timeout is not None:
            faults = faults.merged({"call_timeout_s": call_timeout})
        for reserved in ("model", "messages"):
            if reserved in kwargs:
                raise ConfigError(f"the router chooses {reserved!r} itself: do not pass {reserved}=")
        if "stream" in kwargs:
            raise ConfigError("do not pass stream=: use Router.stream/astream to stream")
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {**(kwargs.get("stream_options") or {}), "include_usage": True}
        turns = _checked_messages(messages)
        _check_encodable(turns, kwargs.get("tools"))
        budgets = open_budgets()
        decision = self._decide(
            turns,
            self.policy_for(policy).merged(shorthand),
            tools=kwargs.get("tools"),
            response_format=kwargs.get("response_format"),
            predictor_text=predictor_text,
            max_tokens=kwargs.get("max_tokens") or kwargs.get("max_completion_tokens"),
            budgets=budgets,
        )
        deadline = None if faults.call_timeout_s is None else time.monotonic() + faults.call_timeout_s
        return CallPlan(decision, turns, kwargs, budgets, faults, deadline, started=started)

    def _rate_limit_wait(self, plan: CallPlan, attempt: Attempt) -> float:
        """Book ``attempt`` with the rate limiter; the seconds to wait before sending it.

        It books the prompt's tokens plus the answer's allowance (the ``max_tokens`` sent, else
        the expected answer), as providers count them. The wait comes out of the attempt's
        time: a wait as long as the time left (the deadline, else the attempt timeout) books
        nothing and raises ``RateLimitWaitError``, which is no provider error: the call layer
        gives the attempt's money back and raises it, and no model cools down.
        """
        if self.rate_limiter is None:
            return 0.0
        spec = self.pool.specs[self.pool.index(attempt.model)]
        params = {**self.litellm_params, **spec.litellm_params, **plan.kwargs}  # secrets stay hidden
        provider = provider_of(attempt.model, params)
        allowance = params.get("max_tokens") or params.get("max_completion_tokens")
        if allowance is None:
            allowance = plan.decision.candidate(attempt.model).expected_output_tokens or 0
        tokens = plan.decision.prompt_tokens + math.ceil(allowance)
        time_left = attempt.timeout_s
        wait = check_non_negative(
            self.rate_limiter.reserve(provider, tokens, max_wait_s=time_left), "the rate limiter's wait"
        )
        if time_left is not None and wait >= time_left:
            tried = "".join(f"; before it {f.model}: {f.error_type}" for f in attempt.fallbacks)
            raise RateLimitWaitError(
                f"{provider}'s rate limit would hold {attempt.model} {wait:.3g}s, and the call has "
                f"{time_left:.3g}s left: nothing was sent{tried}"
            )
        if wait:
            log.debug(
                "routoo: waiting %.3gs for %s's rate limit before calling %s", wait, provider, attempt.model
            )
            if time_left is not None:
                attempt.timeout_s = time_left - wait  # the provider gets what the wait leaves
        return wait

    def _litellm_kwargs(self, plan: CallPlan, attempt: Attempt) -> dict[str, Any]:
        spec = self.pool.specs[self.pool.index(attempt.model)]
        # The fault policy retries, not the provider's client (the OpenAI SDK retries twice by default).
        given = reveal_secrets({**self.litellm_params, **spec.litellm_params, **plan.kwargs})
        kwargs = {"max_retries": 0, **given, "timeout": attempt.timeout_s}
        tools = kwargs.get("tools")
        if tools and not any(isinstance(tool, Mapping) and tool.get("type") == "mcp" for tool in tools):
            # litellm 1.106 imports its MCP gateway (an optional extra) for any call with tools.
            kwargs["_skip_mcp_handler"] = True
        return {**kwargs, "model": attempt.model, "messages": plan.messages}


# ---------------------------------------------------------------------- helpers
def _load_predictor(predictor: Predictor | str | Path | None) -> Predictor:
    if predictor is None:
        from routoo.predictors import load_default  # imported late: it may load heavy kinds

        return load_default()
    if isinstance(predictor, str | Path):
        from routoo.predictors import load_predictor

        return load_predictor(predictor)
    if not isinstance(predictor, Predictor):
        raise ConfigError(
            f"predictor must be a Predictor or a saved predictor's path, not {type(predictor).__name__}"
        )
    predictor.models  # noqa: B018  # raises PredictorError when it is not fitted
    return predictor


def _checked_messages(messages: Prompt) -> list[dict[str, Any]]:
    validate_prompt(messages, where="messages")
    return as_messages(messages)


def _check_encodable(messages: list[dict[str, Any]], tools: Any) -> None:
    """``DataError`` naming the message (or the tools) that cannot be sent as UTF-8 JSON, before any
    model is tried: a lone surrogate, say, fails the same way on every model."""
    parts: list[tuple[str, Any]] = [(f"message {turn}", message) for turn, message in enumerate(messages)]
    if tools:
        parts.append(("the tools", tools))
    for where, part in parts:
        try:
            json.dumps(part, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError as error:
            raise DataError(
                f"{where} cannot be encoded as UTF-8 ({error.reason} at character {error.start}: "
                f"{error.object[error.start : error.end]!r}); no model was called"
            ) from None
        except (TypeError, ValueError) as error:
            raise DataError(f"{where} cannot be sent as JSON: {error}") from None


def router_or_build(router: object, given: Iterable[str], build: Callable[[], Router], owner: str) -> Router:
    """``router`` when one is given (then none of the settings named in ``given`` may be), else
    ``build()`` (which builds one from those settings)."""
    if router is None:
        return build()
    if not isinstance(router, Router):
        raise ConfigError(f"router must be a routoo Router, not {type(router).__name__}")
    if named := sorted(given):
        raise ConfigError(
            f"{owner} got router= and {named}, which would build another Router: "
            "give those settings to the Router, or leave router= out"
        )
    return router
