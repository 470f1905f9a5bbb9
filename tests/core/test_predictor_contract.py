"""The contract every predictor keeps (``check_predictor``), and the registry that names the kinds.

A kind joins these tests by adding its name and fast settings to ``CASES``. A predictor
written outside Routoo is checked the same way (``MeanQuality`` below), and the check
catches predictors that break the contract.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from conftest import planted_prompts

import routoo.predictors
from routoo.data.dataset import RoutingDataset
from routoo.errors import ConfigError, PredictorLoadError
from routoo.predictors import (
    PREDICTOR_CLASSES,
    PREDICTOR_KINDS,
    KNNPredictor,
    Predictor,
    check_predictor,
    load_default,
    make_predictor,
    predictor_class,
    registry,
)
from routoo.predictors.constraints import Constraint, number

# (kind, settings that train fast on the planted set)
CASES: list[tuple[str, dict[str, Any]]] = [
    ("knn", {"k": 10}),
    ("mf", {"epochs": 40, "batch_size": 32}),
    ("encoder", {"epochs": 2, "head_lr": 1e-2, "batch_size": 16, "max_length": 32}),
    ("causal-lm", {"epochs": 20, "max_length": 32}),
    (
        "ensemble",
        {
            "members": [
                {"kind": "knn", "params": {"k": 10}},
                {"kind": "mf", "params": {"epochs": 40, "batch_size": 32}},
            ]
        },
    ),
    ("onboarded", {"base": "default"}),  # the planted models, onboarded onto the shipped default
]
KINDS = [kind for kind, _ in CASES]
# Kinds whose training is marked slow, as in test_predictors_transformer.py (CI still runs them).
SLOW_TO_TRAIN = {"causal-lm"}


@pytest.fixture(params=CASES, ids=KINDS)
def case(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param


@pytest.fixture(scope="module")
def fitted_by_kind() -> dict[str, Predictor]:
    return {}


@pytest.fixture(
    params=[
        pytest.param((kind, params), id=kind, marks=[pytest.mark.slow] if kind in SLOW_TO_TRAIN else [])
        for kind, params in CASES
    ]
)
def trained_case(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """A case whose test trains the kind: ``case`` with the slow kinds marked ``slow``."""
    return request.param


def checked_and_fitted(kind: str, params: dict[str, Any], planted_dataset) -> Predictor:
    """The kind trained on the planted set by ``check_predictor``, which checks the whole contract."""
    training = planted_dataset(n=120, seed=0, noise=0.05)
    return check_predictor(lambda: make_predictor(kind, **params), training, prompts=HELD_OUT)


@pytest.fixture
def fitted(
    trained_case: tuple[str, dict[str, Any]], planted_dataset, fitted_by_kind: dict[str, Predictor]
) -> Predictor:
    """The case's kind, checked and trained once per kind (fitting is the slow part)."""
    kind, params = trained_case
    if kind not in fitted_by_kind:
        fitted_by_kind[kind] = checked_and_fitted(kind, params, planted_dataset)
    return fitted_by_kind[kind]


HELD_OUT, IS_MATH = planted_prompts(80, seed=1)


# ------------------------------------------------------------------------ the contract
def test_settings_and_unfitted_use_keep_the_contract(case: tuple[str, dict[str, Any]]) -> None:
    kind, params = case
    predictor = make_predictor(kind, **params)
    assert {name: predictor.get_params()[name] for name in params} == params
    assert check_predictor(predictor, fit=False).get_params() == predictor.get_params()


def test_keeps_the_predictor_contract(
    trained_case: tuple[str, dict[str, Any]], planted_dataset, fitted_by_kind: dict[str, Predictor]
) -> None:
    kind, params = trained_case
    fitted_by_kind[kind] = checked_and_fitted(kind, params, planted_dataset)
    planted = ["math-model", "poet-model", "big-model"]
    models = fitted_by_kind[kind].models_
    # An onboarded predictor adds the planted models to its base's.
    assert (models[-3:] if fitted_by_kind[kind].extends_base_models else models) == planted


def test_learns_the_planted_pattern(fitted: Predictor) -> None:
    planted = ["math-model", "poet-model", "big-model"]
    scores = fitted.predict(HELD_OUT)[:, [fitted.models_.index(model) for model in planted]]
    math_model, poet_model = 0, 1
    # The cheap specialist predicted better is the right one...
    assert np.mean((scores[:, math_model] > scores[:, poet_model]) == IS_MATH) >= 0.9
    # ...and the predicted best model of all answers correctly (big-model always does).
    best = np.array(planted)[scores.argmax(axis=1)]
    assert np.mean(np.where(IS_MATH, best != "poet-model", best != "math-model")) >= 0.9


def test_clone_and_set_params_follow_scikit_learn(planted_dataset) -> None:
    fitted = KNNPredictor(k=3, weighting="uniform").fit(planted_dataset(n=20))
    twin = fitted.clone()
    assert not hasattr(twin, "models_") and twin.get_params() == fitted.get_params()
    assert twin.get_params(deep=True) == {
        "k": 3,
        "weighting": "uniform",
        "temperature": 0.05,
        "prompt_view": "last_user",
        "encoder": None,
    }
    assert twin.set_params(k="auto", temperature=0.1) is twin and (twin.k, twin.temperature) == ("auto", 0.1)
    with pytest.raises(ConfigError, match=r"KNNPredictor has no setting \['kk', 'temp'\].*'k', 'weighting'"):
        twin.set_params(kk=5, temp=1.0, k=4)
    assert twin.k == "auto"  # nothing is set when a name is wrong
    with pytest.raises(ConfigError, match="k must be an integer >= 1 or 'auto', not 0"):
        twin.set_params(k=0).fit(planted_dataset(n=20))  # checked by fit, as in scikit-learn
    with pytest.raises(ConfigError, match="prompt_view must be one of"):
        KNNPredictor(prompt_view="everything").fit(planted_dataset(n=20))


# ------------------------------------------------------------ predictors written outside
class MeanQuality(Predictor):
    """Each model's smoothed mean training quality, whatever the prompt: the least a predictor needs."""

    kind = "test-mean-quality"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **Predictor._parameter_constraints,
        "smoothing": number(at_least=0),
    }

    def __init__(self, smoothing: float = 1.0, prompt_view: str = "last_user") -> None:
        super().__init__(prompt_view=prompt_view)
        self.smoothing = smoothing

    def _fit(self, dataset: RoutingDataset) -> None:
        observed = ~np.isnan(dataset.quality)
        total = np.nansum(dataset.quality, axis=0) + 0.5 * self.smoothing
        self.means_ = total / (observed.sum(axis=0) + self.smoothing)

    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        return np.tile(self.means_, (len(texts), 1))

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"means": self.means_}, {}

    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        if tensors["means"].shape != (len(self.models_),):
            raise ValueError(f"means has shape {tensors['means'].shape}")
        self.means_ = tensors["means"]


def test_a_predictor_written_outside_routoo_keeps_the_contract(planted_dataset) -> None:
    fitted = check_predictor(MeanQuality(smoothing=2.0))
    assert isinstance(fitted, MeanQuality) and fitted.smoothing == 2.0 and fitted.means_.shape == (3,)
    assert check_predictor(MeanQuality, planted_dataset(n=20)).models_ == planted_dataset(n=20).models
    with pytest.raises(ConfigError, match="smoothing must be a finite number >= 0, not -1"):
        MeanQuality(smoothing=-1).fit(planted_dataset(n=20))


class ForgetfulLoad(MeanQuality):
    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.means_ = np.full(len(self.models_), 0.5)  # the saved means are ignored


class BusyConstructor(MeanQuality):
    def __init__(self, smoothing: float = 1.0, prompt_view: str = "last_user") -> None:
        super().__init__(smoothing=smoothing, prompt_view=prompt_view)
        self.history_: list[str] = []  # state made in __init__, not in fit


class RenamedSetting(MeanQuality):
    def __init__(self, alpha: float = 1.0, prompt_view: str = "last_user") -> None:
        super().__init__(smoothing=alpha, prompt_view=prompt_view)  # alpha is stored as smoothing


class UndeclaredConstraint(MeanQuality):
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"smoothness": number(above=0)}


class OneColumnShort(MeanQuality):
    def _predict_texts(self, texts: list[str]) -> np.ndarray:
        return super()._predict_texts(texts)[:, :-1]


class GlobalRandomness(MeanQuality):
    def _fit(self, dataset: RoutingDataset) -> None:
        super()._fit(dataset)
        self.means_ = self.means_ + 0.0 * np.random.random()  # draws from the caller's generator


class UncheckedLoad(MeanQuality):
    def _set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.means_ = tensors["means"]  # a config naming other models loads anyway


@pytest.mark.parametrize(
    ("broken", "failed_check"),
    [
        pytest.param(broken, failed_check, id=broken.__name__)
        for broken, failed_check in [
            (ForgetfulLoad, "save and load round trip: .*the loaded predictor predicts differently"),
            (BusyConstructor, r"settings: __init__ must store its settings and nothing else.*history_"),
            (RenamedSetting, "settings: AttributeError: .*'alpha'"),
            (UndeclaredConstraint, r"settings: _parameter_constraints names \['smoothness'\]"),
            (OneColumnShort, r"predict: predict gave shape \(\d+, 2\)"),
            (GlobalRandomness, r"fit: fit changed the caller's random state \(numpy.random\)"),
            (UncheckedLoad, "load refuses what does not fit: load of a config with a model the weights lack"),
        ]
    ],
)
def test_check_predictor_names_the_check_a_broken_predictor_fails(broken: type, failed_check: str) -> None:
    with pytest.raises(AssertionError, match=rf"check_predictor\({broken.__name__}\): {failed_check}"):
        check_predictor(broken)


# ---------------------------------------------------------------------------- registry
def test_registry_is_the_one_list_of_kinds() -> None:
    kinds = ("knn", "mf", "encoder", "causal-lm", "ensemble", "onboarded")
    assert PREDICTOR_KINDS == tuple(PREDICTOR_CLASSES) == kinds
    assert {predictor_class(kind).kind for kind in KINDS} == set(KINDS)
    for kind, path in PREDICTOR_CLASSES.items():  # the lazy exports come from the registry
        assert getattr(routoo.predictors, path.split(":")[1]) is predictor_class(kind)
        assert path.split(":")[1] in routoo.predictors.__all__


def test_kinds_share_only_the_base_registry_and_private_modules() -> None:
    """No kind imports another: what they share lives in base, registry, constraints or a _private module."""
    package = Path(routoo.predictors.__file__).parent
    kinds = {path.split(":")[0] for path in PREDICTOR_CLASSES.values()}
    for module in sorted(kinds):
        tree = ast.parse((package / f"{module.rsplit('.', 1)[1]}.py").read_text())
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        siblings = sorted(name for name in imported & kinds if name != module)
        assert not siblings, f"{module} imports {siblings}"


def test_unknown_kind_or_setting_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown predictor kind 'nope'.*knn.*mf.*encoder.*causal-lm"):
        make_predictor("nope")
    with pytest.raises(ConfigError, match="invalid settings for a 'knn' predictor"):
        make_predictor("knn", no_such_setting=1)


def test_load_default_says_how_to_get_one_when_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "DEFAULT_PREDICTOR_DIR", tmp_path / "default_predictor")
    with pytest.raises(PredictorLoadError, match=r"default predictor is not installed.*make_predictor"):
        load_default()


def test_load_default_loads_the_shipped_directory(
    fitted: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fitted.kind == "onboarded":
        pytest.skip("an onboarded predictor's base is the default: it cannot be the default itself")
    fitted.save(tmp_path)
    monkeypatch.setattr(registry, "DEFAULT_PREDICTOR_DIR", tmp_path)
    np.testing.assert_array_equal(load_default().predict(HELD_OUT[:5]), fitted.predict(HELD_OUT[:5]))


def test_importing_predictors_loads_no_transformer_kind() -> None:
    code = (
        "import sys, routoo.predictors; "
        "heavy = [m for m in ('torch', 'transformers', 'routoo.predictors.encoder', "
        "'routoo.predictors.causal_lm') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
