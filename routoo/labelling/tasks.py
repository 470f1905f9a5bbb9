"""What the label loop works on: prompts to label (from a file or the decision log), the requests
a grader asks a judge, grades."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routoo.data.jsonl import read_records
from routoo.errors import DataError, DatasetNotFoundError
from routoo.labelling.store import LabelStore, StoredAnswer
from routoo.prompts import Prompt, validate_prompt

if TYPE_CHECKING:
    from routoo.decision_log import DecisionLog

log_module = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelTask:
    """One prompt to label: its ``id`` (unique in a run), the prompt, and what grades answers to it.

    ``reference`` is the reference answer (reference graders compare with it); ``feedback``
    the score in [0, 1] a user gave the answer of ``answered_by`` (from the decision log).
    """

    id: str
    prompt: Prompt
    reference: str | None = None
    category: str | None = None
    feedback: float | None = None
    answered_by: str | None = None


@dataclass(frozen=True)
class JudgeRequest:
    """A call a grader asks of its judge model: ``key`` names it within one grade (e.g.
    ``"answer-first"``), ``messages`` is what the judge reads."""

    key: str
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class Grade:
    """A grader's verdict on one answer: ``score`` in [0, 1], or None when it could not grade
    (``detail["reason"]`` says why); ``detail`` keeps what the score came from."""

    score: float | None
    detail: dict[str, Any] = field(default_factory=dict)


TASK_FIELDS = frozenset({"prompt", "id", "reference", "category"})


def read_tasks(path: str | Path) -> list[LabelTask]:
    """Tasks from a JSONL file of ``{"prompt", "id"?, "reference"?, "category"?}`` lines.

    A line without an ``id`` is named by a hash of its prompt (and its rank among equal
    prompts), so editing the file does not change the other tasks' ids and a rerun still
    finds their answers.
    """
    if not Path(path).is_file():
        raise DatasetNotFoundError(f"{path} does not exist")
    tasks = []
    seen: Counter[str] = Counter()
    for line, record in read_records(Path(path)):
        where = f"{path}:{line}"
        if not isinstance(record, dict) or "prompt" not in record:
            raise DataError(f"{where}: a task line is an object with a 'prompt'")
        unknown = set(record) - TASK_FIELDS
        if unknown:
            raise DataError(
                f"{where}: unknown fields {sorted(unknown)}; a task line has {sorted(TASK_FIELDS)}"
            )
        validate_prompt(record["prompt"], where=where)
        for key in ("id", "reference", "category"):
            if record.get(key) is not None and not isinstance(record[key], str):
                raise DataError(f"{where}: {key} must be a string, got {record[key]!r}")
        task_id = record.get("id")
        if task_id is None:
            digest = hashlib.sha256(json.dumps(record["prompt"], sort_keys=True).encode()).hexdigest()[:16]
            seen[digest] += 1
            task_id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
        tasks.append(LabelTask(task_id, record["prompt"], record.get("reference"), record.get("category")))
    if not tasks:
        raise DataError(f"{path} holds no prompts")
    return tasks


def tasks_from_log(log: DecisionLog, store: LabelStore) -> list[LabelTask]:
    """Tasks from the calls ``log`` kept the text of, with their feedback; the answers the log
    holds go into ``store`` as the answering model's, so labelling them pays for no call twice.

    Feedback becomes ``LabelTask.feedback``: a score as given, thumbs up 1 and down 0.
    """
    tasks = []
    skipped = 0
    for row in log.rows():
        if row["prompt"] is None:
            skipped += 1
            continue
        thumbs = row["feedback_thumbs"]
        feedback = row["feedback_score"] if row["feedback_score"] is not None else thumbs
        tasks.append(
            LabelTask(
                row["call_id"],
                row["prompt"],
                feedback=None if feedback is None else float(feedback),
                answered_by=row["answered_by"],
            )
        )
        if row["answer"] is not None:
            logged = StoredAnswer(
                row["answer"],
                row["cost_usd"],
                row["prompt_tokens"],
                row["completion_tokens"],
                row["latency_s"],
                source="log",
            )
            store.add_answer(row["call_id"], row["answered_by"], logged)
    if skipped:
        log_module.warning(
            "routoo label: %d logged calls kept no text (DecisionLog(record_text=False)); they are left out",
            skipped,
        )
    if not tasks:
        raise DataError(
            f"{log.path} holds no call with its text: log with DecisionLog(..., record_text=True)"
        )
    return tasks
