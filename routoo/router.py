"""The Router: predict every candidate's quality, estimate its cost, choose, call through litellm.

``Router.route`` only decides. ``completion``/``acompletion``/``stream``/``astream``
decide and call the chosen model, fall back to the next admissible one on provider
failures (rate limits, timeouts, 5xx, connection and authentication errors, an
exceeded context window), and charge the real cost to every open budget scope and to
the router's total. Every response carries the decision and its cost, also inside the
litellm response as ``response._hidden_params["routoo"]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routoo._litellm import litellm
from routoo.budget import Budget, Reservation, SpendRecord, open_budgets
from routoo.errors import (
    AllModelsFailedError,
    BudgetExceededError,
    ConfigError,
    DataError,
    NoAdmissibleModelError,
    UnknownModelError,
)
from routoo.pool import ModelPool, ModelSpec
from routoo.predictors.base import Predictor
from routoo.prompts import PROMPT_VIEWS, Prompt, PromptView, as_messages, prompt_text, validate_prompt
from routoo.selector import Selector, check_non_negative
from routoo.tokens import count_prompt_tokens

# Provider failures worth trying another model for; other errors are the caller's to fix.
FALLBACK_ERRORS: tuple[type[Exception], ...] = (
    litellm.RateLimitError,
    litellm.Timeout,
    litellm.APIConnectionError,
    litellm.InternalServerError,
    litellm.ServiceUnavailableError,
    litellm.BadGatewayError,
    litellm.ContextWindowExceededError,
    litellm.AuthenticationError,
)


def is_fallback_error(error: BaseException) -> bool:
    """Whether a failed call should move on to the next model rather than raise."""
    if isinstance(error, FALLBACK_ERRORS):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and status >= 500


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class CandidateScore:
    """One pool model as the router saw it for a call."""

    model: str
    predicted_quality: float
    estimated_cost: float
    admissible: bool
    reason: str | None = None  # why it was filtered out


@dataclass(frozen=True)
class FallbackAttempt:
    """A model that was tried (or skipped for the budget) and failed."""

    model: str
    error_type: str
    message: str


@dataclass(frozen=True)
class RoutingDecision:
    """The chosen model, the rule that chose it, and every candidate ranked best-first."""

    model: str
    rule: str
    candidates: list[CandidateScore]
    alternatives: list[str]
    prompt_tokens: int
    fallbacks: list[FallbackAttempt] = field(default_factory=list)
    tradeoff: float | None = None  # the lambda used, budget pressure included (tradeoff rule)

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-serialisable plain data."""
        return dataclasses.asdict(self)

    def candidate(self, model: str) -> CandidateScore:
        """The score of pool model ``model``."""
        for candidate in self.candidates:
            if candidate.model == model:
                return candidate
        raise UnknownModelError(f"{model!r} is not among the decision's candidates")


@dataclass
class RoutedResponse:
    """What litellm returned, who answered, what it really cost and why that model."""

    response: litellm.ModelResponse
    decision: RoutingDecision
    model: str
    cost_usd: float
    usage: dict[str, int]


@dataclass(frozen=True)
class _Call:
    """Everything one routed call needs once decided."""

    decision: RoutingDecision
    messages: list[dict[str, Any]]
    kwargs: dict[str, Any]
    budgets: tuple[Budget, ...]


@dataclass
class _Attempt:
    """The model answering a call, the money it holds in each budget, and the fallbacks before it."""

    model: str
    reservations: list[tuple[Budget, Reservation]]
    fallbacks: list[FallbackAttempt]


# ------------------------------------------------------------------------ router
class Router:
    """Routes each call to the model with the best predicted quality for its cost.

    ``predictor`` is a fitted ``Predictor``, a directory saved by one, or None for
    ``routoo.predictors.load_default()``. ``litellm_params`` go to every litellm call
    (a pool model's own ``litellm_params`` and the call's keywords override them).
    """

    def __init__(
        self,
        models: Sequence[str | ModelSpec | Mapping[str, Any]],
        predictor: Predictor | str | Path | None = None,
        selector: Selector | None = None,
        *,
        prompt_view: PromptView | None = None,
        max_fallbacks: int = 2,
        litellm_params: Mapping[str, Any] | None = None,
    ) -> None:
        self.predictor = _load_predictor(predictor)
        self.selector = Selector() if selector is None else selector
        if not isinstance(self.selector, Selector):
            raise ConfigError(f"selector must be a routoo Selector, not {type(self.selector).__name__}")
        self.prompt_view: PromptView = prompt_view or self.predictor.prompt_view
        if self.prompt_view not in PROMPT_VIEWS:
            raise ConfigError(f"unknown prompt_view {self.prompt_view!r}; use one of {PROMPT_VIEWS}")
        if isinstance(max_fallbacks, bool) or not isinstance(max_fallbacks, int) or max_fallbacks < 0:
            raise ConfigError(f"max_fallbacks must be an integer >= 0, not {max_fallbacks!r}")
        self.max_fallbacks = max_fallbacks
        self.litellm_params = dict(litellm_params or {})
        self.pool = ModelPool(models, self.predictor.models, self.predictor.output_tokens_)
        self.models: list[str] = self.pool.names
        for listed in (self.selector.allow or ()), (self.selector.deny or ()):
            unknown = sorted(set(listed) - set(self.models))
            if unknown:
                raise ConfigError(f"the selector's allow/deny names {unknown}, not in the pool {self.models}")
        self._ledger_lock = threading.Lock()
        self._spent = 0.0

    def __repr__(self) -> str:
        return f"Router(models={self.models}, predictor={type(self.predictor).__name__})"

    @property
    def spent(self) -> float:
        """Total real USD spent through this router."""
        with self._ledger_lock:
            return self._spent

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
        raise lambda. ``predictor_text`` replaces what the predictor reads (e.g. only the
        question of a RAG prompt); cost and context still count all of ``messages``.
        """
        turns = _checked_messages(messages)
        return self._decide(
            turns,
            tools=tools,
            response_format=response_format,
            tradeoff=tradeoff,
            quality_floor=quality_floor,
            max_cost=max_cost,
            predictor_text=predictor_text,
            max_tokens=max_tokens,
            budgets=open_budgets(),
        )

    def _decide(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None,
        response_format: Any,
        tradeoff: float | None,
        quality_floor: float | None,
        max_cost: float | None,
        predictor_text: str | None,
        max_tokens: int | None,
        budgets: tuple[Budget, ...],
    ) -> RoutingDecision:
        if predictor_text is not None and (not isinstance(predictor_text, str) or not predictor_text.strip()):
            raise DataError("predictor_text must be a non-empty string")
        text = predictor_text if predictor_text is not None else prompt_text(messages, self.prompt_view)
        quality = self.predictor.predict([text])[0, self.pool.predictor_columns]
        prompt_tokens = count_prompt_tokens(messages, tools)
        cost = self._estimated_costs(prompt_tokens, max_tokens)
        reasons = self._filter_reasons(messages, tools, response_format, prompt_tokens)
        servable = np.array([reason is None for reason in reasons])
        if not servable.any():
            listed = "; ".join(f"{name}: {reason}" for name, reason in zip(self.models, reasons, strict=True))
            raise NoAdmissibleModelError(f"no pool model can serve this call ({listed})")
        hard = [budget for budget in budgets if budget.mode == "hard"]
        for i, estimate in enumerate(cost):
            short = next((b for b in hard if estimate > b.remaining), None)
            if reasons[i] is None and short is not None:
                reasons[i] = (
                    f"estimate ${estimate:.6g} exceeds the ${short.remaining:.6g} left in {short.name!r}"
                )
        admissible = np.array([reason is None for reason in reasons])
        if not admissible.any():
            tightest = min(hard, key=lambda budget: budget.remaining)
            raise BudgetExceededError(
                f"budget {tightest.name!r} has ${tightest.remaining:.6g} left (${tightest.spent:.6g} spent, "
                f"${tightest.reserved:.6g} reserved, limit ${tightest.limit_usd:.6g}); the cheapest model "
                f"that could serve this call is estimated at ${cost[servable].min():.6g}"
            )
        # The default lambda scales with the servable models' costs, so budgets do not move it.
        lam = self.selector.resolve_tradeoff(cost, servable, tradeoff)
        pressure = max((budget.tradeoff_pressure() for budget in budgets), default=1.0)
        rules = {"quality_floor": quality_floor, "max_cost": max_cost}
        selection = self.selector.select(quality, cost, admissible, tradeoff=lam * pressure, **rules)
        rule = selection.rule
        if budgets and self._budget_changed(selection.index, quality, cost, servable, lam, rules):
            rule = "budget"
        ranked = set(selection.ranking)
        excluded = sorted((i for i in range(len(self.models)) if i not in ranked), key=lambda i: -quality[i])
        candidates = [
            CandidateScore(self.models[i], float(quality[i]), float(cost[i]), i in ranked, reasons[i])
            for i in [*selection.ranking, *excluded]
        ]
        return RoutingDecision(
            model=self.models[selection.index],
            rule=rule,
            candidates=candidates,
            alternatives=[self.models[i] for i in selection.ranking[1:]],
            prompt_tokens=prompt_tokens,
            tradeoff=lam * pressure if selection.rule == "tradeoff" else None,
        )

    def _budget_changed(
        self,
        chosen: int,
        quality: np.ndarray,
        cost: np.ndarray,
        servable: np.ndarray,
        lam: float,
        rules: dict[str, float | None],
    ) -> bool:
        """Whether the choice differs from what it would be without any budget."""
        try:
            free = self.selector.select(quality, cost, servable, tradeoff=lam, **rules)
        except NoAdmissibleModelError:
            return True
        return free.index != chosen

    def _estimated_costs(self, prompt_tokens: float, max_tokens: int | None) -> np.ndarray:
        output_tokens = self.pool.expected_output_tokens()
        if max_tokens is not None:
            output_tokens = np.minimum(output_tokens, check_non_negative(max_tokens, "max_tokens"))
        return prompt_tokens * self.pool.input_prices() + output_tokens * self.pool.output_prices()

    def _filter_reasons(
        self,
        messages: list[dict[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None,
        response_format: Any,
        prompt_tokens: int,
    ) -> list[str | None]:
        """Per pool model, why it cannot serve this call (None: it can)."""
        needs_vision = _has_images(messages)
        needs_schema = _wants_schema(response_format)
        reasons: list[str | None] = []
        for spec in self.pool.specs:
            reason = self.selector.filter_reason(spec.name, spec.latency_s)
            if reason is None and tools and not spec.supports_function_calling:
                reason = "does not support function calling (the call has tools)"
            if reason is None and needs_vision and not spec.supports_vision:
                reason = "does not support vision (the call has images)"
            if reason is None and needs_schema and not spec.supports_response_schema:
                reason = "does not support response schemas (the call has a JSON schema response_format)"
            if reason is None and spec.max_input_tokens is not None and prompt_tokens > spec.max_input_tokens:
                reason = (
                    f"the prompt's {prompt_tokens} tokens exceed its {spec.max_input_tokens}-token context"
                )
            reasons.append(reason)
        return reasons

    # ------------------------------------------------------------------- calling
    def completion(
        self,
        messages: Prompt,
        *,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
        predictor_text: str | None = None,
        **litellm_kwargs: Any,
    ) -> RoutedResponse:
        """Route and call; every keyword but the routing ones goes to ``litellm.completion``."""
        routing = _routing(tradeoff, quality_floor, max_cost, predictor_text)
        call = self._plan(messages, routing, litellm_kwargs, stream=False)
        attempts = _Attempts(call, self.max_fallbacks)
        for attempt in attempts:
            try:
                response = litellm.completion(**self._litellm_kwargs(call, attempt.model))
            except Exception as error:
                attempts.failed(attempt, error)
                continue
            return self._finish(call, attempt, response)
        raise attempts.exhausted()

    async def acompletion(
        self,
        messages: Prompt,
        *,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
        predictor_text: str | None = None,
        **litellm_kwargs: Any,
    ) -> RoutedResponse:
        """Async ``completion``."""
        # Predicting and token counting take CPU time: off the event loop.
        routing = _routing(tradeoff, quality_floor, max_cost, predictor_text)
        call = await asyncio.to_thread(self._plan, messages, routing, litellm_kwargs, stream=False)
        attempts = _Attempts(call, self.max_fallbacks)
        for attempt in attempts:
            try:
                response = await litellm.acompletion(**self._litellm_kwargs(call, attempt.model))
            except Exception as error:
                attempts.failed(attempt, error)
                continue
            return self._finish(call, attempt, response)
        raise attempts.exhausted()

    def stream(
        self,
        messages: Prompt,
        *,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
        predictor_text: str | None = None,
        **litellm_kwargs: Any,
    ) -> RoutedStream:
        """Route and stream; falls back only until the first chunk arrives."""
        routing = _routing(tradeoff, quality_floor, max_cost, predictor_text)
        call = self._plan(messages, routing, litellm_kwargs, stream=True)
        attempts = _Attempts(call, self.max_fallbacks)
        for attempt in attempts:
            try:
                chunks = litellm.completion(**self._litellm_kwargs(call, attempt.model))
                first = next(chunks, None)
            except Exception as error:
                attempts.failed(attempt, error)
                continue
            return RoutedStream(self, call, attempt, chunks, first)
        raise attempts.exhausted()

    async def astream(
        self,
        messages: Prompt,
        *,
        tradeoff: float | None = None,
        quality_floor: float | None = None,
        max_cost: float | None = None,
        predictor_text: str | None = None,
        **litellm_kwargs: Any,
    ) -> AsyncRoutedStream:
        """Async ``stream``."""
        routing = _routing(tradeoff, quality_floor, max_cost, predictor_text)
        call = await asyncio.to_thread(self._plan, messages, routing, litellm_kwargs, stream=True)
        attempts = _Attempts(call, self.max_fallbacks)
        for attempt in attempts:
            try:
                chunks = await litellm.acompletion(**self._litellm_kwargs(call, attempt.model))
                first = await anext(aiter(chunks), None)
            except Exception as error:
                attempts.failed(attempt, error)
                continue
            return AsyncRoutedStream(self, call, attempt, chunks, first)
        raise attempts.exhausted()

    def _plan(
        self, messages: Prompt, routing: dict[str, Any], kwargs: dict[str, Any], *, stream: bool
    ) -> _Call:
        for reserved in ("model", "messages"):
            if reserved in kwargs:
                raise ConfigError(f"the router chooses {reserved!r} itself: do not pass {reserved}=")
        if "stream" in kwargs:
            raise ConfigError("do not pass stream=: use Router.stream/astream to stream")
        litellm_kwargs = dict(kwargs)
        if stream:
            litellm_kwargs["stream"] = True
            litellm_kwargs["stream_options"] = {
                **(litellm_kwargs.get("stream_options") or {}),
                "include_usage": True,
            }
        turns = _checked_messages(messages)
        budgets = open_budgets()
        decision = self._decide(
            turns,
            tools=kwargs.get("tools"),
            response_format=kwargs.get("response_format"),
            max_tokens=kwargs.get("max_tokens") or kwargs.get("max_completion_tokens"),
            budgets=budgets,
            **routing,
        )
        return _Call(decision, turns, litellm_kwargs, budgets)

    def _litellm_kwargs(self, call: _Call, model: str) -> dict[str, Any]:
        spec = self.pool.specs[self.pool.index(model)]
        kwargs = {**self.litellm_params, **spec.litellm_params, **call.kwargs}
        tools = kwargs.get("tools")
        if tools and not any(isinstance(tool, Mapping) and tool.get("type") == "mcp" for tool in tools):
            # litellm 1.106 imports its MCP gateway (an optional extra) for any call with tools.
            kwargs["_skip_mcp_handler"] = True
        return {**kwargs, "model": model, "messages": call.messages}

    def _finish(self, call: _Call, attempt: _Attempt, response: litellm.ModelResponse) -> RoutedResponse:
        """Charge the real cost, record it on the response and wrap the result."""
        cost, usage = self._settle(attempt, response)
        decision = dataclasses.replace(call.decision, fallbacks=list(attempt.fallbacks))
        _attach(response, decision, attempt.model, cost)
        return RoutedResponse(response, decision, attempt.model, cost, usage)

    def _settle(self, attempt: _Attempt, response: litellm.ModelResponse) -> tuple[float, dict[str, int]]:
        usage = _usage(response)
        cost = self._real_cost(attempt.model, response, usage)
        record = SpendRecord(attempt.model, cost, usage["prompt_tokens"], usage["completion_tokens"])
        for budget, reservation in attempt.reservations:
            budget.settle(reservation, cost, record)
        with self._ledger_lock:
            self._spent += cost
        return cost, usage

    def _real_cost(self, model: str, response: litellm.ModelResponse, usage: dict[str, int]) -> float:
        """litellm's cost of the response (at the spec's prices when given), else tokens x prices."""
        index = self.pool.index(model)
        spec = self.pool.specs[index]
        custom = (
            {
                "input_cost_per_token": spec.input_cost_per_token,
                "output_cost_per_token": spec.output_cost_per_token,
            }
            if self.pool.priced_by_spec[index]
            else None
        )
        try:
            # Priced as the pool model, as estimated: a streamed response may name it without its provider.
            cost = litellm.completion_cost(
                completion_response=response, model=model, custom_cost_per_token=custom
            )
        except Exception:  # litellm cannot price every response (unknown models, odd usage)
            cost = None
        if cost is None or not math.isfinite(cost) or cost < 0:
            cost = (
                usage["prompt_tokens"] * spec.input_cost_per_token
                + usage["completion_tokens"] * spec.output_cost_per_token
            )
        return float(cost)


class _Attempts:
    """The models to try for one call, in order, with their budget reservations.

    Iterating yields an attempt per model to call, its estimate already reserved in every
    open budget; a model that no longer fits a hard budget (concurrent calls spent the
    money) is skipped without counting against ``max_fallbacks``.
    """

    def __init__(self, call: _Call, max_fallbacks: int) -> None:
        self.call = call
        self.max_fallbacks = max_fallbacks
        self.fallbacks: list[FallbackAttempt] = []
        self.failures = 0
        self.last_error: BaseException | None = None

    def __iter__(self) -> Iterator[_Attempt]:
        decision = self.call.decision
        for model in [decision.model, *decision.alternatives]:
            if self.failures > self.max_fallbacks:
                return
            estimate = decision.candidate(model).estimated_cost
            reservations: list[tuple[Budget, Reservation]] = []
            try:
                for budget in self.call.budgets:
                    reservations.append((budget, budget.reserve(estimate)))
            except BudgetExceededError as error:
                _release(reservations)
                self._record(model, error)
                continue
            yield _Attempt(model, reservations, list(self.fallbacks))

    def failed(self, attempt: _Attempt, error: Exception) -> None:
        """``attempt`` failed: give its money back, then raise or let the next model try."""
        _release(attempt.reservations)
        if not is_fallback_error(error):
            raise error
        self.failures += 1
        self._record(attempt.model, error)

    def exhausted(self) -> Exception:
        """The error to raise once no model is left to try."""
        tried = "; ".join(f"{f.model}: {f.error_type}" for f in self.fallbacks)
        if self.failures == 0 and isinstance(self.last_error, BudgetExceededError):
            return self.last_error
        error = AllModelsFailedError(f"all {len(self.fallbacks)} attempted models failed ({tried})")
        error.__cause__ = self.last_error
        return error

    def _record(self, model: str, error: BaseException) -> None:
        self.last_error = error
        self.fallbacks.append(FallbackAttempt(model, type(error).__name__, str(error)))


# ---------------------------------------------------------------------- streams
class _StreamLedger:
    """What a routed stream has seen, settled once when it ends (or is closed)."""

    def __init__(self, router: Router, call: _Call, attempt: _Attempt, chunks: Any, first: Any) -> None:
        self.router = router
        self.logging_obj = getattr(chunks, "logging_obj", None)  # tells litellm the provider
        self.call = call
        self.attempt = attempt
        self.decision = dataclasses.replace(call.decision, fallbacks=list(attempt.fallbacks))
        self.model = attempt.model
        self.chunks: list[Any] = [] if first is None else [first]
        self.pending = self.chunks[:]
        self.response: litellm.ModelResponse | None = None
        self.cost_usd: float | None = None
        self.usage: dict[str, int] | None = None

    def finish(self) -> None:
        """Build the whole response from the chunks and charge its cost, once."""
        if self.response is not None:
            return
        try:
            response = litellm.stream_chunk_builder(
                self.chunks,
                messages=self.call.messages,
                logging_obj=self.logging_obj,
                count_prompt_tokens=lambda: self.decision.prompt_tokens,  # if the stream had no usage
            )
        except Exception:  # chunks litellm cannot assemble: keep the usage they reported
            response = None
        if response is None:
            usage = next((c.usage for c in reversed(self.chunks) if getattr(c, "usage", None)), None)
            response = litellm.ModelResponse(model=self.model, usage=usage)
        self.response = response
        self.cost_usd, self.usage = self.router._settle(self.attempt, response)
        _attach(response, self.decision, self.model, self.cost_usd)


class _RoutedChunks:
    """What both stream kinds report: the decision at once, cost and usage at the end."""

    _ledger: _StreamLedger
    decision: RoutingDecision
    model: str

    @property
    def cost_usd(self) -> float | None:
        """Real USD cost, once the stream is exhausted or closed."""
        return self._ledger.cost_usd

    @property
    def usage(self) -> dict[str, int] | None:
        """prompt/completion/total tokens, once the stream is exhausted or closed."""
        return self._ledger.usage

    @property
    def response(self) -> litellm.ModelResponse | None:
        """The whole response assembled from the chunks, once the stream is exhausted or closed."""
        return self._ledger.response


class RoutedStream(_RoutedChunks):
    """Iterate for litellm chunks; close it (or use ``with``) to charge a stream left unfinished."""

    def __init__(
        self, router: Router, call: _Call, attempt: _Attempt, chunks: Iterator[Any], first: Any
    ) -> None:
        self._ledger = _StreamLedger(router, call, attempt, chunks, first)
        self._chunks = chunks
        self.decision = self._ledger.decision
        self.model = attempt.model

    def __iter__(self) -> RoutedStream:
        return self

    def __next__(self) -> Any:
        if self._ledger.pending:
            return self._ledger.pending.pop(0)
        try:
            chunk = next(self._chunks)
        except BaseException:  # the end, or a failure: either way the tokens so far are billed
            self._ledger.finish()
            raise
        self._ledger.chunks.append(chunk)
        return chunk

    def close(self) -> None:
        """Stop early; the chunks received so far are charged."""
        self._ledger.finish()
        if close := getattr(self._chunks, "close", None):
            close()

    def __enter__(self) -> RoutedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncRoutedStream(_RoutedChunks):
    """Async-iterate for litellm chunks; ``aclose`` (or ``async with``) charges an unfinished one."""

    def __init__(
        self, router: Router, call: _Call, attempt: _Attempt, chunks: AsyncIterator[Any], first: Any
    ) -> None:
        self._ledger = _StreamLedger(router, call, attempt, chunks, first)
        self._chunks = aiter(chunks)
        self.decision = self._ledger.decision
        self.model = attempt.model

    def __aiter__(self) -> AsyncRoutedStream:
        return self

    async def __anext__(self) -> Any:
        if self._ledger.pending:
            return self._ledger.pending.pop(0)
        try:
            chunk = await anext(self._chunks)
        except BaseException:
            self._ledger.finish()
            raise
        self._ledger.chunks.append(chunk)
        return chunk

    async def aclose(self) -> None:
        """Stop early; the chunks received so far are charged."""
        self._ledger.finish()
        if aclose := getattr(self._chunks, "aclose", None):
            await aclose()  # releases the provider's connection

    async def __aenter__(self) -> AsyncRoutedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# ---------------------------------------------------------------------- helpers
def _routing(
    tradeoff: float | None, quality_floor: float | None, max_cost: float | None, predictor_text: str | None
) -> dict[str, Any]:
    return {
        "tradeoff": tradeoff,
        "quality_floor": quality_floor,
        "max_cost": max_cost,
        "predictor_text": predictor_text,
    }


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


def _has_images(messages: list[dict[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(part, Mapping) and part.get("type") in ("image_url", "image", "input_image")
            for part in content
        ):
            return True
    return False


def _wants_schema(response_format: Any) -> bool:
    if isinstance(response_format, type):  # a pydantic model class
        return True
    return isinstance(response_format, Mapping) and response_format.get("type") == "json_schema"


def _usage(response: Any) -> dict[str, int]:
    usage = getattr(response, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _attach(response: Any, decision: RoutingDecision, model: str, cost: float) -> None:
    """Record the decision and cost on the litellm response, for callers holding only it."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, dict):
        hidden = {}
        response._hidden_params = hidden
    hidden["routoo"] = decision.to_dict() | {"answered_by": model, "cost_usd": cost}


def _release(reservations: list[tuple[Budget, Reservation]]) -> None:
    for budget, reservation in reservations:
        budget.release(reservation)
