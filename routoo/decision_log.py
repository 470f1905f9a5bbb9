"""The decision log: one row per routed call, in a local SQLite file, for the label loop and reports.

A ``Router(log=...)`` records each call once its cost is known (``Ledger.record``): the
decision (chosen model, rule, candidates with predicted quality, estimated cost and expected
output tokens, warnings), who answered, the real cost, tokens, latency and the fallbacks
(model and error class). The prompt and the answer are kept only with ``record_text=True``;
the litellm keywords (keys, headers) never are. Each row has a ``call_id`` that feedback
(``add_feedback``) attaches to later.

Logging never fails or holds up a call: SQLite in WAL mode with ``synchronous=NORMAL`` (no
fsync per row), a short wait for another writer's lock, and any error (a full disk, a
read-only or locked file) is a ``logging`` warning. Threads share one connection under a
lock; processes share the file through SQLite's own locking.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routoo.errors import ConfigError, DataError
from routoo.ledger import answer_text

if TYPE_CHECKING:
    from routoo.budget import CostBasis
    from routoo.decision import RoutingDecision
    from routoo.ledger import CallPlan

log = logging.getLogger(__name__)

# Column name -> SQLite type; JSON_COLUMNS hold JSON text, read back as Python data.
COLUMNS = {
    "call_id": "TEXT PRIMARY KEY",
    "time": "REAL NOT NULL",  # Unix seconds when the call settled
    "model": "TEXT NOT NULL",  # the decision's choice
    "answered_by": "TEXT NOT NULL",
    "rule": "TEXT NOT NULL",
    "tradeoff": "REAL",
    "estimated_cost_usd": "REAL",  # of the model that answered
    "expected_output_tokens": "REAL",  # of the model that answered
    "cost_usd": "REAL NOT NULL",
    "cost_basis": "TEXT NOT NULL",  # "usage", "counted" or "reserved" (a stream cut short)
    "prompt_tokens": "INTEGER NOT NULL",
    "completion_tokens": "INTEGER NOT NULL",
    "latency_s": "REAL NOT NULL",  # from the call's start, routing included, to its settlement
    "streamed": "INTEGER NOT NULL",
    "candidates": "TEXT NOT NULL",
    "fallbacks": "TEXT NOT NULL",
    "warnings": "TEXT NOT NULL",
    "prompt": "TEXT",  # the messages, only with record_text
    "answer": "TEXT",  # only with record_text
    "feedback_score": "REAL",
    "feedback_thumbs": "INTEGER",
    "feedback_time": "REAL",
}
JSON_COLUMNS = ("candidates", "fallbacks", "warnings", "prompt")
CANDIDATE_FIELDS = ("model", "predicted_quality", "estimated_cost", "expected_output_tokens", "admissible")


class DecisionLog:
    """A SQLite file of routed calls: ``Router(log=DecisionLog("calls.sqlite"))``.

    ``record_text``: also keep each call's messages and answer (off by default).
    ``timeout_s``: the longest a write waits for another writer's lock before it is
    skipped with a warning. The file is opened on the first write, not here.
    """

    def __init__(self, path: str | Path, *, record_text: bool = False, timeout_s: float = 0.5) -> None:
        if not isinstance(path, str | Path) or not str(path):
            raise ConfigError(f"the decision log's path must be a file path, not {path!r}")
        if not isinstance(record_text, bool):
            raise ConfigError(f"record_text must be True or False, not {record_text!r}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s >= 0:
            raise ConfigError(f"timeout_s must be a number of seconds >= 0, not {timeout_s!r}")
        self.path = Path(path)
        self.record_text = record_text
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None  # a connection is not carried into a forked process

    @classmethod
    def coerce(cls, log: DecisionLog | str | Path | None) -> DecisionLog | None:
        """``log`` as a ``DecisionLog`` (a path opens one with the defaults); None stays None."""
        if log is None or isinstance(log, DecisionLog):
            return log
        if isinstance(log, str | Path):
            return cls(log)
        raise ConfigError(f"log must be a DecisionLog or a file path, not {type(log).__name__}")

    def __repr__(self) -> str:
        return f"DecisionLog({str(self.path)!r}, record_text={self.record_text})"

    # ------------------------------------------------------------------ writing
    def record(
        self,
        plan: CallPlan,
        decision: RoutingDecision,
        model: str,
        cost: float,
        usage: dict[str, int],
        basis: CostBasis,
        response: Any,
    ) -> str | None:
        """Write one settled call; its ``call_id``, or None (with a warning) when it could not be written."""
        try:
            answered = decision.candidate(model)
            row = {
                "call_id": plan.call_id,
                "time": time.time(),
                "model": decision.model,
                "answered_by": model,
                "rule": decision.rule,
                "tradeoff": _number(decision.tradeoff),
                "estimated_cost_usd": _number(answered.estimated_cost),
                "expected_output_tokens": _number(answered.expected_output_tokens),
                "cost_usd": cost,
                "cost_basis": basis,
                "prompt_tokens": usage["prompt_tokens"],
                "completion_tokens": usage["completion_tokens"],
                "latency_s": time.monotonic() - plan.started,
                "streamed": bool(plan.kwargs.get("stream")),
                "candidates": [
                    {field: _number(getattr(c, field)) for field in CANDIDATE_FIELDS}
                    for c in decision.candidates
                ],
                # The error class only: a provider's message may quote what was sent.
                "fallbacks": [{"model": f.model, "error_type": f.error_type} for f in decision.fallbacks],
                "warnings": list(decision.warnings),
                "prompt": plan.messages if self.record_text else None,
                "answer": answer_text(response) if self.record_text else None,
            }
            values = [json.dumps(row[c], default=str) if c in JSON_COLUMNS else row[c] for c in row]
            self._write(f"INSERT INTO calls ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", values)
        except Exception as error:  # the call has its answer: logging must not take it away
            log.warning(
                "routoo: the decision log %s skipped a call: %s: %s", self.path, type(error).__name__, error
            )
            return None
        return plan.call_id

    def add_feedback(self, call_id: str, *, score: float | None = None, thumbs: bool | None = None) -> None:
        """Attach a user's verdict to a logged call: an application's own ``score`` (a finite
        number), ``thumbs`` up (True) or down (False), or both; given again, it replaces them."""
        if score is None and thumbs is None:
            raise DataError("add_feedback needs score=, thumbs= or both")
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
        ):
            raise DataError(f"feedback score must be a finite number, not {score!r}")
        if thumbs is not None and not isinstance(thumbs, bool):
            raise DataError(f"feedback thumbs must be True (up) or False (down), not {thumbs!r}")
        updated = self._write(
            "UPDATE calls SET feedback_score = coalesce(?, feedback_score), "
            "feedback_thumbs = coalesce(?, feedback_thumbs), feedback_time = ? WHERE call_id = ?",
            [score, thumbs, time.time(), call_id],
        )
        if updated == 0:
            raise DataError(f"no call with call_id {call_id!r} in the decision log {self.path}")

    def _write(self, sql: str, values: list[Any]) -> int:
        with self._lock:
            connection = self._open()
            with connection:  # one transaction, committed or rolled back
                return connection.execute(sql, values).rowcount

    def _open(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=self.timeout_s, check_same_thread=False)
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")  # in WAL: no fsync per row
                columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
                with connection:
                    connection.execute(f"CREATE TABLE IF NOT EXISTS calls ({columns})")
            except BaseException:
                connection.close()
                raise
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def close(self) -> None:
        """Close this process's connection (the next write opens another)."""
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None

    # ------------------------------------------------------------------ reading
    def rows(self) -> list[dict[str, Any]]:
        """Every logged call, oldest first, as plain data (JSON columns decoded, flags as bools)."""
        if not self.path.is_file():
            raise DataError(f"no decision log at {self.path}")
        connection = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.timeout_s
        )
        try:
            connection.row_factory = sqlite3.Row
            found = connection.execute("SELECT * FROM calls ORDER BY time, rowid").fetchall()
        except sqlite3.Error as error:
            raise DataError(f"{self.path} is not a readable decision log: {error}") from None
        finally:
            connection.close()
        return [_decoded(dict(row)) for row in found]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def to_jsonl(self, path: str | Path) -> int:
        """Write every logged call to ``path``, one JSON object a line; the number of rows written."""
        rows = self.rows()
        with Path(path).open("w", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
        return len(rows)


def _number(value: Any) -> Any:
    """``value``, with a non-finite float as None (JSON has no infinity)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for column in JSON_COLUMNS:
        if row[column] is not None:
            row[column] = json.loads(row[column])
    row["streamed"] = bool(row["streamed"])
    if row["feedback_thumbs"] is not None:
        row["feedback_thumbs"] = bool(row["feedback_thumbs"])
    return row
