"""``routoo label``'s engine: run a pool of models on prompts, grade the answers, write labels.

A ``Labeller`` works in two stages over a ``LabelStore``: the answers (every labelled model,
and each pairwise judge's reference model, on every task), then the judge calls their
graders ask for. Both stages send only what the store lacks, so a rerun resumes. Grades are
then computed from the store (graders are pure) and exported in Routoo's JSONL format with
each call's real cost, tokens and latency: ready for ``routoo train`` and ``routoo onboard``.

A task's label for a model is the first grade, in the order the graders were given, that is
not None: ``[exact, rubric judge]`` uses the reference where a task has one, the judge elsewhere.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from routoo.data.dataset import RoutingDataset
from routoo.errors import ConfigError, DataError
from routoo.labelling.executors import Executor, LocalExecutor, StopReason
from routoo.labelling.graders import Grader
from routoo.labelling.jobs import CallJob, CallResult, jobs_by_model
from routoo.labelling.store import LabelStore, StoredAnswer
from routoo.labelling.tasks import Grade, LabelTask
from routoo.prompts import as_messages, prompt_text

if TYPE_CHECKING:
    from routoo.budget import Budget
    from routoo.router import Router

# Words of the stand-in answer a dry run puts in judge prompts, per expected output token.
PLACEHOLDER_WORD = "answer"


@dataclass
class LabelSummary:
    """What a run did: calls sent, failed and left, what they cost, and why it stopped."""

    sent: Counter[str] = field(default_factory=Counter)  # by job kind
    failed: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # the first few, for the user
    left: int = 0
    stopped: StopReason = None
    cost_usd: float = 0.0

    def add(self, result: CallResult) -> None:
        if result.error is None:
            self.sent[result.job.kind] += 1
            self.cost_usd += result.cost_usd
        else:
            self.failed[result.job.kind] += 1
            if len(self.errors) < 5:
                self.errors.append(f"{result.job.model} on {result.job.task_id}: {result.error}")


@dataclass(frozen=True)
class CostEstimate:
    """A dry run's answer: calls still to send and their estimated USD cost, per model."""

    calls: dict[str, int]
    cost_usd: dict[str, float]

    @property
    def total_usd(self) -> float:
        return sum(self.cost_usd.values())


class Labeller:
    """Labels ``models`` (default: the whole pool) of ``router`` with ``graders``.

    Calls go through ``router`` itself, pinned to one model each, so its fault policy, rate
    limits and the run's budget apply. ``max_tokens`` caps every answer (and makes hard
    budgets tighter: a call reserves at most that many output tokens). ``executor`` sends the
    calls (default ``LocalExecutor()``: this process, 8 at a time).
    """

    def __init__(
        self,
        router: Router,
        graders: Sequence[Grader],
        models: Sequence[str] | None = None,
        *,
        max_tokens: int | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.router = router
        self.graders = list(graders)
        self.models = list(router.models if models is None else models)
        self.max_tokens = max_tokens
        self.executor = executor if executor is not None else LocalExecutor()
        if not self.graders:
            raise ConfigError("give at least one grader")
        if len({grader.name for grader in self.graders}) != len(self.graders):
            raise ConfigError(f"graders are named twice: {[grader.name for grader in self.graders]}")
        needed = {*self.models, *self._reference_models(), *self._judge_models()}
        missing = sorted(needed - set(router.models))
        if missing:
            raise ConfigError(f"{missing} must be in the router's pool to be called; it has {router.models}")

    def __repr__(self) -> str:
        return f"Labeller(models={self.models}, graders={[grader.name for grader in self.graders]})"

    # ------------------------------------------------------------------ running
    def run(
        self, tasks: Sequence[LabelTask], store: LabelStore, budget: Budget | None = None
    ) -> LabelSummary:
        """Send every call ``store`` lacks for ``tasks`` (answers, then judge calls), storing
        each result as it arrives; a hard ``budget`` stops the run once the next call no
        longer fits. Rerunning with the same store repeats no call that answered."""
        tasks = _checked(tasks)
        summary = LabelSummary()

        def keep(result: CallResult) -> None:
            summary.add(result)
            if result.error is not None:
                return
            job = result.job
            if job.kind == "answer":
                stored = StoredAnswer(
                    result.text or "",
                    result.cost_usd,
                    result.prompt_tokens,
                    result.completion_tokens,
                    result.latency_s,
                )
                store.add_answer(job.task_id, job.model, stored)
            else:
                assert job.verdict_key is not None
                store.add_verdict(
                    job.verdict_key, job.model, job.messages, result.text or "", result.cost_usd
                )

        for stage in (self.answer_jobs, self.judge_jobs):
            jobs = stage(tasks, store)
            summary.stopped = self.executor.run(self.router, jobs, keep, budget, self.max_tokens)
            if summary.stopped:
                break
        summary.left = len(self.answer_jobs(tasks, store)) + len(self.judge_jobs(tasks, store))
        return summary

    def answer_jobs(self, tasks: Sequence[LabelTask], store: LabelStore) -> list[CallJob]:
        """The answer calls ``store`` still lacks, task by task."""
        have = store.answers()
        callees = [*self.models, *(m for m in self._reference_models() if m not in self.models)]
        return [
            CallJob("answer", task.id, model, as_messages(task.prompt))
            for task in tasks
            for model in callees
            if (task.id, model) not in have
        ]

    def judge_jobs(self, tasks: Sequence[LabelTask], store: LabelStore) -> list[CallJob]:
        """The judge calls ``store`` still lacks, for the answers it has."""
        return self._judge_jobs(tasks, store.answers(), store.verdicts())

    def _judge_jobs(
        self,
        tasks: Sequence[LabelTask],
        answers: dict[tuple[str, str], StoredAnswer],
        verdicts: dict[tuple[str, str, str, str], str],
    ) -> list[CallJob]:
        jobs = []
        for task in tasks:
            for model in self.models:
                answer = answers.get((task.id, model))
                if answer is None:
                    continue
                for grader in self.graders:
                    if grader.judge_model is None or not self._gradable(grader, task, model, answers):
                        continue
                    reference = self._reference_answer(grader, task, answers)
                    for request in grader.requests(task, answer.answer, reference):
                        key = (task.id, model, grader.name, request.key)
                        if key not in verdicts:
                            jobs.append(CallJob("judge", task.id, grader.judge_model, request.messages, key))
        return jobs

    # ----------------------------------------------------------------- dry run
    def estimate(self, tasks: Sequence[LabelTask], store: LabelStore) -> CostEstimate:
        """What the calls ``run`` would send still cost, estimated as the router estimates
        any call (its learned output lengths, ``max_tokens`` as a cap). Judge calls on answers
        not yet given are priced with a stand-in answer of the expected length; calls sent
        through a batch API at its price (``Executor.cost_scale``)."""
        tasks = _checked(tasks)
        calls: Counter[str] = Counter()
        cost: Counter[str] = Counter()
        for jobs in (self.answer_jobs(tasks, store), self._judge_jobs_to_come(tasks, store)):
            for model, job_list in jobs_by_model(jobs).items():
                _, estimated = self.router.estimate([job.messages for job in job_list], self.max_tokens)
                scale = self.executor.cost_scale(self.router, model)  # a batch API's discount
                calls[model] += len(job_list)
                cost[model] += scale * float(estimated[:, self.router.models.index(model)].sum())
        return CostEstimate(dict(calls), dict(cost))

    def _judge_jobs_to_come(self, tasks: Sequence[LabelTask], store: LabelStore) -> list[CallJob]:
        """The judge calls of ``judge_jobs``, plus those of answers still to come (stand-ins)."""
        answers = dict(store.answers())
        view = self.router.prompt_view
        expected = self.router.output_tokens.estimate([prompt_text(task.prompt, view) for task in tasks])
        for row, task in enumerate(tasks):
            for model in {*self.models, *self._reference_models()}:
                if (task.id, model) not in answers:
                    words = math.ceil(expected[row, self.router.models.index(model)])
                    answers[task.id, model] = StoredAnswer(" ".join([PLACEHOLDER_WORD] * words), 0, 0, 0, 0)
        return self._judge_jobs(tasks, answers, store.verdicts())

    # ------------------------------------------------------------------ grading
    def grades(self, tasks: Sequence[LabelTask], store: LabelStore) -> dict[tuple[str, str, str], Grade]:
        """Every grade the store allows: (task id, model, grader name) -> ``Grade``."""
        answers, verdicts = store.answers(), store.verdicts()
        grades = {}
        for task in _checked(tasks):
            for model in self.models:
                answer = answers.get((task.id, model))
                if answer is None:
                    continue
                for grader in self.graders:
                    grades[task.id, model, grader.name] = self._grade(grader, task, model, answers, verdicts)
        return grades

    def labels(self, tasks: Sequence[LabelTask], store: LabelStore, name: str = "labels") -> RoutingDataset:
        """The tasks with at least one answer, as a dataset: each model's label (the first
        grade that is not None), with the real cost, output tokens and latency of its call."""
        tasks = _checked(tasks)
        answers, grades = store.answers(), self.grades(tasks, store)
        rows = [task for task in tasks if any((task.id, model) in answers for model in self.models)]
        if not rows:
            raise DataError("no answers yet: run the labeller before exporting its labels")
        shape = (len(rows), len(self.models))
        quality, cost, output_tokens, latency = (np.full(shape, np.nan) for _ in range(4))
        input_tokens = np.full(len(rows), np.nan)
        for i, task in enumerate(rows):
            for j, model in enumerate(self.models):
                answer = answers.get((task.id, model))
                if answer is None:
                    continue
                scores = (grades[task.id, model, grader.name].score for grader in self.graders)
                quality[i, j] = next((score for score in scores if score is not None), np.nan)
                cost[i, j], output_tokens[i, j] = answer.cost_usd, answer.completion_tokens
                latency[i, j], input_tokens[i] = answer.latency_s, answer.prompt_tokens
        return RoutingDataset(
            name=name,
            prompts=[task.prompt for task in rows],
            models=list(self.models),
            quality=quality,
            cost=cost,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_s=latency,
            categories=[task.category for task in rows],
            source_ids=[task.id for task in rows],
        )

    # ------------------------------------------------------------------ helpers
    def _reference_models(self) -> list[str]:
        return [g.reference_model for g in self.graders if g.reference_model is not None]

    def _judge_models(self) -> list[str]:
        return [g.judge_model for g in self.graders if g.judge_model is not None]

    def _gradable(
        self, grader: Grader, task: LabelTask, model: str, answers: dict[tuple[str, str], StoredAnswer]
    ) -> bool:
        """Whether ``grader`` can judge ``model``'s answer: a reference where it needs one, the
        reference model's answer for a pairwise judge (and a model is not judged against itself)."""
        if grader.needs_reference and task.reference is None:
            return False
        if grader.reference_model is None:
            return True
        return grader.reference_model != model and (task.id, grader.reference_model) in answers

    def _reference_answer(
        self, grader: Grader, task: LabelTask, answers: dict[tuple[str, str], StoredAnswer]
    ) -> str | None:
        if grader.reference_model is None:
            return None
        stored = answers.get((task.id, grader.reference_model))
        return None if stored is None else stored.answer

    def _grade(
        self,
        grader: Grader,
        task: LabelTask,
        model: str,
        answers: dict[tuple[str, str], StoredAnswer],
        verdicts: dict[tuple[str, str, str, str], str],
    ) -> Grade:
        if not self._gradable(grader, task, model, answers):
            return Grade(None, {"reason": "not gradable here: no reference, or no reference model answer"})
        answer = answers[task.id, model].answer
        reference = self._reference_answer(grader, task, answers)
        if grader.judge_model is None:
            return grader.grade(task, answer, None, reference, model=model)
        requests = grader.requests(task, answer, reference)
        given = {r.key: verdicts.get((task.id, model, grader.name, r.key)) for r in requests}
        if any(verdict is None for verdict in given.values()):
            return Grade(None, {"reason": "the judge has not answered yet"})
        return grader.grade(task, answer, given, reference, model=model)


def _checked(tasks: Iterable[LabelTask]) -> list[LabelTask]:
    tasks = list(tasks)
    if not tasks:
        raise DataError("no prompts to label")
    repeated = [task_id for task_id, n in Counter(task.id for task in tasks).items() if n > 1]
    if repeated:
        raise DataError(f"task ids must be unique; repeated: {repeated[:5]}")
    return tasks
