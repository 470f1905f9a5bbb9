"""The label loop: from prompts (a file or your decision log) to training labels.

``Labeller`` runs a pool of models on prompts through a Router's own call layer, grades the
answers (``routoo.labelling.graders``: reference answers, an LLM judge, your users'
feedback) and writes Routoo's training JSONL with each call's real cost, tokens and latency.
Runs resume from their ``LabelStore``; a hard budget stops them; ``LocalExecutor`` sends the
calls from this process, ``routoo.labelling.ray_executor.RayExecutor`` from a Ray cluster,
``BatchApiExecutor`` through the providers' batch APIs (about half the price).
``routoo label`` is the command line (``routoo label --help``).
"""

from routoo.labelling.batch_api import BatchApiExecutor
from routoo.labelling.executors import Executor, LocalExecutor
from routoo.labelling.graders import (
    FEEDBACK,
    ChoiceMatch,
    ExactMatch,
    Grader,
    NumericMatch,
    PairwiseJudge,
    RegexMatch,
    RubricJudge,
    UserFeedback,
    parse_grader,
)
from routoo.labelling.jobs import CallJob, CallResult
from routoo.labelling.runner import CostEstimate, Labeller, LabelSummary
from routoo.labelling.store import LabelStore, StoredAnswer, StoredBatch
from routoo.labelling.tasks import Grade, JudgeRequest, LabelTask, read_tasks, tasks_from_log

__all__ = [
    "FEEDBACK",
    "BatchApiExecutor",
    "CallJob",
    "CallResult",
    "ChoiceMatch",
    "CostEstimate",
    "ExactMatch",
    "Executor",
    "Grade",
    "Grader",
    "JudgeRequest",
    "LabelStore",
    "LabelSummary",
    "LabelTask",
    "Labeller",
    "LocalExecutor",
    "NumericMatch",
    "PairwiseJudge",
    "RegexMatch",
    "RubricJudge",
    "StoredAnswer",
    "StoredBatch",
    "UserFeedback",
    "parse_grader",
    "read_tasks",
    "tasks_from_log",
]
