"""Per-run budgets for LlamaIndex: one ``Budget`` for all the LLM calls of a query, chat turn or agent run.

``RoutooLLM(..., budget=0.05)`` gives every LlamaIndex run its own $0.05 budget, shared by
each LLM call inside it: the refine calls of a query, the condense step and the answer of a
chat turn, an agent's tool-calling turns (``budget_mode="soft"`` steers instead of
refusing). A ``Budget`` object as ``budget`` is shared by every run instead.

A run is the outermost span of LlamaIndex's instrumentation. ``query``, ``aquery``,
``chat``, ``achat``, ``retrieve`` and ``agent.run`` are spans (``dispatcher.span``), and so
is every call made inside them, LLM calls included; the active span's id is a context
variable, so calls in threads and asyncio tasks find their parent. LlamaIndex keeps no
trace id (the legacy callback traces are named, not numbered, and agents' workflows do not
open them), and a span handler is told only a span's parent, so ``RunSpans``, a span handler
on the root dispatcher, keeps the open spans' parents: a call walks up to the outermost span
and uses that run's budget, made by its first call and forgotten when the run's span ends.
A call outside any run (``llm.chat`` on its own) is a run of its own.

Limit: a call made after its run returned is a run of its own. A streaming query's answer
is such a call when LlamaIndex makes it lazily, as the response is read.

Recording a span costs a small pydantic object and a dictionary update per span.
"""

from __future__ import annotations

import inspect
from typing import Any

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.span import BaseSpan, active_span_id
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from pydantic import PrivateAttr

from routoo.budget import Budget, RunBudget, RunBudgets


class RunSpans(BaseSpanHandler[BaseSpan]):
    """The LlamaIndex spans in progress, with their parents, and the budgets of the outermost ones."""

    _budgets: RunBudgets = PrivateAttr(default_factory=lambda: RunBudgets("llamaindex"))

    @classmethod
    def class_name(cls) -> str:
        return "RoutooRunSpans"

    def root_of(self, span_id: str) -> str:
        """The outermost open span above (or equal to) ``span_id``."""
        with self.lock:
            while (span := self.open_spans.get(span_id)) is not None and span.parent_id is not None:
                span_id = span.parent_id
        return span_id

    def budget_for(self, setting: RunBudget) -> Budget:
        """The budget, under ``setting``, of the run the current call belongs to."""
        span_id = active_span_id.get()
        return self._budgets.budget_for(setting, None if span_id is None else self.root_of(span_id))

    def open_runs(self) -> int:
        """How many runs hold a budget (they are forgotten when they end)."""
        return len(self._budgets)

    # ------------------------------------------------------------ span handler hooks
    def new_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BaseSpan:
        return BaseSpan(id_=id_, parent_id=parent_span_id)

    def prepare_to_exit_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        return self._end(id_)

    def prepare_to_drop_span(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> BaseSpan | None:
        return self._end(id_)

    def _end(self, id_: str) -> BaseSpan | None:
        self._budgets.end(id_)
        return self.open_spans.get(id_)  # the base class then removes it


RUN_SPANS = RunSpans()
# On the root dispatcher, which every LlamaIndex dispatcher propagates its spans to.
get_dispatcher().add_span_handler(RUN_SPANS)
