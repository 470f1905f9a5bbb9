"""Sending a label run's calls through a provider's batch API: about half the price, results
when each batch completes, resumable.

``BatchApiExecutor`` sends each model's jobs as one batch through litellm's OpenAI-style batch
API (``acreate_file``, ``acreate_batch``, ``aretrieve_batch``, ``afile_content``): a JSONL file
of chat requests, each named by ``request_id`` (a hash of its job, the same in every run),
uploaded, then a batch made of it. The batch's id and its requests' ids go in the run's
``LabelStore`` before any wait, so a rerun after an interruption polls that batch instead of
submitting (and paying for) its requests again. Batches are polled every ``poll_interval_s``
until they complete, fail, expire or are cancelled; then each line of the output file becomes a
``CallResult`` (the answer, its usage, its real cost at the batch price, the time from the
batch's submission to its completion as latency) and each line of the error file, or request
the batch never answered, a failed one with the provider's message.

Prices (``batch_price``): the model's batch price in litellm's map where it lists one
(``input_cost_per_token_batches``, ``output_cost_per_token_batches``), else half its price, as
litellm's own batch cost does (the batch APIs of OpenAI and Azure OpenAI, the two served
here, are at half price); a model the user priced (spec or override) at half that price.

Budgets: before a batch is submitted, every open budget holds what it may cost: hard budgets
each request's worst case as the router bounds a call (``Router.route(...).candidate(model)
.cost_bound``) at the batch price, soft ones its expected cost. The requests that fit, in
order, are submitted; the first that does not stops the run (``"budget"``) once what was
submitted is collected. The hold is settled at the real cost when the batch is collected. A
rerun first collects the batches an earlier run left open (their money was committed then, and
is charged as they complete), then sizes and submits what is still missing.

The router's retries, cooldowns and rate limits do not apply: the provider schedules a batch's
requests itself; its calls are not in the router's spend nor its decision log.

(Over 400 lines: its parts, requests, budget holds, polling and reading results, are one
exchange with the provider, read in order.)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from routoo import model_info
from routoo.budget import Budget, SpendRecord, budget_scope, open_budgets
from routoo.errors import BudgetExceededError, ConfigError, DataError, RoutooError
from routoo.labelling.executors import StopReason
from routoo.labelling.jobs import CallJob, CallResult, answer_content, jobs_by_model
from routoo.labelling.store import LabelStore
from routoo.ledger import Attempt
from routoo.policy import check_non_negative
from routoo.pricing import ModelPrice
from routoo.secrets import reveal_secrets
from routoo.tokens import count_prompt_tokens, count_tokens

if TYPE_CHECKING:
    from routoo.router import Router

log = logging.getLogger(__name__)
# litellm providers whose batch API takes OpenAI's JSONL of chat requests and answers in kind.
BATCH_PROVIDERS = ("openai", "azure")
ENDPOINT = "/v1/chat/completions"
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
# litellm's logging downloads a completed batch's output once more to price it; priced here instead.
NO_BATCH_LOGGING = {"batch_ignore_default_logging": True}
# Chat parameters litellm lists that belong to the connection, not to a request in the file.
NOT_IN_REQUEST = frozenset({"stream", "stream_options", "max_retries", "extra_headers"})


def request_id(job: CallJob) -> str:
    """The id of ``job``'s request in a batch (its ``custom_id``): a hash of its kind, task, model
    and verdict key, the same in every run."""
    key = json.dumps([job.kind, job.task_id, job.model, job.verdict_key])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def batch_price(router: Router, model: str) -> ModelPrice:
    """USD per input and output token of pool ``model`` through its batch API: litellm's batch
    price where its map lists one, else half the pool's price (and half the user's price for a
    model the user priced)."""
    index = router.pool.index(model)
    spec = router.pool.specs[index]
    listed = {} if router.pool.priced_by_spec[index] else model_info.model_entry(model)
    return ModelPrice(
        _batch_rate(listed.get("input_cost_per_token_batches"), spec.input_cost_per_token),
        _batch_rate(listed.get("output_cost_per_token_batches"), spec.output_cost_per_token),
    )


def cost_scale(router: Router, model: str) -> float:
    """The most a batched call of ``model`` costs per USD of the same call sent live (the larger
    of the input and output price ratios, so that a bound scaled by it never understates)."""
    spec = router.pool.specs[router.pool.index(model)]
    price = batch_price(router, model)
    return max(
        _ratio(price.input_cost_per_token, spec.input_cost_per_token or 0.0),
        _ratio(price.output_cost_per_token, spec.output_cost_per_token or 0.0),
    )


class BatchApiExecutor:
    """Sends each model's jobs as one batch through its provider's batch API (OpenAI, Azure).

    ``store`` is the run's ``LabelStore`` (the one given to ``Labeller.run``): the batches are
    recorded there. ``poll_interval_s``: seconds between two polls of a batch.
    """

    def __init__(self, store: LabelStore, *, poll_interval_s: float = 30.0, progress: bool = False) -> None:
        if not isinstance(store, LabelStore):
            raise ConfigError(f"store must be the run's LabelStore, not {type(store).__name__}")
        self.store = store
        self.poll_interval_s = check_non_negative(poll_interval_s, "poll_interval_s", optional=False)
        self.progress = progress

    def __repr__(self) -> str:
        return f"BatchApiExecutor({self.store!r}, poll_interval_s={self.poll_interval_s:g})"

    def cost_scale(self, router: Router, model: str) -> float:
        return cost_scale(router, model)

    def run(
        self,
        router: Router,
        jobs: Sequence[CallJob],
        on_result: Callable[[CallResult], None],
        budget: Budget | None,
        max_tokens: int | None,
    ) -> StopReason:
        if not jobs:
            return None
        bar = tqdm(total=len(jobs), desc="batched calls", unit="call", disable=not self.progress)

        def deliver(result: CallResult) -> None:
            on_result(result)
            bar.update()

        by_id = {request_id(job): job for job in jobs}
        if len(by_id) < len(jobs):
            raise DataError("two jobs are the same call (kind, task, model and verdict key): send it once")
        run = _Run(self, router, by_id, deliver, budget, max_tokens)
        try:
            return asyncio.run(run.run())
        finally:
            bar.close()
            run.release_holds()


@dataclass(frozen=True)
class _Target:
    """Where one pool model's batches go and what they cost; secrets stay hidden until sent."""

    model: str
    provider: str
    provider_model: str  # the model as its provider names it in a request
    connection: dict[str, Any]  # litellm's parameters of the batch calls (api_base, api_key...)
    request: dict[str, Any]  # parameters every request carries (temperature, max_tokens...)
    price: ModelPrice  # the batch price
    scale: float  # at most batch price / price, per token: scales the router's cost bounds
    cost_info: dict[str, Any]  # what litellm prices a batch answer with

    @classmethod
    def of(cls, router: Router, model: str) -> _Target:
        from routoo._litellm import litellm

        index = router.pool.index(model)
        spec = router.pool.specs[index]
        params = {**router.litellm_params, **spec.litellm_params}
        provider_model, provider = model_info.provider_route(model, params)
        if provider not in BATCH_PROVIDERS:
            raise ConfigError(
                f"{model} is served by {provider!r}, and the batch API executor sends batches to "
                f"{list(BATCH_PROVIDERS)} only: label it with the local executor"
            )
        chat_params = litellm.get_supported_openai_params(model=provider_model, custom_llm_provider=provider)
        request_params = set(chat_params or ()) - NOT_IN_REQUEST
        request = {k: v for k, v in params.items() if k in request_params}
        connection = {k: v for k, v in params.items() if k not in request and k != "custom_llm_provider"}
        price = batch_price(router, model)
        listed = {} if router.pool.priced_by_spec[index] else dict(model_info.model_entry(model))
        cost_info = listed | {
            "input_cost_per_token": spec.input_cost_per_token,
            "output_cost_per_token": spec.output_cost_per_token,
            "input_cost_per_token_batches": price.input_cost_per_token,
            "output_cost_per_token_batches": price.output_cost_per_token,
        }
        return cls(
            model, provider, provider_model, connection, request, price, cost_scale(router, model), cost_info
        )

    def line(self, job: CallJob, max_tokens: int | None) -> str:
        """``job`` as one request of the batch's input file."""
        body = {"model": self.provider_model, "messages": job.messages, **reveal_secrets(self.request)}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return json.dumps({"custom_id": request_id(job), "method": "POST", "url": ENDPOINT, "body": body})

    def cost(self, usage: dict[str, Any]) -> float:
        """litellm's batch cost of ``usage`` (tokens x the batch price where it cannot say)."""
        from routoo._litellm import litellm

        tokens_cost = float(self.price.cost(usage["prompt_tokens"], usage["completion_tokens"]))
        try:
            prompt_cost, completion_cost = litellm.cost_calculator.batch_cost_calculator(
                litellm.Usage(**usage), self.model, self.provider, model_info=self.cost_info
            )
        except Exception:  # litellm cannot price every usage (odd details)
            return tokens_cost
        cost = float(prompt_cost + completion_cost)
        if not math.isfinite(cost) or cost < 0 or (cost == 0 and tokens_cost > 0):
            return tokens_cost
        return cost


@dataclass
class _Pending:
    """A submitted batch this run waits for: its jobs by request id, and the money it holds."""

    batch_id: str
    target: _Target
    jobs: dict[str, CallJob]
    submitted: float  # time.time()
    hold: Attempt | None


class _Run:
    """One ``BatchApiExecutor.run``: collect the open batches, submit the rest, collect those."""

    def __init__(
        self,
        executor: BatchApiExecutor,
        router: Router,
        jobs: dict[str, CallJob],
        deliver: Callable[[CallResult], None],
        budget: Budget | None,
        max_tokens: int | None,
    ) -> None:
        self.store, self.poll_interval_s = executor.store, executor.poll_interval_s
        self.router, self.jobs, self.deliver, self.max_tokens = router, jobs, deliver, max_tokens
        with budget_scope(budget):
            self.budgets = open_budgets()
        self.holds: list[Attempt] = []
        self.targets: dict[str, _Target] = {}

    def release_holds(self) -> None:
        """Give back what batches still hold (an interruption): such a batch stays open in the
        store, and the run that collects it is charged its cost."""
        for hold in self.holds:
            hold.release()  # a no-op for a settled one

    async def run(self) -> StopReason:
        # Every model's target first: one with no batch API is refused before anything is sent.
        models = dict.fromkeys(job.model for job in self.jobs.values())
        self.targets = {model: _Target.of(self.router, model) for model in models}
        left = dict(self.jobs)
        resumed = []
        for stored in self.store.open_batches():
            mine = {rid: left.pop(rid) for rid in stored.custom_ids if rid in left}
            if mine:  # its requests' ids name its model: it is one of the targets
                hold = self._hold(stored.model, 0.0, 0.0)  # charged its real cost when collected
                target = self.targets[stored.model]
                resumed.append(_Pending(stored.batch_id, target, mine, stored.submitted, hold))
        await self._collect_all(resumed)
        stopped: StopReason = None
        submitted = []
        for model, group in jobs_by_model(list(left.values())).items():
            admitted, bound, expected, fits = self._admit(self.targets[model], group)
            hold = self._hold(model, bound, expected) if admitted else None
            if hold is not None:
                pending = await self._submit(self.targets[model], admitted, hold)
                submitted += [pending] if pending is not None else []
            if not fits or (admitted and hold is None):
                log.warning(
                    "routoo label: the budget does not fit the rest of %s's batch: not submitted", model
                )
                stopped = "budget"
                break
        await self._collect_all(submitted)
        return stopped

    # ----------------------------------------------------------------- submitting
    def _admit(self, target: _Target, jobs: list[CallJob]) -> tuple[list[CallJob], float, float, bool]:
        """The jobs that fit the hard budgets, in order, their worst-case and expected costs at
        the batch price, and whether every job fitted. A job the router would not send to its
        model (a prompt over its context window) is a failed result."""
        left = min((budget.remaining for budget in self.budgets if budget.mode == "hard"), default=math.inf)
        admitted: list[CallJob] = []
        bound = expected = 0.0
        for job in jobs:
            policy = {"model": job.model, "allow": [job.model]}
            try:
                decision = self.router.route(job.messages, policy=policy, max_tokens=self.max_tokens)
            except BudgetExceededError:  # an outer hard budget refused it at the list price
                return admitted, bound, expected, False
            except RoutooError as error:
                self.deliver(CallResult(job, None, error=f"{type(error).__name__}: {error}"))
                continue
            candidate = decision.candidate(job.model)
            worst = math.inf if candidate.cost_bound is None else candidate.cost_bound * target.scale
            if bound + worst > left:
                return admitted, bound, expected, False
            admitted.append(job)
            bound += worst
            expected += candidate.estimated_cost * target.scale
        return admitted, bound, expected, True

    def _hold(self, model: str, bound: float, expected: float) -> Attempt | None:
        """A batch's money set aside in every open budget (hard: ``bound``; soft: ``expected``);
        None when one refuses."""
        reservations = []
        try:
            for budget in self.budgets:
                amount = expected if budget.mode == "soft" else bound
                reservations.append((budget, budget.reserve(amount, f"a batch of {model}")))
        except BudgetExceededError:
            for budget, reservation in reservations:
                budget.release(reservation)
            return None
        hold = Attempt(model, reservations, [])
        self.holds.append(hold)
        return hold

    async def _submit(self, target: _Target, jobs: list[CallJob], hold: Attempt) -> _Pending | None:
        """Upload the jobs' requests and create their batch, recorded in the store at once; None
        (every job a failed result) when the provider refuses."""
        from routoo._litellm import litellm

        data = "".join(target.line(job, self.max_tokens) + "\n" for job in jobs).encode()
        connection = reveal_secrets(target.connection)
        try:
            uploaded = await litellm.acreate_file(
                file=("routoo-label-batch.jsonl", data, "application/jsonl"),
                purpose="batch",
                custom_llm_provider=target.provider,
                **connection,
            )
            batch = await litellm.acreate_batch(
                completion_window="24h",
                endpoint=ENDPOINT,
                input_file_id=uploaded.id,
                custom_llm_provider=target.provider,
                **connection,
            )
        except Exception as error:  # what the provider said, for every job of the batch
            hold.release()
            for job in jobs:
                self.deliver(
                    CallResult(job, None, error=f"batch not submitted: {type(error).__name__}: {error}")
                )
            return None
        submitted = time.time()
        self.store.add_batch(batch.id, target.model, [request_id(job) for job in jobs], submitted)
        log.info("routoo label: submitted batch %s: %d requests to %s", batch.id, len(jobs), target.model)
        return _Pending(batch.id, target, {request_id(job): job for job in jobs}, submitted, hold)

    # ----------------------------------------------------------------- collecting
    async def _collect_all(self, pending: list[_Pending]) -> None:
        """Wait for every batch; store each one's results as it finishes, then close it."""
        for collected in asyncio.as_completed([self._collect(batch) for batch in pending]):
            batch, status, results = await collected
            answered = [result for result in results if result.error is None]
            cost = sum(result.cost_usd for result in answered)
            record = SpendRecord(
                batch.target.model,
                cost,
                sum(result.prompt_tokens for result in answered),
                sum(result.completion_tokens for result in answered),
            )
            if batch.hold is not None:
                batch.hold.settle(cost, record)
            elif cost:
                log.warning(
                    "routoo label: batch %s cost $%.6g, more than the budget had left", batch.batch_id, cost
                )
            for result in results:
                self.deliver(result)
            self.store.close_batch(batch.batch_id, status)

    async def _collect(self, pending: _Pending) -> tuple[_Pending, str, list[CallResult]]:
        """Poll a batch until it ends, then read its output and error files into results."""
        from routoo._litellm import litellm

        target = pending.target
        connection = reveal_secrets(target.connection)
        while True:
            batch = await litellm.aretrieve_batch(
                batch_id=pending.batch_id,
                custom_llm_provider=target.provider,
                litellm_metadata=NO_BATCH_LOGGING,
                **connection,
            )
            if batch.status in FINAL_STATUSES:
                break
            log.debug("routoo label: batch %s is %s", pending.batch_id, batch.status)
            await asyncio.sleep(self.poll_interval_s)
        lines: list[dict[str, Any]] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await litellm.afile_content(
                    file_id=file_id, custom_llm_provider=target.provider, **connection
                )
                lines += [json.loads(line) for line in content.content.decode().splitlines() if line.strip()]
        if batch.created_at and batch.completed_at:
            latency = float(batch.completed_at - batch.created_at)
        else:
            latency = time.time() - pending.submitted
        results = {
            line["custom_id"]: _result(target, pending.jobs[line["custom_id"]], line, latency)
            for line in lines
            if line.get("custom_id") in pending.jobs
        }
        unanswered = f"batch {pending.batch_id} ended {batch.status} without answering it"
        errors = [error.message for error in getattr(batch.errors, "data", None) or [] if error.message]
        if errors:
            unanswered += ": " + "; ".join(errors)
        missing = {rid: CallResult(job, None, error=unanswered) for rid, job in pending.jobs.items()}
        return pending, batch.status, [results.get(rid) or missing[rid] for rid in pending.jobs]


def _result(target: _Target, job: CallJob, line: dict[str, Any], latency: float) -> CallResult:
    """One line of a batch's output or error file, as the job's result."""
    response = line.get("response") or {}
    body = response.get("body") or {}
    status = response.get("status_code")
    if line.get("error") or status != 200:
        error = line.get("error") or body.get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        return CallResult(job, None, error=f"batch request failed ({code or f'status {status}'}): {message}")
    from routoo._litellm import litellm

    text = answer_content(litellm.ModelResponse(**body))
    usage = dict(body.get("usage") or {})
    if not usage.get("prompt_tokens") and not usage.get("completion_tokens"):
        usage.update(
            prompt_tokens=count_prompt_tokens(job.messages), completion_tokens=count_tokens(text, job.model)
        )
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        log.warning("routoo label: an answer of %s's batch came without token usage; counted here", job.model)
    return CallResult(
        job,
        text,
        cost_usd=target.cost(usage),
        prompt_tokens=int(usage["prompt_tokens"]),
        completion_tokens=int(usage["completion_tokens"]),
        latency_s=latency,
    )


def _batch_rate(listed: float | None, price: float | None) -> float:
    """A batch price per token: the one litellm lists, else half the price."""
    return float(listed) if listed is not None else (price or 0.0) / 2


def _ratio(batch: float, price: float) -> float:
    return batch / price if price > 0 else (0.0 if batch == 0 else math.inf)
