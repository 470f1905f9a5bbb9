"""Performance predictors: estimate each model's quality on a prompt without calling it.

The predictor classes are imported on first use: they pull in torch and transformers,
which routing with an already-trained predictor loads only when it needs them.
"""

import importlib
from typing import Any

from routoo.predictors.base import Predictor
from routoo.predictors.registry import (
    DEFAULT_PREDICTOR_DIR,
    PREDICTOR_KINDS,
    load_default,
    load_predictor,
    make_predictor,
    predictor_class,
)

_LAZY = {
    "KNNPredictor": "routoo.predictors.knn",
    "MFPredictor": "routoo.predictors.mf",
    "EncoderPredictor": "routoo.predictors.encoder",
    "CausalLMPredictor": "routoo.predictors.causal_lm",
    "EnsemblePredictor": "routoo.predictors.ensemble",
}

__all__ = [
    "DEFAULT_PREDICTOR_DIR",
    "PREDICTOR_KINDS",
    "CausalLMPredictor",
    "EncoderPredictor",
    "EnsemblePredictor",
    "KNNPredictor",
    "MFPredictor",
    "Predictor",
    "load_default",
    "load_predictor",
    "make_predictor",
    "predictor_class",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'routoo.predictors' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
