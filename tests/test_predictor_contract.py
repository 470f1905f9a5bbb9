"""The contract every predictor kind keeps, and the registry that names the kinds.

A kind joins these tests by adding its name and fast settings to ``CASES``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import planted_prompts

from routoo.errors import ConfigError, PredictorError, PredictorLoadError
from routoo.predictors import (
    PREDICTOR_KINDS,
    Predictor,
    load_default,
    load_predictor,
    make_predictor,
    predictor_class,
    registry,
)
from routoo.predictors.base import CONFIG_FILE, WEIGHTS_FILE

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


@pytest.fixture
def fitted(
    trained_case: tuple[str, dict[str, Any]], planted_dataset, fitted_by_kind: dict[str, Predictor]
) -> Predictor:
    """The case's kind trained on the planted set, once per kind (fitting is the slow part)."""
    kind, params = trained_case
    if kind not in fitted_by_kind:
        fitted_by_kind[kind] = make_predictor(kind, **params).fit(planted_dataset(n=120, seed=0, noise=0.05))
    return fitted_by_kind[kind]


HELD_OUT, IS_MATH = planted_prompts(80, seed=1)


# ------------------------------------------------------------------------ construction
def test_constructor_only_stores_settings(case: tuple[str, dict[str, Any]]) -> None:
    kind, params = case
    predictor = make_predictor(kind, **params)
    settings = predictor.get_params()
    assert set(vars(predictor)) == set(settings)  # nothing fitted, loaded or computed
    assert {name: settings[name] for name in params} == params
    assert type(predictor)(**settings).get_params() == settings
    json.dumps(settings)  # saved in config.json


def test_unfitted_predictor_refuses_to_predict_or_save(
    case: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    predictor = make_predictor(case[0], **case[1])
    with pytest.raises(PredictorError, match="not fitted"):
        predictor.predict(["What is 2 + 2?"])
    with pytest.raises(PredictorError, match="not fitted"):
        predictor.save(tmp_path)


# ----------------------------------------------------------------------------- fitting
def test_learns_the_planted_pattern(fitted: Predictor) -> None:
    scores = fitted.predict(HELD_OUT)
    math_model, poet_model = fitted.models_.index("math-model"), fitted.models_.index("poet-model")
    # The cheap specialist predicted better is the right one...
    assert np.mean((scores[:, math_model] > scores[:, poet_model]) == IS_MATH) >= 0.9
    # ...and the predicted best model of all answers correctly (big-model always does).
    best = np.array(fitted.models_)[scores.argmax(axis=1)]
    assert np.mean(np.where(IS_MATH, best != "poet-model", best != "math-model")) >= 0.9


def test_outputs_are_qualities_per_model(fitted: Predictor) -> None:
    assert fitted.models_ == ["math-model", "poet-model", "big-model"]
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": HELD_OUT[0]}]
    scores = fitted.predict([*HELD_OUT, chat])
    assert scores.shape == (len(HELD_OUT) + 1, 3)
    assert np.all(np.isfinite(scores)) and scores.min() >= 0.0 and scores.max() <= 1.0
    np.testing.assert_allclose(scores[-1], scores[0], atol=1e-6)  # the last user turn is what is read


def test_predict_of_no_prompts_is_empty(fitted: Predictor) -> None:
    assert fitted.predict([]).shape == (0, 3)


# ------------------------------------------------------------------------- persistence
def test_save_load_round_trip_gives_identical_predictions(fitted: Predictor, tmp_path: Path) -> None:
    fitted.save(tmp_path / "saved")
    for loaded in (load_predictor(tmp_path / "saved"), type(fitted).load(tmp_path / "saved")):
        assert type(loaded) is type(fitted)
        assert loaded.get_params() == fitted.get_params()
        assert loaded.models_ == fitted.models_ and loaded.train_fingerprint_ == fitted.train_fingerprint_
        np.testing.assert_array_equal(loaded.predict(HELD_OUT), fitted.predict(HELD_OUT))


def test_loading_another_kind_with_the_wrong_class_fails(fitted: Predictor, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    other = KINDS[(KINDS.index(fitted.kind) + 1) % len(KINDS)]
    with pytest.raises(PredictorLoadError, match=f"holds a '{fitted.kind}' predictor"):
        predictor_class(other).load(tmp_path)


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated"])
def test_missing_or_corrupted_weights_fail_to_load(fitted: Predictor, tmp_path: Path, damage: str) -> None:
    fitted.save(tmp_path)
    weights = tmp_path / WEIGHTS_FILE
    if damage == "missing":
        weights.unlink()
    elif damage == "garbage":
        weights.write_bytes(b"this is not safetensors")
    else:
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(PredictorLoadError, match="missing or corrupted"):
        load_predictor(tmp_path)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda config: config.update(format_version=999), id="other-format-version"),
        pytest.param(lambda config: config["models"].append("extra-model"), id="models-not-in-weights"),
        pytest.param(lambda config: config.update(routoo_predictor="no-such-kind"), id="unknown-kind"),
    ],
)
def test_a_config_that_does_not_fit_fails_to_load(fitted: Predictor, tmp_path: Path, edit) -> None:
    fitted.save(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    edit(config)
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(PredictorLoadError):
        load_predictor(tmp_path)


# ---------------------------------------------------------------------------- registry
def test_registry_lists_every_kind() -> None:
    assert PREDICTOR_KINDS == ("knn", "mf", "encoder", "causal-lm", "ensemble")
    assert set(registry._CLASSES) == set(PREDICTOR_KINDS)
    assert {predictor_class(kind).kind for kind in KINDS} == set(KINDS)


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

    fitted.save(tmp_path)
    monkeypatch.setattr(registry, "DEFAULT_PREDICTOR_DIR", tmp_path)
    np.testing.assert_array_equal(load_default().predict(HELD_OUT[:5]), fitted.predict(HELD_OUT[:5]))


def test_importing_predictors_loads_no_transformer_kind() -> None:
    code = (
        "import sys, routoo.predictors; "
        "heavy = [m for m in ('transformers', 'routoo.predictors.encoder', 'routoo.predictors.causal_lm') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
