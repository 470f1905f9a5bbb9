"""Routoo for LlamaIndex: ``RoutooLLM`` routes each call to the best model of a pool for its cost.

``Settings.llm = RoutooLLM(models=[...])`` (or ``RoutooLLM(router=Router(...))``) routes every
call that query engines, chat engines and agents make; ``RoutooLLM(..., budget=0.05)`` gives
each query, chat turn or agent run its own budget (``llamaindex_routoo.budgets``), and
``with budget_scope(0.05): query_engine.query(...)`` caps a block of code;
``RoutooLocalEmbedding`` embeds documents locally, so RAG runs offline.
"""

from llamaindex_routoo.embeddings import RoutooLocalEmbedding
from llamaindex_routoo.llm import RoutooLLM
from llamaindex_routoo.question import rag_question
from routoo.budget import Budget, budget_scope, open_budgets
from routoo.policy import RoutingPolicy
from routoo.router import Router

__all__ = [
    "Budget",
    "Router",
    "RoutingPolicy",
    "RoutooLLM",
    "RoutooLocalEmbedding",
    "budget_scope",
    "open_budgets",
    "rag_question",
]
