"""One budget per LangChain run: a USD limit in the config becomes a single ``Budget`` for the whole run.

A chain run invoked with ``configurable={"routoo_budget": 0.05}`` must spend at most $0.05
across every model call inside it, nested chains, tools and agents included. Every one of
those calls sees the same config, so each call has to find the same ``Budget``: calls are
keyed by the outermost LangChain run they belong to.

The setting and the budgets of runs in progress are shared with ``llamaindex_routoo``
(``langchain_routoo.adapters``: ``RunBudget``, ``RunBudgets``); what is LangChain's is how a
call finds its run.

LangChain hands a model call only its direct parent's run id, so ``RunTree`` keeps the run
tree itself: a small callback handler, added to every callback manager through LangChain's
configure hooks (the mechanism ``get_usage_metadata_callback`` uses), records each chain,
tool and retriever run's parent when it starts and forgets it, and the run's budget, when it
ends. It handles no model events, so its cost is two dictionary updates per chain step.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from routoo.budget import Budget, RunBudget, RunBudgets


class RunTree(BaseCallbackHandler):
    """Parents of the LangChain runs in progress, and the budgets of the outermost ones."""

    # Called inline (also under async callback managers) so that a parent is recorded
    # before any of its children can look it up.
    run_inline = True
    ignore_llm = True
    ignore_chat_model = True
    ignore_retry = True
    ignore_agent = True
    ignore_custom_event = True

    def __init__(self) -> None:
        self._parents: dict[UUID, UUID | None] = {}
        self._lock = threading.Lock()
        self.budgets = RunBudgets("langchain")

    def root_of(self, run_id: UUID) -> UUID:
        """The outermost known run above (or equal to) ``run_id``."""
        with self._lock:
            while (parent := self._parents.get(run_id)) is not None:
                run_id = parent
        return run_id

    def budget_for(self, parent_run_id: UUID | None, setting: RunBudget) -> Budget:
        """The budget of the outermost run above ``parent_run_id``, opened on first use.

        A call with no parent run is a run of its own and gets a fresh budget.
        """
        root = None if parent_run_id is None else self.root_of(parent_run_id)
        return self.budgets.budget_for(setting, root)

    def open_runs(self) -> int:
        """How many runs are being tracked (they are forgotten when they end)."""
        return len(self._parents)

    # ------------------------------------------------------------------ callbacks
    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._start(run_id, parent_run_id)

    def on_tool_start(
        self,
        serialized: Any,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id)

    def on_retriever_start(
        self, serialized: Any, query: str, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        self._start(run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def _start(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        with self._lock:
            self._parents[run_id] = parent_run_id

    def _end(self, run_id: UUID) -> None:
        with self._lock:
            self._parents.pop(run_id, None)
        self.budgets.end(run_id)


RUN_TREE = RunTree()

# A context variable whose default is the handler makes LangChain add it to every callback
# manager it configures, in every thread and task, as an inheritable handler.
_run_tree_var: ContextVar[RunTree | None] = ContextVar("routoo_run_tree", default=RUN_TREE)
register_configure_hook(_run_tree_var, inheritable=True)
