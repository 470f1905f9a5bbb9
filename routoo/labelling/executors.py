"""Where a label run's calls are sent from: this process (``LocalExecutor``) or a Ray cluster.

An executor sends ``CallJob``s with ``send_job`` and hands each ``CallResult`` to
``on_result`` in the calling thread as soon as it arrives (the run stores it there, so an
interruption loses only calls in flight). It stops sending once a hard budget no longer fits
the next call, and says so: ``run`` returns ``"budget"`` then, None when every job was sent.
The Ray executor lives in ``routoo.labelling.ray_executor`` (the ``routoo[ray]`` extra).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from tqdm.auto import tqdm

from routoo.budget import Budget, budget_scope
from routoo.errors import BudgetExceededError, ConfigError
from routoo.labelling.jobs import CallJob, CallResult, send_job

if TYPE_CHECKING:
    from routoo.router import Router

log = logging.getLogger(__name__)
StopReason = Literal["budget"] | None


class Executor(Protocol):
    """Sends jobs (``run``); ``cost_scale`` is what a call sent this way costs per USD of the
    router's estimate of it (1, except through a batch API)."""

    def cost_scale(self, router: Router, model: str) -> float: ...

    def run(
        self,
        router: Router,
        jobs: Sequence[CallJob],
        on_result: Callable[[CallResult], None],
        budget: Budget | None,
        max_tokens: int | None,
    ) -> StopReason: ...


class LocalExecutor:
    """Sends jobs from this process, ``concurrency`` at a time, on one event loop."""

    def __init__(self, concurrency: int = 8, progress: bool = False) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be a positive integer, not {concurrency!r}")
        self.concurrency = concurrency
        self.progress = progress

    def __repr__(self) -> str:
        return f"LocalExecutor(concurrency={self.concurrency})"

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
        queue = list(reversed(jobs))  # popped from the end: jobs go out in order
        stopped = False
        bar = tqdm(total=len(jobs), desc="calls", unit="call", disable=not self.progress)

        async def worker() -> None:
            nonlocal stopped
            while queue and not stopped:
                job = queue.pop()
                try:
                    result = await send_job(router, job, max_tokens)
                except BudgetExceededError as error:
                    if not stopped:  # once: the other workers stop on the same flag
                        log.warning("routoo label: stopping, the budget does not fit another call: %s", error)
                    stopped = True
                    return
                on_result(result)
                bar.update()

        async def send_all() -> None:
            with budget_scope(budget):  # the workers' tasks copy this context, so its budget
                await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(jobs)))))

        try:
            asyncio.run(send_all())
        finally:
            bar.close()
        return "budget" if stopped else None
