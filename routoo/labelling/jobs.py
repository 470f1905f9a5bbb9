"""One paid call of a label run, and sending it through a Router's own call layer.

Both executors (``routoo.labelling.executors``) send every ``CallJob`` with ``send_job``: a
routed call pinned to the job's model (no fallback to another model, whose answer would be
a wrong label), so the router's retries, cooldowns, timeouts, rate limits and budgets apply
as to any other call.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from routoo.errors import BudgetExceededError, RoutooError
from routoo.ledger import answer_text

if TYPE_CHECKING:
    from routoo.router import Router

JobKind = Literal["answer", "judge"]


@dataclass(frozen=True)
class CallJob:
    """A call the run needs: a model's answer to a task, or a judge's verdict on an answer.

    ``verdict_key`` (judge jobs) is (task id, judged model, grader, request key).
    """

    kind: JobKind
    task_id: str
    model: str
    messages: list[dict[str, Any]]
    verdict_key: tuple[str, str, str, str] | None = None


@dataclass(frozen=True)
class CallResult:
    """What a job's call gave: the text and its real cost, tokens and latency, or the error."""

    job: CallJob
    text: str | None
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None


async def send_job(router: Router, job: CallJob, max_tokens: int | None) -> CallResult:
    """Call ``job.model`` through ``router``; a failure the router gives up on is the result's
    ``error``, except a budget that no longer fits, which stops the run (it propagates)."""
    kwargs: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
    started = time.monotonic()
    try:
        routed = await router.acompletion(
            job.messages, policy={"model": job.model, "allow": [job.model]}, **kwargs
        )
    except BudgetExceededError:
        raise
    except RoutooError as error:
        return CallResult(job, None, error=f"{type(error).__name__}: {error}")
    return CallResult(
        job,
        answer_content(routed.response),
        cost_usd=routed.cost_usd,
        prompt_tokens=int(routed.usage.get("prompt_tokens", 0)),
        completion_tokens=int(routed.usage.get("completion_tokens", 0)),
        latency_s=time.monotonic() - started,
    )


def answer_content(response: Any) -> str:
    """The answer's text (its tool calls as JSON when it wrote none); reasoning is not graded."""
    choices = getattr(response, "choices", None) or []
    content = getattr(getattr(choices[0], "message", None), "content", None) if choices else None
    return content if isinstance(content, str) else answer_text(response)


def jobs_by_model(jobs: Sequence[CallJob]) -> dict[str, list[CallJob]]:
    """``jobs`` grouped by the model they call, in order."""
    grouped: dict[str, list[CallJob]] = {}
    for job in jobs:
        grouped.setdefault(job.model, []).append(job)
    return grouped
