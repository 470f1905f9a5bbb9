"""Performance predictors: estimate each model's quality on a prompt without calling it.

The predictor classes are imported on first use: they pull in torch and transformers,
which routing with an already-trained predictor loads only when it needs them. Their
names come from the one registry of kinds (``registry.PREDICTOR_CLASSES``).
"""

import importlib
from typing import Any

from routoo.predictors.base import Predictor
from routoo.predictors.checks import check_predictor
from routoo.predictors.registry import (
    DEFAULT_PREDICTOR_DIR,
    PREDICTOR_CLASSES,
    PREDICTOR_KINDS,
    load_default,
    load_predictor,
    make_predictor,
    predictor_class,
)

# class name -> module, for every registered kind
_LAZY = {name: module for module, name in (path.split(":") for path in PREDICTOR_CLASSES.values())}

__all__ = [
    "DEFAULT_PREDICTOR_DIR",
    "PREDICTOR_CLASSES",
    "PREDICTOR_KINDS",
    "Predictor",
    "check_predictor",
    "load_default",
    "load_predictor",
    "make_predictor",
    "predictor_class",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'routoo.predictors' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
