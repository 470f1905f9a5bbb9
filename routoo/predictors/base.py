"""The contract every performance predictor follows, and its safetensors + JSON persistence.

A predictor estimates, without calling any LLM, how well each candidate model would
answer a prompt. Like a scikit-learn estimator, its constructor only stores settings
(``get_params``, ``set_params`` and ``clone`` read them from its signature), ``fit``
checks them against the class's declared constraints and learns from a
``RoutingDataset``, and ``predict`` answers with a prompts x models array of expected
quality in [0, 1]. ``save``/``load`` write a directory holding ``config.json`` and
``weights.safetensors``; nothing is pickled, and the config binds the folder's weights by
their hashes and its paths to the folder (``_folder``). ``routoo.predictors.check_predictor``
checks that a predictor keeps this contract.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from routoo.data.dataset import RoutingDataset
from routoo.errors import ConfigError, DataError, PredictorError, PredictorLoadError
from routoo.output_lengths import OutputLengths
from routoo.predictors._folder import (
    HASHES_KEY,
    check_finite,
    check_hashes,
    resolved_paths,
    stored_paths,
    weight_hashes,
)
from routoo.predictors.constraints import Constraint, one_of
from routoo.prompts import PROMPT_VIEWS, Prompt, PromptView, prompt_texts

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT_VERSION = 1

P = TypeVar("P", bound="Predictor")


class Predictor(ABC):
    """Base class: subclasses implement ``_fit``, ``_predict_texts``, ``_state``, ``_set_state``.

    As in scikit-learn, ``__init__`` names every setting and stores each under its own name,
    doing nothing else; ``_parameter_constraints`` declares what each setting's value must be.
    Fitted attributes end in an underscore: ``models_`` (model names, the column order of
    ``predict``), ``train_fingerprint_`` (the training data's content hash),
    ``output_tokens_`` (mean output tokens per model in the training data, where known) and
    ``output_lengths_`` (expected output tokens per prompt and model, learned from the
    answers the data records: ``routoo.output_lengths``; None without any).
    """

    kind: ClassVar[str]
    # Fewer labelled prompts per model than this and the kind tends to predict the same
    # scores for every prompt: ``fit`` warns (kinds that learn a network set it).
    min_labels_per_model: ClassVar[int] = 0
    # True for a kind that adds the data's models to those of a trained base (``onboarded``):
    # its ``models_`` holds the base's models and the data's, not the data's alone.
    extends_base_models: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"prompt_view": one_of(*PROMPT_VIEWS)}
    # Saved tensors where NaN marks a missing record; every other weight must be finite.
    _tensors_with_gaps: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, prompt_view: PromptView = "last_user") -> None:
        self.prompt_view = prompt_view

    # ----------------------------------------------------------------- public contract
    def fit(self: P, dataset: RoutingDataset) -> P:
        """Learn from ``dataset``'s quality records (and its battles, where the kind uses them)."""
        self._validate_params()
        if not isinstance(dataset, RoutingDataset):
            raise DataError(f"fit takes a RoutingDataset, not {type(dataset).__name__}")
        self.models_ = list(dataset.models)
        self.train_fingerprint_ = dataset.fingerprint()
        self.output_tokens_ = mean_output_tokens(dataset)
        self.output_lengths_ = OutputLengths.fit(dataset, prompt_texts(dataset.prompts, self.prompt_view))
        self._fit(dataset)
        _warn_on_small_or_collapsed(self, dataset)
        return self

    def predict(self, prompts: Sequence[Prompt]) -> np.ndarray:
        """Expected quality of every model on every prompt: shape (len(prompts), len(models_))."""
        self._check_fitted()
        if isinstance(prompts, str):
            raise PredictorError("predict takes a sequence of prompts, not one string")
        if len(prompts) == 0:
            return np.zeros((0, len(self.models_)))
        scores = self._predict_texts(prompt_texts(prompts, self.prompt_view))
        return np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)

    def unfamiliar(self, prompts: Sequence[Prompt]) -> np.ndarray | None:
        """True for each prompt far outside what the predictor was trained on; None if the kind cannot tell.

        Its predictions for such a prompt are an extrapolation: the Router says so in the decision.
        """
        return None

    @property
    def models(self) -> list[str]:
        self._check_fitted()
        return list(self.models_)

    # ------------------------------------------------------- settings (scikit-learn's API)
    @classmethod
    def _param_names(cls) -> list[str]:
        """The constructor's setting names, in order (``TypeError`` if it takes ``*args`` or ``**kwargs``)."""
        names = []
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ takes *{name}: a predictor's constructor names every "
                    "setting (scikit-learn's convention), so that get_params can find them"
                )
            if name != "self":
                names.append(name)
        return names

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Constructor settings by name, as scikit-learn's ``get_params`` (saved in ``config.json``).

        ``deep`` is there for scikit-learn's signature: settings are JSON values, never
        other predictors, so there is nothing nested to list.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: P, **params: Any) -> P:
        """Change settings by name; an unknown name is a ``ConfigError`` naming it.

        As in scikit-learn, the values are checked by the next ``fit`` and take effect there.
        """
        names = self._param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ConfigError(f"{type(self).__name__} has no setting {unknown}; its settings are {names}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def clone(self: P) -> P:
        """An unfitted predictor of the same class with copies of its settings (scikit-learn's ``clone``)."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def _validate_params(self) -> None:
        """``ConfigError`` naming the first setting that breaks its declared constraint.

        ``fit`` calls it before learning anything; a kind whose settings need more than
        ``_parameter_constraints`` says extends it (and calls this first).
        """
        for name, value in self.get_params().items():
            constraint = self._parameter_constraints.get(name)
            if constraint is not None and not constraint.accepts(value):
                raise ConfigError(f"{name} must be {constraint.description}, not {value!r}")

    # ---------------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into ``directory``.

        The config records the sha256 of every weights file in the folder, and path settings
        relative to it (a file or folder elsewhere is copied in): see ``_folder``.
        """
        self._check_fitted()
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        tensors, extra = self._state()
        check_finite(tensors, self._tensors_with_gaps, path / WEIGHTS_FILE, PredictorError)
        save_file({name: np.ascontiguousarray(array) for name, array in tensors.items()}, path / WEIGHTS_FILE)
        params = stored_paths(self.get_params(), path)  # copies what lies outside into the folder
        config = {
            "routoo_predictor": self.kind,
            "format_version": FORMAT_VERSION,
            "params": params,
            "models": self.models_,
            "train_fingerprint": self.train_fingerprint_,
            "output_tokens": self.output_tokens_,
            "output_lengths": None if self.output_lengths_ is None else self.output_lengths_.to_json(),
            "state": extra,
            HASHES_KEY: weight_hashes(path, (CONFIG_FILE, WEIGHTS_FILE)),
        }
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def load(cls: type[P], directory: str | Path) -> P:
        """Read a directory written by ``save`` of this predictor kind.

        Refused (``PredictorLoadError`` saying why): weights whose hash is not the one saved,
        weights holding NaN or infinity, a path setting that leads out of the folder.
        """
        path = Path(directory)
        config = read_config(path)
        if config["routoo_predictor"] != cls.kind:
            raise PredictorLoadError(
                f"{path} holds a {config['routoo_predictor']!r} predictor, not {cls.kind!r}; "
                "use routoo.load_predictor to load any kind"
            )
        check_hashes(path, config, path / CONFIG_FILE)
        try:
            tensors = load_file(path / WEIGHTS_FILE)
        except (SafetensorError, OSError, ValueError) as error:
            raise PredictorLoadError(f"{path / WEIGHTS_FILE} is missing or corrupted: {error}") from error
        check_finite(tensors, cls._tensors_with_gaps, path / WEIGHTS_FILE, PredictorLoadError)
        try:
            predictor = cls(**resolved_paths(config["params"], path, path / CONFIG_FILE))
        except TypeError as error:
            raise PredictorLoadError(
                f"{path / CONFIG_FILE}: settings do not fit {cls.__name__}: {error}"
            ) from error
        predictor.models_ = list(config["models"])
        predictor.train_fingerprint_ = config["train_fingerprint"]
        predictor.output_tokens_ = config.get("output_tokens") or {}
        lengths = config.get("output_lengths")
        predictor.output_lengths_ = None if lengths is None else OutputLengths.from_json(lengths)
        try:
            predictor._set_state(tensors, config.get("state") or {})
        except (KeyError, ValueError, RuntimeError) as error:
            raise PredictorLoadError(f"{path}: weights do not match the config: {error}") from error
        return predictor

    # ------------------------------------------------------------ subclass interface
    @abstractmethod
    def _fit(self, dataset: RoutingDataset) -> None:
        """Learn; ``models_`` and the other common attributes are already set."""

    @abstractmethod
    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        """Scores for prompt texts, shape (len(texts), len(models_))."""

    @abstractmethod
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Fitted arrays to save as safetensors, plus small JSON-serialisable extras."""

    @abstractmethod
    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        """Restore what ``_state`` returned."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise PredictorError(f"this {type(self).__name__} is not fitted: call fit(dataset) or load(dir)")

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"


def read_config(path: Path) -> dict[str, Any]:
    """The validated ``config.json`` of a saved predictor directory."""
    file = path / CONFIG_FILE
    if not path.is_dir():
        raise PredictorLoadError(f"{path} is not a directory holding a saved predictor")
    try:
        config = json.loads(file.read_text())
    except FileNotFoundError:
        raise PredictorLoadError(f"{path} has no {CONFIG_FILE}: it is not a saved Routoo predictor") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PredictorLoadError(f"{file} is corrupted: {error}") from error
    if not isinstance(config, dict) or "routoo_predictor" not in config:
        raise PredictorLoadError(f"{file} is not a Routoo predictor config")
    if config.get("format_version") != FORMAT_VERSION:
        raise PredictorLoadError(
            f"{file} has format version {config.get('format_version')!r}; "
            f"this Routoo reads version {FORMAT_VERSION}"
        )
    for key in ("params", "models", "train_fingerprint"):
        if key not in config:
            raise PredictorLoadError(f"{file} lacks {key!r}")
    return config


# Prompts of the training data a fitted predictor re-predicts to see whether it collapsed.
COLLAPSE_CHECK_PROMPTS = 64


def _warn_on_small_or_collapsed(predictor: Predictor, dataset: RoutingDataset) -> None:
    """Warn when a model has too few labels for the kind, or its predictions ignore the prompt."""
    labelled = dict(zip(dataset.models, dataset.mask.sum(axis=0).tolist(), strict=True))
    few = {model: count for model, count in labelled.items() if 0 < count < predictor.min_labels_per_model}
    if few:
        warnings.warn(
            f"{predictor.kind} learns little from fewer than {predictor.min_labels_per_model} labelled "
            f"prompts per model ({few}); onboard such models onto a trained predictor instead "
            "(routoo onboard, or OnboardedPredictor: a prior plus these labels), or use knn",
            UserWarning,
            stacklevel=3,
        )
    rows = np.flatnonzero(dataset.mask.any(axis=1))[:COLLAPSE_CHECK_PROMPTS]
    if len(rows) < 2:
        return
    spread = np.ptp(predictor.predict([dataset.prompts[i] for i in rows]), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a model without records here: all NaN
        varied = np.nan_to_num(
            np.nanmax(dataset.quality[rows], axis=0) - np.nanmin(dataset.quality[rows], axis=0)
        )
    collapsed = [m for m, s, v in zip(predictor.models_, spread, varied, strict=False) if s < 1e-3 and v > 0]
    if collapsed:
        warnings.warn(
            f"the {predictor.kind} predictor gives {collapsed} the same score on every training prompt, "
            "although their labels differ: it has collapsed (too few labels, or too little training)",
            UserWarning,
            stacklevel=3,
        )


def mean_output_tokens(dataset: RoutingDataset) -> dict[str, float]:
    """Each model's mean recorded output tokens in ``dataset`` (models without any left out)."""
    if dataset.output_tokens is None:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as meant
        means = np.nanmean(dataset.output_tokens, axis=0)
    return {
        model: float(mean) for model, mean in zip(dataset.models, means, strict=True) if not math.isnan(mean)
    }
