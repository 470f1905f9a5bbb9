"""Routoo: learned, cost-aware LLM routing.

The public API is the names in ``__all__``. They are imported on first use (PEP 562), so
that ``import routoo`` stays fast and loads neither torch nor litellm until they are needed;
the ``TYPE_CHECKING`` imports below show the same names to type checkers and IDEs.
``_EXPORTS``, ``__all__`` and those imports list the same names (tests/core/test_public_api.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from routoo.budget import Budget, budget_scope, carry_budgets, open_budgets
    from routoo.catalog import CatalogEntry, ModelCatalog, default_catalog
    from routoo.data import RoutingDataset, concat_datasets, list_datasets, load_dataset, train_test_split
    from routoo.decision_log import DecisionLog
    from routoo.errors import (
        AllModelsFailedError,
        BudgetExceededError,
        ConfigError,
        DataError,
        DatasetNotFoundError,
        DeadlineExceededError,
        NoAdmissibleModelError,
        PredictorError,
        PredictorLoadError,
        PriceNotFoundError,
        RateLimitWaitError,
        RoutooError,
        UnknownModelError,
    )
    from routoo.evaluate import EvaluationReport, evaluate
    from routoo.faults import FaultPolicy
    from routoo.policy import RoutingPolicy
    from routoo.pool import ModelSpec
    from routoo.predictors import Predictor, load_default, load_predictor, make_predictor
    from routoo.predictors.onboarded import OnboardedPredictor, probe
    from routoo.rate_limits import ProviderLimit, RateLimiter, RateLimits
    from routoo.router import RoutedResponse, Router, RoutingDecision
    from routoo.selector import Selector, allocate_batch, calibrate

__all__ = [
    "AllModelsFailedError",
    "Budget",
    "BudgetExceededError",
    "CatalogEntry",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "DeadlineExceededError",
    "DecisionLog",
    "EvaluationReport",
    "FaultPolicy",
    "ModelCatalog",
    "ModelSpec",
    "NoAdmissibleModelError",
    "OnboardedPredictor",
    "Predictor",
    "PredictorError",
    "PredictorLoadError",
    "PriceNotFoundError",
    "ProviderLimit",
    "RateLimitWaitError",
    "RateLimiter",
    "RateLimits",
    "RoutedResponse",
    "Router",
    "RoutingDataset",
    "RoutingDecision",
    "RoutingPolicy",
    "RoutooError",
    "Selector",
    "UnknownModelError",
    "allocate_batch",
    "budget_scope",
    "calibrate",
    "carry_budgets",
    "concat_datasets",
    "default_catalog",
    "evaluate",
    "list_datasets",
    "load_dataset",
    "load_default",
    "load_predictor",
    "make_predictor",
    "open_budgets",
    "probe",
    "train_test_split",
]

# Where each name of __all__ is imported from on first use.
_EXPORTS = {
    "routoo.errors": [
        "AllModelsFailedError",
        "BudgetExceededError",
        "ConfigError",
        "DataError",
        "DatasetNotFoundError",
        "DeadlineExceededError",
        "NoAdmissibleModelError",
        "PredictorError",
        "PredictorLoadError",
        "PriceNotFoundError",
        "RateLimitWaitError",
        "RoutooError",
        "UnknownModelError",
    ],
    "routoo.data": ["RoutingDataset", "concat_datasets", "load_dataset", "list_datasets", "train_test_split"],
    "routoo.evaluate": ["EvaluationReport", "evaluate"],
    "routoo.predictors": ["Predictor", "load_default", "load_predictor", "make_predictor"],
    "routoo.pool": ["ModelSpec"],
    "routoo.policy": ["RoutingPolicy"],
    "routoo.selector": ["Selector", "allocate_batch", "calibrate"],
    "routoo.budget": ["Budget", "budget_scope", "carry_budgets", "open_budgets"],
    "routoo.catalog": ["CatalogEntry", "ModelCatalog", "default_catalog"],
    "routoo.faults": ["FaultPolicy"],
    "routoo.decision_log": ["DecisionLog"],
    "routoo.predictors.onboarded": ["OnboardedPredictor", "probe"],
    "routoo.rate_limits": ["ProviderLimit", "RateLimiter", "RateLimits"],
    "routoo.router": ["RoutedResponse", "Router", "RoutingDecision"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'routoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
