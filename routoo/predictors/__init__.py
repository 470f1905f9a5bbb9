"""Performance predictors: estimate each model's quality on a prompt without calling it."""

from routoo.predictors.base import Predictor
from routoo.predictors.knn import KNNPredictor
from routoo.predictors.mf import MFPredictor
from routoo.predictors.registry import (
    DEFAULT_PREDICTOR_DIR,
    PREDICTOR_KINDS,
    load_default,
    load_predictor,
    make_predictor,
    predictor_class,
)

__all__ = [
    "DEFAULT_PREDICTOR_DIR",
    "PREDICTOR_KINDS",
    "KNNPredictor",
    "MFPredictor",
    "Predictor",
    "load_default",
    "load_predictor",
    "make_predictor",
    "predictor_class",
]
