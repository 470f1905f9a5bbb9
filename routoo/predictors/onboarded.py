"""Onboarding models a predictor does not know: a prior from what is known, a posterior from labels.

A new model's logit on a prompt is read out of the base predictor's logits of the models it
knows, ``z_new(p) = w · [z_1(p), ..., z_m(p), 1]``. The prior on ``w`` is what is known before
any label: ``like=`` a known model (``w`` picks that model's logit), else the mean of the known
models of its family in the model catalog, else the mean of all known models; public aggregate
scores (say an accuracy on MMLU-Pro from a model card) move its bias until the prior's
average on that benchmark's reference prompts matches. Labels turn the prior into a posterior
(Bayesian logistic regression with a Gaussian prior, Laplace approximation): with no labels
the predictions are the prior's, with a few they stay near it and vary by prompt as the
known models do (they cannot collapse to a constant), and with many they converge to the
best read-out of the base's logits (for ``mf``, a new model vector in the span of the known
ones). The posterior covariance says how uncertain each prediction still is
(``quality_std``). Known models that have labels are refined the same way, their prior
being themselves.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from routoo.catalog import default_catalog
from routoo.data.dataset import RoutingDataset
from routoo.errors import ConfigError, DataError, PredictorLoadError
from routoo.predictors._readout import (
    BENCHMARKS,
    REFERENCES_FILE,
    benchmark_references,
    bias_shift,
    expit,
    fit_readout,
    probe,
    readout_features,
    stored_references,
)
from routoo.predictors.base import Predictor, mean_output_tokens
from routoo.predictors.constraints import Constraint, number, one_of
from routoo.prompts import Prompt

log = logging.getLogger(__name__)
__all__ = [
    "BENCHMARKS",
    "REFERENCES_FILE",
    "OnboardedPredictor",
    "benchmark_references",
    "probe",
    "with_priors",
]

# The prior widths of the read-out weights ``prior_std="auto"`` chooses among, by the evidence.
PRIOR_STDS = (0.02, 0.05, 0.1, 0.3)
# Fewer labels than this, or labels that never differ, cannot tell prompts apart: a warning.
MIN_USEFUL_LABELS = 10
BASE_FOLDER = "base"
DEFAULT_BASE = "default"


class OnboardedPredictor(Predictor):
    """A base predictor with models added (or refined) from a prior and a few labels.

    ``base`` is a predictor, a saved predictor's folder, or ``"default"``. ``new_models``
    names models to add even without labels (those the labels, ``like`` or ``scores`` name are
    added anyway). ``like`` maps a new model to the known model its prior starts from;
    ``scores`` maps a new model to public scores in [0, 1] by benchmark (``BENCHMARKS``),
    which move its prior. ``prior_std`` and ``bias_prior_std`` are the prior's standard
    deviations of the read-out weights and of the bias (smaller values trust the prior
    longer); ``prior_std="auto"`` picks, per model, the width in ``PRIOR_STDS`` that makes
    its labels most likely (Laplace evidence), since a close prior needs little room and a
    poor one much.
    """

    kind = "onboarded"
    extends_base_models = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "prior_std": number(above=0) | one_of("auto"),
        "bias_prior_std": number(above=0),
        "refine_known": one_of(True, False),
    }

    def __init__(
        self,
        base: str | Predictor = DEFAULT_BASE,
        new_models: Sequence[str] | None = None,
        like: Mapping[str, str] | None = None,
        scores: Mapping[str, Mapping[str, float]] | None = None,
        prior_std: float | Literal["auto"] = "auto",
        bias_prior_std: float = 1.0,
        refine_known: bool = True,
    ) -> None:
        self.base = base
        self.new_models = new_models
        self.like = like
        self.scores = scores
        self.prior_std = prior_std
        self.bias_prior_std = bias_prior_std
        self.refine_known = refine_known

    # ------------------------------------------------------------------------------ fit
    def fit(self, dataset: RoutingDataset | None = None) -> OnboardedPredictor:  # type: ignore[override]
        """Onboard the new models ``dataset`` labels and those ``new_models``/``like``/``scores`` name.

        With ``dataset`` None every new model comes from its prior alone.
        """
        self._validate_params()
        if dataset is not None and not isinstance(dataset, RoutingDataset):
            raise DataError(f"fit takes a RoutingDataset or None, not {type(dataset).__name__}")
        self._fit(dataset)
        return self

    def _fit(self, dataset: RoutingDataset | None) -> None:
        self.base_ = _load_base(self.base)
        self.prompt_view = self.base_.prompt_view
        known = list(self.base_.models_)
        like, scores = dict(self.like or {}), _checked_scores(self.scores)
        labelled = list(dataset.models) if dataset is not None else []
        named = [*(self.new_models or []), *like, *scores]
        new = list(dict.fromkeys([m for m in [*labelled, *named] if m not in known]))
        refined = [m for m in labelled if m in known] if self.refine_known else []
        for name, target in like.items():
            if target not in known:
                raise ConfigError(
                    f"{name!r} is onboarded like {target!r}, which the base does not know: {known}"
                )
        if not new and not refined:
            raise DataError(
                "nothing to onboard: the labels name only models the base knows, and no new model"
            )
        self.onboarded_ = refined + new
        self.models_ = known + new
        self.train_fingerprint_ = (
            dataset.fingerprint() if dataset is not None else self.base_.train_fingerprint_
        )
        self.output_tokens_ = dict(self.base_.output_tokens_)
        self.output_lengths_ = self.base_.output_lengths_
        if dataset is not None:
            self.output_tokens_ |= {m: t for m, t in mean_output_tokens(dataset).items() if m in new}

        inputs = None if dataset is None else readout_features(self.base_.predict(dataset.prompts))
        size = len(known) + 1
        self.prior_means_ = np.zeros((len(self.onboarded_), size))
        self.weights_ = np.zeros((len(self.onboarded_), size))
        self.covariances_ = np.zeros((len(self.onboarded_), size, size))
        self.priors_: list[str] = []
        self.label_counts_: list[int] = []
        self.prior_stds_: list[float] = []
        stds = PRIOR_STDS if self.prior_std == "auto" else (self.prior_std,)
        for row, name in enumerate(self.onboarded_):
            mean, described = self._prior(name, known, like.get(name), scores.get(name, {}))
            labels = np.full(0, np.nan) if dataset is None else dataset.quality[:, dataset.model_index(name)]
            has = ~np.isnan(labels)
            _warn_if_uninformative(name, labels[has])
            x = np.zeros((0, size)) if inputs is None else inputs[has]
            readout = fit_readout(x, labels[has], mean, stds, self.bias_prior_std)
            self.weights_[row], self.covariances_[row] = readout.weights, readout.covariance
            self.prior_stds_.append(readout.prior_std)
            self.prior_means_[row] = mean
            self.priors_.append(described)
            self.label_counts_.append(int(has.sum()))

    def _prior(
        self, name: str, known: list[str], like: str | None, scores: Mapping[str, float]
    ) -> tuple[np.ndarray, str]:
        """The prior mean of ``name``'s read-out weights, and how it was found."""
        mean = np.zeros(len(known) + 1)
        if name in known:
            mean[known.index(name)], described = 1.0, "itself"
        elif like is not None:
            mean[known.index(like)], described = 1.0, f"like {like}"
        else:
            family = default_catalog().family_members(name, known)
            members = family or known
            mean[[known.index(m) for m in members]] = 1.0 / len(members)
            described = f"mean of its family {family}" if family else "mean of all known models"
        if scores:
            references = benchmark_references(self.base_, list(scores))
            shifts = [bias_shift(mean, references[b], _check_score(name, b, s)) for b, s in scores.items()]
            mean[-1] += float(np.mean(shifts))
            described += ", moved to " + ", ".join(f"{b} {s:.3f}" for b, s in scores.items())
        return mean, described

    # -------------------------------------------------------------------------- predict
    def predict(self, prompts: Sequence[Prompt]) -> np.ndarray:
        self._check_fitted()
        return self._read_out(self.base_.predict(prompts))

    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        return self._read_out(self.base_._predict_texts(texts))

    def _read_out(self, base_scores: np.ndarray) -> np.ndarray:
        known = len(self.base_.models_)
        scores = np.concatenate(
            [base_scores, np.zeros((len(base_scores), len(self.models_) - known))], axis=1
        )
        columns = [self.models_.index(name) for name in self.onboarded_]
        scores[:, columns] = expit(readout_features(base_scores) @ self.weights_.T)
        return scores

    @property
    def unlabelled_(self) -> list[str]:
        """The onboarded models no label taught: scored from their prior alone."""
        self._check_fitted()
        return [name for name, count in zip(self.onboarded_, self.label_counts_, strict=True) if count == 0]

    def unfamiliar(self, prompts: Sequence[Prompt]) -> np.ndarray | None:
        self._check_fitted()
        return self.base_.unfamiliar(prompts)

    def quality_std(self, prompts: Sequence[Prompt]) -> np.ndarray:
        """Posterior standard deviation of every predicted quality, (n, models); NaN where not onboarded.

        The Laplace posterior's logit variance ``f' S f`` carried to the quality scale.
        """
        self._check_fitted()
        base_scores = self.base_.predict(prompts)
        inputs = readout_features(base_scores)
        quality = self._read_out(base_scores)
        std = np.full(quality.shape, np.nan)
        for row, name in enumerate(self.onboarded_):
            column = self.models_.index(name)
            logit_var = np.einsum("ni,ij,nj->n", inputs, self.covariances_[row], inputs)
            p = quality[:, column]
            std[:, column] = p * (1 - p) * np.sqrt(np.maximum(logit_var, 0.0))
        return std

    def summary(self) -> list[dict[str, Any]]:
        """One row per onboarded model: its prior, its labels, and how far its read-out moved."""
        self._check_fitted()
        return [
            {
                "model": name,
                "prior": prior,
                "labels": count,
                "prior_std": self.prior_stds_[row],
                "weights_moved": float(np.linalg.norm(self.weights_[row] - self.prior_means_[row])),
                "weights_std": float(np.sqrt(np.trace(self.covariances_[row]) / self.covariances_.shape[1])),
            }
            for row, (name, prior, count) in enumerate(
                zip(self.onboarded_, self.priors_, self.label_counts_, strict=True)
            )
        ]

    # ---------------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save the read-outs; a base other than the default is saved in ``base/`` inside the folder."""
        self._check_fitted()
        path = Path(directory)
        given = self.base
        if not (isinstance(given, str) and given == DEFAULT_BASE):
            self.base_.save(path / BASE_FOLDER)
            self.base = BASE_FOLDER
        try:
            return super().save(path)
        finally:
            self.base = given

    @classmethod
    def load(cls, directory: str | Path) -> OnboardedPredictor:
        predictor = super().load(directory)
        assert isinstance(predictor, OnboardedPredictor)
        if predictor.base != DEFAULT_BASE:
            if predictor.base != BASE_FOLDER:
                raise PredictorLoadError(
                    f"{directory}: an onboarded predictor's base is 'default' or the folder "
                    f"{BASE_FOLDER!r} inside it, not {predictor.base!r}"
                )
            predictor.base = str(Path(directory) / BASE_FOLDER)
        predictor.base_ = _load_base(predictor.base)
        predictor.prompt_view = predictor.base_.prompt_view
        known = list(predictor.base_.models_)
        expected = known + [name for name in predictor.onboarded_ if name not in known]
        if predictor.models_ != expected or predictor.weights_.shape[1] != len(known) + 1:
            raise PredictorLoadError(
                f"{directory}: its config lists the models {predictor.models_}, but its base and "
                f"read-outs give {expected}"
            )
        if predictor.base_.train_fingerprint_ != predictor.base_fingerprint_:
            raise PredictorLoadError(
                f"{directory} was onboarded onto a base trained on other data "
                f"({predictor.base_fingerprint_}, now {predictor.base_.train_fingerprint_}): onboard again"
            )
        return predictor

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors = {
            "weights": self.weights_,
            "covariances": self.covariances_,
            "prior_means": self.prior_means_,
        }
        extra = {
            "onboarded": self.onboarded_,
            "priors": self.priors_,
            "label_counts": self.label_counts_,
            "prior_stds": self.prior_stds_,
            "base_fingerprint": self.base_.train_fingerprint_,
        }
        return tensors, extra

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.onboarded_ = list(extra["onboarded"])
        self.priors_ = list(extra["priors"])
        self.label_counts_ = [int(count) for count in extra["label_counts"]]
        self.prior_stds_ = [float(std) for std in extra["prior_stds"]]
        self.base_fingerprint_ = str(extra["base_fingerprint"])
        k = len(self.onboarded_)
        for name in ("weights", "prior_means"):
            if tensors[name].ndim != 2 or tensors[name].shape[0] != k:
                raise ValueError(
                    f"onboarded weight {name} has shape {tensors[name].shape}, expected ({k}, m + 1)"
                )
        self.weights_ = np.asarray(tensors["weights"], dtype=np.float64)
        self.prior_means_ = np.asarray(tensors["prior_means"], dtype=np.float64)
        self.covariances_ = np.asarray(tensors["covariances"], dtype=np.float64)


def with_priors(predictor: Predictor, models: Sequence[Any]) -> Predictor:
    """``predictor``, or an onboarded one that also scores the pool ``models`` it does not know.

    Each model the pool scores a candidate as (itself, or its ``like=``) that the predictor
    lacks gets a column of its own from its prior, named by its catalog identity where it has
    one: the mean of its catalog family's known models, else of all known models, moved by
    the public scores the catalog holds when the predictor carries reference prompts for
    them. Routing with such a column is a guess from what is public: a warning says so.
    """
    from routoo.pool import unscored_models

    missing = unscored_models(models, predictor.models)
    if not missing:
        return predictor
    stored = stored_references(predictor)
    names, scores = [], {}
    for spec, entry in missing:
        name = spec.scored_as if entry is None else entry.name
        if name in names:
            continue  # two pool models scored as one model share its column
        names.append(name)
        usable = {b: v for b, v in (entry.scores if entry is not None else {}).items() if b in stored}
        if usable:
            scores[name] = usable
    onboarded = OnboardedPredictor(predictor, new_models=names, scores=scores or None).fit(None)
    for row in onboarded.summary():
        log.warning(
            "%s is not among the models the predictor learned from: it is scored from a prior (%s). "
            "Onboard it from a few labelled prompts to learn it (routoo onboard; docs/onboarding.md).",
            row["model"],
            row["prior"],
        )
    return onboarded


def _checked_scores(scores: Mapping[str, Mapping[str, float]] | None) -> dict[str, dict[str, float]]:
    if scores is None:
        return {}
    if not isinstance(scores, Mapping) or not all(isinstance(given, Mapping) for given in scores.values()):
        raise ConfigError(
            "scores maps each model to its scores by benchmark, e.g. {'my-model': {'mmlu-pro': 0.7}}; "
            f"got {scores!r}"
        )
    return {model: dict(given) for model, given in scores.items()}


def _check_score(model: str, benchmark: str, score: float) -> float:
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 < score < 1:
        raise ConfigError(f"{model!r}: the {benchmark} score must be a number between 0 and 1, not {score!r}")
    return float(score)


def _warn_if_uninformative(model: str, labels: np.ndarray) -> None:
    if len(labels) == 0:
        return
    if len(labels) < MIN_USEFUL_LABELS or np.ptp(labels) == 0:
        warnings.warn(
            f"{model!r} has {len(labels)} label(s)"
            + (" that never differ" if len(labels) and np.ptp(labels) == 0 else "")
            + ": too few to tell prompts apart, so its predictions stay close to the prior",
            UserWarning,
            stacklevel=4,
        )


def _load_base(base: str | Predictor) -> Predictor:
    from routoo.predictors.registry import load_default, load_predictor

    if isinstance(base, Predictor):
        base._check_fitted()
        return base
    if not isinstance(base, str | Path):
        raise ConfigError(f"base must be a predictor, a saved predictor's folder or 'default', not {base!r}")
    return load_default() if str(base) == DEFAULT_BASE else load_predictor(base)
