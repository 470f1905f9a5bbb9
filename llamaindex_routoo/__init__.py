"""Routoo for LlamaIndex: ``RoutooLLM`` routes each call to the best model of a pool for its cost.

``Settings.llm = RoutooLLM(models=[...])`` routes every call that query engines, chat engines
and agents make; ``with budget_scope(0.05): query_engine.query(...)`` caps what one query spends;
``RoutooLocalEmbedding`` embeds documents locally, so RAG runs offline.
"""

import routoo  # noqa: F401  # sets litellm's local price map before litellm is imported
from llamaindex_routoo.embeddings import RoutooLocalEmbedding
from llamaindex_routoo.llm import RoutooLLM
from llamaindex_routoo.question import rag_question
from routoo.budget import Budget, budget_scope, open_budgets

__all__ = ["Budget", "RoutooLLM", "RoutooLocalEmbedding", "budget_scope", "open_budgets", "rag_question"]
