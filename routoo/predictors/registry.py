"""Predictor kinds by name: the one list of kinds, and making, loading and the shipped default.

``PREDICTOR_CLASSES`` is the only place a kind is named: ``PREDICTOR_KINDS``, the lazy
exports of ``routoo.predictors`` and every check of a kind name derive from it. Classes
are imported only when their kind is asked for, so importing ``routoo.predictors`` never
loads the transformer-backed kinds' heavy dependencies.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from routoo.errors import ConfigError, PredictorLoadError
from routoo.predictors.base import CONFIG_FILE, Predictor, read_config

# kind -> "module:class", imported on first use.
PREDICTOR_CLASSES: dict[str, str] = {
    "knn": "routoo.predictors.knn:KNNPredictor",
    "mf": "routoo.predictors.mf:MFPredictor",
    "encoder": "routoo.predictors.encoder:EncoderPredictor",
    "causal-lm": "routoo.predictors.causal_lm:CausalLMPredictor",
    "ensemble": "routoo.predictors.ensemble:EnsemblePredictor",
    "onboarded": "routoo.predictors.onboarded:OnboardedPredictor",
}
PREDICTOR_KINDS: tuple[str, ...] = tuple(PREDICTOR_CLASSES)
DEFAULT_PREDICTOR_DIR = Path(__file__).resolve().parent.parent / "default_predictor"


def predictor_class(kind: str) -> type[Predictor]:
    """The class of a predictor kind; ``ConfigError`` listing the kinds for an unknown one."""
    if kind not in PREDICTOR_CLASSES:
        raise ConfigError(f"unknown predictor kind {kind!r}; the kinds are {PREDICTOR_KINDS}")
    module, name = PREDICTOR_CLASSES[kind].split(":")
    return getattr(importlib.import_module(module), name)


def make_predictor(kind: str, **params: Any) -> Predictor:
    """An unfitted predictor of ``kind`` with the given constructor settings."""
    try:
        return predictor_class(kind)(**params)
    except TypeError as error:
        raise ConfigError(f"invalid settings for a {kind!r} predictor: {error}") from error


def load_predictor(path: str | Path) -> Predictor:
    """A saved predictor of any kind, from the directory ``Predictor.save`` wrote."""
    path = Path(path)
    kind = read_config(path)["routoo_predictor"]
    if kind not in PREDICTOR_CLASSES:
        raise PredictorLoadError(f"{path} holds an unknown predictor kind {kind!r}; known: {PREDICTOR_KINDS}")
    return predictor_class(kind).load(path)


def load_default() -> Predictor:
    """The predictor shipped with Routoo in ``routoo/default_predictor/``."""
    if not (DEFAULT_PREDICTOR_DIR / CONFIG_FILE).is_file():
        raise PredictorLoadError(
            f"the default predictor is not installed (no {DEFAULT_PREDICTOR_DIR / CONFIG_FILE}). Train one, "
            "e.g. `routoo train --data DATASET --predictor mf --out my-predictor` or "
            "`make_predictor('mf').fit(dataset).save('my-predictor')`, and load it with "
            "`load_predictor('my-predictor')`"
        )
    return load_predictor(DEFAULT_PREDICTOR_DIR)
