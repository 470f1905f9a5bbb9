"""Sending a label run's calls from a Ray cluster, through Ray Data (the ``routoo[ray]`` extra).

The jobs become a Ray dataset; ``map_batches`` hands batches to a pool of workers, each
holding a Router built by ``router_factory`` (a picklable callable: a Router itself holds
locks and open files) and sending its batch with a ``LocalExecutor``, so the same
``send_job`` path runs on every worker. Results stream back to the driver, which stores each
as it arrives, as the local executor does: a rerun resumes the same way.

What must hold across workers lives in two Ray actors: the run's hard budget (a ``Budget``
whose every reservation and settlement goes through one actor, so the limit holds for the
whole cluster) and the rate limiter (one requests- and tokens-per-minute schedule per
provider for every worker).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from routoo.budget import Budget, Reservation, SpendRecord
from routoo.errors import ConfigError
from routoo.labelling.executors import LocalExecutor, StopReason
from routoo.labelling.jobs import CallJob, CallResult
from routoo.rate_limits import RateLimiter

if TYPE_CHECKING:
    from routoo.router import Router

# The result field that marks a job a worker did not send because the budget was spent.
NOT_SENT = "not sent: the budget does not fit another call"


class RayExecutor:
    """Sends jobs from ``workers`` Ray workers, ``concurrency`` calls at a time each.

    ``router_factory`` builds each worker's Router (e.g. ``functools.partial(Router, models,
    predictor=path)``). ``address``: the cluster to join (None: the one this process is
    connected to, else a local instance). ``batch_size`` jobs go to a worker at a time.
    """

    def __init__(
        self,
        router_factory: Callable[[], Router],
        *,
        workers: int = 2,
        concurrency: int = 8,
        batch_size: int = 64,
        address: str | None = None,
    ) -> None:
        for name, value in (("workers", workers), ("concurrency", concurrency), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if not callable(router_factory):
            raise ConfigError("router_factory must be a callable that builds a Router")
        self.router_factory = router_factory
        self.workers = workers
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.address = address

    def __repr__(self) -> str:
        return f"RayExecutor(workers={self.workers}, concurrency={self.concurrency})"

    def cost_scale(self, router: Router, model: str) -> float:
        return 1.0

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
        ray = connect(self.address)
        budget_host = None
        if budget is not None:
            budget_host = ray.remote(_BudgetHost).remote(budget.remaining, budget.mode, budget.name)
        limiter_host = None
        if isinstance(router.rate_limiter, RateLimiter):
            limiter_host = ray.remote(RateLimiter).remote(router.rate_limiter.limits)
        elif router.rate_limiter is not None:
            raise ConfigError("the Ray executor shares rate limits given as RateLimits, not another limiter")
        dataset = ray.data.from_items([_job_row(job) for job in jobs])
        results = dataset.map_batches(
            _Worker,
            fn_constructor_args=(
                self.router_factory,
                budget_host,
                limiter_host,
                max_tokens,
                self.concurrency,
            ),
            batch_size=self.batch_size,
            concurrency=self.workers,
        )
        stopped: StopReason = None
        for row in results.iter_rows():
            result = _result(row)
            if result.error == NOT_SENT:
                stopped = "budget"
                continue
            if budget is not None and result.error is None:
                # The actor enforced the limit; the driver's Budget shows the spend too, so the
                # same Budget given to a later run starts from what is left.
                record = SpendRecord(
                    result.job.model, result.cost_usd, result.prompt_tokens, result.completion_tokens
                )
                budget.charge(result.cost_usd, record)
            on_result(result)
        return stopped


class _Worker:
    """One Ray Data worker: a Router and a local executor sending each batch it is given."""

    def __init__(
        self,
        router_factory: Callable[[], Router],
        budget_host: Any,
        limiter_host: Any,
        max_tokens: int | None,
        concurrency: int,
    ) -> None:
        self.router = router_factory()
        if limiter_host is not None:
            self.router.rate_limiter = _SharedRateLimiter(limiter_host)
        self.budget = None if budget_host is None else _SharedBudget(budget_host)
        self.max_tokens = max_tokens
        self.executor = LocalExecutor(concurrency)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        jobs = [_job(dict(zip(batch, values, strict=True))) for values in zip(*batch.values(), strict=True)]
        results: list[CallResult] = []
        stopped = self.executor.run(self.router, jobs, results.append, self.budget, self.max_tokens)
        if stopped:
            done = {id(result.job) for result in results}
            results += [CallResult(job, None, error=NOT_SENT) for job in jobs if id(job) not in done]
        rows = [_result_row(result) for result in results]
        return {key: [row[key] for row in rows] for key in rows[0]}


class _BudgetHost:
    """The Ray actor behind a cluster-wide hard budget: a plain ``Budget`` in one process."""

    def __init__(self, limit_usd: float, mode: str, name: str) -> None:
        self.budget = Budget(limit_usd, mode=mode, name=name)  # type: ignore[arg-type]

    def call(self, method: str, *args: Any) -> Any:
        member = getattr(self.budget, method)
        return member(*args) if callable(member) else member


class _SharedBudget(Budget):
    """A ``Budget`` whose state lives in a ``_BudgetHost`` actor, shared by every worker."""

    def __init__(self, host: Any) -> None:
        self._host = host
        self.limit_usd = self._call("limit_usd")
        self.mode = self._call("mode")
        self.name = self._call("name")
        self.expected_calls = None

    def _call(self, method: str, *args: Any) -> Any:
        return _ray().get(self._host.call.remote(method, *args))

    spent = property(lambda self: self._call("spent"))
    reserved = property(lambda self: self._call("reserved"))
    remaining = property(lambda self: self._call("remaining"))
    records = property(lambda self: self._call("records"))

    def reserve(self, estimate_usd: float, why: str = "") -> Reservation:
        return self._call("reserve", estimate_usd, why)

    def settle(self, reservation: Reservation, actual_usd: float, record: SpendRecord) -> None:
        self._call("settle", reservation, actual_usd, record)

    def release(self, reservation: Reservation) -> None:
        self._call("release", reservation)

    def tradeoff_pressure(self) -> float:
        return self._call("tradeoff_pressure")


class _SharedRateLimiter:
    """A rate limiter living in a Ray actor: every worker books from the same schedule."""

    def __init__(self, host: Any) -> None:
        self._host = host

    def reserve(self, provider: str, tokens: int, *, max_wait_s: float | None = None) -> float:
        return _ray().get(self._host.reserve.remote(provider, tokens, max_wait_s=max_wait_s))


def connect(address: str | None = None) -> Any:
    """The ``ray`` module, connected to the cluster at ``address`` (None: the one this process is
    connected to, else a new local instance)."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return ray


def _ray() -> Any:
    try:
        import ray
        import ray.data  # the executor needs Ray Data, not only Ray core
    except ImportError:
        raise ConfigError("the Ray executor needs Ray Data: pip install 'routoo[ray]'") from None
    return ray


# Jobs and results cross Ray Data as flat rows of strings and numbers (Arrow tables).
def _job_row(job: CallJob) -> dict[str, Any]:
    return {
        "kind": job.kind,
        "task_id": job.task_id,
        "model": job.model,
        "messages": json.dumps(job.messages),
        "verdict_key": json.dumps(job.verdict_key),
    }


def _job(row: dict[str, Any]) -> CallJob:
    key = json.loads(row["verdict_key"])
    return CallJob(
        row["kind"],
        row["task_id"],
        row["model"],
        json.loads(row["messages"]),
        None if key is None else tuple(key),
    )


def _result_row(result: CallResult) -> dict[str, Any]:
    return {
        **_job_row(result.job),
        "text": result.text,
        "cost_usd": result.cost_usd,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "latency_s": result.latency_s,
        "error": result.error,
    }


def _result(row: dict[str, Any]) -> CallResult:
    return CallResult(
        _job(row),
        row["text"],
        cost_usd=float(row["cost_usd"]),
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
        latency_s=float(row["latency_s"]),
        error=row["error"],
    )
