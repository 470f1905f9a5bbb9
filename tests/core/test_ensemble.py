"""The ``ensemble`` predictor: a weighted mean of other kinds' predictions, saved member by member."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import planted_prompts

from routoo.cli import main
from routoo.data import save_jsonl
from routoo.errors import ConfigError, PredictorLoadError
from routoo.predictors import (
    PREDICTOR_KINDS,
    EnsemblePredictor,
    KNNPredictor,
    MFPredictor,
    Predictor,
    load_predictor,
    make_predictor,
)
from routoo.predictors.base import CONFIG_FILE

# Members with settings that train fast on the planted set.
FAST_MEMBERS: list[dict[str, Any]] = [
    {"kind": "knn", "params": {"k": 10}},
    {"kind": "mf", "params": {"epochs": 40, "batch_size": 32}},
]
HELD_OUT, IS_MATH = planted_prompts(60, seed=1)


@pytest.fixture(scope="module")
def cache() -> dict[str, Predictor]:
    return {}


@pytest.fixture
def weighted(planted_dataset, cache: dict[str, Predictor]) -> EnsemblePredictor:
    """Fast knn and mf weighted 1:3, trained on the noisy planted set once per module."""
    if "weighted" not in cache:
        dataset = planted_dataset(n=120, seed=0, noise=0.05)
        cache["weighted"] = EnsemblePredictor(members=FAST_MEMBERS, weights=[1, 3]).fit(dataset)
    predictor = cache["weighted"]
    assert isinstance(predictor, EnsemblePredictor)
    return predictor


@pytest.fixture
def saved(weighted: EnsemblePredictor, tmp_path: Path) -> Path:
    return weighted.save(tmp_path / "ensemble")


def edit_config(directory: Path, edit) -> None:
    config = json.loads((directory / CONFIG_FILE).read_text())
    edit(config)
    (directory / CONFIG_FILE).write_text(json.dumps(config))


# ----------------------------------------------------------------------------- fitting
def test_is_a_registered_kind_made_by_name() -> None:
    assert "ensemble" in PREDICTOR_KINDS
    predictor = make_predictor("ensemble", members=FAST_MEMBERS, weights=[1, 3])
    assert isinstance(predictor, EnsemblePredictor)
    assert predictor.get_params() == {"members": FAST_MEMBERS, "weights": [1, 3], "prompt_view": "last_user"}


def test_learns_the_planted_pattern(weighted: EnsemblePredictor) -> None:
    scores = weighted.predict(HELD_OUT)
    assert scores.shape == (len(HELD_OUT), 3) and scores.min() >= 0.0 and scores.max() <= 1.0
    assert np.mean((scores[:, 0] > scores[:, 1]) == IS_MATH) >= 0.9
    best = np.array(weighted.models_)[scores.argmax(axis=1)]
    assert np.mean(np.where(IS_MATH, best != "poet-model", best != "math-model")) >= 0.9


def test_predicts_the_weighted_mean_of_separately_fitted_members(
    weighted: EnsemblePredictor, planted_dataset
) -> None:
    dataset = planted_dataset(n=120, seed=0, noise=0.05)
    knn = KNNPredictor(**FAST_MEMBERS[0]["params"]).fit(dataset)
    mf = MFPredictor(**FAST_MEMBERS[1]["params"]).fit(dataset)
    np.testing.assert_array_equal(weighted.weights_, [0.25, 0.75])
    assert [member.kind for member in weighted.members_] == ["knn", "mf"]
    expected = 0.25 * knn.predict(HELD_OUT) + 0.75 * mf.predict(HELD_OUT)
    np.testing.assert_allclose(weighted.predict(HELD_OUT), expected, rtol=0, atol=1e-12)


def test_default_members_are_the_tuned_knn_and_mf_averaged_equally(planted_dataset) -> None:
    predictor = EnsemblePredictor().fit(planted_dataset(n=80))
    assert predictor.get_params()["members"] is None
    knn, mf = predictor.members_
    assert isinstance(knn, KNNPredictor) and knn.k == "auto" and isinstance(mf, MFPredictor)
    np.testing.assert_array_equal(predictor.weights_, [0.5, 0.5])
    expected = (knn.predict(HELD_OUT) + mf.predict(HELD_OUT)) / 2
    np.testing.assert_allclose(predictor.predict(HELD_OUT), expected, rtol=0, atol=1e-12)


def test_members_read_the_ensembles_prompt_view(planted_dataset) -> None:
    predictor = EnsemblePredictor(members=FAST_MEMBERS[:1], prompt_view="conversation").fit(
        planted_dataset(n=40)
    )
    assert predictor.members_[0].prompt_view == "conversation"


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"members": []}, "members must be a non-empty list", id="no-members"),
        pytest.param({"members": "knn"}, "members must be a non-empty list", id="members-not-a-list"),
        pytest.param(
            {"members": [{"kind": "nope"}]}, "member 0: unknown predictor kind 'nope'", id="unknown-kind"
        ),
        pytest.param(
            {"members": [{"kind": "ensemble"}]}, "member 0: ensembles cannot be nested", id="nested"
        ),
        pytest.param({"members": [{"params": {}}]}, "member 0 must be a dict with 'kind'", id="no-kind"),
        pytest.param(
            {"members": [{"kind": "knn", "k": 5}]}, "member 0 must be a dict with 'kind'", id="stray-key"
        ),
        pytest.param(
            {"members": [{"kind": "knn", "params": [5]}]},
            "member 0: params must be a dict",
            id="params-not-dict",
        ),
        pytest.param(
            {"members": [{"kind": "mf", "params": {"no_such_setting": 1}}]},
            "member 0: invalid settings for a 'mf' predictor",
            id="unknown-setting",
        ),
        pytest.param(
            {"members": [{"kind": "knn", "params": {"k": 0}}]},
            "member 0: k must be an integer >= 1",
            id="bad-member-setting",
        ),
        pytest.param(
            {"members": [{"kind": "knn", "params": {"prompt_view": "conversation"}}]},
            "member 0: every member reads the ensemble's prompt_view",
            id="member-prompt-view",
        ),
        pytest.param({"weights": [1.0]}, "weights has 1 entries for 2 members", id="weights-too-short"),
        pytest.param({"weights": [1.0, -0.5]}, "weights must be non-negative", id="negative-weight"),
        pytest.param({"weights": [0, 0]}, "not all zero", id="zero-weights"),
        pytest.param({"weights": [1.0, float("nan")]}, "weights must be finite numbers", id="nan-weight"),
        pytest.param({"weights": [1.0, "2"]}, "weights must be finite numbers", id="string-weight"),
        pytest.param({"weights": "auto"}, "weights must be None or a list", id="weights-not-a-list"),
    ],
)
def test_bad_settings_are_config_errors_at_fit(
    planted_dataset, settings: dict[str, Any], message: str
) -> None:
    predictor = make_predictor("ensemble", **settings)  # like scikit-learn, the constructor only stores
    with pytest.raises(ConfigError, match=message):
        predictor.fit(planted_dataset(n=20))
    assert not hasattr(predictor, "members_")


# ------------------------------------------------------------------------ persistence
def test_save_load_round_trip_gives_identical_predictions(weighted: EnsemblePredictor, saved: Path) -> None:
    assert (saved / CONFIG_FILE).is_file() and (saved / "weights.safetensors").is_file()
    assert load_predictor(saved / "members" / "0").kind == "knn"
    assert load_predictor(saved / "members" / "1").kind == "mf"
    for loaded in (load_predictor(saved), EnsemblePredictor.load(saved)):
        assert isinstance(loaded, EnsemblePredictor)
        assert loaded.get_params() == weighted.get_params()
        assert loaded.models_ == weighted.models_ and loaded.train_fingerprint_ == weighted.train_fingerprint_
        np.testing.assert_array_equal(loaded.weights_, weighted.weights_)
        np.testing.assert_array_equal(loaded.predict(HELD_OUT), weighted.predict(HELD_OUT))


def test_a_missing_member_fails_to_load(saved: Path) -> None:
    shutil.rmtree(saved / "members" / "1")
    with pytest.raises(PredictorLoadError, match="members/1"):
        load_predictor(saved)


def test_swapped_members_fail_to_load(saved: Path) -> None:
    members = saved / "members"
    (members / "0").rename(members / "tmp")
    (members / "1").rename(members / "0")
    (members / "tmp").rename(members / "1")
    with pytest.raises(PredictorLoadError, match=r"holds a 'mf' predictor .* member 0 is 'knn'"):
        load_predictor(saved)


def test_a_member_trained_on_other_data_fails_to_load(saved: Path, planted_dataset) -> None:
    shutil.rmtree(saved / "members" / "0")
    KNNPredictor(**FAST_MEMBERS[0]["params"]).fit(planted_dataset(n=40, seed=3)).save(saved / "members" / "0")
    with pytest.raises(PredictorLoadError, match="not trained with the ensemble"):
        load_predictor(saved)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            lambda c: c["params"]["members"].append({"kind": "knn"}), id="more-members-than-weights"
        ),
        pytest.param(lambda c: c["params"]["members"].reverse(), id="member-kinds-changed"),
        pytest.param(lambda c: c["params"].update(members=[{"kind": "ensemble"}] * 2), id="nested"),
        pytest.param(lambda c: c["params"]["members"][0]["params"].update(k=7), id="member-settings-changed"),
        pytest.param(lambda c: c["models"].append("extra-model"), id="models-not-in-members"),
    ],
)
def test_a_config_that_does_not_fit_its_members_fails_to_load(saved: Path, edit) -> None:
    edit_config(saved, edit)
    with pytest.raises(PredictorLoadError):
        load_predictor(saved)


# ---------------------------------------------------------------------- command line
def test_routoo_train_makes_an_ensemble(planted_dataset, tmp_path: Path, capsys) -> None:
    data, out = tmp_path / "planted.jsonl", tmp_path / "ensemble"
    save_jsonl(planted_dataset(n=60), data)
    args = ["train", "--data", str(data), "--predictor", "ensemble", "--out", str(out)]
    members = f"members={json.dumps(FAST_MEMBERS)}"
    assert main([*args, "--param", members, "--param", "weights=[2, 1]"]) == 0
    loaded = load_predictor(out)
    assert isinstance(loaded, EnsemblePredictor) and loaded.get_params()["members"] == FAST_MEMBERS
    np.testing.assert_allclose(loaded.weights_, [2 / 3, 1 / 3])
    capsys.readouterr()
    assert main([*args, "--param", 'members=[{"kind": "nope"}]']) == 2
    assert "unknown predictor kind 'nope'" in capsys.readouterr().err
