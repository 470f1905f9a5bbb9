"""The Router: predict every candidate's quality, estimate its cost, choose, call through litellm.

``Router.route`` only decides (``routoo.decision``). ``completion`` / ``acompletion`` /
``stream`` / ``astream`` decide, then call the chosen model through the call layer
(``routoo.calls``): fall back to the next admissible model on provider failures and
charge the real cost to every open budget scope and to the router's ledger. Every
response carries the decision and its cost, also inside the litellm response as
``response._hidden_params["routoo"]``. litellm itself loads on the first call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routoo.budget import Budget, open_budgets
from routoo.calls import (
    Attempt,
    CallPlan,
    Ledger,
    RoutedResponse,
    arun,
    fallback_errors,
    is_fallback_error,
    run,
)
from routoo.decision import CandidateScore, FallbackAttempt, RoutingDecision, decide, serving_reasons
from routoo.errors import ConfigError, DataError
from routoo.policy import RoutingPolicy, check_non_negative
from routoo.pool import ModelPool, ModelSpec
from routoo.predictors.base import Predictor
from routoo.prompts import PROMPT_VIEWS, Prompt, PromptView, as_messages, prompt_text, validate_prompt
from routoo.selector import Selector
from routoo.streams import AsyncRoutedStream, RoutedStream
from routoo.tokens import count_prompt_tokens

# Per-call keywords that are shorthand for ``policy={...}``.
SHORTHAND_FIELDS = ("tradeoff", "quality_floor", "max_cost")

__all__ = [
    "AsyncRoutedStream",
    "CandidateScore",
    "FallbackAttempt",
    "RoutedResponse",
    "RoutedStream",
    "Router",
    "RoutingDecision",
    "fallback_errors",
    "is_fallback_error",
]


class Router:
    """Routes each call to the model with the best predicted quality for its cost.

    ``predictor`` is a fitted ``Predictor``, a directory saved by one, or None for
    ``routoo.predictors.load_default()``. ``policy`` (a ``RoutingPolicy`` or a mapping of
    its fields) holds the routing settings; each call may override them. ``litellm_params``
    go to every litellm call (a pool model's own ``litellm_params`` and the call's keywords
    override them).
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
        self.litellm_params = dict(litellm_params or {})
        self.pool = ModelPool(models, self.predictor.models, self.predictor.output_tokens_)
        self.models: list[str] = self.pool.names
        self._check_names(self.policy)
        self.ledger = Ledger(self.pool)

    def __repr__(self) -> str:
        return f"Router(models={self.models}, predictor={type(self.predictor).__name__})"

    @property
    def spent(self) -> float:
        """Total real USD spent through this router."""
        return self.ledger.spent

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
        quality = self.predictor.predict(texts)[:, self.pool.predictor_columns]
        tokens = np.array([count_prompt_tokens(turns) for turns in messages], dtype=np.float64)
        cost = np.stack([self._estimated_costs(count, max_tokens) for count in tokens])
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
        quality = self.predictor.predict([text])[0, self.pool.predictor_columns]
        prompt_tokens = count_prompt_tokens(messages, tools)
        reasons = serving_reasons(self.pool.specs, policy, messages, tools, response_format, prompt_tokens)
        cost = self._estimated_costs(prompt_tokens, max_tokens)
        return decide(
            self.models, quality, cost, reasons, policy, budgets=budgets, prompt_tokens=prompt_tokens
        )

    def _estimated_costs(self, prompt_tokens: float, max_tokens: int | None) -> np.ndarray:
        output_tokens = self.pool.expected_output_tokens()
        if max_tokens is not None:
            output_tokens = np.minimum(output_tokens, check_non_negative(max_tokens, "max_tokens"))
        return prompt_tokens * self.pool.input_prices() + output_tokens * self.pool.output_prices()

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
        attempt, response = run(
            plan,
            self.max_fallbacks,
            lambda attempt: litellm.completion(**self._litellm_kwargs(plan, attempt)),
        )
        return self.ledger.finish(plan, attempt, response)

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
        attempt, response = await arun(
            plan,
            self.max_fallbacks,
            lambda attempt: litellm.acompletion(**self._litellm_kwargs(plan, attempt)),
        )
        return self.ledger.finish(plan, attempt, response)

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
            chunks = litellm.completion(**self._litellm_kwargs(plan, attempt))
            return chunks, next(chunks, None)

        attempt, (chunks, first) = run(plan, self.max_fallbacks, open_stream)
        return RoutedStream(self.ledger, plan, attempt, chunks, first)

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
            chunks = await litellm.acompletion(**self._litellm_kwargs(plan, attempt))
            return chunks, await anext(aiter(chunks), None)

        attempt, (chunks, first) = await arun(plan, self.max_fallbacks, open_stream)
        return AsyncRoutedStream(self.ledger, plan, attempt, chunks, first)

    def _plan(
        self,
        messages: Prompt,
        policy: RoutingPolicy | Mapping[str, Any] | None,
        predictor_text: str | None,
        kwargs: dict[str, Any],
        *,
        stream: bool,
    ) -> CallPlan:
        kwargs = dict(kwargs)
        shorthand = {field: kwargs.pop(field, None) for field in SHORTHAND_FIELDS}
        for reserved in ("model", "messages"):
            if reserved in kwargs:
                raise ConfigError(f"the router chooses {reserved!r} itself: do not pass {reserved}=")
        if "stream" in kwargs:
            raise ConfigError("do not pass stream=: use Router.stream/astream to stream")
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {**(kwargs.get("stream_options") or {}), "include_usage": True}
        turns = _checked_messages(messages)
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
        return CallPlan(decision, turns, kwargs, budgets)

    def _litellm_kwargs(self, plan: CallPlan, attempt: Attempt) -> dict[str, Any]:
        spec = self.pool.specs[self.pool.index(attempt.model)]
        kwargs = {**self.litellm_params, **spec.litellm_params, **plan.kwargs}
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
