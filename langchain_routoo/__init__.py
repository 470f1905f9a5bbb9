"""LangChain integration of Routoo: ``RoutooChat``, a chat model that routes each call to the best model.

Budgets span every ``RoutooChat`` call made inside them: open one for a block of code with
``budget_scope``, or for one chain run through the runnable config (see
``langchain_routoo.config`` for the ``routoo_*`` keys).
"""

from langchain_routoo.chat_models import RoutooChat
from langchain_routoo.config import (
    BUDGET_KEY,
    BUDGET_MODE_KEY,
    MAX_COST_KEY,
    QUALITY_FLOOR_KEY,
    TRADEOFF_KEY,
)
from routoo.budget import Budget, budget_scope
from routoo.pool import ModelSpec

__all__ = [
    "BUDGET_KEY",
    "BUDGET_MODE_KEY",
    "MAX_COST_KEY",
    "QUALITY_FLOOR_KEY",
    "TRADEOFF_KEY",
    "Budget",
    "ModelSpec",
    "RoutooChat",
    "budget_scope",
]
