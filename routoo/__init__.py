"""Routoo: learned, cost-aware LLM routing.

The public API is re-exported here and imported on first use, so ``import routoo`` stays
fast and loads neither torch nor litellm until they are needed.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "routoo.errors": [
        "AllModelsFailedError",
        "BudgetExceededError",
        "ConfigError",
        "DataError",
        "DatasetNotFoundError",
        "NoAdmissibleModelError",
        "PredictorError",
        "PredictorLoadError",
        "PriceNotFoundError",
        "RoutooError",
        "UnknownModelError",
    ],
    "routoo.data": ["RoutingDataset", "concat_datasets", "load_dataset", "list_datasets", "train_test_split"],
    "routoo.evaluate": ["EvaluationReport", "evaluate"],
    "routoo.predictors": ["Predictor", "load_default", "load_predictor", "make_predictor"],
    "routoo.pool": ["ModelSpec"],
    "routoo.selector": ["Selector", "allocate_batch", "calibrate"],
    "routoo.budget": ["Budget", "budget_scope", "open_budgets"],
    "routoo.router": ["RoutedResponse", "Router", "RoutingDecision"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'routoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
