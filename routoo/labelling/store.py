"""Where a label run keeps what it paid for: every answer and every judge verdict, in SQLite.

Each answer is committed the moment its call settles, keyed by (task, model); each judge
verdict by (task, model, grader, request key). A rerun reads them back and sends only what is
missing, so stopping a run (Ctrl-C, a crash, a budget) and starting it again repeats no call
that had answered. Grades are not stored: graders are pure functions of answers and verdicts,
recomputed at export. One connection, used from the run's event loop thread only.

A run through a provider's batch API (``routoo.labelling.batch_api``) records each batch it
submits, with the ids of its requests, before it waits for it: a rerun polls that batch
instead of submitting (and paying for) the same requests again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routoo.errors import ConfigError, DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    task_id TEXT NOT NULL,
    model TEXT NOT NULL,
    answer TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    source TEXT NOT NULL,           -- "call" (this run) or "log" (an answer the decision log kept)
    time REAL NOT NULL,
    PRIMARY KEY (task_id, model)
);
CREATE TABLE IF NOT EXISTS verdicts (
    task_id TEXT NOT NULL,
    model TEXT NOT NULL,            -- the model whose answer was judged
    grader TEXT NOT NULL,
    key TEXT NOT NULL,              -- the grader's request key, e.g. "answer-first"
    judge_model TEXT NOT NULL,
    messages TEXT NOT NULL,         -- JSON: what the judge read
    verdict TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (task_id, model, grader, key)
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,      -- the provider's id
    model TEXT NOT NULL,            -- the pool model it runs
    custom_ids TEXT NOT NULL,       -- JSON list: the ids of its requests (batch_api.request_id)
    submitted REAL NOT NULL,        -- time.time() when it was created
    status TEXT,                    -- NULL while open; its final status once collected
    closed REAL
);
"""


@dataclass(frozen=True)
class StoredAnswer:
    """A model's answer to a task and what the call took."""

    answer: str
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    source: str = "call"


@dataclass(frozen=True)
class StoredBatch:
    """A batch submitted to a provider's batch API and not yet collected."""

    batch_id: str
    model: str
    custom_ids: tuple[str, ...]
    submitted: float  # time.time() when it was created


class LabelStore:
    """The answers and verdicts of one label run, in the SQLite file ``path``."""

    def __init__(self, path: str | Path) -> None:
        if not isinstance(path, str | Path) or not str(path):
            raise ConfigError(f"the label store's path must be a file path, not {path!r}")
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as error:
            raise DataError(f"cannot open the label store {self.path}: {error}") from None

    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ answers
    def add_answer(self, task_id: str, model: str, stored: StoredAnswer) -> None:
        """Keep an answer; one already kept for (task, model) stays (a rerun never replaces it)."""
        self._db.execute(
            "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                task_id,
                model,
                stored.answer,
                stored.cost_usd,
                stored.prompt_tokens,
                stored.completion_tokens,
                stored.latency_s,
                stored.source,
                time.time(),
            ),
        )

    def answers(self) -> dict[tuple[str, str], StoredAnswer]:
        """Every kept answer by (task id, model)."""
        rows = self._db.execute(
            "SELECT task_id, model, answer, cost_usd, prompt_tokens, completion_tokens, latency_s, source "
            "FROM answers"
        )
        return {(row[0], row[1]): StoredAnswer(*row[2:]) for row in rows}

    # ------------------------------------------------------------------ verdicts
    def add_verdict(
        self,
        key: tuple[str, str, str, str],
        judge_model: str,
        messages: list[dict[str, Any]],
        verdict: str,
        cost_usd: float,
    ) -> None:
        """Keep a judge's reply to one request; ``key`` is (task id, model, grader, request key)."""
        self._db.execute(
            "INSERT OR IGNORE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, judge_model, json.dumps(messages, ensure_ascii=False), verdict, cost_usd, time.time()),
        )

    def verdicts(self) -> dict[tuple[str, str, str, str], str]:
        """Every kept verdict by (task id, model, grader, request key)."""
        rows = self._db.execute("SELECT task_id, model, grader, key, verdict FROM verdicts")
        return {tuple(row[:4]): row[4] for row in rows}

    # ------------------------------------------------------------------ batches
    def add_batch(self, batch_id: str, model: str, custom_ids: list[str], submitted: float) -> None:
        """Keep a submitted batch of ``model`` and the ids of its requests, open until ``close_batch``."""
        self._db.execute(
            "INSERT INTO batches (batch_id, model, custom_ids, submitted) VALUES (?, ?, ?, ?)",
            (batch_id, model, json.dumps(custom_ids), submitted),
        )

    def open_batches(self) -> list[StoredBatch]:
        """The batches submitted and not yet collected, oldest first."""
        rows = self._db.execute(
            "SELECT batch_id, model, custom_ids, submitted FROM batches "
            "WHERE status IS NULL ORDER BY submitted"
        )
        return [StoredBatch(row[0], row[1], tuple(json.loads(row[2])), row[3]) for row in rows]

    def close_batch(self, batch_id: str, status: str) -> None:
        """Mark a batch collected, with its final ``status`` (its results are stored)."""
        self._db.execute(
            "UPDATE batches SET status = ?, closed = ? WHERE batch_id = ?", (status, time.time(), batch_id)
        )

    def judge_cost(self) -> float:
        """USD spent on judge calls so far."""
        return float(self._db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM verdicts").fetchone()[0])
