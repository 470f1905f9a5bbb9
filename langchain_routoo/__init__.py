"""LangChain integration of Routoo: ``RoutooChat``, a chat model that routes each call to the best model.

``RoutooChat(models=[...])`` builds its ``Router``; ``RoutooChat(router=Router(...))`` wraps one.

Budgets span every ``RoutooChat`` call made inside them: open one for a block of code with
``budget_scope``, or for one chain run through the runnable config (see
``langchain_routoo.config`` for the ``routoo_*`` keys).

``RoutooChat`` is imported on first use (PEP 562): ``llamaindex_routoo`` imports the
framework-free ``langchain_routoo.adapters`` and should not load LangChain's chat models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_routoo.config import (
    BUDGET_KEY,
    BUDGET_MODE_KEY,
    MAX_COST_KEY,
    POLICY_KEYS,
    QUALITY_FLOOR_KEY,
    TRADEOFF_KEY,
)
from routoo.budget import Budget, budget_scope
from routoo.policy import RoutingPolicy
from routoo.pool import ModelSpec
from routoo.router import Router

if TYPE_CHECKING:
    from langchain_routoo.chat_models import RoutooChat

__all__ = [
    "BUDGET_KEY",
    "BUDGET_MODE_KEY",
    "MAX_COST_KEY",
    "POLICY_KEYS",
    "QUALITY_FLOOR_KEY",
    "TRADEOFF_KEY",
    "Budget",
    "ModelSpec",
    "Router",
    "RoutingPolicy",
    "RoutooChat",
    "budget_scope",
]


def __getattr__(name: str) -> Any:
    if name != "RoutooChat":
        raise AttributeError(f"module 'langchain_routoo' has no attribute {name!r}")
    from langchain_routoo.chat_models import RoutooChat

    globals()[name] = RoutooChat
    return RoutooChat
